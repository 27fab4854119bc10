//! What a remote CA returned, checked against the approved order before it is accepted. A remote
//! CA (CFSSL) picks the serial and the validity itself and fills the certificate from its own
//! profile, so the certificate is read back in full: the subject and subjectAltName the RA
//! approved and nothing else, the approved key, a validity that starts no earlier than the
//! approval and lasts no longer than approved, only the extensions an end-entity certificate
//! needs, the profile's key usages, not a CA, issued by the CA's certificate (as its `/info`
//! gives it), and a chain that verifies. The embedded CA signs exactly the order, so it is held to the order's serial and
//! notAfter instead (see `issuance`).

use crate::ca::{CaChain, IssueOrder};
use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use std::collections::BTreeSet;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// How far before the approved notBefore a remote CA may start the validity: CAs backdate for
/// clock skew (CFSSL by 5 minutes, rounded to the minute).
pub const BACKDATE_ALLOWANCE: i64 = 10 * 60;

/// The facts of an accepted certificate that the RA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The serial the CA chose, lowercase hex of its magnitude with no leading zero digit (the
    /// canonical form every serial is stored and looked up in).
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
    // A remote CA starts the validity when it signs, which may be after a retry long after the
    // approval: the start may not be before the approval (less the backdating allowance), and
    // the length not more than the approved length (plus that allowance, which a backdated start
    // adds).
    let (length, approved_length) = (not_after - not_before, want_to - want_from);
    if not_before < want_from - BACKDATE_ALLOWANCE
        || length > approved_length + BACKDATE_ALLOWANCE
        || not_after <= not_before
    {
        return Err(format!(
            "its validity {} .. {} does not fit the approved {} .. {}: it may start no earlier \
             (less {} minutes) and last no longer (plus as much)",
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
    Ok(crate::x509::ac::parse::hex_serial(magnitude))
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
        .map(|(a, v)| (a.oid().to_string(), v.clone()))
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

/// The extensions a remote CA may put in an end-entity certificate: subject and authority key
/// identifiers, keyUsage, extendedKeyUsage, basicConstraints (not a CA), subjectAltName,
/// cRLDistributionPoints, freshestCRL, authorityInfoAccess and a list of signed certificate
/// timestamps. Anything else (certificate policies, name constraints, an extension copied from
/// the CSR) is not what the RA approved.
const ALLOWED_EXTENSIONS: [&str; 10] = [
    "2.5.29.14",
    "2.5.29.35",
    "2.5.29.15",
    "2.5.29.37",
    "2.5.29.19",
    "2.5.29.17",
    "2.5.29.31",
    "2.5.29.46",
    "1.3.6.1.5.5.7.1.1",
    "1.3.6.1.4.1.11129.2.4.2",
];

/// Only the allowed extensions, each once and readable; not a CA; keyUsage and
/// extendedKeyUsage exactly the profile's.
fn check_extensions(cert: &X509Certificate<'_>, order: &IssueOrder) -> Result<(), String> {
    let mut ku = BTreeSet::new();
    let mut eku = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if !ALLOWED_EXTENSIONS.contains(&oid.as_str()) {
            return Err(format!(
                "it carries the extension {oid}{}, which the RA did not approve",
                if ext.critical { " (critical)" } else { "" }
            ));
        }
        if !seen.insert(oid.clone()) {
            return Err(format!("it carries the extension {oid} twice"));
        }
        match ext.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(format!("its extension {oid} cannot be read: {error}"))
            }
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
        // The top of the CA's chain is the anchor even when it is an intermediate (CFSSL's
        // /info gives its signer's certificate only).
        param.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::CaCertificate;
    use crate::x509::subject::{DnAttr, SubjectSpec};
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    const APPROVED: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

    struct Ca {
        root: Vec<u8>,
        intermediate: Vec<u8>,
        key: KeyPair,
        params: CertificateParams,
    }

    /// A root and an intermediate that signs.
    fn make_ca() -> Ca {
        let ca_params = |cn: &str| {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.not_before = datetime!(2026-01-01 00:00 UTC);
            p.not_after = datetime!(2030-01-01 00:00 UTC);
            p
        };
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("Remote Root");
        let root = root_params.clone().self_signed(&root_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = ca_params("Remote Signer");
        let issuer = Issuer::new(root_params, &root_key);
        let intermediate = params.clone().signed_by(&key, &issuer).unwrap();
        Ca {
            root: root.der().to_vec(),
            intermediate: intermediate.der().to_vec(),
            key,
            params,
        }
    }

    fn order(spki: &[u8]) -> IssueOrder {
        IssueOrder {
            serial: crate::x509::serial::Serial::random(),
            spki_der: spki.to_vec(),
            csr_der: Vec::new(),
            subject: SubjectSpec {
                dn: vec![(DnAttr::CommonName, "Li Hua".into())],
                emails: vec!["li.hua@example.org".into()],
            },
            not_before: APPROVED,
            not_after: APPROVED + Duration::days(365),
            key_usage: vec![KeyUsage::DigitalSignature],
            extended_key_usage: vec![ExtendedKeyUsage::EmailProtection],
            crl_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
            ocsp_urls: Vec::new(),
        }
    }

    /// What a well-behaved remote CA makes for the order, for `subscriber`'s key, changed by
    /// `tweak`.
    fn issue(ca: &Ca, subscriber: &KeyPair, tweak: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "Li Hua");
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            "li.hua@example.org".try_into().unwrap(),
        )];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x0a, 0x1b, 0x2c]));
        p.not_before = APPROVED - Duration::minutes(5);
        p.not_after = APPROVED + Duration::days(365) - Duration::minutes(5);
        tweak(&mut p);
        let issuer = Issuer::new(ca.params.clone(), &ca.key);
        p.signed_by(subscriber, &issuer).unwrap().der().to_vec()
    }

    fn chain(ca: &Ca, with_root: bool) -> CaChain {
        let cert = |der: &Vec<u8>, id: &str| CaCertificate {
            id: id.into(),
            der: der.clone(),
        };
        let above = if with_root {
            vec![cert(&ca.root, "root")]
        } else {
            Vec::new()
        };
        CaChain::new(cert(&ca.intermediate, "remote"), above)
    }

    fn checked(der: &[u8], subscriber: &KeyPair, chain: &CaChain) -> Result<Accepted, String> {
        let spki = rcgen::PublicKeyData::subject_public_key_info(subscriber);
        let key = crate::x509::key::identity(&spki).unwrap();
        check(der, &order(&spki), &key, chain)
    }

    #[test]
    fn a_certificate_as_ordered_is_accepted_with_its_canonical_serial() {
        let (ca, subscriber) = (make_ca(), KeyPair::generate().unwrap());
        let der = issue(&ca, &subscriber, |_| {});
        // Both with the root and with the signer's certificate alone as the top of the chain
        // (CFSSL's /info gives only that).
        for with_root in [true, false] {
            let accepted = checked(&der, &subscriber, &chain(&ca, with_root)).unwrap();
            // 00 0a 1b 2c: no leading zero digit, as every serial is stored.
            assert_eq!(accepted.serial, "a1b2c");
        }
    }

    #[test]
    fn a_retry_may_start_later_but_not_earlier_or_last_longer() {
        let (ca, subscriber) = (make_ca(), KeyPair::generate().unwrap());
        let chain = chain(&ca, true);
        let later = issue(&ca, &subscriber, |p| {
            p.not_before = APPROVED + Duration::days(2);
            p.not_after = APPROVED + Duration::days(367) - Duration::minutes(10);
        });
        assert!(checked(&later, &subscriber, &chain).is_ok());
        let earlier = issue(&ca, &subscriber, |p| {
            p.not_before = APPROVED - Duration::hours(1)
        });
        assert!(checked(&earlier, &subscriber, &chain)
            .unwrap_err()
            .contains("does not fit"));
        let longer = issue(&ca, &subscriber, |p| {
            p.not_after = APPROVED + Duration::days(366);
        });
        assert!(checked(&longer, &subscriber, &chain)
            .unwrap_err()
            .contains("does not fit"));
    }

    #[test]
    fn anything_not_approved_is_refused() {
        let (ca, subscriber) = (make_ca(), KeyPair::generate().unwrap());
        let chain = chain(&ca, true);
        let refused = |tweak: &dyn Fn(&mut CertificateParams), why: &str| {
            let der = issue(&ca, &subscriber, tweak);
            let err = checked(&der, &subscriber, &chain).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        };
        // certificatePolicies (anyPolicy), as a CA profile might add.
        refused(
            &|p| {
                p.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[2, 5, 29, 32],
                    vec![0x30, 0x06, 0x30, 0x04, 0x06, 0x02, 0x55, 0x1d],
                )]
            },
            "extension 2.5.29.32",
        );
        refused(
            &|p| p.distinguished_name.push(DnType::CountryName, "NL"),
            "its subject is",
        );
        refused(
            &|p| p.key_usages.push(KeyUsagePurpose::KeyEncipherment),
            "its keyUsage",
        );
        refused(
            &|p| {
                p.extended_key_usages
                    .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth)
            },
            "its extendedKeyUsage",
        );
        refused(
            &|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
            "a CA certificate",
        );
        // Another key.
        let other = KeyPair::generate().unwrap();
        let der = issue(&ca, &other, |_| {});
        assert!(checked(&der, &subscriber, &chain)
            .unwrap_err()
            .contains("another public key"));
        // Signed by another CA of the same name.
        let impostor = make_ca();
        let mut forged = Ca {
            key: impostor.key,
            params: ca.params.clone(),
            ..impostor
        };
        forged.root = ca.root.clone();
        let der = issue(&forged, &subscriber, |_| {});
        assert!(checked(&der, &subscriber, &chain)
            .unwrap_err()
            .contains("signature does not verify"));
    }
}
