//! Four-eyes revocation: for a profile with `revocation_approval`, a revoker's revocation is
//! recorded as a request, and a second revoker approves it (the revocation is applied in the same
//! transaction) or rejects it.

use super::revocation::{check_comment, revoke_in, RevocationOutcome};
use super::{Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::state::RevocationRequestState;
use crate::store::certificates as rows;
use crate::store::{job, Committed};
use crate::x509::revocation::Reason;
use serde::Serialize;
use time::OffsetDateTime;

/// A revocation awaiting, or decided by, a second revoker.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationRequestView {
    /// Request identifier.
    pub id: String,
    /// The certificate to revoke, hex serial.
    pub serial: String,
    /// The RFC 5280 reason asked for.
    pub reason: String,
    /// pending | approved | rejected
    pub status: RevocationRequestState,
    /// The revoker who asked.
    pub requested_by: String,
    /// When it was asked, RFC 3339.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The revoker who decided.
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// When it was decided, RFC 3339.
    pub decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why it was rejected.
    pub reject_reason: Option<String>,
}

impl Ra {
    /// Record a revocation that a second revoker must approve.
    pub(super) async fn request_revocation(
        &self,
        op: &Operator,
        serial: &str,
        reason: Reason,
        invalidity: Option<i64>,
        comment: Option<String>,
        now: OffsetDateTime,
    ) -> Result<RevocationOutcome> {
        let row = rows::RevocationRequestRow {
            id: super::new_id("rev"),
            serial: serial.to_string(),
            reason: reason.as_str().to_string(),
            invalidity_date: invalidity,
            comment,
            status: RevocationRequestState::Pending,
            requested_by: op.id.clone(),
            created_at: now.unix_timestamp(),
            decided_by: None,
            decided_at: None,
            reject_reason: None,
        };
        let id = row.id.clone();
        self.store()
            .write(job!(|c, log| {
                match rows::insert_revocation_request(c, &row).await {
                    Err(Error::Database(e)) if e.is_unique_violation() => {
                        return Err(Error::conflict("revocation_pending", "a revocation of this certificate awaits approval"))
                    }
                    other => other?,
                }
                let details = serde_json::json!({"serial": row.serial, "reason": row.reason, "invalidity_date": row.invalidity_date, "comment": row.comment});
                audit::record(log, now, Event::new(Some(&row.requested_by), Action::RevocationRequested, Some(&row.id), details));
                Ok(())
            }))
            .await?;
        Ok(RevocationOutcome {
            serial: serial.to_string(),
            status: "pending-approval".into(),
            reason: Some(reason.as_str().into()),
            also_revoked: Vec::new(),
            id: Some(id),
            upstream_errors: Vec::new(),
        })
    }

    /// One revocation request; revokers, admins and auditors.
    pub async fn revocation_request(
        &self,
        op: &Operator,
        id: &str,
    ) -> Result<RevocationRequestView> {
        self.authorize_any(
            op,
            &[Role::Revoker, Role::Admin, Role::Auditor],
            "revocation.read",
            Some(id),
        )
        .await?;
        let mut c = self.store().read().await?;
        let r = rows::revocation_request(&mut c, id)
            .await?
            .ok_or(Error::NotFound("revocation request"))?;
        Ok(request_view(r))
    }

    /// Revocation requests waiting for a second revoker, oldest first (of one certificate, or of
    /// all, at most 200); revokers, admins and auditors.
    pub async fn pending_revocations(
        &self,
        op: &Operator,
        serial: Option<&str>,
    ) -> Result<Vec<RevocationRequestView>> {
        self.authorize_any(
            op,
            &[Role::Revoker, Role::Admin, Role::Auditor],
            "revocation.read",
            serial,
        )
        .await?;
        let mut c = self.store().read().await?;
        let rows = rows::pending_revocation_requests(&mut c, serial, 200).await?;
        Ok(rows.into_iter().map(request_view).collect())
    }
}

fn request_view(r: rows::RevocationRequestRow) -> RevocationRequestView {
    {
        RevocationRequestView {
            id: r.id,
            serial: r.serial,
            reason: r.reason,
            status: r.status,
            requested_by: r.requested_by,
            created_at: super::rfc3339(r.created_at),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(super::rfc3339),
            reject_reason: r.reject_reason,
        }
    }
}

impl Ra {
    /// A second revoker approves: the revocation is applied in the same transaction.
    pub async fn approve_revocation(&self, op: &Operator, id: &str) -> Result<RevocationOutcome> {
        self.authorize(op, Role::Revoker, "revocation.approve", Some(id))
            .await?;
        let req = {
            let mut c = self.store().read().await?;
            rows::revocation_request(&mut c, id)
                .await?
                .ok_or(Error::NotFound("revocation request"))?
        };
        if req.status != RevocationRequestState::Pending {
            return Err(Error::conflict(
                "not_pending",
                format!("the revocation request is {}", req.status),
            ));
        }
        if req.requested_by == op.id {
            let e = Error::forbidden(
                "self_approval",
                "the operator who asked for a revocation cannot approve it",
            );
            self.audit_refusal(
                Some(&op.id),
                Action::RevocationApprovalRefused,
                Some(id),
                serde_json::json!({"error": e.code()}),
            )
            .await;
            return Err(e);
        }
        let key = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &req.serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
                .key_sha256
        };
        let reason = Reason::parse(&req.reason)?;
        let now = self.now();
        let (by, rid, serial) = (op.id.clone(), id.to_string(), req.serial.clone());
        let outcome = self
            .store()
            .write(job!(|c, log| {
                if !rows::decide_revocation_request(
                    c,
                    &rid,
                    RevocationRequestState::Approved,
                    &by,
                    now.unix_timestamp(),
                    None,
                )
                .await?
                {
                    return Ok(Committed::Refused(Error::conflict(
                        "not_pending",
                        "the revocation request was decided meanwhile",
                    )));
                }
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&by),
                        Action::RevocationApproved,
                        Some(&rid),
                        serde_json::json!({"serial": serial}),
                    ),
                );
                let revoked = revoke_in(
                    c,
                    log,
                    now,
                    &by,
                    &serial,
                    &key,
                    reason,
                    req.invalidity_date,
                    req.comment,
                )
                .await?;
                Ok(Committed::Done(revoked))
            }))
            .await?
            .into_result()?;
        self.revoked_outcome(Some(&op.id), req.serial, reason, outcome)
            .await
    }

    /// A second revoker rejects a revocation request, with a reason.
    pub async fn reject_revocation(
        &self,
        op: &Operator,
        id: &str,
        why: &str,
    ) -> Result<RevocationRequestView> {
        self.authorize(op, Role::Revoker, "revocation.reject", Some(id))
            .await?;
        let why = check_comment(Some(why))?
            .ok_or_else(|| Error::invalid("invalid_field", "reason is required"))?;
        let now = self.now();
        let (by, rid) = (op.id.clone(), id.to_string());
        let moved = self
            .store()
            .write(job!(|c, log| {
                if !rows::decide_revocation_request(
                    c,
                    &rid,
                    RevocationRequestState::Rejected,
                    &by,
                    now.unix_timestamp(),
                    Some(&why),
                )
                .await?
                {
                    return Ok(false);
                }
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&by),
                        Action::RevocationRejected,
                        Some(&rid),
                        serde_json::json!({"reason": why}),
                    ),
                );
                Ok(true)
            }))
            .await?;
        if !moved {
            let mut c = self.store().read().await?;
            return match rows::revocation_request(&mut c, id).await? {
                None => Err(Error::NotFound("revocation request")),
                Some(r) => Err(Error::conflict(
                    "not_pending",
                    format!("the revocation request is {}", r.status),
                )),
            };
        }
        self.revocation_request(op, id).await
    }
}
