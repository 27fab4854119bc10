//! RFC 3161 signature timestamps: a token in a signer's unsigned attributes
//! (id-aa-signatureTimeStampToken) says when a TSA saw the signature. It counts when its
//! messageImprint is the hash of that signature value, its own signature verifies, and its
//! signer chains to one of the configured TSA anchors with the timeStamping purpose.

use super::cms::{check_signature, digest_of, find_certificate, parse, time_value};
use crate::x509::der::Reader;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContext, X509};
use time::OffsetDateTime;

/// id-ct-TSTInfo, 1.2.840.113549.1.9.16.1.4.
const OID_TST_INFO: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
/// id-kp-timeStamping.
const OID_KP_TIME_STAMPING: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// Why a timestamp token does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampProblem {
    /// Unreadable, not for this signature, or its signature does not verify.
    Invalid,
    /// Its signer does not chain to a configured TSA anchor (or lacks timeStamping).
    Untrusted,
}

impl TimestampProblem {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            TimestampProblem::Invalid => "timestamp_invalid",
            TimestampProblem::Untrusted => "timestamp_untrusted",
        }
    }
}

/// The time a token attests for `signature`, checked against the TSA `anchors` (DER) at the
/// token's own time.
pub fn check(
    token: &[u8],
    signature: &[u8],
    anchors: &[Vec<u8>],
) -> Result<OffsetDateTime, TimestampProblem> {
    use TimestampProblem::*;
    let sd = parse(token).map_err(|_| Invalid)?;
    if sd.content_type != OID_TST_INFO || sd.signers.len() != 1 {
        return Err(Invalid);
    }
    let content = sd.content.as_deref().ok_or(Invalid)?;
    let (imprint_alg, imprint, gen_time) = tst_info(content).ok_or(Invalid)?;
    let digest = digest_of(&imprint_alg).ok_or(Invalid)?;
    if digest.digest(signature) != imprint {
        return Err(Invalid);
    }
    let signer = &sd.signers[0];
    let cert_der = find_certificate(&signer.sid, &sd.certificates).ok_or(Invalid)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der).map_err(|_| Invalid)?;
    check_signature(signer, &sd.content_type, content, parsed.public_key().raw)
        .map_err(|_| Invalid)?;
    if anchors.is_empty() || !time_stamping(&parsed) {
        return Err(Untrusted);
    }
    let cert = X509::from_der(cert_der).map_err(|_| Invalid)?;
    let mut store = X509StoreBuilder::new().map_err(|_| Untrusted)?;
    for a in anchors {
        let a = X509::from_der(a).map_err(|_| Untrusted)?;
        store.add_cert(a).map_err(|_| Untrusted)?;
    }
    // The chain is judged when the token was made (a TSA certificate expired since still
    // vouches for its earlier tokens).
    let mut param = openssl::x509::verify::X509VerifyParam::new().map_err(|_| Untrusted)?;
    param.set_time(gen_time.unix_timestamp());
    store.set_param(&param).map_err(|_| Untrusted)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(|_| Untrusted)?;
    for der in &sd.certificates {
        if let Ok(c) = X509::from_der(der) {
            let _ = untrusted.push(c);
        }
    }
    let mut ctx = X509StoreContext::new().map_err(|_| Untrusted)?;
    let ok = ctx
        .init(&store, &cert, &untrusted, |c| c.verify_cert())
        .unwrap_or(false);
    super::cms::clear_openssl_errors();
    if ok {
        Ok(gen_time)
    } else {
        Err(Untrusted)
    }
}

/// TSTInfo: (messageImprint hashAlgorithm DER, hashedMessage, genTime).
fn tst_info(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>, OffsetDateTime)> {
    let mut outer = Reader::new(der);
    let mut r = Reader::new(outer.read(0x30, "TSTInfo").ok()?);
    r.read(0x02, "version").ok()?;
    r.read(0x06, "policy").ok()?;
    let mut imprint = Reader::new(r.read(0x30, "messageImprint").ok()?);
    let alg = imprint.any().ok()?;
    let hashed = imprint.read(0x04, "hashedMessage").ok()?.to_vec();
    r.read(0x02, "serialNumber").ok()?;
    let gen_time = time_value(r.any().ok()?).ok()?;
    Some((alg.whole.to_vec(), hashed, gen_time))
}

fn time_stamping(c: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    c.extensions().iter().any(|e| match e.parsed_extension() {
        x509_parser::extensions::ParsedExtension::ExtendedKeyUsage(eku) => {
            eku.time_stamping
                || eku
                    .other
                    .iter()
                    .any(|o| o.as_bytes() == OID_KP_TIME_STAMPING)
        }
        _ => false,
    })
}
