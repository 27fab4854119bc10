//! The status of a certificate a remote CA issued, from that CA's OCSP responder (`ocsp_url`
//! in `upstream.toml`): asked when Vouch reports the certificate (the verification API about a
//! signer, `GET /certificates/{serial}`), at most once per `--upstream-ocsp-reuse-secs` per
//! certificate (or until the answer's nextUpdate, if sooner), so that a revocation made at the
//! CA shows without waiting for its next CRL. A report waits for the answer at most
//! [`OCSP_WAIT`]; a slower answer is still recorded when it comes, and the report goes on from
//! the records. An answer that says revoked (or on hold) is recorded as a CRL entry is
//! (`ra::upstream_status`: `certificate.revoked_upstream`, with `ocsp_url` and
//! `ocsp_this_update`); `good` lifts a hold the CA's CRL or responder had set, later than that
//! hold; `unknown` changes nothing. A responder that cannot be reached, or whose answer does not
//! verify, changes nothing: the records stand, the failure is logged, and that CA's responder is
//! not asked again for [`OCSP_RETRY`].

use super::upstream_status::Told;
use super::Ra;
use crate::ca::remote_crl::{issued_by, RemoteRevocation};
use crate::ca::remote_ocsp::{OcspAnswer, OcspStatus};
use crate::error::Result;
use crate::state::CertificateStatus;
use crate::store::certificates::{self as rows, CertificateRow};
use crate::store::upstream_crls as crls;
use std::time::{Duration, Instant};

/// How long an answer about one certificate stands, by default, before its responder is asked
/// again.
pub const DEFAULT_OCSP_REUSE: Duration = Duration::from_secs(300);
/// How long a CA's responder is not asked again after it could not answer (and a certificate's
/// responder not asked again while a question about it is out).
pub const OCSP_RETRY: Duration = Duration::from_secs(30);
/// The longest a report waits for the responder's answer.
pub const OCSP_WAIT: Duration = Duration::from_secs(2);
/// Most certificates whose next question is remembered.
const OCSP_ASKED_MAX: u64 = 100_000;

/// When each certificate's responder may be asked next, and each CA's after a failure
/// (bounded).
pub(crate) struct OcspAsked {
    next: moka::sync::Cache<String, Instant>,
    paused: moka::sync::Cache<String, Instant>,
}

impl Default for OcspAsked {
    fn default() -> Self {
        OcspAsked {
            next: moka::sync::Cache::new(OCSP_ASKED_MAX),
            paused: moka::sync::Cache::new(1024),
        }
    }
}

impl Ra {
    /// Ask the OCSP responder of the remote CA that issued the certificate `row` about it, when
    /// that CA has one, the certificate can still change (not expired, not revoked for
    /// keyCompromise), was issued by the CA's current issuing certificate, and was not asked
    /// about within the configured reuse; record what it says. Waits at most [`OCSP_WAIT`].
    /// Returns whether the records changed by then.
    pub(crate) async fn refresh_from_ocsp(&self, row: &CertificateRow) -> bool {
        if self.is_embedded(&row.ca_id)
            || row.not_after < self.now().unix_timestamp()
            || (row.status == CertificateStatus::Revoked
                && row.revocation_reason.as_deref() == Some("keyCompromise"))
        {
            return false;
        }
        let Some(ca) = self.ca_by_id(&row.ca_id) else {
            return false;
        };
        if ca.ocsp_source().is_none() {
            return false;
        }
        let asked = &self.inner.ocsp_asked;
        let now = Instant::now();
        let due = |cache: &moka::sync::Cache<String, Instant>, key: &str| {
            cache.get(key).is_none_or(|next| next <= now)
        };
        if !due(&asked.next, &row.serial) || !due(&asked.paused, &row.ca_id) {
            return false;
        }
        // Other questions about it meanwhile use the records, rather than ask again.
        asked.next.insert(row.serial.clone(), now + OCSP_RETRY);
        let (ra, row) = (self.clone(), row.clone());
        let task = tokio::spawn(async move { ra.ask_ocsp(&row).await });
        match tokio::time::timeout(OCSP_WAIT, task).await {
            Ok(Ok(changed)) => changed,
            // Slower than a report waits: it records what it learns when the answer comes.
            Ok(Err(_)) | Err(_) => false,
        }
    }

    /// [`Ra::refresh_from_ocsp`]'s question and what follows from the answer.
    async fn ask_ocsp(&self, row: &CertificateRow) -> bool {
        let (serial, ca_id) = (row.serial.as_str(), row.ca_id.as_str());
        let Some(ca) = self.ca_by_id(ca_id) else {
            return false;
        };
        let Some(source) = ca.ocsp_source() else {
            return false;
        };
        let chain = ca.chain();
        let issuing = chain.issuing().der.clone();
        let asked = &self.inner.ocsp_asked;
        // A certificate of the CA's earlier key: its current issuer cannot name it.
        if !issued_by(&row.der, &issuing) {
            asked.next.insert(
                serial.to_string(),
                Instant::now() + self.config().upstream_ocsp_reuse.max(OCSP_RETRY),
            );
            return false;
        }
        let answer = match source.status(ca_id, &row.der, &chain).await {
            Ok(answer) => answer,
            Err(crate::ca::CaError::Refused(e) | crate::ca::CaError::Unavailable(e)) => {
                tracing::warn!(%serial, ca = %ca_id, error = %e,
                    "the CA's OCSP responder gave no usable answer; the records stand, and it is not asked again for 30 s");
                asked
                    .paused
                    .insert(ca_id.to_string(), Instant::now() + OCSP_RETRY);
                return false;
            }
        };
        let reuse_max = self.config().upstream_ocsp_reuse;
        let wall = self.now();
        let reuse = answer
            .next_update
            .map(|n| Duration::from_secs(u64::try_from((n - wall).whole_seconds()).unwrap_or(0)))
            .map_or(reuse_max, |d| d.min(reuse_max));
        asked
            .next
            .insert(serial.to_string(), Instant::now() + reuse);
        let told = Told::Ocsp(source.url().to_string());
        match self.apply_ocsp(row, &told, &answer, &issuing).await {
            Ok(changed) => {
                if changed {
                    self.status_changed();
                }
                changed
            }
            Err(e) => {
                tracing::warn!(%serial, ca = %ca_id, error = %e,
                    "could not record what the CA's OCSP responder says; asked again in 30 s");
                asked
                    .next
                    .insert(serial.to_string(), Instant::now() + OCSP_RETRY.min(reuse));
                false
            }
        }
    }

    /// Record `answer` about `row` from the CA's responder (`told`); whether anything changed.
    async fn apply_ocsp(
        &self,
        row: &CertificateRow,
        told: &Told,
        answer: &OcspAnswer,
        issuing: &[u8],
    ) -> Result<bool> {
        let (serial, ca_id) = (row.serial.as_str(), row.ca_id.as_str());
        let time = answer.this_update.unix_timestamp();
        let revoked = match &answer.status {
            // removeFromCRL is no revocation (a CRL entry with it revokes nothing either).
            OcspStatus::Revoked { reason_name, .. } if *reason_name == "removeFromCRL" => None,
            OcspStatus::Revoked { at, reason, .. } => Some((*at, *reason)),
            OcspStatus::Good => None,
            OcspStatus::Unknown => {
                tracing::warn!(%serial, ca = %ca_id,
                    "the CA's OCSP responder does not know a certificate on record as that CA's");
                return Ok(false);
            }
        };
        let Some((at, reason)) = revoked else {
            // Not revoked at the CA: a hold the CA set earlier is lifted.
            let hold = {
                let mut c = self.store().read().await?;
                crls::standing_hold_of(&mut c, serial).await?
            };
            return match hold.filter(|h| h.crl_this_update < time) {
                Some(hold) => self.lift_hold(ca_id, told, &hold, time).await,
                None => Ok(false),
            };
        };
        let live = {
            let mut c = self.store().read().await?;
            rows::live_of_ca(&mut c, ca_id, &[serial.to_string()]).await?
        };
        let Some(live) = live.into_iter().next() else {
            return Ok(false);
        };
        let entry = RemoteRevocation {
            serial: serial.to_string(),
            reason,
            revoked_at: at,
            invalidity: None,
        };
        let Some(others) = self
            .record_remote(ca_id, told, live, &entry, time, issuing)
            .await?
        else {
            return Ok(false);
        };
        self.forward_revocations(None, &others).await;
        Ok(true)
    }
}
