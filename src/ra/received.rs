//! What a remote CA returned, checked against the approved order before it is accepted. A remote
//! CA (CFSSL) picks the serial and the validity itself and fills the certificate from its own
//! profile, so the certificate is read back in full: the subject and subjectAltName the RA
//! approved and nothing else, the approved key, a validity inside the order's, the profile's key
//! usages, not a CA, issued by the CA's certificate (as its `/info` gives it), and a chain that
//! verifies. The embedded CA signs exactly the order, so it is held to the order's serial and
//! notAfter instead (see `issuance`).

use crate::ca::{CaChain, IssueOrder};
use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use crate::x509::subject::DnAttr;
use std::collections::BTreeSet;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// How far before the approved notBefore a remote CA may start the validity: CAs backdate for
/// clock skew (CFSSL by 5 minutes, rounded to the minute).
pub const BACKDATE_ALLOWANCE: i64 = 10 * 60;

/// The facts of an accepted certificate that the RA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The serial the CA chose, lowercase hex of its magnitude (no leading zero bytes).
    pub serial: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

/// Check `der` from a remote CA against `order` (the certified key's identity is `key_sha256`)
/// and the CA's `chain`. The error says, for the operator, what does not match.
pub fn check(
    der: &[u8],
    order: &IssueOrder,
    key_sha256: &str,
    chain: &CaChain,
) -> Result<Accepted, String> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    if !rest.is_empty() {
        return Err("bytes follow the certificate".into());
    }
    let serial = serial_hex(cert.raw_serial())?;
    let key = crate::x509::key::identity(cert.public_key().raw)
        .map_err(|e| format!("its public key cannot be read: {e}"))?;
    if key != key_sha256 {
        return Err(format!(
            "it certifies another public key (SHA-256 {key}, approved {key_sha256})"
        ));
    }
    check_subject(&cert, order)?;
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let (want_from, want_to) = (
        order.not_before.unix_timestamp(),
        order.not_after.unix_timestamp(),
    );
    if not_before < want_from - BACKDATE_ALLOWANCE || not_after > want_to || not_after <= not_before
    {
        return Err(format!(
            "its validity {} .. {} is not inside the approved {} .. {} (notBefore may start up to \
             {} minutes early)",
            super::rfc3339(not_before),
            super::rfc3339(not_after),
            super::rfc3339(want_from),
            super::rfc3339(want_to),
            BACKDATE_ALLOWANCE / 60
        ));
    }
    check_extensions(&cert, order)?;
    // The chain is checked when the order took effect (the approval), or at the certificate's
    // notBefore if later: a CA backdates, possibly to before its own certificate.
    check_issuer(der, &cert, chain, not_before.max(want_from))?;
    Ok(Accepted {
        serial,
        not_before,
        not_after,
    })
}

/// The serial's magnitude as lowercase hex; refused when negative, zero-length or over 20 bytes
/// (RFC 5280 4.1.2.2).
fn serial_hex(raw: &[u8]) -> Result<String, String> {
    if raw.is_empty() || raw[0] & 0x80 != 0 {
        return Err("its serial number is not a positive integer".into());
    }
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let magnitude = &raw[start..];
    if magnitude.is_empty() || magnitude.len() > 20 {
        return Err(format!(
            "its serial number has {} octets; RFC 5280 allows 1 to 20",
            magnitude.len()
        ));
    }
    Ok(hex::encode(magnitude))
}

fn attr_oid(attr: DnAttr) -> &'static str {
    match attr {
        DnAttr::CommonName => "2.5.4.3",
        DnAttr::Organisation => "2.5.4.10",
        DnAttr::SerialNumber => "2.5.4.5",
    }
}

/// The subject DN has exactly the approved attributes (in any order: a CA may order them its
/// own way), and subjectAltName exactly the approved e-mail addresses.
fn check_subject(cert: &X509Certificate<'_>, order: &IssueOrder) -> Result<(), String> {
    let mut got = Vec::new();
    for attr in cert.subject().iter_attributes() {
        let value = attr
            .as_str()
            .map_err(|_| format!("its subject attribute {} is not a string", attr.attr_type()))?;
        got.push((attr.attr_type().to_id_string(), value.to_string()));
    }
    let mut want: Vec<(String, String)> = order
        .subject
        .dn
        .iter()
        .map(|(a, v)| (attr_oid(*a).to_string(), v.clone()))
        .collect();
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "its subject is {} but {} was approved",
            cert.subject(),
            order.subject.display()
        ));
    }
    let mut emails = BTreeSet::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| format!("its subjectAltName cannot be read: {e}"))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::RFC822Name(e) => {
                    emails.insert(e.to_string());
                }
                other => return Err(format!("its subjectAltName names {other}, not approved")),
            }
        }
    }
    let want: BTreeSet<String> = order.subject.emails.iter().cloned().collect();
    if emails != want {
        return Err(format!(
            "its subjectAltName e-mail addresses are {emails:?} but {want:?} were approved"
        ));
    }
    Ok(())
}

/// Not a CA; keyUsage and extendedKeyUsage exactly the profile's.
fn check_extensions(cert: &X509Certificate<'_>, order: &IssueOrder) -> Result<(), String> {
    let mut ku = BTreeSet::new();
    let mut eku = BTreeSet::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) if bc.ca => {
                return Err("it is a CA certificate".into())
            }
            ParsedExtension::KeyUsage(k) => {
                for (set, name) in [
                    (k.digital_signature(), "digitalSignature"),
                    (k.non_repudiation(), "nonRepudiation"),
                    (k.key_encipherment(), "keyEncipherment"),
                    (k.data_encipherment(), "dataEncipherment"),
                    (k.key_agreement(), "keyAgreement"),
                    (k.key_cert_sign(), "keyCertSign"),
                    (k.crl_sign(), "cRLSign"),
                    (k.encipher_only(), "encipherOnly"),
                    (k.decipher_only(), "decipherOnly"),
                ] {
                    if set {
                        ku.insert(name.to_string());
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(e) => {
                for (set, name) in [
                    (e.client_auth, "clientAuth"),
                    (e.server_auth, "serverAuth"),
                    (e.email_protection, "emailProtection"),
                    (e.code_signing, "codeSigning"),
                    (e.time_stamping, "timeStamping"),
                    (e.ocsp_signing, "OCSPSigning"),
                    (e.any, "anyExtendedKeyUsage"),
                ] {
                    if set {
                        eku.insert(name.to_string());
                    }
                }
                for oid in &e.other {
                    eku.insert(oid.to_id_string());
                }
            }
            _ => {}
        }
    }
    let want_ku: BTreeSet<String> = order
        .key_usage
        .iter()
        .map(|k| {
            match k {
                KeyUsage::DigitalSignature => "digitalSignature",
                KeyUsage::NonRepudiation => "nonRepudiation",
                KeyUsage::KeyEncipherment => "keyEncipherment",
                KeyUsage::DataEncipherment => "dataEncipherment",
                KeyUsage::KeyAgreement => "keyAgreement",
            }
            .to_string()
        })
        .collect();
    let want_eku: BTreeSet<String> = order
        .extended_key_usage
        .iter()
        .map(|k| {
            match k {
                ExtendedKeyUsage::ClientAuth => "clientAuth",
                ExtendedKeyUsage::ServerAuth => "serverAuth",
                ExtendedKeyUsage::EmailProtection => "emailProtection",
                ExtendedKeyUsage::CodeSigning => "codeSigning",
                ExtendedKeyUsage::TimeStamping => "timeStamping",
            }
            .to_string()
        })
        .collect();
    if ku != want_ku {
        return Err(format!(
            "its keyUsage is {ku:?} but the profile gives {want_ku:?}"
        ));
    }
    if eku != want_eku {
        return Err(format!(
            "its extendedKeyUsage is {eku:?} but the profile gives {want_eku:?}"
        ));
    }
    Ok(())
}

/// Issued by the chain's issuing CA (same name, its signature), and the chain verifies up to its
/// last certificate at `at` (Unix seconds).
fn check_issuer(
    der: &[u8],
    cert: &X509Certificate<'_>,
    chain: &CaChain,
    at: i64,
) -> Result<(), String> {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509};
    let parse = |d: &[u8]| X509::from_der(d).map_err(|e| format!("{e}"));
    let issuing = parse(&chain.issuing().der)
        .map_err(|e| format!("the CA's certificate cannot be read: {e}"))?;
    let (_, issuing_parsed) = X509Certificate::from_der(&chain.issuing().der)
        .map_err(|e| format!("the CA's certificate cannot be read: {e}"))?;
    if cert.issuer().as_raw() != issuing_parsed.subject().as_raw() {
        return Err(format!(
            "its issuer is {} but the CA's certificate is {}",
            cert.issuer(),
            issuing_parsed.subject()
        ));
    }
    let leaf = parse(der)?;
    let issuing_key = issuing
        .public_key()
        .map_err(|e| format!("the CA's public key cannot be read: {e}"))?;
    if !leaf.verify(&issuing_key).unwrap_or(false) {
        return Err("its signature does not verify with the CA's public key".into());
    }
    let build = || -> Result<bool, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(X509::from_der(&chain.root().der)?)?;
        let mut param = openssl::x509::verify::X509VerifyParam::new()?;
        param.set_time(at);
        store.set_param(&param)?;
        let store = store.build();
        let mut untrusted = Stack::new()?;
        for c in chain.iter().take(chain.len().saturating_sub(1)) {
            untrusted.push(X509::from_der(&c.der)?)?;
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, &leaf, &untrusted, |c| c.verify_cert())
    };
    match build() {
        Ok(true) => Ok(()),
        Ok(false) => Err("its chain to the CA's certificates does not verify".into()),
        Err(e) => Err(format!("its chain cannot be checked: {e}")),
    }
}
