//! Signers certified by other CAs: trust anchors configured in the data directory
//! (`<data-dir>/anchors/*.pem`), the chain built to one of them at the signing time from the
//! certificates the CMS carries, and each certificate's revocation read from the CRL its
//! cRLDistributionPoints names (HTTP only), fetched with a timeout and a size cap and kept until
//! its nextUpdate (an hour without one) in a bounded cache.

use crate::error::{Error, Result};
use openssl::x509::{X509Crl, X509};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Largest CRL fetched.
pub const MAX_CRL_BYTES: usize = 10 * 1024 * 1024;
/// How long a CRL fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a CRL without nextUpdate is kept.
const DEFAULT_KEEP: Duration = Duration::from_secs(3600);

/// A fetched CRL (DER), kept until it is due.
#[derive(Clone)]
struct FetchedCrl {
    der: Arc<Vec<u8>>,
    keep: Duration,
}

struct KeepUntilDue;

impl moka::Expiry<String, FetchedCrl> for KeepUntilDue {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &FetchedCrl,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep)
    }
}

/// The CRLs of other CAs' certificates, fetched on demand; one per RA.
pub(crate) struct ForeignCrls {
    client: reqwest::Client,
    cache: moka::sync::Cache<String, FetchedCrl>,
}

impl Default for ForeignCrls {
    fn default() -> Self {
        ForeignCrls {
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cache: moka::sync::Cache::builder()
                .max_capacity(64 * 1024 * 1024)
                .weigher(|_, v: &FetchedCrl| u32::try_from(v.der.len()).unwrap_or(u32::MAX))
                .expire_after(KeepUntilDue)
                .build(),
        }
    }
}

impl ForeignCrls {
    async fn fetch(&self, url: &str) -> Option<Arc<Vec<u8>>> {
        if let Some(hit) = self.cache.get(url) {
            return Some(hit.der);
        }
        let resp = self.client.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_CRL_BYTES as u64)
        {
            return None;
        }
        let body = resp.bytes().await.ok()?;
        if body.len() > MAX_CRL_BYTES {
            return None;
        }
        let crl = X509Crl::from_der(&body).ok()?;
        let keep = crl
            .next_update()
            .and_then(|n| openssl::asn1::Asn1Time::days_from_now(0).ok()?.diff(n).ok())
            .map(|d| Duration::from_secs((d.days as u64) * 86_400 + d.secs.max(0) as u64))
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_KEEP);
        let der = Arc::new(body.to_vec());
        self.cache.insert(
            url.to_string(),
            FetchedCrl {
                der: der.clone(),
                keep,
            },
        );
        Some(der)
    }
}

/// A foreign signer's certificate as judged at the signing time: its status and the reasons it
/// fails.
pub(crate) struct ForeignStatus {
    /// `good`, `revoked` or `unknown`.
    pub status: &'static str,
    /// Why it fails (empty when it passes).
    pub reasons: Vec<&'static str>,
}

fn http_crl_urls(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(u) = name {
                            if u.starts_with("http://") {
                                urls.push(u.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    urls
}

/// The chain from `cert` to one of `anchors` (DER) at `at`, with `untrusted` certificates from
/// the CMS; each certificate's issuer follows it. None when there is none.
fn chain_to_anchor(
    cert: &X509,
    untrusted: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at: OffsetDateTime,
) -> Result<Option<Vec<X509>>> {
    use openssl::x509::store::X509StoreBuilder;
    let mut store = X509StoreBuilder::new().map_err(Error::internal)?;
    for a in anchors {
        if let Ok(a) = X509::from_der(a) {
            store.add_cert(a).map_err(Error::internal)?;
        }
    }
    let mut param = openssl::x509::verify::X509VerifyParam::new().map_err(Error::internal)?;
    param.set_time(at.unix_timestamp());
    store.set_param(&param).map_err(Error::internal)?;
    let store = store.build();
    let mut others = openssl::stack::Stack::new().map_err(Error::internal)?;
    for der in untrusted {
        if let Ok(c) = X509::from_der(der) {
            others.push(c).map_err(Error::internal)?;
        }
    }
    let mut ctx = openssl::x509::X509StoreContext::new().map_err(Error::internal)?;
    let chain = ctx
        .init(&store, cert, &others, |c| {
            if !c.verify_cert()? {
                return Ok(None);
            }
            Ok(c.chain().map(|s| s.iter().map(|x| x.to_owned()).collect()))
        })
        .unwrap_or(None);
    crate::verify::cms::clear_openssl_errors();
    Ok(chain)
}

impl crate::ra::Ra {
    /// A signer certificate Vouch did not issue, judged at `at`: chained to a configured anchor
    /// (else `unknown_ca`), and every certificate below the anchor checked on the CRL it names
    /// (`certificate_revoked` when listed with a revocation date at or before `at`;
    /// `revocation_unavailable` when a named CRL cannot be fetched or does not verify).
    pub(crate) async fn foreign_status(
        &self,
        cert_der: &[u8],
        untrusted: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<ForeignStatus> {
        let anchors = &self.config().trust_anchors;
        let unknown = || ForeignStatus {
            status: "unknown",
            reasons: vec!["unknown_ca"],
        };
        if anchors.is_empty() {
            return Ok(unknown());
        }
        // A certificate OpenSSL cannot read chains to nothing.
        let Ok(cert) = X509::from_der(cert_der) else {
            crate::verify::cms::clear_openssl_errors();
            return Ok(unknown());
        };
        let Some(chain) = chain_to_anchor(&cert, untrusted, anchors, at)? else {
            return Ok(unknown());
        };
        let at_asn1 =
            openssl::asn1::Asn1Time::from_unix(at.unix_timestamp()).map_err(Error::internal)?;
        for pair in chain.windows(2) {
            let (subject, issuer) = (&pair[0], &pair[1]);
            let der = subject.to_der().map_err(Error::internal)?;
            for url in http_crl_urls(&der) {
                let Some(crl_der) = self.verify_state().foreign_crls.fetch(&url).await else {
                    return Ok(ForeignStatus {
                        status: "unknown",
                        reasons: vec!["revocation_unavailable"],
                    });
                };
                let listed = (|| {
                    let crl = X509Crl::from_der(&crl_der).ok()?;
                    let key = issuer.public_key().ok()?;
                    if !crl.verify(&key).ok()?
                        || crl
                            .issuer_name()
                            .try_cmp(issuer.subject_name())
                            .ok()?
                            .is_ne()
                    {
                        return None;
                    }
                    Some(match crl.get_by_serial(subject.serial_number()) {
                        openssl::x509::CrlStatus::Revoked(entry) => {
                            entry.revocation_date() <= at_asn1
                        }
                        openssl::x509::CrlStatus::RemoveFromCrl(_) => false,
                        openssl::x509::CrlStatus::NotRevoked => false,
                    })
                })();
                crate::verify::cms::clear_openssl_errors();
                match listed {
                    None => {
                        return Ok(ForeignStatus {
                            status: "unknown",
                            reasons: vec!["revocation_unavailable"],
                        })
                    }
                    Some(true) => {
                        return Ok(ForeignStatus {
                            status: "revoked",
                            reasons: vec!["certificate_revoked"],
                        })
                    }
                    Some(false) => {}
                }
            }
        }
        Ok(ForeignStatus {
            status: "good",
            reasons: Vec::new(),
        })
    }
}
