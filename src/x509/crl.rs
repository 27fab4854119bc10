//! CRLs (RFC 5280 section 5), full and delta, DER-encoded here because rcgen's CRL builder cannot
//! carry the deltaCRLIndicator and freshestCRL extensions or removeFromCRL entries. The caller
//! signs the TBSCertList bytes with the CA key; [`assemble`] wraps them into the CertificateList.
//!
//! The values inside are `x509-cert` types (each revoked entry, times, extensions), encoded by
//! the `der` crate. The CRL as a whole is not one: a `TbsCertList` holds every entry as a tree
//! and `der` encodes it only after measuring it all, so the outer SEQUENCEs are written here by
//! hand, and each entry is encoded straight into one buffer as it comes. A CRL of a million
//! entries costs little more than its own size in memory.

use super::der::{push_len, push_tlv, tlv};
use super::revocation::{Reason, REMOVE_FROM_CRL};
use super::serial::Serial;
use crate::error::{Error, Result};
use der::asn1::{GeneralizedTime, Ia5String, OctetString, Uint, UtcTime};
use der::oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_INVALIDITY_DATE,
};
use der::oid::ObjectIdentifier;
use der::Encode;
use time::OffsetDateTime;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl,
};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_cert::Version;

/// One revoked (or held) certificate.
#[derive(Debug, Clone)]
pub struct CrlEntry {
    /// The certificate's serial.
    pub serial: Serial,
    /// When it was revoked or put on hold (revocationDate).
    pub revoked_at: OffsetDateTime,
    /// Why (reasonCode; omitted for unspecified).
    pub reason: Reason,
    /// When the key is believed compromised (invalidityDate).
    pub invalidity_date: Option<OffsetDateTime>,
}

/// A delta CRL entry telling relying parties to drop a certificate from their CRL (released from
/// hold): reasonCode removeFromCRL.
#[derive(Debug, Clone)]
pub struct CrlRemoval {
    /// The certificate's serial.
    pub serial: Serial,
    /// When the status changed.
    pub at: OffsetDateTime,
}

/// The signature algorithm of the CA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256 (a P-256 key).
    EcdsaSha256,
    /// ecdsa-with-SHA384 (a P-384 key).
    EcdsaSha384,
}

impl SignatureAlgorithm {
    /// DER AlgorithmIdentifier (ECDSA identifiers have absent parameters, RFC 5758 3.2).
    pub fn identifier(self) -> Vec<u8> {
        let oid: &[u8] = match self {
            // 1.2.840.10045.4.3.2
            SignatureAlgorithm::EcdsaSha256 => &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
            // 1.2.840.10045.4.3.3
            SignatureAlgorithm::EcdsaSha384 => &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        };
        tlv(0x30, &tlv(0x06, oid))
    }
}

/// Everything in a TBSCertList.
#[derive(Debug, Clone)]
pub struct CrlContent<'a> {
    /// How the CA key signs.
    pub algorithm: SignatureAlgorithm,
    /// The issuing CA's subject Name, DER.
    pub issuer_name_der: &'a [u8],
    /// The issuing CA's subjectKeyIdentifier (authorityKeyIdentifier).
    pub key_id: &'a [u8],
    /// The CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The revoked and held certificates.
    pub entries: &'a [CrlEntry],
    /// removeFromCRL entries; only allowed in a delta CRL.
    pub removed: &'a [CrlRemoval],
    /// Some(base CRL number) makes this a delta CRL (critical deltaCRLIndicator).
    pub delta_base: Option<u64>,
    /// freshestCRL URLs (where the delta CRL is), for a full CRL.
    pub freshest_urls: &'a [String],
}

fn encoding(e: der::Error) -> Error {
    Error::internal(format!("encoding a CRL: {e}"))
}

/// One extension; `value` is the DER of its extnValue's content.
fn extension(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

fn date_time(t: OffsetDateTime) -> Result<der::DateTime> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(t.year()).map_err(|_| Error::internal("a CRL time before year 0"))?;
    der::DateTime::new(
        year,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .map_err(encoding)
}

/// The invalidityDate extension's value (RFC 5280 5.3.2): a GeneralizedTime, written from its
/// digits because der's `DateTime` starts at 1970, while an invalidity date is any past date the
/// revoker gives; one from before 1970 must not make every later CRL unsignable.
fn invalidity_date(t: OffsetDateTime) -> Result<der::asn1::Any> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::internal(
            "an invalidity date outside the years 0 to 9999",
        ));
    }
    let digits = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    der::asn1::Any::new(der::Tag::GeneralizedTime, digits.into_bytes()).map_err(encoding)
}

/// RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050.
fn rfc5280_time(t: OffsetDateTime) -> Result<Time> {
    let at = date_time(t)?;
    Ok(if at.year() <= UtcTime::MAX_YEAR {
        Time::UtcTime(UtcTime::from_date_time(at).map_err(encoding)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(at))
    })
}

fn crl_reason(code: u8) -> Result<CrlReason> {
    Ok(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        other => return Err(Error::internal(format!("no CRL reason code {other}"))),
    })
}

/// Encode one revokedCertificates entry onto the end of `out`.
fn push_entry(
    out: &mut Vec<u8>,
    serial: &Serial,
    at: OffsetDateTime,
    reason: Option<u8>,
    invalidity: Option<OffsetDateTime>,
) -> Result<()> {
    let mut exts = Vec::new();
    if let Some(code) = reason {
        exts.push(extension(ID_CE_CRL_REASONS, false, &crl_reason(code)?)?);
    }
    if let Some(t) = invalidity {
        exts.push(extension(
            ID_CE_INVALIDITY_DATE,
            false,
            &invalidity_date(t)?,
        )?);
    }
    RevokedCert {
        // Serials are positive with the top bit clear: the INTEGER's content is their bytes.
        serial_number: SerialNumber::new(serial.as_bytes()).map_err(encoding)?,
        revocation_date: rfc5280_time(at)?,
        crl_entry_extensions: (!exts.is_empty()).then_some(exts),
    }
    .encode_to_vec(out)
    .map_err(encoding)?;
    Ok(())
}

fn uint(n: u64) -> Result<Uint> {
    Uint::new(&n.to_be_bytes()).map_err(encoding)
}

/// The DER TBSCertList.
pub fn tbs(c: &CrlContent<'_>) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(64 * (c.entries.len() + c.removed.len()) + 512);
    Version::V2.encode_to_vec(&mut body).map_err(encoding)?;
    body.extend_from_slice(&c.algorithm.identifier());
    body.extend_from_slice(c.issuer_name_der);
    rfc5280_time(c.this_update)?
        .encode_to_vec(&mut body)
        .map_err(encoding)?;
    rfc5280_time(c.next_update)?
        .encode_to_vec(&mut body)
        .map_err(encoding)?;
    if !c.entries.is_empty() || !c.removed.is_empty() {
        // RFC 5280 5.1.2.6: absent, not empty, when there is nothing to list.
        let mut list = Vec::with_capacity(64 * (c.entries.len() + c.removed.len()));
        for e in c.entries {
            // RFC 5280 5.3.1: omit reasonCode rather than use unspecified.
            let reason = (e.reason != Reason::Unspecified).then(|| e.reason.code());
            push_entry(
                &mut list,
                &e.serial,
                e.revoked_at,
                reason,
                e.invalidity_date,
            )?;
        }
        for r in c.removed {
            push_entry(&mut list, &r.serial, r.at, Some(REMOVE_FROM_CRL), None)?;
        }
        body.push(0x30);
        push_len(&mut body, list.len());
        body.extend_from_slice(&list);
    }
    let key_id = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(c.key_id).map_err(encoding)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let mut exts = vec![
        extension(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &key_id)?,
        extension(ID_CE_CRL_NUMBER, false, &CrlNumber(uint(c.number)?))?,
    ];
    if let Some(base) = c.delta_base {
        exts.push(extension(
            ID_CE_DELTA_CRL_INDICATOR,
            true,
            &BaseCrlNumber(uint(base)?),
        )?);
    }
    if !c.freshest_urls.is_empty() {
        // CRLDistributionPoints syntax: one DistributionPoint whose fullName lists the URIs.
        let names = c
            .freshest_urls
            .iter()
            .map(|u| {
                Ia5String::new(u)
                    .map(GeneralName::UniformResourceIdentifier)
                    .map_err(encoding)
            })
            .collect::<Result<Vec<_>>>()?;
        let point = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(names)),
            reasons: None,
            crl_issuer: None,
        };
        exts.push(extension(
            ID_CE_FRESHEST_CRL,
            false,
            &FreshestCrl(vec![point]),
        )?);
    }
    // crlExtensions [0] EXPLICIT Extensions
    push_tlv(&mut body, 0xa0, &exts.to_der().map_err(encoding)?);
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, 0x30, &body);
    Ok(out)
}

/// The CertificateList: TBSCertList, algorithm, and the signature over the TBSCertList.
pub fn assemble(tbs: &[u8], algorithm: SignatureAlgorithm, signature: &[u8]) -> Vec<u8> {
    let alg = algorithm.identifier();
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(signature);
    let mut body = Vec::with_capacity(tbs.len() + alg.len() + bits.len() + 16);
    body.extend_from_slice(tbs);
    body.extend_from_slice(&alg);
    push_tlv(&mut body, 0x03, &bits);
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, 0x30, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::X509Crl;
    use time::macros::datetime;

    fn content<'a>(
        entries: &'a [CrlEntry],
        removed: &'a [CrlRemoval],
        delta_base: Option<u64>,
        urls: &'a [String],
        name: &'a [u8],
    ) -> CrlContent<'a> {
        CrlContent {
            algorithm: SignatureAlgorithm::EcdsaSha256,
            issuer_name_der: name,
            key_id: &[7; 20],
            number: 300,
            this_update: datetime!(2026-11-26 10:00 UTC),
            next_update: datetime!(2051-01-01 00:00 UTC),
            entries,
            removed,
            delta_base,
            freshest_urls: urls,
        }
    }

    fn name() -> Vec<u8> {
        let mut b = openssl::x509::X509NameBuilder::new().unwrap();
        b.append_entry_by_text("CN", "Test Issuing CA").unwrap();
        b.build().to_der().unwrap()
    }

    fn sign(tbs: &[u8], key: &PKey<openssl::pkey::Private>) -> Vec<u8> {
        let mut s =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap();
        s.sign_oneshot_to_vec(tbs).unwrap()
    }

    #[test]
    fn openssl_reads_a_signed_delta_crl() {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let entries = vec![CrlEntry {
            serial: Serial::random(),
            revoked_at: datetime!(2026-11-26 09:00 UTC),
            reason: Reason::KeyCompromise,
            invalidity_date: Some(datetime!(2026-11-20 00:00 UTC)),
        }];
        let removed = vec![CrlRemoval {
            serial: Serial::random(),
            at: datetime!(2026-11-26 09:30 UTC),
        }];
        let name = name();
        let tbs = tbs(&content(&entries, &removed, Some(299), &[], &name)).unwrap();
        let der = assemble(&tbs, SignatureAlgorithm::EcdsaSha256, &sign(&tbs, &key));
        let crl = X509Crl::from_der(&der).unwrap();
        assert!(crl.verify(&key).unwrap(), "signature verifies");
        let revoked = crl.get_revoked().unwrap();
        assert_eq!(revoked.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delta.der");
        std::fs::write(&path, &der).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Delta CRL Indicator: critical"), "{text}");
        assert!(text.contains("299"), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Remove From CRL"), "{text}");
        assert!(text.contains("Invalidity Date"), "{text}");
        // nextUpdate in 2051 must be a GeneralizedTime that still reads back.
        assert!(
            text.contains("Next Update: Jan  1 00:00:00 2051 GMT"),
            "{text}"
        );
    }

    /// The encoder's exact output for a spread of inputs (every reason, invalidity dates, removals,
    /// times on both sides of 2050, both algorithms, long lists): a change of encoding shows here.
    #[test]
    fn encoding_is_stable() {
        let serial = |n: u64| Serial::parse(&format!("4{n:031x}")).unwrap();
        let reasons = [
            Reason::Unspecified,
            Reason::KeyCompromise,
            Reason::CaCompromise,
            Reason::AffiliationChanged,
            Reason::Superseded,
            Reason::CessationOfOperation,
            Reason::CertificateHold,
            Reason::PrivilegeWithdrawn,
            Reason::AaCompromise,
        ];
        let entries: Vec<CrlEntry> = (0..300u64)
            .map(|n| CrlEntry {
                serial: serial(n),
                revoked_at: datetime!(2049-12-31 23:59:59 UTC) + time::Duration::hours(n as i64),
                reason: reasons[n as usize % reasons.len()],
                invalidity_date: (n % 4 == 1)
                    .then(|| datetime!(2026-01-02 03:04:05 UTC) + time::Duration::days(n as i64)),
            })
            .collect();
        let removed: Vec<CrlRemoval> = (0..5u64)
            .map(|n| CrlRemoval {
                serial: serial(1000 + n),
                at: datetime!(2026-11-26 09:30 UTC),
            })
            .collect();
        let urls = [
            "http://ra.example/crl/issuing-delta.crl".to_string(),
            "https://other.example/d.crl".to_string(),
        ];
        let name = name();
        let mut all = Vec::new();
        for (e, r, delta, u) in [
            (&entries[..0], &removed[..0], None, &urls[..0]),
            (&entries[..1], &removed[..0], None, &urls[..]),
            (&entries[..], &removed[..0], None, &urls[..1]),
            (&entries[..7], &removed[..], Some(299), &urls[..0]),
            (&entries[..0], &removed[..2], Some(u64::MAX), &urls[..0]),
        ] {
            let mut c = content(e, r, delta, u, &name);
            all.extend(tbs(&c).unwrap());
            c.algorithm = SignatureAlgorithm::EcdsaSha384;
            c.number = 0x80;
            all.extend(tbs(&c).unwrap());
            all.extend(assemble(&tbs(&c).unwrap(), c.algorithm, &[1, 2, 3]));
        }
        assert_eq!(
            crate::x509::sha256_hex(&all),
            "77b1a12c1ebf098f2cc78de526f6b25fe0c1e9a78eb4ac631e7f37164fa381b7"
        );
    }

    /// An invalidity date is any past date: one before 1970 (where der's DateTime starts) and one
    /// in year 1 still encode, as GeneralizedTime, and read back.
    #[test]
    fn invalidity_dates_before_1970_encode() {
        let name = name();
        let entries: Vec<CrlEntry> = [
            datetime!(1969-12-31 23:59:59 UTC),
            datetime!(0001-01-01 0:00 UTC),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, t)| CrlEntry {
            serial: Serial::parse(&format!("5{n:031x}")).unwrap(),
            revoked_at: datetime!(2026-11-29 05:00 UTC),
            reason: Reason::KeyCompromise,
            invalidity_date: Some(t),
        })
        .collect();
        let tbs = tbs(&content(&entries, &[], None, &[], &name)).unwrap();
        for digits in [&b"19691231235959Z"[..], &b"00010101000000Z"[..]] {
            let mut want = vec![0x18, 15];
            want.extend_from_slice(digits);
            assert!(tbs.windows(want.len()).any(|w| w == want), "{digits:?}");
        }
        let der = assemble(&tbs, SignatureAlgorithm::EcdsaSha256, &[0x30, 0]);
        let (_, crl) = x509_parser::parse_x509_crl(&der).expect("the CRL parses");
        let years: Vec<i32> = crl
            .iter_revoked_certificates()
            .map(|r| {
                r.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::InvalidityDate(t) => {
                            Some(t.to_datetime().year())
                        }
                        _ => None,
                    })
                    .expect("an invalidity date")
            })
            .collect();
        assert_eq!(years, vec![1969, 1]);
    }

    #[test]
    fn full_crl_points_at_the_delta_and_omits_an_empty_list() {
        let name = name();
        let urls = vec!["http://ra.example/crl/issuing-delta.crl".to_string()];
        let tbs = tbs(&content(&[], &[], None, &urls, &name)).unwrap();
        let der = assemble(&tbs, SignatureAlgorithm::EcdsaSha256, &[0x30, 0]);
        let (_, crl) = x509_parser::parse_x509_crl(&der)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("300".into()));
        let freshest = crl
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.46")
            .expect("freshestCRL present");
        assert!(!freshest.critical);
        let raw = String::from_utf8_lossy(freshest.value);
        assert!(raw.contains("http://ra.example/crl/issuing-delta.crl"));
        use x509_parser::prelude::FromDer;
        let _ = x509_parser::extensions::CRLDistributionPoints::from_der(freshest.value).unwrap();
    }
}
