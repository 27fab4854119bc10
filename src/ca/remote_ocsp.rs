//! Asking an OCSP responder (RFC 6960) about a certificate: the request for a CertID made with
//! the issuer, and the answer checked: a successful basic response, signed by the issuer or by a
//! responder certificate the issuer made for OCSP signing (carried in the response), current by
//! its thisUpdate and nextUpdate, and about that certificate. Used by `vouch ocsp check` (a
//! relying party's question) and by the RA for the certificates a remote CA issued
//! (`ocsp_url` in `upstream.toml`: [`OcspSource`]).

use super::CaChain;
use super::CaError;
use crate::x509::revocation::Reason;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
    OcspRevokedStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509;
use std::time::Duration;
use time::OffsetDateTime;

/// An OCSP answer is read up to this size.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Clock difference tolerated on thisUpdate and nextUpdate, in seconds.
pub const CLOCK_SKEW_SECS: u32 = 300;
/// How old, in seconds, an answer of a remote CA's responder without a nextUpdate may be: such an
/// answer is made on request (`openssl ocsp`), so an older one is a replay.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE: u32 = 300;
/// How long one question to a remote CA's responder may take in all.
const OCSP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the responder says of the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked (or on hold: certificateHold) at that time, for that reason (unspecified when
    /// the answer gives none); `reason_name` as RFC 5280 spells it, also for reasons Vouch does
    /// not record.
    Revoked {
        /// revocationTime.
        at: OffsetDateTime,
        /// The reason Vouch records (unspecified for one it does not).
        reason: Reason,
        /// The reason as the answer gave it.
        reason_name: &'static str,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A checked answer about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The status.
    pub status: OcspStatus,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, if the answer gives one.
    pub next_update: Option<OffsetDateTime>,
}

/// The DER of an OCSP request about `cert`, issued by `issuer` (a SHA-1 CertID, as RFC 5019
/// responders expect).
pub fn request_der(cert: &X509, issuer: &X509) -> Result<Vec<u8>, String> {
    let id =
        OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(|e| e.to_string())?;
    let mut request = OcspRequest::new().map_err(|e| e.to_string())?;
    request.add_id(id).map_err(|e| e.to_string())?;
    request.to_der().map_err(|e| e.to_string())
}

/// The answer `body` about `cert` (issued by `issuer`), checked; the error says what is wrong.
/// `max_age`: how old (seconds) the thisUpdate of an answer without a nextUpdate may be (such an
/// answer is otherwise current for ever); None: any age.
pub fn read_answer(
    body: &[u8],
    cert: &X509,
    issuer: &X509,
    max_age: Option<u32>,
) -> Result<OcspAnswer, String> {
    let checked = (|| {
        let response =
            OcspResponse::from_der(body).map_err(|_| "not an OCSP response".to_string())?;
        if response.status() != OcspResponseStatus::SUCCESSFUL {
            return Err(format!(
                "the responder answered {}",
                response_status_name(response.status())
            ));
        }
        let basic = response
            .basic()
            .map_err(|_| "not a basic OCSP response".to_string())?;
        // Signed by the issuer itself or by a responder certificate the issuer made for OCSP
        // signing (carried in the response): the issuer is the trust anchor here.
        let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        store.add_cert(issuer.clone()).map_err(|e| e.to_string())?;
        store
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(|e| e.to_string())?;
        let store = store.build();
        // The issuer among the answer's certificates too: a responder that signs with the CA's
        // key may carry none.
        let mut extra = Stack::new().map_err(|e| e.to_string())?;
        extra.push(issuer.clone()).map_err(|e| e.to_string())?;
        basic
            .verify(&extra, &store, OcspFlag::empty())
            .map_err(|e| {
                format!("it is not signed by the issuer or a responder it authorised: {e}")
            })?;
        let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)
            .map_err(|e| e.to_string())?;
        let single = basic
            .find_status(&id)
            .ok_or("it says nothing about this certificate")?;
        let this_update = time_of(&single.this_update.to_string())?;
        let next_update = single
            .next_update()
            .map(|t| time_of(&t.to_string()))
            .transpose()?;
        let max_age = match next_update {
            Some(_) => None,
            None => max_age,
        };
        single
            .check_validity(CLOCK_SKEW_SECS, max_age)
            .map_err(|_| {
                format!(
                    "it is not current (thisUpdate {}, nextUpdate {})",
                    crate::ra::rfc3339(this_update.unix_timestamp()),
                    next_update
                        .map(|t| crate::ra::rfc3339(t.unix_timestamp()))
                        .unwrap_or_else(|| "none".into())
                )
            })?;
        let status = match single.status {
            OcspCertStatus::GOOD => OcspStatus::Good,
            OcspCertStatus::REVOKED => {
                let at = single
                    .revocation_time
                    .map(|t| time_of(&t.to_string()))
                    .transpose()?
                    .ok_or("a revoked status without its revocationTime")?;
                let reason_name = reason_name(single.reason);
                OcspStatus::Revoked {
                    at,
                    reason: Reason::parse(reason_name).unwrap_or(Reason::Unspecified),
                    reason_name,
                }
            }
            _ => OcspStatus::Unknown,
        };
        Ok(OcspAnswer {
            status,
            this_update,
            next_update,
        })
    })();
    crate::verify::cms::clear_openssl_errors();
    checked
}

/// RFC 5280 name of a revocation reason.
fn reason_name(r: OcspRevokedStatus) -> &'static str {
    match r {
        OcspRevokedStatus::KEY_COMPROMISE => "keyCompromise",
        OcspRevokedStatus::CA_COMPROMISE => "cACompromise",
        OcspRevokedStatus::AFFILIATION_CHANGED => "affiliationChanged",
        OcspRevokedStatus::STATUS_SUPERSEDED => "superseded",
        OcspRevokedStatus::STATUS_CESSATION_OF_OPERATION => "cessationOfOperation",
        OcspRevokedStatus::STATUS_CERTIFICATE_HOLD => "certificateHold",
        OcspRevokedStatus::REMOVE_FROM_CRL => "removeFromCRL",
        _ => match r.as_raw() {
            9 => "privilegeWithdrawn",
            10 => "aACompromise",
            _ => "unspecified",
        },
    }
}

fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        OcspResponseStatus::INTERNAL_ERROR => "internalError",
        OcspResponseStatus::TRY_LATER => "tryLater",
        OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        _ => "an unknown status",
    }
}

/// A GeneralizedTime as OpenSSL prints it (`Nov  2 08:00:00 2026 GMT`, fractions dropped).
pub fn time_of(openssl_time: &str) -> Result<OffsetDateTime, String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = openssl_time.split_whitespace().collect();
    let parsed = (|| {
        let [mon, day, clock, year, "GMT"] = parts.as_slice() else {
            return None;
        };
        let month = MONTHS.iter().position(|m| m == mon)? + 1;
        let clock = clock.split('.').next()?;
        let hms: Vec<u8> = clock.split(':').filter_map(|p| p.parse().ok()).collect();
        let [h, m, s] = hms.as_slice() else {
            return None;
        };
        let date = time::Date::from_calendar_date(
            year.parse().ok()?,
            time::Month::try_from(u8::try_from(month).ok()?).ok()?,
            day.parse().ok()?,
        )
        .ok()?;
        let t = time::Time::from_hms(*h, *m, *s).ok()?;
        Some(date.with_time(t).assume_utc())
    })();
    parsed.ok_or_else(|| format!("an unreadable time \"{openssl_time}\""))
}

/// Where one remote CA answers OCSP requests (`ocsp_url` in `upstream.toml`).
#[derive(Debug, Clone)]
pub struct OcspSource {
    url: url::Url,
    http: reqwest::Client,
}

impl OcspSource {
    /// The responder at `url`, asked for the CA `id`.
    pub fn new(id: &str, url: url::Url) -> Result<OcspSource, CaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(super::cfssl::CONNECT_TIMEOUT)
            .timeout(OCSP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                CaError::Unavailable(format!("HTTP client for the CA {id}'s OCSP responder: {e}"))
            })?;
        Ok(OcspSource { url, http })
    }

    /// The URL asked.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Ask about `cert_der`, a certificate of the CA `id` (whose chain is `chain`); the answer
    /// checked against the chain's issuing certificate.
    pub async fn status(
        &self,
        id: &str,
        cert_der: &[u8],
        chain: &CaChain,
    ) -> Result<OcspAnswer, CaError> {
        let url = self.url.as_str();
        let fail =
            |e: String| CaError::Unavailable(format!("the CA {id}'s OCSP responder at {url}: {e}"));
        let (cert, issuer) = (|| {
            let cert = X509::from_der(cert_der).map_err(|e| e.to_string())?;
            let issuer = X509::from_der(&chain.issuing().der).map_err(|e| e.to_string())?;
            Ok::<_, String>((cert, issuer))
        })()
        .map_err(fail)?;
        let request = request_der(&cert, &issuer).map_err(fail)?;
        let mut response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
            .header(reqwest::header::ACCEPT, "application/ocsp-response")
            .body(request)
            .send()
            .await
            .map_err(|e| {
                fail(format!(
                    "unreachable: {}",
                    super::cfssl::wire::without_url(e)
                ))
            })?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status().as_u16())));
        }
        let body =
            super::cfssl::wire::read_bounded(&mut response, MAX_ANSWER_BYTES, id, url).await?;
        read_answer(&body, &cert, &issuer, Some(MAX_AGE_WITHOUT_NEXT_UPDATE)).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_times_are_read() {
        let t = time_of("Nov  2 08:00:05 2026 GMT").unwrap();
        assert_eq!(
            crate::ra::rfc3339(t.unix_timestamp()),
            "2026-11-02T08:00:05Z"
        );
        let t = time_of("Feb 28 23:59:59.5 2030 GMT").unwrap();
        assert_eq!(
            crate::ra::rfc3339(t.unix_timestamp()),
            "2030-02-28T23:59:59Z"
        );
        assert!(time_of("garbage").is_err());
    }

    #[test]
    fn reasons_have_their_rfc_5280_names() {
        assert_eq!(
            reason_name(OcspRevokedStatus::KEY_COMPROMISE),
            "keyCompromise"
        );
        assert_eq!(
            reason_name(OcspRevokedStatus::from_raw(9)),
            "privilegeWithdrawn"
        );
        assert_eq!(reason_name(OcspRevokedStatus::from_raw(0)), "unspecified");
    }
}
