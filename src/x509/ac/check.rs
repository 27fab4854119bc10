//! Checking an attribute certificate against its holder's identity certificate, the attribute
//! authority's certificate and a time: the library function the verification API uses. Every
//! problem found is reported, each as a typed reason with a stable code.

use super::parse::{parse, AttributeCertificate};
use crate::x509::signature::{self, HashAlg};
use time::OffsetDateTime;

/// Why an attribute certificate is not good for what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcProblem {
    /// Not a readable RFC 5755 attribute certificate (what was wrong).
    Malformed(String),
    /// The signature does not verify with the AA certificate's key (or uses an algorithm not
    /// accepted).
    Signature,
    /// The AC does not name the AA as its issuer (issuerName, authorityKeyIdentifier), or the AA
    /// certificate may not issue ACs (a CA certificate, or no digitalSignature).
    Issuer,
    /// The holder is not the given identity certificate (issuer and serial).
    HolderMismatch,
    /// The time is before notBeforeTime.
    NotYetValid,
    /// The time is after notAfterTime.
    Expired,
    /// Revoked at or before the time.
    Revoked,
    /// targetInformation does not name the application.
    TargetMismatch,
    /// A critical extension this checker does not know (its OID).
    UnknownCriticalExtension(String),
}

impl AcProblem {
    /// The stable code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            AcProblem::Malformed(_) => "ac_malformed",
            AcProblem::Signature => "ac_signature_invalid",
            AcProblem::Issuer => "ac_issuer_mismatch",
            AcProblem::HolderMismatch => "ac_holder_mismatch",
            AcProblem::NotYetValid => "ac_not_yet_valid",
            AcProblem::Expired => "ac_expired",
            AcProblem::Revoked => "ac_revoked",
            AcProblem::TargetMismatch => "ac_target_mismatch",
            AcProblem::UnknownCriticalExtension(_) => "ac_unknown_critical_extension",
        }
    }
}

impl std::fmt::Display for AcProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcProblem::Malformed(m) => write!(f, "{}: {m}", self.code()),
            AcProblem::UnknownCriticalExtension(oid) => write!(f, "{}: {oid}", self.code()),
            other => f.write_str(other.code()),
        }
    }
}

/// What the AC must be good for.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// The time it must be valid at (a signing time, or now).
    pub at: OffsetDateTime,
    /// The application's targetName URI it must name, if any.
    pub target_uri: Option<&'a str>,
    /// When it was revoked (or put on hold), if it was, as the caller's records or CRL say.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The outcome: the AC as read (when it could be) and every problem found; good when there are
/// none.
#[derive(Debug, Clone)]
pub struct AcCheck {
    /// The AC, when it could be read.
    pub ac: Option<AttributeCertificate>,
    /// What is wrong with it.
    pub problems: Vec<AcProblem>,
}

impl AcCheck {
    /// No problem found.
    pub fn is_good(&self) -> bool {
        self.ac.is_some() && self.problems.is_empty()
    }
}

fn digest_of(algorithm: &[u8]) -> Option<HashAlg> {
    // AlgorithmIdentifier: SEQUENCE { OID [, parameters] }, compared as whole encodings: ECDSA
    // identifiers have absent parameters, RSA ones NULL (RFC 5758 3.2, RFC 4055 5).
    const ECDSA: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    let ecdsa = |last: u8| {
        let mut v = vec![0x30, 0x0a, 0x06, 0x08];
        v.extend_from_slice(&ECDSA);
        v.push(last);
        v
    };
    let rsa = |last: u8| {
        let mut v = vec![0x30, 0x0d, 0x06, 0x09];
        v.extend_from_slice(&RSA);
        v.extend_from_slice(&[last, 0x05, 0x00]);
        v
    };
    [
        (ecdsa(2), HashAlg::Sha256),
        (ecdsa(3), HashAlg::Sha384),
        (ecdsa(4), HashAlg::Sha512),
        (rsa(11), HashAlg::Sha256),
        (rsa(12), HashAlg::Sha384),
        (rsa(13), HashAlg::Sha512),
    ]
    .into_iter()
    .find(|(der, _)| der == algorithm)
    .map(|(_, md)| md)
}

/// Whether the AC's signature holds for the AA's key (`aa_der`, the AA certificate).
pub fn signature_ok(ac: &AttributeCertificate, aa_der: &[u8]) -> bool {
    let Some(md) = digest_of(&ac.signature_algorithm) else {
        return false;
    };
    let Ok((_, aa)) = x509_parser::parse_x509_certificate(aa_der) else {
        return false;
    };
    signature::verify(aa.public_key().raw, md, &ac.tbs, &ac.signature)
}

/// Two Names equal as values: the same DER, or equal under OpenSSL's canonical comparison (case
/// and spacing folded in string attributes).
fn same_name(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        openssl::x509::X509Name::from_der(a),
        openssl::x509::X509Name::from_der(b),
    ) {
        (Ok(a), Ok(b)) => a.try_cmp(&b).is_ok_and(|o| o.is_eq()),
        _ => false,
    }
}

/// Whether the AA certificate names the AC's issuer and may issue ACs (RFC 5755 4.5: not a CA;
/// digitalSignature when keyUsage is present).
fn issuer_ok(ac: &AttributeCertificate, aa_der: &[u8]) -> bool {
    let Ok((_, aa)) = x509_parser::parse_x509_certificate(aa_der) else {
        return false;
    };
    let named = ac
        .issuer_name
        .as_deref()
        .is_some_and(|n| same_name(n, aa.subject().as_raw()));
    let key_id_ok = match (
        &ac.authority_key_id,
        aa.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
                _ => None,
            }),
    ) {
        (Some(aki), Some(ski)) => aki.as_slice() == ski,
        _ => true,
    };
    let not_ca = !aa
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let may_sign = aa
        .key_usage()
        .ok()
        .flatten()
        .is_none_or(|ku| ku.value.digital_signature());
    named && key_id_ok && not_ca && may_sign
}

fn holder_ok(ac: &AttributeCertificate, holder_der: &[u8]) -> bool {
    let Ok((_, holder)) = x509_parser::parse_x509_certificate(holder_der) else {
        return false;
    };
    let Some(base) = &ac.holder else {
        return false;
    };
    base.serial == holder.raw_serial()
        && base
            .issuer_names
            .iter()
            .any(|n| same_name(n, holder.issuer().as_raw()))
}

/// Check the AC `ac_der` (DER) for the holder certificate `holder_der`, issued by the AA whose
/// certificate is `aa_der`, at `expect.at`, for `expect.target_uri`. The AA certificate's own
/// validity and status are the caller's to check (with its chain).
pub fn check(ac_der: &[u8], holder_der: &[u8], aa_der: &[u8], expect: Expectation<'_>) -> AcCheck {
    check_with(ac_der, holder_der, aa_der, expect, &mut |ac| {
        signature_ok(ac, aa_der)
    })
}

/// As [`check`], with the signature check given: `signature_holds` says whether the AC's
/// signature holds for the AA's key (a caller may remember the answers of [`signature_ok`]).
pub fn check_with(
    ac_der: &[u8],
    holder_der: &[u8],
    aa_der: &[u8],
    expect: Expectation<'_>,
    signature_holds: &mut dyn FnMut(&AttributeCertificate) -> bool,
) -> AcCheck {
    let ac = match parse(ac_der) {
        Ok(ac) => ac,
        Err(e) => {
            return AcCheck {
                ac: None,
                problems: vec![AcProblem::Malformed(e.0)],
            }
        }
    };
    let mut problems = Vec::new();
    if !signature_holds(&ac) {
        problems.push(AcProblem::Signature);
    }
    if !issuer_ok(&ac, aa_der) {
        problems.push(AcProblem::Issuer);
    }
    if !holder_ok(&ac, holder_der) {
        problems.push(AcProblem::HolderMismatch);
    }
    if expect.at < ac.not_before {
        problems.push(AcProblem::NotYetValid);
    }
    if expect.at > ac.not_after {
        problems.push(AcProblem::Expired);
    }
    if expect.revoked_at.is_some_and(|r| r <= expect.at) {
        problems.push(AcProblem::Revoked);
    }
    if let (Some(want), Some(targets)) = (expect.target_uri, &ac.target_uris) {
        // RFC 5755 4.3.2: without targetInformation, the AC is for any target.
        if !targets.iter().any(|t| t == want) {
            problems.push(AcProblem::TargetMismatch);
        }
    }
    problems.extend(
        ac.unknown_critical
            .iter()
            .map(|oid| AcProblem::UnknownCriticalExtension(oid.clone())),
    );
    AcCheck {
        ac: Some(ac),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode::{assemble, tbs, AcContent, AcRevocation};
    use super::super::AttributeNames;
    use super::*;
    use crate::x509::crl::SignatureAlgorithm;
    use crate::x509::serial::Serial;
    use rcgen::{CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    use time::macros::datetime;

    struct Fixture {
        aa_key: KeyPair,
        aa_der: Vec<u8>,
        holder_der: Vec<u8>,
        other_holder_der: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let root_key = KeyPair::generate().unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        root.distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root");
        let root_cert = root.self_signed(&root_key).unwrap();
        let issuer = rcgen::Issuer::new(root, root_key);
        let aa_key = KeyPair::generate().unwrap();
        let mut aa = CertificateParams::new(Vec::<String>::new()).unwrap();
        aa.is_ca = IsCa::ExplicitNoCa;
        aa.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        aa.distinguished_name
            .push(rcgen::DnType::CommonName, "Test AA");
        let aa_der = aa.signed_by(&aa_key, &issuer).unwrap().der().to_vec();
        let holder = |cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.signed_by(&key, &issuer).unwrap().der().to_vec()
        };
        let _ = root_cert;
        Fixture {
            aa_key,
            aa_der,
            holder_der: holder("Holder"),
            other_holder_der: holder("Someone else"),
        }
    }

    fn make(f: &Fixture, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let (_, aa) = x509_parser::parse_x509_certificate(&f.aa_der).unwrap();
        let (_, holder) = x509_parser::parse_x509_certificate(&f.holder_der).unwrap();
        let names = AttributeNames::default();
        let roles = vec![names.role_uri("approver")];
        let groups = vec!["planning-bureau".to_string()];
        let targets = vec![names.target_uri("permits")];
        let crl = vec!["http://127.0.0.1:1/crl/aa.crl".to_string()];
        let key_id = aa
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        let serial = Serial::random();
        let mut info = tbs(&AcContent {
            algorithm: SignatureAlgorithm::EcdsaSha256,
            serial: &serial,
            holder_issuer_der: holder.issuer().as_raw(),
            holder_serial: holder.raw_serial(),
            issuer_name_der: aa.subject().as_raw(),
            key_id: &key_id,
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2026-06-30 0:00 UTC),
            role_uris: &roles,
            groups: &groups,
            target_uris: &targets,
            revocation: AcRevocation::Crl(&crl),
        });
        edit(&mut info);
        let sig = rcgen::SigningKey::sign(&f.aa_key, &info).unwrap();
        assemble(&info, SignatureAlgorithm::EcdsaSha256, &sig)
    }

    fn at(t: OffsetDateTime) -> Expectation<'static> {
        Expectation {
            at: t,
            target_uri: Some("urn:vouch:app:permits"),
            revoked_at: None,
        }
    }

    #[test]
    fn a_good_ac_reads_back_and_passes() {
        let f = fixture();
        let der = make(&f, |_| {});
        let r = check(
            &der,
            &f.holder_der,
            &f.aa_der,
            at(datetime!(2026-03-01 0:00 UTC)),
        );
        assert!(r.is_good(), "{:?}", r.problems);
        let ac = r.ac.unwrap();
        assert_eq!(ac.role_uris, vec!["urn:vouch:role:approver"]);
        assert_eq!(ac.groups, vec!["planning-bureau"]);
        assert_eq!(
            ac.target_uris,
            Some(vec!["urn:vouch:app:permits".to_string()])
        );
        assert_eq!(ac.crl_urls, vec!["http://127.0.0.1:1/crl/aa.crl"]);
        assert!(!ac.no_rev_avail);
        assert_eq!(ac.not_after, datetime!(2026-06-30 0:00 UTC));
    }

    #[test]
    fn each_problem_has_its_reason() {
        let f = fixture();
        let der = make(&f, |_| {});
        let problems = |der: &[u8], holder: &[u8], e: Expectation<'_>| {
            check(der, holder, &f.aa_der, e).problems
        };
        let t = datetime!(2026-03-01 0:00 UTC);
        assert_eq!(
            problems(&der, &f.other_holder_der, at(t)),
            vec![AcProblem::HolderMismatch]
        );
        assert_eq!(
            problems(&der, &f.holder_der, at(datetime!(2025-12-31 0:00 UTC))),
            vec![AcProblem::NotYetValid]
        );
        assert_eq!(
            problems(&der, &f.holder_der, at(datetime!(2026-07-01 0:00 UTC))),
            vec![AcProblem::Expired]
        );
        let revoked = Expectation {
            revoked_at: Some(datetime!(2026-02-01 0:00 UTC)),
            ..at(t)
        };
        assert_eq!(
            problems(&der, &f.holder_der, revoked),
            vec![AcProblem::Revoked]
        );
        let revoked_later = Expectation {
            revoked_at: Some(datetime!(2026-04-01 0:00 UTC)),
            ..at(t)
        };
        assert!(problems(&der, &f.holder_der, revoked_later).is_empty());
        let elsewhere = Expectation {
            target_uri: Some("urn:vouch:app:payroll"),
            ..at(t)
        };
        assert_eq!(
            problems(&der, &f.holder_der, elsewhere),
            vec![AcProblem::TargetMismatch]
        );
        // The holder's certificate given as the AA's: wrong issuer, and the signature fails.
        let r = check(&der, &f.holder_der, &f.holder_der, at(t));
        assert!(
            r.problems.contains(&AcProblem::Signature) && r.problems.contains(&AcProblem::Issuer)
        );
        // A flipped bit in the signed part.
        let mut tampered = der.clone();
        let pos = tampered.windows(8).position(|w| w == b"approver").unwrap();
        tampered[pos] ^= 0x01;
        assert_eq!(
            problems(&tampered, &f.holder_der, at(t)),
            vec![AcProblem::Signature]
        );
        // Every single-byte change is caught (malformed, or a signature that fails), never a
        // panic, never accepted.
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut m = der.clone();
                m[i] ^= flip;
                let r = check(&m, &f.holder_der, &f.aa_der, at(t));
                assert!(!r.is_good(), "byte {i} ^ {flip:#x} accepted");
            }
        }
        // Garbage and truncations are malformed, never a panic.
        for n in 0..der.len() {
            let r = check(&der[..n], &f.holder_der, &f.aa_der, at(t));
            assert!(matches!(r.problems[..], [AcProblem::Malformed(_)]), "{n}");
        }
    }

    /// Replace field `index` of acinfo (0 version, 1 holder, 2 issuer, ..., 6 attributes, 7
    /// extensions) by what `edit` makes of its whole TLV.
    fn edit_field(info: &mut Vec<u8>, index: usize, edit: impl FnOnce(&[u8]) -> Vec<u8>) {
        use crate::x509::der::{tlv, Reader};
        let mut outer = Reader::new(info);
        let mut r = Reader::new(outer.read(0x30, "acinfo").unwrap());
        let mut fields = Vec::new();
        while !r.is_empty() {
            fields.push(r.any().unwrap().whole.to_vec());
        }
        fields[index] = edit(&fields[index]);
        *info = tlv(0x30, &fields.concat());
    }

    #[test]
    fn what_rfc_5755_forbids_is_malformed() {
        use crate::x509::der::{tlv, Reader};
        let f = fixture();
        let content = |whole: &[u8]| Reader::new(whole).any().unwrap().content.to_vec();
        type Edit = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let cases: Vec<(&str, Edit)> = vec![
            // v1Form: the GeneralNames without the [0] V2Form around them.
            ("v1Form", Box::new(move |whole| content(whole))),
            // V2Form with a baseCertificateID after issuerName.
            (
                "v2Form extra",
                Box::new(move |whole| {
                    let mut body = content(whole);
                    body.extend(tlv(0xa0, &tlv(0x02, &[1])));
                    tlv(0xa0, &body)
                }),
            ),
        ];
        for (what, edit) in cases {
            let der = make(&f, |info| edit_field(info, 2, &*edit));
            let r = check(
                &der,
                &f.holder_der,
                &f.aa_der,
                at(datetime!(2026-03-01 0:00 UTC)),
            );
            assert!(
                matches!(r.problems[..], [AcProblem::Malformed(_)]),
                "{what}: {:?}",
                r.problems
            );
        }
        let attribute_cases: Vec<(&str, Edit)> = vec![
            ("no attributes", Box::new(|_| tlv(0x30, &[]))),
            (
                "an attribute twice",
                Box::new(|whole| {
                    let body = Reader::new(whole).any().unwrap().content.to_vec();
                    tlv(0x30, &[body.clone(), body].concat())
                }),
            ),
        ];
        for (what, edit) in attribute_cases {
            let der = make(&f, |info| edit_field(info, 6, &*edit));
            let r = check(
                &der,
                &f.holder_der,
                &f.aa_der,
                at(datetime!(2026-03-01 0:00 UTC)),
            );
            assert!(
                matches!(r.problems[..], [AcProblem::Malformed(_)]),
                "{what}: {:?}",
                r.problems
            );
        }
    }

    #[test]
    fn an_unknown_critical_extension_refuses() {
        use crate::x509::der::{tlv, Reader};
        let f = fixture();
        // Append a critical extension 2.5.29.99 to the extensions, the last field of acinfo.
        let der = make(&f, |info| {
            let mut outer = Reader::new(info);
            let mut r = Reader::new(outer.read(0x30, "acinfo").unwrap());
            let mut fields = Vec::new();
            while !r.is_empty() {
                fields.push(r.any().unwrap());
            }
            let exts = fields.pop().unwrap();
            let mut list = exts.content.to_vec();
            let unknown = [
                tlv(0x06, &[0x55, 0x1d, 0x63]),
                vec![0x01, 0x01, 0xff],
                tlv(0x04, &[0x05, 0x00]),
            ];
            list.extend(tlv(0x30, &unknown.concat()));
            let mut body: Vec<u8> = fields.iter().flat_map(|t| t.whole.to_vec()).collect();
            body.extend(tlv(0x30, &list));
            *info = tlv(0x30, &body);
        });
        let r = check(
            &der,
            &f.holder_der,
            &f.aa_der,
            at(datetime!(2026-03-01 0:00 UTC)),
        );
        assert_eq!(
            r.problems,
            vec![AcProblem::UnknownCriticalExtension("2.5.29.99".into())]
        );
    }
}
