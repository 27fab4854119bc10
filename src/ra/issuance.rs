//! Issuance: turn a recorded intent into a stored certificate, at most once.
//!
//! The intent (request id, reserved serial, key hash, validity) was committed with the move to
//! `approved`. Here the CA signs, the result is checked against the intent, and the move
//! `approved -> issued` is a compare-and-set in the same transaction that stores the certificate.
//! If the process dies or the CA fails in between, [`Ra::reconcile`] completes the intent later with
//! the same serial.

use super::quarantine::Received;
use super::requests::Template;
use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::{CaError, IssueOrder};
use crate::error::{Error, Result};
use crate::state::{CertificateStatus, RequestState};
use crate::store::certificates::{self, CertificateRow};
use crate::store::job;
use crate::store::requests::{self as rows, IntentRow, RequestRow};
use crate::x509::serial::Serial;
use time::OffsetDateTime;

/// Check that what the CA returned is the certificate we asked for.
fn check_issued(der: &[u8], order: &IssueOrder) -> Result<()> {
    let cert = crate::x509::certificate::read(der)
        .map_err(|e| Error::Upstream(format!("CA returned an unparseable certificate: {e}")))?;
    if cert.trailing_bytes {
        return Err(Error::Upstream(
            "CA returned trailing bytes after the certificate".into(),
        ));
    }
    if cert.serial != order.serial.as_bytes() {
        return Err(Error::Upstream(
            "CA returned a certificate with a different serial".into(),
        ));
    }
    if cert.spki != order.spki_der {
        return Err(Error::Upstream(
            "CA returned a certificate for a different public key".into(),
        ));
    }
    if cert.not_after != order.not_after.unix_timestamp() {
        return Err(Error::Upstream(
            "CA returned a certificate with a different validity".into(),
        ));
    }
    Ok(())
}

/// Store the certificate `row`. A remote CA's serial first replaces the `reserved` one in the
/// intent, which the certificate row references.
async fn record(c: &mut crate::store::Conn, row: &CertificateRow, reserved: &str) -> Result<()> {
    if row.serial != reserved
        && !rows::record_issued_serial(c, &row.request_id, reserved, &row.serial).await?
    {
        return Err(Error::internal(
            "the issuance intent changed while the CA was signing",
        ));
    }
    certificates::insert(c, row).await
}

/// How long to wait before the next attempt after `attempts` failed ones, by the default
/// schedule: the first retry is left to reconciliation's own rounds (intents at least a minute
/// old, every 30 s), then 1, 2, 4 ... minutes, at most an hour (see [`super::RetrySchedule`]).
pub fn retry_delay(attempts: i64) -> time::Duration {
    super::RetrySchedule::default().delay(attempts)
}

/// The requests whose issuance this process is attempting now.
#[derive(Default)]
pub(crate) struct InFlight(std::sync::Mutex<std::collections::HashSet<String>>);

/// One request's attempt; the request is free again when this is dropped.
pub(crate) struct Claim<'a> {
    set: &'a InFlight,
    id: String,
}

impl InFlight {
    /// Claim `request_id`, or None while another attempt at it runs.
    pub(crate) fn claim(&self, request_id: &str) -> Option<Claim<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(request_id.to_string()).then(|| Claim {
            set: self,
            id: request_id.to_string(),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.id);
    }
}

impl Ra {
    /// Sign and store the certificate for `intent`, by the CA it names. `approved` is the request
    /// as the caller last saw it (as it was approved); without it, the request is read afresh.
    /// Returns the serial of the certificate this call moved the request to `issued` with (None:
    /// someone else did, or it was cancelled).
    pub(crate) async fn complete_issuance(
        &self,
        intent: &IntentRow,
        approved: Option<RequestRow>,
    ) -> Result<Option<String>> {
        // One attempt per request at a time in this process: an approval still waiting for a
        // slow CA (a CFSSL timeout, CMP polling) is not joined by reconciliation's attempt, which
        // for a CA that picks its serials would be a second certificate.
        let Some(_claim) = self.issuing().claim(&intent.request_id) else {
            return Ok(None);
        };
        let audit_failure = approved.is_some();
        let req = match approved {
            Some(r) => RequestRow {
                status: RequestState::Approved,
                ..r
            },
            None => {
                let mut c = self.store().read().await?;
                rows::get(&mut c, &intent.request_id)
                    .await?
                    .ok_or(Error::NotFound("request"))?
            }
        };
        let remote = !self.is_embedded(&intent.ca_id);
        let journaled = match remote {
            true => match self.journal().read(&intent.request_id) {
                Ok(j) => j,
                // Never asked to sign again over an entry that may hold its certificate; the
                // error is shown with the request (and by `vouch upstream queue`) until the
                // operator fixes or removes the file.
                Err(e) => {
                    let e = Error::Environment(format!(
                        "{e}: the request waits until the file holds the certificate the CA \
                         issued (PEM) or is removed (then the CA is asked again); see \
                         docs/OPERATIONS.md, \"Upstream CAs\""
                    ));
                    return Err(self.retry_later(intent, e, audit_failure).await);
                }
            },
            false => None,
        };
        let recordable = req.serial.is_none()
            && matches!(req.status, RequestState::Approved | RequestState::Cancelled);
        if let (Some(der), false) = (journaled.as_deref(), recordable) {
            // The request was recorded with a certificate from another attempt (another instance
            // sharing the database asked the CA again), or ended: the certificate kept here may
            // be a second one for the same order, which nobody may be handed.
            if !self.quarantine_second(intent, &req, der).await {
                return Err(Error::Environment(format!(
                    "the certificate kept in the issuance journal for {} cannot be recorded and \
                     its quarantine could not be audited; the entry is kept and tried again",
                    intent.request_id
                )));
            }
        }
        if !self.still_to_record(&req, intent, journaled.is_some()) {
            return Ok(None);
        }
        let Some(ca) = self.ca_by_id(&intent.ca_id) else {
            let e = Error::Upstream(format!(
                "the CA {} this request was approved for is not configured (upstream.toml)",
                intent.ca_id
            ));
            return Err(self.retry_later(intent, e, audit_failure).await);
        };
        let order = match self.order_for(intent, &req, ca.as_ref()).await {
            Ok(order) => order,
            // The approval's attempt owns the intent since it was recorded (a retry has not
            // claimed it yet): give that claim up.
            Err(e) if audit_failure => return Err(self.release_claim(intent, e).await),
            Err(e) => return Err(e),
        };
        // Where the certificate comes from, which says whether a mismatch may be revoked at the
        // CA by its serial (see `revoke_quarantined`).
        let mut source = match journaled.is_some() {
            true => Received::Journal,
            false => Received::Answer,
        };
        let der = match journaled {
            Some(der) => {
                tracing::info!(request = %intent.request_id, ca = %intent.ca_id,
                    "completing issuance with the CA's answer kept in the issuance journal");
                der
            }
            None => {
                if !remote {
                    if let Some(reason) = self.issuing_ca_revocation().await? {
                        return Err(self.fail(intent, reason, None).await);
                    }
                }
                if remote && !audit_failure && !self.claim(intent, ca.as_ref()).await? {
                    // Another instance sharing the database is asking the CA for this one.
                    return Ok(None);
                }
                // A remote CA's answer is kept in the journal as soon as the adapter has it
                // (before a CMP certConf), and again below for adapters that keep nothing.
                let kept = std::sync::atomic::AtomicBool::new(false);
                let keep = |der: &[u8]| match remote {
                    true => self
                        .journal()
                        .write(&intent.request_id, der)
                        .map(|()| kept.store(true, std::sync::atomic::Ordering::SeqCst))
                        .map_err(|e| e.to_string()),
                    false => Ok(()),
                };
                // A retry first asks the CA for what an earlier attempt may have made.
                let answer = match audit_failure {
                    true => ca.issue_kept(&order, &keep).await,
                    false => match ca.find_issued(&order).await {
                        Ok(Some(der)) => {
                            source = Received::Lookup;
                            Ok(der)
                        }
                        Ok(None) => ca.issue_kept(&order, &keep).await,
                        Err(e) => Err(e),
                    },
                };
                let der = match answer {
                    Ok(der) => der,
                    Err(CaError::Refused(message)) => {
                        return Err(self.fail(intent, message, None).await)
                    }
                    Err(CaError::Unavailable(message)) => {
                        // A certificate handed over and kept before the failure (a CMP
                        // certConf that failed) is recorded from the journal; meanwhile the
                        // claim stands, so that no other instance asks the CA for another.
                        let not_before = match kept.load(std::sync::atomic::Ordering::SeqCst) {
                            true => self.claim_end(ca.as_ref(), self.now()),
                            false => 0,
                        };
                        let e = Error::Upstream(message);
                        return Err(self
                            .retry_later_at(intent, e, audit_failure, not_before)
                            .await);
                    }
                };
                if remote && !kept.load(std::sync::atomic::Ordering::SeqCst) {
                    // Kept before anything else is done with it: if the database write below
                    // fails or the process dies, reconciliation records this certificate
                    // instead of asking the CA for another.
                    if let Err(e) = self.journal().write(&intent.request_id, &der) {
                        tracing::error!(request = %intent.request_id, error = %e,
                            "could not keep the CA's answer in the issuance journal");
                    }
                }
                der
            }
        };
        let (serial, not_before, not_after) = if ca.picks_serial() {
            match super::received::check(&der, &order, &intent.key_sha256, &ca.chain()) {
                Ok(a) => (a.serial, a.not_before, a.not_after),
                Err(why) => {
                    // Another attempt would make another certificate: the request fails, the
                    // certificate is kept in the audit log, never delivered, and revoked at
                    // the CA (it is valid there, for a subject or key nobody approved).
                    tracing::error!(request = %intent.request_id, ca = %intent.ca_id, error = %why,
                        "the CA returned a certificate that does not match the order; quarantined");
                    let message = format!(
                        "the CA {} returned a certificate that does not match the approved order: {why}",
                        intent.ca_id
                    );
                    let revoked = self
                        .revoke_quarantined(ca.as_ref(), &der, source)
                        .await
                        .unwrap_or_else(
                            |e| serde_json::json!({"revoked": false, "error": e.to_string()}),
                        );
                    return Err(self.fail(intent, message, Some((&der, revoked))).await);
                }
            }
        } else {
            if let Err(e) = check_issued(&der, &order) {
                tracing::error!(request = %intent.request_id, error = %e, "the CA returned a certificate that does not match the order");
                return Err(self.retry_later(intent, e, audit_failure).await);
            }
            (intent.serial.clone(), intent.not_before, intent.not_after)
        };
        let now = self.now();
        let subject = order.subject.display();
        let returned = ca.picks_serial().then(|| der.clone());
        let row = CertificateRow {
            serial: serial.clone(),
            request_id: intent.request_id.clone(),
            subscriber_id: req.subscriber_id.clone(),
            ca_id: intent.ca_id.clone(),
            profile: req.profile.clone(),
            subject: subject.clone(),
            key_sha256: intent.key_sha256.clone(),
            not_before,
            not_after,
            der,
            status: CertificateStatus::Valid,
            issued_at: now.unix_timestamp(),
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
        };
        let mut details = serde_json::json!({"request": intent.request_id, "subscriber": req.subscriber_id, "profile": req.profile,
            "subject": subject, "ca": intent.ca_id});
        if serial != intent.serial {
            details["reserved_serial"] = intent.serial.clone().into();
        }
        let event = Event::new(None, Action::CertificateIssued, Some(&serial), details);
        let reserved = intent.serial.clone();
        if remote {
            super::faults::at(super::faults::Point::BeforeRecord).await;
        }
        let written = self
            .store()
            .write(job!(|c, log| {
                // Compare-and-set: if someone else completed this intent first, theirs is the
                // one certificate and this signature is discarded.
                if rows::transition(
                    c,
                    &row.request_id,
                    RequestState::Approved,
                    RequestState::Issued,
                    now.unix_timestamp(),
                )
                .await?
                {
                    record(c, &row, &reserved).await?;
                    audit::record(log, now, event);
                    // The key was blocked (keyCompromise) after approval: the certificate
                    // exists, so it is recorded, and revoked in the same breath.
                    if certificates::is_key_blocked(c, &row.key_sha256).await?.is_some() {
                        let ts = now.unix_timestamp();
                        certificates::revoke(c, &row.serial, "keyCompromise", ts, None).await?;
                        let details = serde_json::json!({"reason": "keyCompromise", "blocked_key": row.key_sha256});
                        audit::record(log, now, Event::new(None, Action::CertificateRevoked, Some(&row.serial), details));
                        return Ok((true, true));
                    }
                    return Ok((true, false));
                } else if rows::status(c, &row.request_id).await? == Some(RequestState::Cancelled) {
                    // An admin cancelled the request while the CA was signing. The certificate
                    // exists all the same: it is recorded, so nobody has one we do not know
                    // of, and revoked at once.
                    let ts = now.unix_timestamp();
                    record(c, &row, &reserved).await?;
                    audit::record(log, now, event);
                    certificates::revoke(c, &row.serial, "cessationOfOperation", ts, None).await?;
                    let details = serde_json::json!({"reason": "cessationOfOperation", "cancelled_request": row.request_id});
                    audit::record(log, now, Event::new(None, Action::CertificateRevoked, Some(&row.serial), details));
                    return Ok((false, true));
                }
                Ok((false, false))
            }))
            .await;
        // On a database error the claim stays: the journal holds the certificate, and
        // reconciliation records it from there whatever the claim; asking the CA again before
        // the claim runs out could make a second one.
        let (issued, revoked) = written?;
        if let (false, false, Some(der)) = (issued, revoked, returned) {
            // Another attempt recorded the request first, or it ended meanwhile. If the CA made
            // a second certificate for it, that one is quarantined rather than forgotten.
            let now_req = {
                let mut c = self.store().read().await?;
                rows::get(&mut c, &intent.request_id).await?
            };
            let audited = match now_req {
                Some(now_req) => self.quarantine_second(intent, &now_req, &der).await,
                None => false,
            };
            if !audited {
                // Kept in the journal: the next round tries the quarantine again.
                return Ok(None);
            }
        }
        self.journal().remove(&intent.request_id);
        if revoked {
            self.status_changed();
            self.forward_revocations(None, std::slice::from_ref(&serial))
                .await;
        }
        Ok(issued.then_some(serial))
    }

    /// The order for `intent` as `ca` is to sign it: the approved template, the intent's serial
    /// and validity, Vouch's publication URLs for the embedded CA, the CSR for a remote one.
    pub(super) async fn order_for(
        &self,
        intent: &IntentRow,
        req: &RequestRow,
        ca: &dyn crate::ca::UpstreamCa,
    ) -> Result<IssueOrder> {
        let template: Template =
            serde_json::from_str(&req.template_json).map_err(Error::internal)?;
        let ts = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal);
        let csr_der = if ca.picks_serial() {
            let mut c = self.store().read().await?;
            rows::csr_der(&mut c, &intent.request_id)
                .await?
                .ok_or(Error::NotFound("request"))?
        } else {
            Vec::new()
        };
        let (crl_urls, ca_issuers_urls, ocsp_urls) = self.order_urls(ca);
        Ok(IssueOrder {
            serial: Serial::parse(&intent.serial)
                .ok_or_else(|| Error::internal("stored serial is malformed"))?,
            spki_der: req.spki_der.clone(),
            csr_der,
            subject: template.subject,
            not_before: ts(intent.not_before)?,
            not_after: ts(intent.not_after)?,
            key_usage: template.key_usage,
            extended_key_usage: template.extended_key_usage,
            crl_urls,
            ca_issuers_urls,
            ocsp_urls,
        })
    }

    /// The CA refused the order, or returned a certificate that does not match it (`returned`,
    /// quarantined: kept in the audit entry, never delivered, with the outcome of its revocation
    /// at the CA): no retry can succeed, so the request ends `failed` with the reason, audited.
    /// The quarantine is audited even when the request was decided otherwise meanwhile.
    /// Returns the error for the caller.
    async fn fail(
        &self,
        intent: &IntentRow,
        message: String,
        returned: Option<(&[u8], serde_json::Value)>,
    ) -> Error {
        tracing::warn!(request = %intent.request_id, error = %message, "the CA refused the order; the request failed");
        let now = self.now();
        let (id, serial, reason) = (
            intent.request_id.clone(),
            intent.serial.clone(),
            message.clone(),
        );
        let was_returned = returned.is_some();
        let quarantined = returned.map(|(der, revocation)| {
            use base64::Engine;
            serde_json::json!({"ca": intent.ca_id, "reserved_serial": intent.serial, "error": message,
                "certificate_sha256": crate::x509::sha256_hex(der),
                "certificate": base64::engine::general_purpose::STANDARD.encode(der),
                "upstream_revocation": revocation})
        });
        let result = self
            .store()
            .write(job!(|c, log| {
                if let Some(details) = quarantined {
                    let event =
                        Event::new(None, Action::CertificateQuarantined, Some(&id), details);
                    audit::record(log, now, event);
                }
                if rows::fail(c, &id, &reason, now.unix_timestamp()).await? {
                    let details = serde_json::json!({"serial": serial, "error": reason});
                    audit::record(
                        log,
                        now,
                        Event::new(None, Action::RequestFailed, Some(&id), details),
                    );
                }
                Ok(())
            }))
            .await;
        if result.is_ok() {
            self.journal().remove(&intent.request_id);
        }
        match result {
            Ok(()) if was_returned => Error::refused(
                "ca_certificate_mismatch",
                format!(
                    "{message}; the certificate was not accepted and the request is now failed"
                ),
            ),
            Ok(()) => Error::refused(
                "ca_refused",
                format!("the CA refused to sign this request, which is now failed: {message}"),
            ),
            Err(e) => e,
        }
    }

    /// The CA could not sign now: the intent stays for reconciliation, which tries again after a
    /// back-off that grows with each failed attempt. Returns `error` for the caller.
    async fn retry_later(&self, intent: &IntentRow, error: Error, audit_failure: bool) -> Error {
        self.retry_later_at(intent, error, audit_failure, 0).await
    }

    /// [`Ra::retry_later`], not before `not_before` (Unix seconds).
    async fn retry_later_at(
        &self,
        intent: &IntentRow,
        error: Error,
        audit_failure: bool,
        not_before: i64,
    ) -> Error {
        let now = self.now();
        let attempts = intent.attempts + 1;
        let next = (now + self.config().retry.delay(attempts)).max(
            OffsetDateTime::from_unix_timestamp(not_before).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        tracing::warn!(request = %intent.request_id, error = %error, attempts,
            next_attempt = %super::rfc3339(next.unix_timestamp()), "issuance failed; the intent stays for reconciliation");
        let message = error.to_string();
        let (id, serial) = (intent.request_id.clone(), intent.serial.clone());
        let result = self
            .store()
            .write(job!(|c, log| {
                rows::attempt_failed(c, &id, &message, next.unix_timestamp()).await?;
                // A failure is audited when an approval meets it; reconciliation retries only
                // log, so a long CA outage does not fill the audit log with the same failure.
                if audit_failure {
                    let details = serde_json::json!({"serial": serial, "error": message, "attempts": attempts});
                    audit::record(log, now, Event::new(None, Action::IssuanceFailed, Some(&id), details));
                }
                Ok(())
            }))
            .await;
        if let Err(e) = result {
            tracing::error!(request = %intent.request_id, error = %e, "could not record a failed issuance attempt");
        }
        error
    }

    /// Complete issuance intents older than `min_age` whose request is still `approved` and whose
    /// next attempt is due. Returns how many were completed.
    pub async fn reconcile(&self, min_age: time::Duration) -> Result<usize> {
        let mut done = self.reconcile_journal().await?;
        let now = self.now();
        let cutoff = (now - min_age).unix_timestamp();
        let intents = {
            let mut c = self.store().read().await?;
            rows::unfinished_intents(&mut c, cutoff, now.unix_timestamp(), 100).await?
        };
        // A CA that could not sign one intent is not asked again in this round: a CA that is
        // down or slow would otherwise hold the round (and the upkeep after it) for a timeout per
        // intent. Its other intents wait for the next round.
        let mut unavailable = std::collections::HashSet::new();
        for intent in intents {
            if unavailable.contains(&intent.ca_id) {
                continue;
            }
            match self.complete_issuance(&intent, None).await {
                Ok(Some(_)) => done += 1,
                Ok(None) => {}
                Err(e) => {
                    if matches!(e, Error::Upstream(_)) {
                        unavailable.insert(intent.ca_id.clone());
                    }
                    tracing::warn!(request = %intent.request_id, error = %e, "reconciliation could not complete issuance")
                }
            }
        }
        Ok(done)
    }

    /// Count of certificates stored for a request (at most one, by constraint).
    pub async fn certificate_count_for_request(&self, request_id: &str) -> Result<i64> {
        let mut c = self.store().read().await?;
        certificates::count_for_request(&mut c, request_id).await
    }
}

#[cfg(test)]
mod in_flight_tests {
    #[test]
    fn a_request_is_attempted_once_at_a_time() {
        let set = super::InFlight::default();
        let first = set.claim("req_1").unwrap();
        assert!(set.claim("req_1").is_none(), "a second attempt waits");
        assert!(set.claim("req_2").is_some(), "other requests go on");
        drop(first);
        assert!(
            set.claim("req_1").is_some(),
            "free again once the first ends"
        );
    }
}
