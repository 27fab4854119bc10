//! The OCSP responder: answers from the live certificate store, signed by a delegated responder
//! certificate that the CA issues for a fresh key and that is renewed before it expires.

use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::PublishingCa;
use crate::error::{Error, Result};
use crate::state::CertificateStatus;
use crate::store::certificates as rows;
use crate::store::{job, Store};
use crate::x509::freshness::Freshness;
use crate::x509::ocsp::{self, IssuerHashes, Query, Responder, Status};
use crate::x509::revocation::Reason;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Validity of a responder certificate, and when it is replaced.
pub const RESPONDER_VALIDITY: Duration = Duration::days(7);
/// How long before a responder certificate expires it is replaced.
pub const RESPONDER_RENEW_BEFORE: Duration = Duration::days(2);
/// nextUpdate of a response: how long a relying party may cache it.
pub const RESPONSE_VALIDITY: Duration = Duration::hours(1);
/// How long a signed response is served again for the same request (without a nonce), unless a
/// certificate status changes first.
pub const RESPONSE_REUSE: Duration = Duration::minutes(5);
/// Memory for signed responses kept for reuse, in MiB, unless set otherwise.
pub const DEFAULT_CACHE_MB: u64 = 64;

/// Signed responses by request bytes, valid while no status changed (the CRL's generation
/// counter) and for [`RESPONSE_REUSE`] by the RA's clock. Bounded by memory: the requests come
/// from anyone, so the answers not asked for lately make room for new ones past the capacity.
///
/// Two generations of at most half the capacity each: new answers go into the young one, an
/// answer found in the old one moves into the young one, and when the young one is full the old
/// one is dropped and the young one becomes old. A hit costs one lock and one lookup.
pub(crate) struct ResponseCache {
    /// The most bytes kept, both generations together.
    capacity: u64,
    generations: std::sync::Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Vec<u8>, Cached>,
    young_bytes: u64,
    old: HashMap<Vec<u8>, Cached>,
    old_bytes: u64,
}

struct Cached {
    generation: u64,
    signed_at: OffsetDateTime,
    answer: OcspAnswer,
}

/// A DER OCSP response, and for one that caches may keep (a signed answer without a nonce whose
/// statuses are all good or revoked) its thisUpdate, nextUpdate and digest, recorded when it was
/// signed.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The DER OCSP response.
    pub der: Bytes,
    /// None for answers that must not be served again: errors, nonced or `unknown` answers.
    pub freshness: Option<Freshness>,
}

impl OcspAnswer {
    /// An answer no cache may keep (an error, or one echoing a nonce).
    pub fn once(der: Vec<u8>) -> Self {
        OcspAnswer {
            der: Bytes::from(der),
            freshness: None,
        }
    }
}

/// Bytes counted for an entry besides its request and response: the map's own bookkeeping.
const ENTRY_OVERHEAD: usize = 128;

fn weight(request: &[u8], entry: &Cached) -> u64 {
    (request.len() + entry.answer.der.len() + ENTRY_OVERHEAD) as u64
}

impl Generations {
    /// Keep `entry` in the young generation, which holds at most `half` bytes.
    fn insert(&mut self, request: Vec<u8>, entry: Cached, half: u64) {
        let w = weight(&request, &entry);
        if let Some(old) = self.old.remove(&request) {
            self.old_bytes -= weight(&request, &old);
        }
        if let Some(replaced) = self.young.remove(&request) {
            self.young_bytes -= weight(&request, &replaced);
        }
        if self.young_bytes + w > half {
            self.old = std::mem::take(&mut self.young);
            self.old_bytes = std::mem::take(&mut self.young_bytes);
        }
        self.young_bytes += w;
        self.young.insert(request, entry);
    }
}

impl ResponseCache {
    /// An empty cache that keeps at most `capacity` bytes.
    fn new(capacity: u64) -> Self {
        ResponseCache {
            capacity,
            generations: std::sync::Mutex::new(Generations::default()),
        }
    }

    /// The most bytes one generation holds.
    fn half(&self) -> u64 {
        self.capacity / 2
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, request: &[u8], generation: u64, now: OffsetDateTime) -> Option<OcspAnswer> {
        let fresh = |c: &Cached| c.generation == generation && now < c.signed_at + RESPONSE_REUSE;
        let half = self.half();
        let mut g = self.lock();
        if let Some(c) = g.young.get(request) {
            if fresh(c) {
                return Some(c.answer.clone());
            }
            // Not served again: make room.
            if let Some((request, stale)) = g.young.remove_entry(request) {
                g.young_bytes -= weight(&request, &stale);
            }
            return None;
        }
        let (request, c) = g.old.remove_entry(request)?;
        g.old_bytes -= weight(&request, &c);
        if !fresh(&c) {
            return None;
        }
        let answer = c.answer.clone();
        g.insert(request, c, half);
        Some(answer)
    }

    fn put(&self, request: &[u8], generation: u64, now: OffsetDateTime, answer: OcspAnswer) {
        let entry = Cached {
            generation,
            signed_at: now,
            answer,
        };
        let half = self.half();
        // An answer larger than a generation is not kept.
        if weight(request, &entry) > half {
            return;
        }
        self.lock().insert(request.to_vec(), entry, half);
    }

    #[cfg(test)]
    fn weighted_size(&self) -> u64 {
        let g = self.lock();
        g.young_bytes + g.old_bytes
    }
}

/// The delegated responder's key and certificate, and the issuer hashes requests name.
struct ResponderState {
    responder: Responder,
    issuer: IssuerHashes,
}

/// The OCSP responder: its delegated signing certificate (issued on first use and renewed before
/// it expires) and the cache of signed answers. One per RA.
pub(crate) struct OcspResponder {
    store: Store,
    ca: Arc<dyn PublishingCa>,
    /// Held while the responder certificate is checked and, when due, replaced.
    state: tokio::sync::Mutex<Option<Arc<ResponderState>>>,
    cache: ResponseCache,
}

impl OcspResponder {
    /// A responder whose answer cache keeps at most `cache_bytes`.
    pub(crate) fn new(store: Store, ca: Arc<dyn PublishingCa>, cache_bytes: u64) -> Self {
        OcspResponder {
            store,
            ca,
            state: Default::default(),
            cache: ResponseCache::new(cache_bytes),
        }
    }

    async fn responder(&self, now: OffsetDateTime) -> Result<Arc<ResponderState>> {
        let mut state = self.state.lock().await;
        if let Some(s) = state.as_ref() {
            // Keep it while it is not due for renewal, or while no renewal could last longer
            // (the issuing CA itself ends within the renewal window).
            let due = now + RESPONDER_RENEW_BEFORE >= s.responder.not_after;
            let cannot_extend = s.responder.not_after >= self.ca.max_not_after();
            if now < s.responder.not_after && (!due || cannot_extend) {
                return Ok(s.clone());
            }
        }
        let not_after = now + RESPONDER_VALIDITY;
        let (key, cert) = self
            .ca
            .issue_ocsp_responder(now - Duration::minutes(5), not_after)
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        let not_after = not_after.min(self.ca.max_not_after());
        let responder = Responder::new(&key, &cert, not_after)?;
        let issuer = IssuerHashes::from_cert_der(&self.ca.chain()[0].der)?;
        let fingerprint = crate::x509::sha256_hex(&cert);
        self.store
            .write(job!(|_, log| {
                let details = serde_json::json!({"certificate_sha256": fingerprint, "not_after": super::rfc3339(not_after.unix_timestamp())});
                audit::record(log, now, Event::new(None, Action::OcspResponderIssued, None, details));
                Ok(())
            }))
            .await?;
        let fresh = Arc::new(ResponderState { responder, issuer });
        *state = Some(fresh.clone());
        Ok(fresh)
    }

    /// Answer a DER OCSP request with a DER OCSP response. Never fails: malformed requests get
    /// `malformedRequest`, failures `internalError`. Responses to requests without a nonce are
    /// kept signed and served again until a certificate status changes or they are
    /// [`RESPONSE_REUSE`] old; those alone carry a [`Freshness`] for HTTP caches.
    /// `generation` is the status generation at `now`: a cached answer of another is stale.
    pub(crate) async fn answer(
        &self,
        request: &[u8],
        now: OffsetDateTime,
        generation: u64,
    ) -> OcspAnswer {
        if let Some(answer) = self.cache.get(request, generation, now) {
            return answer;
        }
        match self.signed_answer(request, now).await {
            Ok(answer) => {
                if answer.freshness.is_some() {
                    self.cache.put(request, generation, now, answer.clone());
                }
                answer
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP responder failure");
                OcspAnswer::once(x509_ocsp::OcspResponse::internal_error().to_vec_or_empty())
            }
        }
    }

    /// The signed response; with its freshness when it may be served again (no nonce to echo,
    /// no unknown serial).
    async fn signed_answer(&self, request: &[u8], now: OffsetDateTime) -> Result<OcspAnswer> {
        let state = self.responder(now).await?;
        let Some(query) = ocsp::parse(request, &state.issuer) else {
            return Ok(OcspAnswer::once(ocsp::malformed()));
        };
        let statuses = self.statuses(&query).await?;
        let next_update = now + RESPONSE_VALIDITY;
        let der = state
            .responder
            .respond(&query, &statuses, now, next_update)?;
        // An "unknown" may become "good" when the certificate is issued, which bumps no status
        // version: only answers without one are kept.
        let cacheable =
            query.nonce.is_none() && !statuses.iter().any(|s| matches!(s, Status::Unknown));
        // thisUpdate and producedAt are both `now` (see `Responder::respond`).
        let freshness = cacheable.then(|| Freshness::of(&der, now, next_update));
        Ok(OcspAnswer {
            der: Bytes::from(der),
            freshness,
        })
    }

    async fn statuses(&self, query: &Query) -> Result<Vec<Status>> {
        let mut c = self.store.read().await?;
        let mut out = Vec::with_capacity(query.questions.len());
        for q in &query.questions {
            if !q.ours {
                out.push(Status::Unknown);
                continue;
            }
            // Only certificates this CA issued are ever "good".
            let status = match rows::get(&mut c, &q.serial).await? {
                Some(cert) if cert.ca_id == self.ca.issuing_id() => match cert.status {
                    CertificateStatus::Valid => Status::Good,
                    CertificateStatus::OnHold | CertificateStatus::Revoked => Status::Revoked {
                        at: OffsetDateTime::from_unix_timestamp(
                            cert.revoked_at.unwrap_or(cert.issued_at),
                        )
                        .map_err(Error::internal)?,
                        reason: Reason::parse(
                            cert.revocation_reason.as_deref().unwrap_or("unspecified"),
                        )?,
                    },
                },
                _ => Status::Unknown,
            };
            out.push(status);
        }
        Ok(out)
    }
}

impl Ra {
    /// Answer a DER OCSP request with a DER OCSP response. Never fails: malformed requests get
    /// `malformedRequest`, failures `internalError`. Responses to requests without a nonce are
    /// kept signed and served again until a certificate status changes or they are
    /// [`RESPONSE_REUSE`] old; those alone carry a [`Freshness`] for HTTP caches.
    pub async fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        let now = self.now();
        self.ocsp_responder()
            .answer(request, now, self.status_generation())
            .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_cache_stays_within_its_memory_bound() {
        let cap = 256 * 1024;
        let cache = ResponseCache::new(cap);
        let now = OffsetDateTime::now_utc();
        let answer = OcspAnswer::once(vec![0x30; 1000]);
        // Forty times the bound in distinct requests, as an unauthenticated client can send.
        for i in 0..10_000u32 {
            cache.put(&i.to_be_bytes(), 1, now, answer.clone());
        }
        let size = cache.weighted_size();
        assert!(size <= cap, "{size} bytes cached, bound {cap}");
        assert!(size > cap / 2, "the cache is used: {size}");
    }

    #[test]
    fn answers_asked_for_stay_while_others_make_room() {
        let cache = ResponseCache::new(256 * 1024);
        let now = OffsetDateTime::now_utc();
        let der = OcspAnswer::once(vec![0x30; 1000]);
        cache.put(b"popular", 1, now, der.clone());
        for i in 0..10_000u32 {
            cache.put(&i.to_be_bytes(), 1, now, der.clone());
            if i % 50 == 0 {
                assert!(cache.get(b"popular", 1, now).is_some(), "evicted at {i}");
            }
        }
        // One asked for only at the start has made room long since.
        assert!(cache.get(&0u32.to_be_bytes(), 1, now).is_none());
    }

    #[test]
    fn response_cache_honours_status_generation_and_reuse_window() {
        let cache = ResponseCache::new(DEFAULT_CACHE_MB << 20);
        let now = OffsetDateTime::now_utc();
        let answer = OcspAnswer {
            der: Bytes::from_static(&[1, 2, 3]),
            freshness: Some(Freshness::of(&[1, 2, 3], now, now + RESPONSE_VALIDITY)),
        };
        cache.put(b"req", 7, now, answer);
        let got = cache.get(b"req", 7, now).expect("cached");
        assert_eq!(&got.der[..], &[1, 2, 3]);
        // The times and digest recorded at signing come back with it.
        assert_eq!(
            got.freshness.map(|f| f.next_update),
            Some(crate::x509::freshness::whole_seconds(
                now + RESPONSE_VALIDITY
            ))
        );
        // A status change moves the generation: the old answer is not served.
        assert!(cache.get(b"req", 8, now).is_none());
        // Past the reuse window by the RA's clock it is not served either.
        assert!(cache.get(b"req", 7, now + RESPONSE_REUSE).is_none());
        assert!(cache.get(b"other", 7, now).is_none());
    }
}
