//! Reading a CMS SignedData submission (RFC 5652) and checking each signer's signature: the
//! structure is read on the strict DER reader (after OpenSSL has re-encoded BER, such as
//! indefinite lengths from streaming signers, as DER), and every signature is checked here, one
//! signer at a time, so that each is reported on its own.

use crate::x509::der::{DerError, Reader, Tlv};
use crate::x509::signature::{self, HashAlg};
use time::OffsetDateTime;

/// Largest CMS read (with its certificates and attached content; detached content is bounded by
/// the request body's limit).
pub const MAX_CMS_BYTES: usize = 512 * 1024;

const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_CONTENT_TYPE: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_SIGNING_TIME: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
/// id-aa-signatureTimeStampToken (RFC 3161 appendix A).
pub const OID_TIMESTAMP_TOKEN: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0e,
];

/// How a signer names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// IssuerAndSerialNumber: the issuer Name (DER) and the serial's INTEGER content octets.
    IssuerSerial {
        /// The issuer Name, DER.
        issuer: Vec<u8>,
        /// The serial's content octets.
        serial: Vec<u8>,
    },
    /// subjectKeyIdentifier.
    KeyId(Vec<u8>),
}

/// One SignerInfo as read.
#[derive(Debug, Clone)]
pub struct SignerInfo {
    /// Who signed.
    pub sid: SignerId,
    /// The digest algorithm's AlgorithmIdentifier, DER.
    pub digest_algorithm: Vec<u8>,
    /// The signed attributes re-tagged as the SET OF the signature covers (DER), when present.
    pub signed_attrs: Option<Vec<u8>>,
    /// The messageDigest attribute.
    pub message_digest: Option<Vec<u8>>,
    /// The contentType attribute (OID content octets).
    pub content_type: Option<Vec<u8>>,
    /// The signingTime attribute.
    pub signing_time: Option<OffsetDateTime>,
    /// The signature algorithm's AlgorithmIdentifier, DER.
    pub signature_algorithm: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// The RFC 3161 timestamp token(s) among the unsigned attributes (ContentInfo DER).
    pub timestamp_tokens: Vec<Vec<u8>>,
}

/// A SignedData as read.
#[derive(Debug, Clone)]
pub struct SignedData {
    /// The encapsulated content type (OID content octets).
    pub content_type: Vec<u8>,
    /// The encapsulated content, when attached.
    pub content: Option<Vec<u8>>,
    /// The certificates it carries (DER), in order.
    pub certificates: Vec<Vec<u8>>,
    /// Its signers, in order.
    pub signers: Vec<SignerInfo>,
}

fn bad<T>(msg: impl Into<String>) -> Result<T, DerError> {
    Err(DerError(msg.into()))
}

/// Read a SignedData from DER, PEM (`-----BEGIN CMS-----` or `PKCS7`) or BER (re-encoded by
/// OpenSSL).
pub fn read(input: &[u8]) -> Result<SignedData, DerError> {
    // PEM may come with blank lines around it; DER is taken as it is (its last octet may well
    // be a space's).
    let input = match input.trim_ascii() {
        pem if pem.starts_with(b"-----BEGIN") => pem,
        _ => input,
    };
    if input.is_empty() || input.len() > MAX_CMS_BYTES {
        return bad(format!("empty or larger than {MAX_CMS_BYTES} bytes"));
    }
    if let Ok(s) = parse(input) {
        return Ok(s);
    }
    // PEM is 7-bit text; anything else non-ASCII goes to the DER reader only (rust-openssl
    // panics on error data that is not UTF-8).
    let cms = if input.starts_with(b"-----BEGIN") && input.is_ascii() {
        openssl::cms::CmsContentInfo::from_pem(input)
    } else {
        openssl::cms::CmsContentInfo::from_der(input)
    }
    .map_err(|_| DerError("not a CMS SignedData".into()))?;
    let der = cms
        .to_der()
        .map_err(|_| DerError("the CMS cannot be re-encoded as DER".into()))?;
    parse(&der)
}

/// Read a SignedData from strict DER.
pub fn parse(der: &[u8]) -> Result<SignedData, DerError> {
    let mut outer = Reader::new(der);
    let mut ci = Reader::new(outer.read(0x30, "ContentInfo")?);
    outer.finish("ContentInfo")?;
    if ci.read(0x06, "contentType")? != OID_SIGNED_DATA {
        return bad("not a SignedData");
    }
    let mut explicit = Reader::new(ci.read(0xa0, "content")?);
    ci.finish("ContentInfo")?;
    let mut sd = Reader::new(explicit.read(0x30, "SignedData")?);
    explicit.finish("content")?;
    sd.read(0x02, "version")?;
    sd.read(0x31, "digestAlgorithms")?;
    let mut encap = Reader::new(sd.read(0x30, "encapContentInfo")?);
    let content_type = encap.read(0x06, "eContentType")?.to_vec();
    let content = match encap.optional(0xa0)? {
        Some(e) => {
            let mut e = Reader::new(e);
            let octets = e.read(0x04, "eContent")?.to_vec();
            e.finish("eContent")?;
            Some(octets)
        }
        None => None,
    };
    encap.finish("encapContentInfo")?;
    let mut certificates = Vec::new();
    if let Some(set) = sd.optional(0xa0)? {
        let mut set = Reader::new(set);
        while !set.is_empty() {
            let c = set.any()?;
            // Certificates; attribute certificates ([1], [2]) and other formats are skipped.
            if c.tag == 0x30 {
                certificates.push(c.whole.to_vec());
            }
        }
    }
    sd.optional(0xa1)?; // crls
    let mut infos = Reader::new(sd.read(0x31, "signerInfos")?);
    sd.finish("SignedData")?;
    let mut signers = Vec::new();
    while !infos.is_empty() {
        signers.push(signer_info(infos.read(0x30, "SignerInfo")?)?);
    }
    if signers.is_empty() {
        return bad("no signers");
    }
    Ok(SignedData {
        content_type,
        content,
        certificates,
        signers,
    })
}

fn signer_info(content: &[u8]) -> Result<SignerInfo, DerError> {
    let mut r = Reader::new(content);
    r.read(0x02, "version")?;
    let sid = match r.peek_tag() {
        Some(0x30) => {
            let mut ias = Reader::new(r.read(0x30, "issuerAndSerialNumber")?);
            let issuer = ias.any()?;
            if issuer.tag != 0x30 {
                return bad("issuer is not a Name");
            }
            let serial = ias.read(0x02, "serialNumber")?.to_vec();
            ias.finish("issuerAndSerialNumber")?;
            SignerId::IssuerSerial {
                issuer: issuer.whole.to_vec(),
                serial,
            }
        }
        Some(0x80) => SignerId::KeyId(r.read(0x80, "subjectKeyIdentifier")?.to_vec()),
        _ => return bad("sid is neither issuerAndSerialNumber nor subjectKeyIdentifier"),
    };
    let digest_algorithm = algorithm(&mut r, "digestAlgorithm")?;
    let mut info = SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs: None,
        message_digest: None,
        content_type: None,
        signing_time: None,
        signature_algorithm: Vec::new(),
        signature: Vec::new(),
        timestamp_tokens: Vec::new(),
    };
    if r.peek_tag() == Some(0xa0) {
        let attrs = r.any()?;
        // The signature covers the attributes' DER with the SET OF tag (RFC 5652 5.4).
        let mut set = attrs.whole.to_vec();
        set[0] = 0x31;
        for (oid, values) in attributes(attrs.content)? {
            let single = |what: &str| -> Result<Tlv<'_>, DerError> {
                let mut v = Reader::new(values);
                let one = v.any()?;
                if !v.is_empty() {
                    return bad(format!("{what}: more than one value"));
                }
                Ok(one)
            };
            if oid == OID_MESSAGE_DIGEST {
                let v = single("messageDigest")?;
                if v.tag != 0x04 {
                    return bad("messageDigest is not an OCTET STRING");
                }
                info.message_digest = Some(v.content.to_vec());
            } else if oid == OID_CONTENT_TYPE {
                let v = single("contentType")?;
                if v.tag != 0x06 {
                    return bad("contentType is not an OID");
                }
                info.content_type = Some(v.content.to_vec());
            } else if oid == OID_SIGNING_TIME {
                info.signing_time = Some(time_value(single("signingTime")?)?);
            }
        }
        info.signed_attrs = Some(set);
    }
    info.signature_algorithm = algorithm(&mut r, "signatureAlgorithm")?;
    info.signature = r.read(0x04, "signature")?.to_vec();
    if let Some(unsigned) = r.optional(0xa1)? {
        for (oid, values) in attributes(unsigned)? {
            if oid == OID_TIMESTAMP_TOKEN {
                let mut v = Reader::new(values);
                while !v.is_empty() {
                    info.timestamp_tokens.push(v.any()?.whole.to_vec());
                }
            }
        }
    }
    r.finish("SignerInfo")?;
    Ok(info)
}

fn algorithm(r: &mut Reader<'_>, what: &str) -> Result<Vec<u8>, DerError> {
    let a = r.any()?;
    if a.tag != 0x30 {
        return bad(format!("{what} is not an AlgorithmIdentifier"));
    }
    Ok(a.whole.to_vec())
}

/// Attribute ::= SEQUENCE { attrType OID, attrValues SET OF }: (OID content, SET content).
/// An attribute's type (OID content octets) and its values (the SET's content).
type RawAttribute<'a> = (&'a [u8], &'a [u8]);

fn attributes(content: &[u8]) -> Result<Vec<RawAttribute<'_>>, DerError> {
    let mut r = Reader::new(content);
    let mut out = Vec::new();
    while !r.is_empty() {
        let mut a = Reader::new(r.read(0x30, "Attribute")?);
        let oid = a.read(0x06, "attrType")?;
        let values = a.read(0x31, "attrValues")?;
        a.finish("Attribute")?;
        if out.iter().any(|(o, _)| *o == oid) {
            return bad("an attribute appears twice");
        }
        out.push((oid, values));
    }
    Ok(out)
}

/// UTCTime or GeneralizedTime (seconds, `Z`; GeneralizedTime may carry fractions, which are
/// dropped).
pub fn time_value(t: Tlv<'_>) -> Result<OffsetDateTime, DerError> {
    // Times are ASCII: anything else is refused before the text is cut at byte positions.
    if !t.content.is_ascii() {
        return bad("a time with non-ASCII characters");
    }
    let text = std::str::from_utf8(t.content).map_err(|_| DerError("bad time".into()))?;
    let digits = match t.tag {
        0x17 if text.len() == 13 => {
            let yy: i32 = text[..2]
                .parse()
                .map_err(|_| DerError("bad UTCTime".into()))?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{}", &text[..12])
        }
        0x18 if text.len() >= 15 => {
            let (main, frac) = text.split_at(14);
            let frac_ok = frac == "Z"
                || (frac.starts_with('.')
                    && frac.ends_with('Z')
                    && frac[1..frac.len() - 1].bytes().all(|b| b.is_ascii_digit()));
            if !frac_ok {
                return bad("bad GeneralizedTime");
            }
            main.to_string()
        }
        _ => return bad("not a UTCTime or GeneralizedTime"),
    };
    if !text.ends_with('Z') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return bad("a time not in UTC");
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<u32>().unwrap_or(99);
    let date = time::Month::try_from(n(4, 6) as u8)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(n(0, 4) as i32, m, n(6, 8) as u8).ok());
    let clock = time::Time::from_hms(n(8, 10) as u8, n(10, 12) as u8, n(12, 14) as u8).ok();
    match (date, clock) {
        (Some(d), Some(c)) => Ok(d.with_time(c).assume_utc()),
        _ => bad("not a valid date and time"),
    }
}

/// Why a signer's signature does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The messageDigest attribute is not the content's digest.
    DigestMismatch,
    /// The contentType attribute is not the encapsulated content type.
    ContentTypeMismatch,
    /// Signed attributes without messageDigest or contentType (RFC 5652 5.3).
    AttributesMissing,
    /// The signature does not verify with the certificate's key.
    BadSignature,
    /// A digest or signature algorithm not accepted (not SHA-2 with ECDSA, RSA PKCS#1 v1.5).
    Algorithm,
}

impl SignatureProblem {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            SignatureProblem::DigestMismatch => "content_digest_mismatch",
            SignatureProblem::ContentTypeMismatch => "content_type_mismatch",
            SignatureProblem::AttributesMissing => "signed_attributes_incomplete",
            SignatureProblem::BadSignature => "signature_invalid",
            SignatureProblem::Algorithm => "algorithm_not_accepted",
        }
    }
}

/// The digest of an AlgorithmIdentifier naming SHA-256, SHA-384 or SHA-512 (parameters absent
/// or NULL).
pub fn digest_of(algorithm: &[u8]) -> Option<HashAlg> {
    let mut r = Reader::new(algorithm);
    let mut seq = Reader::new(r.read(0x30, "AlgorithmIdentifier").ok()?);
    let oid = seq.read(0x06, "algorithm").ok()?;
    match seq.optional(0x05).ok()? {
        Some([]) | None => {}
        _ => return None,
    }
    if !seq.is_empty() {
        return None;
    }
    const SHA2: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    const ECDSA: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    let (prefix, last) = oid.split_at(oid.len().saturating_sub(1));
    match (prefix, last) {
        (p, [1]) if p == SHA2 => Some(HashAlg::Sha256),
        (p, [2]) if p == SHA2 => Some(HashAlg::Sha384),
        (p, [3]) if p == SHA2 => Some(HashAlg::Sha512),
        (p, [2]) if p == ECDSA => Some(HashAlg::Sha256),
        (p, [3]) if p == ECDSA => Some(HashAlg::Sha384),
        (p, [4]) if p == ECDSA => Some(HashAlg::Sha512),
        (p, [11]) if p == RSA => Some(HashAlg::Sha256),
        (p, [12]) if p == RSA => Some(HashAlg::Sha384),
        (p, [13]) if p == RSA => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// Whether an AlgorithmIdentifier names a bare key algorithm (rsaEncryption, id-ecPublicKey), as
/// signers write for "the digest algorithm, with this key".
fn bare_key_algorithm(algorithm: &[u8]) -> bool {
    const RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC_PUBLIC_KEY: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let mut r = Reader::new(algorithm);
    let Ok(seq) = r.read(0x30, "AlgorithmIdentifier") else {
        return false;
    };
    let mut seq = Reader::new(seq);
    matches!(seq.read(0x06, "algorithm"), Ok(oid) if oid == RSA_ENCRYPTION || oid == EC_PUBLIC_KEY)
}

/// Check one signer's signature over `content` with the certificate `cert`: the messageDigest and
/// contentType attributes when there are signed attributes (the signature then covers them),
/// else the signature over the content itself. `spki` is the certificate's
/// SubjectPublicKeyInfo (DER).
pub fn check_signature(
    signer: &SignerInfo,
    content_type: &[u8],
    content: &[u8],
    spki: &[u8],
) -> Result<(), SignatureProblem> {
    let digest = digest_of(&signer.digest_algorithm).ok_or(SignatureProblem::Algorithm)?;
    let sig_digest = if bare_key_algorithm(&signer.signature_algorithm) {
        digest
    } else {
        let named = digest_of(&signer.signature_algorithm).ok_or(SignatureProblem::Algorithm)?;
        if named != digest {
            return Err(SignatureProblem::Algorithm);
        }
        named
    };
    let signed: &[u8] = match &signer.signed_attrs {
        Some(attrs) => {
            let (Some(md), Some(ct)) = (&signer.message_digest, &signer.content_type) else {
                return Err(SignatureProblem::AttributesMissing);
            };
            if ct.as_slice() != content_type {
                return Err(SignatureProblem::ContentTypeMismatch);
            }
            if digest.digest(content) != md.as_slice() {
                return Err(SignatureProblem::DigestMismatch);
            }
            attrs
        }
        None => content,
    };
    if signature::verify(spki, sig_digest, signed, &signer.signature) {
        Ok(())
    } else {
        Err(SignatureProblem::BadSignature)
    }
}

/// The signer's certificate among `certificates` (DER): by issuer and serial, or by subject key
/// identifier. Returns its DER.
pub fn find_certificate<'a>(sid: &SignerId, certificates: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    certificates.iter().find_map(|der| {
        let matches = match sid {
            // Read off the DER (no full parse of every certificate carried); the one found is
            // parsed in full by its user, and one that does not parse is refused there.
            SignerId::IssuerSerial { issuer, serial } => issuer_and_serial(der)
                .is_some_and(|(i, s)| s == serial.as_slice() && i == issuer.as_slice()),
            SignerId::KeyId(id) => {
                let Ok((_, c)) = x509_parser::parse_x509_certificate(der) else {
                    return None;
                };
                c.extensions().iter().any(|e| {
                matches!(e.parsed_extension(),
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) if k.0 == id.as_slice())
                })
            }
        };
        matches.then_some(der.as_slice())
    })
}

/// A certificate's issuer Name (DER, with its tag) and serial (the INTEGER's content octets), as
/// its TBSCertificate has them.
fn issuer_and_serial(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut outer = Reader::new(der);
    let mut cert = Reader::new(outer.read(0x30, "Certificate").ok()?);
    let mut tbs = Reader::new(cert.read(0x30, "TBSCertificate").ok()?);
    tbs.optional(0xa0).ok()?; // version
    let serial = tbs.read(0x02, "serialNumber").ok()?;
    tbs.read(0x30, "signature").ok()?;
    let issuer = tbs.any().ok()?;
    (issuer.tag == 0x30).then_some((issuer.whole, serial))
}

/// Drop what OpenSSL left on this thread's error queue after a check that failed. A failed
/// verification can leave entries there without returning them (`Ok(false)`), and the next
/// OpenSSL user on the thread (the database's TLS, say) would take them for its own failure.
pub fn clear_openssl_errors() {
    let _ = openssl::error::ErrorStack::get();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(tag: u8, text: &str) -> Result<OffsetDateTime, DerError> {
        let whole = crate::x509::der::tlv(tag, text.as_bytes());
        time_value(Tlv {
            tag,
            content: text.as_bytes(),
            whole: &whole,
        })
    }

    #[test]
    fn times_are_read_strictly_and_never_panic() {
        let t = time(0x17, "261129083000Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_941_000);
        assert_eq!(time(0x18, "20261129083000.25Z").unwrap(), t);
        assert_eq!(time(0x17, "991231235959Z").unwrap().year(), 1999);
        // A character of two bytes where a digit should be: refused, not cut in half.
        for (tag, text) in [
            (0x17, "1é3456789012Z"),
            (0x18, "2026112908300é.5Z"),
            (0x17, "261329083000Z"),
            (0x17, "2611290830Z"),
            (0x18, "20261129083000+0100"),
            (0x04, "261129083000Z"),
        ] {
            assert!(time(tag, text).is_err(), "{text}");
        }
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x80\x00\x00",
            b"-----BEGIN CMS-----\n\xff",
            &[0u8; 64],
        ] {
            assert!(read(input).is_err());
        }
    }
}
