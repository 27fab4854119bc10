//! Revocations of certificates a remote CA issued, forwarded to that CA until it acknowledges
//! them. Vouch's own record changes first (the local status is revoked at once, in the revoking
//! transaction); the forward is then queued (`revocation_forwards`, one per certificate and
//! status) and tried at once. One that fails stays queued and is retried by the background task
//! with the growing back-off of [`super::RetrySchedule`]. The task also queues revocations that no
//! forward was queued for (the start-up re-keying revokes without forwarding; a process may die
//! between its revocation and the queue). Each attempt is audited: `certificate.revocation_forwarded`
//! when the CA acknowledged, `certificate.revocation_forward_failed` with the CA's error and the
//! next attempt, `certificate.revocation_forward_queued` for one found unqueued.

use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::CaError;
use crate::error::Result;
use crate::store::upstream_queue::{self as queue, ForwardRow};
use crate::store::{certificates as rows, job};
use crate::x509::revocation::Reason;
use time::OffsetDateTime;

/// Most forwards looked at in one round of the background task.
const ROUND: i64 = 100;

impl Ra {
    /// Queue the forward of each of `serials`' current status (revoked, or on hold) to the remote
    /// CA that issued it (those the embedded CA issued are skipped: Vouch publishes their status
    /// itself), and try each at once. Returns, for the caller to show, one message per forward
    /// that failed and stays queued.
    pub(crate) async fn forward_revocations(
        &self,
        by: Option<&str>,
        serials: &[String],
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for serial in serials {
            match self.queue_forward(serial).await {
                Ok(Some(row)) => {
                    if let Err(message) = self.try_forward(by, &row).await {
                        failures.push(message);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(%serial, error = %e, "could not queue a revocation forward; the retry task queues it");
                    failures.push(format!(
                        "the revocation of {serial} was recorded, but its forward to the CA could \
                         not be queued now ({e}); the retry task queues it"
                    ));
                }
            }
        }
        failures
    }

    /// Queue the forward of `serial`'s current status to the remote CA that issued it; None for
    /// the embedded CA's certificates, a certificate that is not revoked or on hold, and a
    /// status the CA has acknowledged already.
    async fn queue_forward(&self, serial: &str) -> Result<Option<ForwardRow>> {
        let ca_id = {
            let mut c = self.store().read().await?;
            match rows::get(&mut c, serial).await? {
                Some(row) => row.ca_id,
                None => return Ok(None),
            }
        };
        if self.is_embedded(&ca_id) {
            return Ok(None);
        }
        let (now, serial) = (self.now().unix_timestamp(), serial.to_string());
        let row = self
            .store()
            .write(job!(|c, _log| {
                queue::queue(c, &serial, &ca_id, now).await
            }))
            .await?;
        Ok(row.filter(|r| r.acknowledged_at.is_none()))
    }

    /// One attempt at the forward `row`: acknowledged, or counted as failed with its next
    /// attempt; audited either way. Err: the message for the caller.
    async fn try_forward(
        &self,
        by: Option<&str>,
        row: &ForwardRow,
    ) -> std::result::Result<(), String> {
        // Err((permanent, message)): permanent when the CA answered no (or the stored status
        // cannot be read), transient when it could not be reached or failed.
        let attempt = match self.ca_by_id(&row.ca_id) {
            None => Err((
                false,
                format!("the CA {} is not configured (upstream.toml)", row.ca_id),
            )),
            Some(ca) => {
                let reason = Reason::parse(&row.reason).map_err(|e| e.to_string());
                let time = OffsetDateTime::from_unix_timestamp(row.revoked_at)
                    .map_err(|e| format!("the stored revocation time: {e}"));
                match (reason, time) {
                    (Ok(reason), Ok(time)) => {
                        ca.revoke(&row.serial, reason, time)
                            .await
                            .map_err(|e| match e {
                                CaError::Refused(m) => (true, m),
                                CaError::Unavailable(m) => (false, m),
                            })
                    }
                    (Err(e), _) | (_, Err(e)) => Err((true, e)),
                }
            }
        };
        let now = self.now();
        let (serial, version) = (row.serial.clone(), row.status_version);
        let mut details = serde_json::json!({"ca": row.ca_id, "reason": row.reason});
        let outcome = match &attempt {
            Ok(()) => {
                details["failed_attempts"] = row.attempts.into();
                let event = Event::new(
                    by,
                    Action::CertificateRevocationForwarded,
                    Some(&serial),
                    details,
                );
                self.store()
                    .write(job!(|c, log| {
                        if queue::acknowledge(c, &serial, version, now.unix_timestamp()).await? {
                            audit::record(log, now, event);
                        }
                        Ok(())
                    }))
                    .await
            }
            Err((true, error)) => {
                tracing::error!(serial = %row.serial, ca = %row.ca_id, %error,
                    "the CA refused a revocation forward; it is not retried until an admin asks \
                     (`vouch upstream queue retry`) or gives it up (`vouch upstream queue drop`)");
                details["error"] = error.clone().into();
                details["attempts"] = (row.attempts + 1).into();
                details["permanent"] = true.into();
                let event = Event::new(
                    by,
                    Action::CertificateRevocationForwardFailed,
                    Some(&serial),
                    details,
                );
                let error = error.clone();
                self.store()
                    .write(job!(|c, log| {
                        queue::refused(c, &serial, version, &error, now.unix_timestamp()).await?;
                        audit::record(log, now, event);
                        Ok(())
                    }))
                    .await
            }
            Err((false, error)) => {
                let attempts = row.attempts + 1;
                let next = now + self.config().retry.delay(attempts);
                tracing::error!(serial = %row.serial, ca = %row.ca_id, %error, attempts,
                    next_attempt = %super::rfc3339(next.unix_timestamp()),
                    "could not forward a revocation to the CA that issued the certificate; it stays queued");
                details["error"] = error.clone().into();
                details["attempts"] = attempts.into();
                details["next_attempt_at"] = super::rfc3339(next.unix_timestamp()).into();
                let event = Event::new(
                    by,
                    Action::CertificateRevocationForwardFailed,
                    Some(&serial),
                    details,
                );
                let error = error.clone();
                self.store()
                    .write(job!(|c, log| {
                        queue::attempt_failed(c, &serial, version, &error, next.unix_timestamp())
                            .await?;
                        audit::record(log, now, event);
                        Ok(())
                    }))
                    .await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(serial = %row.serial, error = %e, "could not record a revocation forward's attempt");
        }
        attempt.map_err(|(permanent, error)| match permanent {
            true => format!(
                "the revocation of {} was recorded, but the CA {} refused it: {error}; the \
                 forward is marked failed and waits for an admin (`vouch upstream queue retry` or \
                 `drop`)",
                row.serial, row.ca_id
            ),
            false => format!(
                "the revocation of {} was recorded, but the CA {} was not told: {error}; the \
                 forward stays queued and is retried",
                row.serial, row.ca_id
            ),
        })
    }

    /// One round of the background task: queue the revocations no forward was queued for, then
    /// try the queued forwards that are due. Returns how many the CAs acknowledged.
    pub async fn retry_forwards(&self) -> Result<usize> {
        let missed = {
            let mut c = self.store().read().await?;
            queue::unqueued(&mut c, self.ca().issuing_id(), ROUND).await?
        };
        for (serial, ca_id) in missed {
            let now = self.now();
            let event_serial = serial.clone();
            let queued = self
                .store()
                .write(job!(|c, log| {
                    let row = queue::queue(c, &serial, &ca_id, now.unix_timestamp()).await?;
                    if let Some(r) = &row {
                        let details = serde_json::json!({"ca": r.ca_id, "reason": r.reason,
                            "revoked_at": super::rfc3339(r.revoked_at)});
                        let event = Event::new(
                            None,
                            Action::CertificateRevocationForwardQueued,
                            Some(&serial),
                            details,
                        );
                        audit::record(log, now, event);
                    }
                    Ok(row.is_some())
                }))
                .await;
            if let Err(e) = queued {
                tracing::warn!(serial = %event_serial, error = %e, "could not queue a revocation forward");
            }
        }
        let due = {
            let mut c = self.store().read().await?;
            queue::due(&mut c, self.now().unix_timestamp(), ROUND).await?
        };
        let mut acknowledged = 0;
        for row in due {
            if self.try_forward(None, &row).await.is_ok() {
                acknowledged += 1;
            }
        }
        Ok(acknowledged)
    }
}
