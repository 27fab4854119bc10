//! The status of a certificate a remote CA issued, from that CA's OCSP responder (`ocsp_url`
//! in `upstream.toml`): asked when Vouch reports the certificate (the verification API about a
//! signer, `GET /certificates/{serial}`), at most once per `--upstream-ocsp-reuse-secs` per
//! certificate (or until the answer's nextUpdate, if sooner), so that a revocation made at the CA shows without
//! waiting for its next CRL. An answer that says revoked (or on hold) is recorded as a CRL entry
//! is (`ra::upstream_status`: `certificate.revoked_upstream`, with `ocsp_url` and
//! `ocsp_this_update`); `good` and `unknown` change nothing (a hold is lifted by the CA's CRL,
//! or here). A responder that cannot be reached, or whose answer does not verify, changes
//! nothing: the records stand, and the failure is logged.

use super::upstream_status::Told;
use super::Ra;
use crate::ca::remote_crl::RemoteRevocation;
use crate::ca::remote_ocsp::OcspStatus;
use crate::store::certificates as rows;
use std::time::{Duration, Instant};

/// How long an answer about one certificate stands, by default, before its responder is asked
/// again.
pub const DEFAULT_OCSP_REUSE: Duration = Duration::from_secs(300);
/// How long a certificate's responder is not asked again after it could not answer.
const OCSP_RETRY: Duration = Duration::from_secs(30);
/// Most certificates whose next question is remembered.
const OCSP_ASKED_MAX: u64 = 100_000;

/// When each certificate's responder may be asked next (bounded).
pub(crate) struct OcspAsked {
    next: moka::sync::Cache<String, Instant>,
}

impl Default for OcspAsked {
    fn default() -> Self {
        OcspAsked {
            next: moka::sync::Cache::new(OCSP_ASKED_MAX),
        }
    }
}

impl Ra {
    /// Ask the OCSP responder of the remote CA `ca_id` that issued the certificate `serial`
    /// (`der`) about it, when that CA has one and it was not asked within the configured reuse, and
    /// record a revocation or hold it reports. Returns whether the records changed.
    pub(crate) async fn refresh_from_ocsp(&self, serial: &str, ca_id: &str, der: &[u8]) -> bool {
        if self.is_embedded(ca_id) {
            return false;
        }
        let Some(ca) = self.ca_by_id(ca_id) else {
            return false;
        };
        let Some(source) = ca.ocsp_source() else {
            return false;
        };
        let asked = &self.inner.ocsp_asked.next;
        let now = Instant::now();
        if asked.get(serial).is_some_and(|next| now < next) {
            return false;
        }
        // Other questions about it meanwhile use the records, rather than ask again.
        let reuse_max = self.config().upstream_ocsp_reuse;
        asked.insert(serial.to_string(), now + OCSP_RETRY.min(reuse_max));
        let chain = ca.chain();
        let answer = match source.status(ca_id, der, &chain).await {
            Ok(answer) => answer,
            Err(crate::ca::CaError::Refused(e) | crate::ca::CaError::Unavailable(e)) => {
                tracing::warn!(%serial, ca = %ca_id, error = %e,
                    "the CA's OCSP responder gave no usable answer; the records stand");
                return false;
            }
        };
        let wall = self.now();
        let reuse = answer
            .next_update
            .map(|n| Duration::from_secs(u64::try_from((n - wall).whole_seconds()).unwrap_or(0)))
            .map_or(reuse_max, |d| d.min(reuse_max));
        asked.insert(serial.to_string(), Instant::now() + reuse);
        let OcspStatus::Revoked { at, reason, .. } = answer.status else {
            if answer.status == OcspStatus::Unknown {
                tracing::warn!(%serial, ca = %ca_id,
                    "the CA's OCSP responder does not know a certificate on record as that CA's");
            }
            return false;
        };
        let live = match self.store().read().await {
            Ok(mut c) => rows::live_of_ca(&mut c, ca_id, &[serial.to_string()]).await,
            Err(e) => Err(e),
        };
        let Some(live) = live.ok().and_then(|l| l.into_iter().next()) else {
            return false;
        };
        let entry = RemoteRevocation {
            serial: serial.to_string(),
            reason,
            revoked_at: at,
            invalidity: None,
        };
        let told = Told::Ocsp(source.url().to_string());
        let issuing = chain.issuing().der.clone();
        let time = answer.this_update.unix_timestamp();
        match self
            .record_remote(ca_id, &told, live, &entry, time, &issuing)
            .await
        {
            Ok(Some(others)) => {
                self.status_changed();
                self.forward_revocations(None, &others).await;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(%serial, ca = %ca_id, error = %e,
                    "could not record what the CA's OCSP responder says");
                false
            }
        }
    }
}
