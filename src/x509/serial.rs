//! Certificate serial numbers: 126 bits of CSPRNG output, positive, rendered as lowercase hex with
//! no separators and no leading zero digit (so the hex form is canonical).

use crate::error::{Error, Result};
use rand::RngCore;
use std::fmt;

/// Length of the serials the RA makes, in bytes.
pub const SERIAL_BYTES: usize = 16;

/// Longest serial accepted from a client, in hex digits (32 bytes; RFC 5280 allows 20).
pub const MAX_CLIENT_SERIAL_DIGITS: usize = 64;

/// A certificate serial the RA made: 16 random bytes, positive, without a leading zero byte.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial([u8; SERIAL_BYTES]);

impl Serial {
    /// A fresh random serial.
    pub fn random() -> Self {
        let mut bytes = [0u8; SERIAL_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        // First byte in 0x10..=0x7f: positive as a DER INTEGER (top bit clear), no leading zero
        // byte to strip, and no leading zero hex digit.
        bytes[0] = 0x10 + (bytes[0] % 0x70);
        Serial(bytes)
    }

    /// The serial's bytes (the DER INTEGER's content octets).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parse the canonical hex form. Accepts upper case and ':' separators, as people paste them.
    /// Only serials [`Serial::random`] can make are accepted (first byte 0x10..=0x7f): the CRL
    /// encoder writes the bytes as the INTEGER's content octets and OCSP looks serials up by them,
    /// which is right only for a positive serial with no leading zero byte.
    pub fn parse(text: &str) -> Option<Self> {
        let cleaned: String = text
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let bytes = hex::decode(cleaned).ok()?;
        let arr: [u8; SERIAL_BYTES] = bytes.try_into().ok()?;
        (0x10..0x80).contains(&arr[0]).then_some(Serial(arr))
    }

    /// Normalise a serial from a client to the stored form, without requiring it to be one of ours.
    pub fn normalise(text: &str) -> Option<String> {
        Self::from_client(text).ok()
    }

    /// Like [`Serial::normalise`], with an `invalid_serial` error that says what is wrong.
    pub fn from_client(text: &str) -> Result<String> {
        let bad = |msg: String| Err(Error::invalid("invalid_serial", msg));
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_hexdigit() || *c == ':'))
        {
            return bad(format!(
                "serial contains {c:?} at position {}; a serial is hex digits, optionally \
                 separated by ':'",
                i + 1
            ));
        }
        let cleaned: String = text
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if cleaned.is_empty() {
            return bad("serial is empty".into());
        }
        if cleaned.len() > MAX_CLIENT_SERIAL_DIGITS {
            return bad(format!(
                "serial has {} hex digits; at most {MAX_CLIENT_SERIAL_DIGITS}",
                cleaned.len()
            ));
        }
        // The canonical form has no leading zero digit (`openssl x509 -serial` prints whole
        // octets, so a serial of a remote CA may come with one).
        let trimmed = cleaned.trim_start_matches('0');
        Ok(if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.into()
        })
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_canonical_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = Serial::random();
            assert!(s.as_bytes()[0] >= 0x10 && s.as_bytes()[0] < 0x80);
            let hex = s.to_string();
            assert_eq!(hex.len(), 32);
            assert!(!hex.starts_with('0'));
            assert_eq!(Serial::parse(&hex), Some(s.clone()));
            assert!(seen.insert(hex));
        }
    }

    /// Found by the CRL encoder fuzz target: a serial whose first byte had its top bit set was
    /// written into the CRL as a negative INTEGER (and one starting with 0x00 as a non-minimal
    /// one), so relying parties would not have matched it to the certificate.
    #[test]
    fn parse_refuses_serials_random_cannot_make() {
        assert!(Serial::parse("80000000000000000000000000000000").is_none());
        assert!(Serial::parse("00100000000000000000000000000000").is_none());
        assert!(Serial::parse("0f000000000000000000000000000000").is_none());
        assert!(Serial::parse("10000000000000000000000000000000").is_some());
        assert!(Serial::parse("7fffffffffffffffffffffffffffffff").is_some());
    }

    #[test]
    fn normalise_accepts_openssl_style() {
        assert_eq!(Serial::normalise("1A:2b:3C").as_deref(), Some("1a2b3c"));
        // Whole octets, as openssl prints a serial whose first digit is 0: the same serial.
        assert_eq!(Serial::normalise("0A:2b:3C").as_deref(), Some("a2b3c"));
        assert_eq!(Serial::normalise("00:00").as_deref(), Some("0"));
        assert_eq!(Serial::normalise("xyz"), None);
        assert_eq!(Serial::normalise(""), None);
    }

    #[test]
    fn client_serial_errors_name_the_problem() {
        let msg = |t: &str| {
            let e = Serial::from_client(t).unwrap_err();
            assert_eq!(e.code(), "invalid_serial");
            e.to_string()
        };
        let max = "a".repeat(MAX_CLIENT_SERIAL_DIGITS);
        assert_eq!(Serial::from_client(&max).unwrap(), max);
        assert_eq!(msg(&"a".repeat(65)), "serial has 65 hex digits; at most 64");
        assert!(msg("12g4").starts_with("serial contains 'g' at position 3;"));
        assert!(msg("12\u{0}").starts_with("serial contains '\\0' at position 3;"));
        assert_eq!(msg(":"), "serial is empty");
    }
}
