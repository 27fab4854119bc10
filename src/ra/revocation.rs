//! Revocation: revoke (with an RFC 5280 reason, optional invalidity date), hold and release, and
//! keyCompromise propagation (the key is blocked and every other live certificate with it
//! revoked). A holder certificate's attribute certificates follow it (revoked, held, released)
//! in the same transaction. Four-eyes revocation is in [`super::revocation_requests`], self-revocation in
//! [`super::self_revocation`], CRL publication in [`super::publish`].

use super::attributes::{follow_holder, HolderChange};
use super::{Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::state::CertificateStatus;
use crate::store::certificates as rows;
use crate::store::job;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use serde::Serialize;
use time::OffsetDateTime;

pub use super::revocation_requests::RevocationRequestView;

/// Most characters in a revocation comment.
pub const MAX_COMMENT_CHARS: usize = 1000;

#[derive(Debug, Clone, Serialize)]
/// What a revocation, hold or release did.
pub struct RevocationOutcome {
    /// Serial number, hex.
    pub serial: String,
    /// revoked | on-hold | valid
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The RFC 5280 reason, when revoked or on hold.
    pub reason: Option<String>,
    /// Other live certificates with the same key, revoked with it (keyCompromise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_revoked: Vec<String>,
    /// The revocation request awaiting a second revoker (status `pending-approval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Revocations recorded here that the remote CA which issued the certificate could not be
    /// told of yet (each audited as `certificate.revocation_forward_failed`; the forward stays
    /// queued and is retried).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_errors: Vec<String>,
}

pub(super) fn serial_of(text: &str) -> Result<String> {
    Serial::from_client(text)
}

pub(super) fn check_comment(comment: Option<&str>) -> Result<Option<String>> {
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => super::free_text("comment", c, MAX_COMMENT_CHARS, true).map(Some),
        None => Ok(None),
    }
}

pub(super) fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Error::invalid(
            "invalid_field",
            format!("{name} must be an RFC 3339 time, e.g. 2026-11-26T09:30:00Z"),
        )
    })
}

pub(super) fn already_revoked() -> Error {
    Error::conflict("already_revoked", "the certificate is already revoked")
}

/// Revoke inside a write job (see [`Ra::revoke`]); returns the other certificates revoked with it,
/// or None if nothing changed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn revoke_in(
    c: &mut crate::store::Conn,
    log: &mut crate::store::AuditLog,
    now: OffsetDateTime,
    by: &str,
    target: &str,
    key: &str,
    reason: Reason,
    invalidity: Option<i64>,
    comment: Option<String>,
) -> Result<Option<Vec<String>>> {
    let ts = now.unix_timestamp();
    let action = if rows::revoke(c, target, reason.as_str(), ts, invalidity).await? {
        Action::CertificateRevoked
    } else if reason == Reason::KeyCompromise
        && rows::escalate_to_key_compromise(c, target, invalidity, ts).await?
    {
        // RFC 5280 5.3.1: a revoked certificate's reason may change to keyCompromise.
        Action::CertificateRevocationUpdated
    } else {
        return Ok(None);
    };
    let details = serde_json::json!({"reason": reason.as_str(), "invalidity_date": invalidity, "comment": comment});
    audit::record(
        log,
        now,
        Event::new(Some(by), action, Some(target), details),
    );
    // Its attribute certificates become unusable with it (or take keyCompromise with it), in
    // this transaction.
    let change = HolderChange::Revoked(reason, invalidity);
    let followed = match action {
        Action::CertificateRevocationUpdated => HolderChange::KeyCompromised(invalidity),
        _ => change,
    };
    follow_holder(c, log, now, Some(by), target, followed).await?;
    let mut others = Vec::new();
    if reason == Reason::KeyCompromise {
        others = compromise_key(c, log, now, Some(by), target, key, invalidity).await?;
    }
    Ok(Some(others))
}

/// The key `key` of the certificate `target` is compromised: block it, and revoke every other
/// live certificate with it (keyCompromise, `invalidity`), inside the caller's write job;
/// audited with actor `by` (None: the server's own finding). Returns the others revoked.
pub(super) async fn compromise_key(
    c: &mut crate::store::Conn,
    log: &mut crate::store::AuditLog,
    now: OffsetDateTime,
    by: Option<&str>,
    target: &str,
    key: &str,
    invalidity: Option<i64>,
) -> Result<Vec<String>> {
    let ts = now.unix_timestamp();
    let reason = Reason::KeyCompromise;
    if rows::block_key(c, key, "keyCompromise", by, ts).await? {
        let details = serde_json::json!({"reason": "keyCompromise", "certificate": target});
        audit::record(
            log,
            now,
            Event::new(by, Action::KeyBlocked, Some(key), details),
        );
    }
    let mut others = Vec::new();
    for other in rows::live_with_key(c, key).await? {
        if rows::revoke(c, &other, reason.as_str(), ts, invalidity).await? {
            let details = serde_json::json!({"reason": "keyCompromise", "propagated_from": target});
            audit::record(
                log,
                now,
                Event::new(by, Action::CertificateRevoked, Some(&other), details),
            );
            let change = HolderChange::Revoked(reason, invalidity);
            follow_holder(c, log, now, by, &other, change).await?;
            others.push(other);
        }
    }
    Ok(others)
}

impl Ra {
    /// Revoke a certificate (expired ones too). keyCompromise also blocks the key and revokes
    /// every other live certificate with it, with the same reason.
    pub async fn revoke(
        &self,
        op: &Operator,
        serial: &str,
        reason: &str,
        invalidity_date: Option<&str>,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.authorize(op, Role::Revoker, "certificate.revoke", Some(serial))
            .await?;
        let serial = serial_of(serial)?;
        let reason = Reason::parse(reason)?;
        if reason == Reason::CertificateHold {
            return Err(Error::invalid(
                "invalid_reason",
                "use POST /certificates/{serial}/hold for certificateHold",
            ));
        }
        let now = self.now();
        let invalidity = match invalidity_date {
            Some(t) => {
                let t = parse_time("invalidity_date", t)?;
                if t > now {
                    return Err(Error::invalid(
                        "invalid_field",
                        "invalidity_date is in the future",
                    ));
                }
                Some(t.unix_timestamp())
            }
            None => None,
        };
        let comment = check_comment(comment)?;
        let cert = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
        };
        if cert.status == CertificateStatus::Revoked && reason != Reason::KeyCompromise {
            return Err(already_revoked());
        }
        let needs_approval = self
            .profiles()
            .get(&cert.profile)
            .is_some_and(|p| p.revocation_approval);
        if needs_approval {
            return self
                .request_revocation(op, &serial, reason, invalidity, comment, now)
                .await;
        }
        let (by, target, key) = (op.id.clone(), serial.clone(), cert.key_sha256.clone());
        let revoked = self
            .store()
            .write(job!(|c, log| {
                revoke_in(c, log, now, &by, &target, &key, reason, invalidity, comment).await
            }))
            .await?;
        self.revoked_outcome(Some(&op.id), serial, reason, revoked)
            .await
    }

    /// What a committed revocation did, once the remote CAs that issued the revoked
    /// certificates are told (see [`Ra::forward_revocations`]).
    pub(super) async fn revoked_outcome(
        &self,
        by: Option<&str>,
        serial: String,
        reason: Reason,
        revoked: Option<Vec<String>>,
    ) -> Result<RevocationOutcome> {
        let Some(also_revoked) = revoked else {
            return Err(already_revoked());
        };
        self.status_changed();
        let mut all = vec![serial.clone()];
        all.extend(also_revoked.iter().cloned());
        let upstream_errors = self.forward_revocations(by, &all).await;
        Ok(RevocationOutcome {
            serial,
            status: CertificateStatus::Revoked.to_string(),
            reason: Some(reason.as_str().into()),
            also_revoked,
            id: None,
            upstream_errors,
        })
    }

    /// Suspend a certificate (certificateHold); `release` makes it good again.
    pub async fn hold(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.set_hold(op, serial, comment, true).await
    }

    /// Release a certificate from hold: it is valid again.
    pub async fn release(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.set_hold(op, serial, comment, false).await
    }

    async fn set_hold(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
        hold: bool,
    ) -> Result<RevocationOutcome> {
        let action = if hold {
            "certificate.hold"
        } else {
            "certificate.release"
        };
        self.authorize(op, Role::Revoker, action, Some(serial))
            .await?;
        let serial = serial_of(serial)?;
        let comment = check_comment(comment)?;
        let now = self.now();
        let cert = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
        };
        // A remote CA lifts its hold first: one that cannot keeps the certificate on hold here
        // too, so that Vouch never says valid where the CA says revoked.
        if !hold && cert.status == CertificateStatus::OnHold && !self.is_embedded(&cert.ca_id) {
            let ca = self
                .ca_by_id(&cert.ca_id)
                .ok_or_else(|| Error::CaUnavailable {
                    code: "upstream_ca_unavailable",
                    message: format!(
                        "the hold stays: the CA {} that issued this certificate is not configured \
                     (upstream.toml)",
                        cert.ca_id
                    ),
                })?;
            match ca.release(&serial).await {
                Ok(()) => {}
                Err(crate::ca::CaError::Refused(m)) => {
                    return Err(Error::refused(
                        "upstream_release_refused",
                        format!("the hold stays: {m}"),
                    ))
                }
                // Not the CA's answer: the same release may succeed once it is back.
                Err(crate::ca::CaError::Unavailable(m)) => {
                    return Err(Error::CaUnavailable {
                        code: "upstream_ca_unavailable",
                        message: format!("the hold stays: {m}; try again once the CA is back"),
                    })
                }
            }
        }
        let (by, target) = (op.id.clone(), serial.clone());
        let changed = self
            .store()
            .write(job!(|c, log| {
                let changed = if hold {
                    rows::hold(c, &target, now.unix_timestamp()).await?
                } else {
                    rows::release(c, &target, now.unix_timestamp()).await?
                };
                if changed {
                    let change = if hold {
                        HolderChange::Held
                    } else {
                        HolderChange::Released
                    };
                    follow_holder(c, log, now, Some(&by), &target, change).await?;
                    let event = if hold {
                        Action::CertificateHeld
                    } else {
                        Action::CertificateReleased
                    };
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            event,
                            Some(&target),
                            serde_json::json!({"comment": comment}),
                        ),
                    );
                }
                Ok(changed)
            }))
            .await?;
        if !changed {
            let want = if hold { "valid" } else { "on hold" };
            return Err(Error::conflict(
                "invalid_status",
                format!("the certificate is not {want}"),
            ));
        }
        self.status_changed();
        let upstream_errors = if hold {
            let serials = std::slice::from_ref(&serial);
            self.forward_revocations(Some(&op.id), serials).await
        } else {
            Vec::new()
        };
        Ok(RevocationOutcome {
            upstream_errors,
            serial,
            status: if hold {
                CertificateStatus::OnHold
            } else {
                CertificateStatus::Valid
            }
            .to_string(),
            reason: hold.then(|| "certificateHold".to_string()),
            also_revoked: Vec::new(),
            id: None,
        })
    }
}
