//! CRLs (RFC 5280 section 5), full and delta, DER-encoded here because rcgen's CRL builder cannot
//! carry the deltaCRLIndicator and freshestCRL extensions or removeFromCRL entries. The caller
//! signs the TBSCertList bytes with the CA key; [`assemble`] wraps them into the CertificateList.
//! The encoding is written straight into one buffer, so a CRL of a million entries costs little
//! more than its own size in memory.
//!
//! The entries are written by hand rather than as x509-cert `RevokedCert` values: built that way
//! (each entry's extensions encoded into their own buffers, then the entry), re-signing a
//! 100,000-entry CRL after one status change took 0.05-0.06 s instead of 0.02 s
//! (`VOUCH_BENCH_CRL_SIZES=100000 cargo bench --bench crl`), and der's `DateTime` cannot hold an
//! invalidity date before 1970, which revokers may give. The exact output is pinned by the
//! `encoding_is_stable` test below.

use super::der::{push_len, push_tlv, tlv, uint};
use super::revocation::{Reason, REMOVE_FROM_CRL};
use super::serial::Serial;
use time::OffsetDateTime;

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
    /// Some(URLs) makes this a CRL of attribute certificates: a critical issuingDistributionPoint
    /// with onlyContainsAttributeCerts (RFC 5280 5.2.5), naming the URLs (those the attribute
    /// certificates' cRLDistributionPoints give) when there are any.
    pub attribute_certs: Option<&'a [String]>,
}

/// The value of a cRLDistributionPoints (or freshestCRL) extension: one DistributionPoint whose
/// fullName lists the URIs.
pub(super) fn distribution_points(urls: &[String]) -> Vec<u8> {
    let mut names = Vec::new();
    for url in urls {
        push_tlv(&mut names, 0x86, url.as_bytes());
    }
    tlv(0x30, &tlv(0x30, &tlv(0xa0, &tlv(0xa0, &names))))
}

const OID_AUTHORITY_KEY_ID: [u8; 3] = [0x55, 0x1d, 0x23];
const OID_CRL_NUMBER: [u8; 3] = [0x55, 0x1d, 0x14];
const OID_DELTA_CRL_INDICATOR: [u8; 3] = [0x55, 0x1d, 0x1b];
const OID_FRESHEST_CRL: [u8; 3] = [0x55, 0x1d, 0x2e];
const OID_REASON_CODE: [u8; 3] = [0x55, 0x1d, 0x15];
const OID_INVALIDITY_DATE: [u8; 3] = [0x55, 0x1d, 0x18];
const OID_ISSUING_DISTRIBUTION_POINT: [u8; 3] = [0x55, 0x1d, 0x1c];

/// Append one Extension (critical flag written only when true: DER omits a DEFAULT value).
pub(super) fn extension(out: &mut Vec<u8>, oid: &[u8], critical: bool, value: &[u8]) {
    let mut ext = tlv(0x06, oid);
    if critical {
        ext.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    push_tlv(&mut ext, 0x04, value);
    push_tlv(out, 0x30, &ext);
}

fn two(out: &mut Vec<u8>, n: u8) {
    out.push(b'0' + n / 10);
    out.push(b'0' + n % 10);
}

/// The digits of a UTCTime (two-digit year) or GeneralizedTime (four), seconds and `Z`.
pub(crate) fn time_digits(t: OffsetDateTime, four_digit_year: bool) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut s = Vec::with_capacity(15);
    let year = t.year();
    if four_digit_year {
        two(&mut s, (year / 100) as u8);
    }
    two(&mut s, (year % 100) as u8);
    for part in [
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    ] {
        two(&mut s, part);
    }
    s.push(b'Z');
    s
}

/// RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050.
fn push_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    let t = t.to_offset(time::UtcOffset::UTC);
    if (1950..2050).contains(&t.year()) {
        push_tlv(out, 0x17, &time_digits(t, false));
    } else {
        push_tlv(out, 0x18, &time_digits(t, true));
    }
}

fn push_entry(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    serial: &Serial,
    at: OffsetDateTime,
    reason: Option<u8>,
    invalidity: Option<OffsetDateTime>,
) {
    scratch.clear();
    // Serials are positive with the top bit clear: the bytes are the INTEGER's content octets.
    push_tlv(scratch, 0x02, serial.as_bytes());
    push_time(scratch, at);
    let mut exts = Vec::new();
    if let Some(code) = reason {
        extension(&mut exts, &OID_REASON_CODE, false, &[0x0a, 0x01, code]);
    }
    if let Some(t) = invalidity {
        extension(
            &mut exts,
            &OID_INVALIDITY_DATE,
            false,
            &tlv(0x18, &time_digits(t, true)),
        );
    }
    if !exts.is_empty() {
        push_tlv(scratch, 0x30, &exts);
    }
    push_tlv(out, 0x30, scratch);
}

/// The DER TBSCertList.
pub fn tbs(c: &CrlContent<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 * (c.entries.len() + c.removed.len()) + 512);
    body.extend_from_slice(&uint(1)); // v2
    body.extend_from_slice(&c.algorithm.identifier());
    body.extend_from_slice(c.issuer_name_der);
    push_time(&mut body, c.this_update);
    push_time(&mut body, c.next_update);
    if !c.entries.is_empty() || !c.removed.is_empty() {
        // RFC 5280 5.1.2.6: absent, not empty, when there is nothing to list.
        let mut list = Vec::with_capacity(64 * (c.entries.len() + c.removed.len()));
        let mut scratch = Vec::with_capacity(128);
        for e in c.entries {
            // RFC 5280 5.3.1: omit reasonCode rather than use unspecified.
            let reason = (e.reason != Reason::Unspecified).then(|| e.reason.code());
            push_entry(
                &mut list,
                &mut scratch,
                &e.serial,
                e.revoked_at,
                reason,
                e.invalidity_date,
            );
        }
        for r in c.removed {
            push_entry(
                &mut list,
                &mut scratch,
                &r.serial,
                r.at,
                Some(REMOVE_FROM_CRL),
                None,
            );
        }
        body.push(0x30);
        push_len(&mut body, list.len());
        body.extend_from_slice(&list);
    }
    let mut exts = Vec::new();
    extension(
        &mut exts,
        &OID_AUTHORITY_KEY_ID,
        false,
        &tlv(0x30, &tlv(0x80, c.key_id)),
    );
    extension(&mut exts, &OID_CRL_NUMBER, false, &uint(c.number));
    if let Some(base) = c.delta_base {
        extension(&mut exts, &OID_DELTA_CRL_INDICATOR, true, &uint(base));
    }
    if !c.freshest_urls.is_empty() {
        extension(
            &mut exts,
            &OID_FRESHEST_CRL,
            false,
            &distribution_points(c.freshest_urls),
        );
    }
    if let Some(urls) = c.attribute_certs {
        // IssuingDistributionPoint: distributionPoint [0] fullName [0] the URIs (left out without
        // any: GeneralNames cannot be empty), then onlyContainsAttributeCerts [5] TRUE.
        let mut idp = Vec::new();
        if !urls.is_empty() {
            let mut names = Vec::new();
            for url in urls {
                push_tlv(&mut names, 0x86, url.as_bytes());
            }
            idp = tlv(0xa0, &tlv(0xa0, &names));
        }
        idp.extend_from_slice(&[0x85, 0x01, 0xff]);
        extension(
            &mut exts,
            &OID_ISSUING_DISTRIBUTION_POINT,
            true,
            &tlv(0x30, &idp),
        );
    }
    push_tlv(&mut body, 0xa0, &tlv(0x30, &exts));
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, 0x30, &body);
    out
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
            attribute_certs: None,
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
        let tbs = tbs(&content(&entries, &removed, Some(299), &[], &name));
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
            all.extend(tbs(&c));
            c.algorithm = SignatureAlgorithm::EcdsaSha384;
            c.number = 0x80;
            all.extend(tbs(&c));
            all.extend(assemble(&tbs(&c), c.algorithm, &[1, 2, 3]));
        }
        assert_eq!(
            crate::x509::sha256_hex(&all),
            "77b1a12c1ebf098f2cc78de526f6b25fe0c1e9a78eb4ac631e7f37164fa381b7"
        );
    }

    /// An invalidity date is any past date: one before 1970 and one in year 1 encode as
    /// GeneralizedTime and read back.
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
        let tbs = tbs(&content(&entries, &[], None, &[], &name));
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
        let tbs = tbs(&content(&[], &[], None, &urls, &name));
        let der = assemble(&tbs, SignatureAlgorithm::EcdsaSha256, &[0x30, 0]);
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
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
