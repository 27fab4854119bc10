//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second steps, one step of clock
//! drift either way, and a step once used is refused (the caller keeps the last one).

use ring::hmac;
use zeroize::Zeroizing;

/// Length of a step, in seconds.
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Bytes in a secret (160 bits, RFC 4226's recommended size).
pub const SECRET_BYTES: usize = 20;

/// The HOTP value of `secret` at `counter` with `digits` digits (RFC 4226 5.3).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // A SHA-1 tag is 20 bytes; its last nibble is at most 15, so offset + 3 <= 18.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let code = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    code % 10u32.pow(digits)
}

/// The step a Unix time falls in.
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS)
}

/// The step `code` matches at `unix` (±1 step), if it is later than `last_step` (a code is good
/// once). Codes are compared in full whatever matched first, so timing says nothing of which.
pub fn check(secret: &[u8], code: &str, unix: i64, last_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = step_at(unix);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let matches = super::ct_eq(
            &hotp(secret, counter, DIGITS).to_be_bytes(),
            &given.to_be_bytes(),
        );
        if matches && last_step.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A new random secret.
pub fn new_secret() -> Zeroizing<Vec<u8>> {
    use rand::RngCore;
    let mut s = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI authenticator apps read from a QR code (Google Authenticator's key URI
/// format): issuer and account label, base32 secret, the algorithm, digits and period.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> Zeroizing<String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    Zeroizing::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret).as_str(),
        enc(issuer)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: (time, 8-digit TOTP) with the ASCII secret
    /// "12345678901234567890".
    const VECTORS: [(i64, u32); 6] = [
        (59, 94287082),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ];
    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn the_rfc_6238_test_vectors() {
        for (t, code) in VECTORS {
            let step = u64::try_from(step_at(t)).unwrap();
            assert_eq!(hotp(SECRET, step, 8), code, "T = {t}");
            assert_eq!(hotp(SECRET, step, 6), code % 1_000_000, "T = {t}");
            let six = format!("{:06}", code % 1_000_000);
            assert_eq!(check(SECRET, &six, t, None), Some(step_at(t)), "T = {t}");
        }
    }

    #[test]
    fn the_rfc_4226_hotp_vectors() {
        // RFC 4226 Appendix D, counters 0..9.
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(SECRET, counter as u64, 6), code);
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_a_used_step_is_refused() {
        let t = 1_111_111_111;
        let code = |step: i64| format!("{:06}", hotp(SECRET, step as u64, 6));
        let now = step_at(t);
        assert_eq!(check(SECRET, &code(now - 1), t, None), Some(now - 1));
        assert_eq!(check(SECRET, &code(now + 1), t, None), Some(now + 1));
        assert_eq!(check(SECRET, &code(now - 2), t, None), None);
        assert_eq!(check(SECRET, &code(now + 2), t, None), None);
        // Replay: the step just used, or an earlier one, is refused.
        assert_eq!(check(SECRET, &code(now), t, Some(now)), None);
        assert_eq!(check(SECRET, &code(now - 1), t, Some(now)), None);
        assert_eq!(check(SECRET, &code(now + 1), t, Some(now)), Some(now + 1));
        for bad in ["", "12345", "1234567", "12345a", " 1 2 3"] {
            assert_eq!(check(SECRET, bad, t, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_is_rfc_4648() {
        // RFC 4648 section 10, without padding.
        for (input, out) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()).as_str(), out);
        }
        let uri = otpauth_uri("Vouch RA", "alice@x", SECRET);
        assert!(uri.starts_with(
            "otpauth://totp/Vouch+RA:alice%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
        ));
    }
}
