//! The OCSP responder: answers from the live certificate store, signed by a delegated responder
//! certificate that the CA issues for a fresh key and that is renewed before it expires.

use super::Ra;
use crate::audit::{self, Event};
use crate::error::{Error, Result};
use crate::store::certificates as rows;
use crate::x509::ocsp::{self, IssuerHashes, Query, Responder, Status};
use crate::x509::revocation::Reason;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Validity of a responder certificate, and when it is replaced.
pub const RESPONDER_VALIDITY: Duration = Duration::days(7);
pub const RESPONDER_RENEW_BEFORE: Duration = Duration::days(2);
/// nextUpdate of a response: how long a relying party may cache it.
pub const RESPONSE_VALIDITY: Duration = Duration::hours(1);
/// How long a signed response is served again for the same request (without a nonce), unless a
/// certificate status changes first.
pub const RESPONSE_REUSE: Duration = Duration::minutes(5);
const CACHE_MAX: usize = 100_000;

/// Signed responses by request bytes, valid while no status changed (the CRL's generation
/// counter) and for [`RESPONSE_REUSE`].
/// (status generation, when signed, response DER)
type Cached = (u64, OffsetDateTime, Arc<Vec<u8>>);

#[derive(Default)]
pub(crate) struct ResponseCache(std::sync::Mutex<std::collections::HashMap<Vec<u8>, Cached>>);

impl ResponseCache {
    fn get(&self, request: &[u8], generation: u64, now: OffsetDateTime) -> Option<Arc<Vec<u8>>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(request) {
            Some((g, at, der)) if *g == generation && now < *at + RESPONSE_REUSE => {
                Some(der.clone())
            }
            _ => None,
        }
    }

    fn put(&self, request: &[u8], generation: u64, now: OffsetDateTime, der: Arc<Vec<u8>>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, (g, at, _)| *g == generation && now < *at + RESPONSE_REUSE);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(request.to_vec(), (generation, now, der));
    }
}

pub(crate) struct ResponderState {
    responder: Responder,
    issuer: IssuerHashes,
}

impl Ra {
    async fn responder(&self, now: OffsetDateTime) -> Result<Arc<ResponderState>> {
        let mut state = self.ocsp_state().lock().await;
        if let Some(s) = state.as_ref() {
            // Keep it while it is not due for renewal, or while no renewal could last longer
            // (the issuing CA itself ends within the renewal window).
            let due = now + RESPONDER_RENEW_BEFORE >= s.responder.not_after;
            let cannot_extend = s.responder.not_after >= self.ca().max_not_after();
            if now < s.responder.not_after && (!due || cannot_extend) {
                return Ok(s.clone());
            }
        }
        let not_after = now + RESPONDER_VALIDITY;
        let (key, cert) = self
            .ca()
            .issue_ocsp_responder(now - Duration::minutes(5), not_after)
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        let not_after = not_after.min(self.ca().max_not_after());
        let responder = Responder::new(&key, &cert, not_after)?;
        let issuer = IssuerHashes::from_cert_der(&self.ca().chain()[0].der)?;
        let fingerprint = crate::x509::sha256_hex(&cert);
        self.store()
            .write(move |_, log| {
                let details = serde_json::json!({"certificate_sha256": fingerprint, "not_after": super::rfc3339(not_after.unix_timestamp())});
                audit::record(log, now, Event::new(None, "ocsp.responder_issued", None, details));
                Box::pin(async { Ok(()) })
            })
            .await?;
        let fresh = Arc::new(ResponderState { responder, issuer });
        *state = Some(fresh.clone());
        Ok(fresh)
    }

    /// Answer a DER OCSP request with a DER OCSP response. Never fails: malformed requests get
    /// `malformedRequest`, failures `internalError`. Responses to requests without a nonce are
    /// kept signed and served again until a certificate status changes or they are
    /// [`RESPONSE_REUSE`] old.
    pub async fn ocsp(&self, request: &[u8]) -> Arc<Vec<u8>> {
        let now = self.now();
        let generation = self
            .crl_generation()
            .load(std::sync::atomic::Ordering::SeqCst);
        if let Some(der) = self.ocsp_cache().get(request, generation, now) {
            return der;
        }
        match self.ocsp_answer(request, now).await {
            Ok((der, cacheable)) => {
                let der = Arc::new(der);
                if cacheable {
                    self.ocsp_cache().put(request, generation, now, der.clone());
                }
                der
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP responder failure");
                Arc::new(x509_ocsp::OcspResponse::internal_error().to_vec_or_empty())
            }
        }
    }

    /// The signed response, and whether it may be served again (no nonce to echo, no unknown
    /// serial).
    async fn ocsp_answer(&self, request: &[u8], now: OffsetDateTime) -> Result<(Vec<u8>, bool)> {
        let state = self.responder(now).await?;
        let Some(query) = ocsp::parse(request, &state.issuer) else {
            return Ok((ocsp::malformed(), false));
        };
        let statuses = self.statuses(&query).await?;
        let der = state
            .responder
            .respond(&query, &statuses, now, now + RESPONSE_VALIDITY)?;
        // An "unknown" may become "good" when the certificate is issued, which bumps no status
        // version: only answers without one are kept.
        let cacheable =
            query.nonce.is_none() && !statuses.iter().any(|s| matches!(s, Status::Unknown));
        Ok((der, cacheable))
    }

    async fn statuses(&self, query: &Query) -> Result<Vec<Status>> {
        let mut c = self.store().read().await?;
        let mut out = Vec::with_capacity(query.questions.len());
        for q in &query.questions {
            if !q.ours {
                out.push(Status::Unknown);
                continue;
            }
            // Only certificates this CA issued are ever "good".
            let status = match rows::get(&mut c, &q.serial).await? {
                Some(cert) if cert.ca_id == self.ca().issuing_id() => match cert.status.as_str() {
                    "valid" => Status::Good,
                    "on-hold" | "revoked" => Status::Revoked {
                        at: OffsetDateTime::from_unix_timestamp(
                            cert.revoked_at.unwrap_or(cert.issued_at),
                        )
                        .map_err(Error::internal)?,
                        reason: Reason::parse(
                            cert.revocation_reason.as_deref().unwrap_or("unspecified"),
                        )?,
                    },
                    _ => Status::Unknown,
                },
                _ => Status::Unknown,
            };
            out.push(status);
        }
        Ok(out)
    }
}

trait ToVecOrEmpty {
    fn to_vec_or_empty(&self) -> Vec<u8>;
}

impl ToVecOrEmpty for x509_ocsp::OcspResponse {
    fn to_vec_or_empty(&self) -> Vec<u8> {
        der::Encode::to_der(self).unwrap_or_default()
    }
}
