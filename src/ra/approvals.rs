//! Decisions on certificate requests: approval by M operators other than the requester (the
//! last one records the issuance intent), rejection, cancellation of an approved request that is
//! not issued, and the expiry of requests left pending too long. The state machine is drawn in
//! [`super::requests`].

use super::requests::{blocked_key, no_valid_evidence, RequestView, Template, MAX_REASON_CHARS};
use super::{Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::state::RequestState;
use crate::store::job;
use crate::store::requests::{self as rows, ApprovalRow, IntentRow, RequestRow};
use crate::x509::key::CheckedKey;
use crate::x509::serial::Serial;
use time::{Duration, OffsetDateTime};

/// A decision's reason (rejection, cancellation).
fn check_reason(reason: &str) -> Result<String> {
    super::free_text("reason", reason, MAX_REASON_CHARS, true)
}

/// What an approval did.
enum Approval {
    /// The request was not pending for this approver any more (or never was); see why separately.
    NotApplied,
    /// Counted; more approvals are needed.
    Counted,
    /// The last required approval: the request is approved and this intent recorded.
    Intent(IntentRow),
}

impl Ra {
    /// Withdraw an approved request that is not issued (the CA is down for good, the applicant
    /// withdrew, the approval was a mistake). Admins only; audited with the reason.
    pub async fn cancel(&self, op: &Operator, id: &str, reason: &str) -> Result<RequestView> {
        self.authorize(op, Role::Admin, "request.cancel", Some(id))
            .await?;
        let reason = check_reason(reason)?;
        let now = self.now();
        let (rid, by) = (id.to_string(), op.id.clone());
        let cancelled = self
            .store()
            .write(job!(|c, log| {
                if !rows::cancel(c, &rid, &by, &reason).await? {
                    return Ok(false);
                }
                let details = serde_json::json!({"reason": reason});
                audit::record(
                    log,
                    now,
                    Event::new(Some(&by), Action::RequestCancelled, Some(&rid), details),
                );
                Ok(true)
            }))
            .await?;
        if !cancelled {
            let req = self.load_request(id).await?;
            let what = match req.status {
                RequestState::Issued => "issued; revoke its certificate instead".to_string(),
                RequestState::Pending => "pending; reject it instead".to_string(),
                other => other.to_string(),
            };
            return Err(Error::conflict(
                "not_approved",
                format!("only an approved request that is not issued can be cancelled; this one is {what}"),
            ));
        }
        self.request(op, id).await
    }

    /// Persist the expiry of one overdue request (if it still is pending) and say so.
    async fn expire(&self, op: &Operator, id: &str, now: OffsetDateTime) -> Error {
        let (by, id) = (op.id.clone(), id.to_string());
        let result = self
            .store()
            .write(job!(|c, log| {
                if rows::expire(c, &id, now.unix_timestamp()).await? {
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            Action::RequestExpired,
                            Some(&id),
                            serde_json::json!({}),
                        ),
                    );
                }
                Ok(())
            }))
            .await;
        match result {
            Ok(()) => Error::conflict(
                "request_expired",
                "the request expired before it was decided",
            ),
            Err(e) => e,
        }
    }

    /// Why a decision on `req` cannot be taken now, if it cannot.
    async fn undecidable(
        &self,
        op: &Operator,
        req: &RequestRow,
        now: OffsetDateTime,
    ) -> Option<Error> {
        if req.status == RequestState::Pending && req.expires_at <= now.unix_timestamp() {
            return Some(self.expire(op, &req.id, now).await);
        }
        if req.status != RequestState::Pending {
            return Some(Error::conflict(
                "not_pending",
                format!("the request is {}, not pending", req.status),
            ));
        }
        None
    }

    async fn load_request(&self, id: &str) -> Result<RequestRow> {
        let mut c = self.store().read().await?;
        rows::get(&mut c, id)
            .await?
            .ok_or(Error::NotFound("request"))
    }

    /// Approve a pending request as `op` (an approver other than the requester); the last required
    /// approval records the issuance intent and has the CA sign.
    pub async fn approve(&self, op: &Operator, id: &str) -> Result<RequestView> {
        self.authorize(op, Role::Approver, "request.approve", Some(id))
            .await?;
        let now = self.now();
        let ts = now.unix_timestamp();
        let today = crate::ra::subscribers::format_date(now.date());
        let decision = {
            let mut c = self.store().read().await?;
            rows::get_for_decision(&mut c, id, &today)
                .await?
                .ok_or(Error::NotFound("request"))?
        };
        let req = decision.request;
        if let Some(e) = self.undecidable(op, &req, now).await {
            return Err(e);
        }
        // Policy is re-checked at decision time: evidence may have lapsed, the key may be blocked.
        let refusal = if req.requested_by == op.id {
            Some(Error::forbidden(
                "self_approval",
                "the operator who submitted a request cannot approve it",
            ))
        } else if decision.has_valid_evidence == 0 {
            Some(no_valid_evidence())
        } else if let Some(reason) = decision.blocked_reason {
            Some(blocked_key(reason))
        } else {
            // A weak-key list imported after submission. The key rules are checked again too:
            // they may have grown since (new weak-key checks).
            let listed = match CheckedKey::from_spki(&req.spki_der) {
                Ok(key) => {
                    let mut c = self.store().read().await?;
                    super::blocklist::refuse_if_listed(&mut c, &key).await
                }
                Err(e) => Err(e),
            };
            listed.err()
        };
        if let Some(e) = refusal {
            let details = serde_json::json!({"error": e.code(), "message": e.to_string()});
            self.audit_refusal(
                Some(&op.id),
                Action::RequestApprovalRefused,
                Some(id),
                details,
            )
            .await;
            return Err(e);
        }
        let template: Template =
            serde_json::from_str(&req.template_json).map_err(Error::internal)?;
        // The profile picks the CA (upstream.toml), recorded with the intent.
        let ca = self.ca_for_profile(&req.profile);
        let not_after =
            (now + Duration::days(i64::from(template.validity_days))).min(ca.max_not_after());
        let intent = IntentRow {
            serial: Serial::random().to_string(),
            request_id: id.to_string(),
            key_sha256: req.key_sha256.clone(),
            ca_id: ca.issuing_id().to_string(),
            not_before: ts,
            not_after: not_after.unix_timestamp(),
            created_at: ts,
            attempts: 0,
        };
        // The attempt below owns the intent until its CA has had time to answer.
        let claimed_until = self.claim_end(ca.as_ref(), now);
        let (rid, approver, required, day) = (
            id.to_string(),
            op.id.clone(),
            req.required_approvals,
            today.clone(),
        );
        let outcome = self
            .store()
            .write(job!(|c, log| {
                // The compare-and-set: counts only while the request is pending, unexpired and
                // not the approver's own, and only once per approver.
                if !rows::add_approval_if_open(c, &rid, &approver, ts, &day).await? {
                    return Ok(Approval::NotApplied);
                }
                let count = if required == 1 { 1 } else { rows::count_approvals(c, &rid).await? };
                let details = serde_json::json!({"approvals": count, "required": required});
                audit::record(log, now, Event::new(Some(&approver), Action::RequestApproved, Some(&rid), details));
                if count < required {
                    return Ok(Approval::Counted);
                }
                if !rows::transition(c, &rid, RequestState::Pending, RequestState::Approved, ts).await? {
                    // Cannot happen: the approval above saw it pending in this transaction.
                    return Err(Error::internal("request left pending inside its own transaction"));
                }
                rows::insert_intent(c, &intent, claimed_until).await?;
                let details = serde_json::json!({"serial": intent.serial, "key_sha256": intent.key_sha256, "ca": intent.ca_id});
                audit::record(log, now, Event::new(Some(&approver), Action::IssuanceIntent, Some(&rid), details));
                Ok(Approval::Intent(intent))
            }))
            .await?;
        match outcome {
            Approval::NotApplied => Err(self.why_not_applied(op, id, now).await),
            Approval::Counted => self.request(op, id).await,
            Approval::Intent(intent) => {
                let issued = self.complete_issuance(&intent, Some(req.clone())).await?;
                let Some(serial) = issued.filter(|_| req.required_approvals == 1) else {
                    return self.request(op, id).await;
                };
                // With one required approval, this approval is the only one: the view is known
                // without reading it back.
                let issued = RequestRow {
                    status: RequestState::Issued,
                    serial: Some(serial),
                    decided_at: Some(ts),
                    ..req
                };
                let approvals = vec![ApprovalRow {
                    approver_id: op.id.clone(),
                    approved_at: ts,
                }];
                self.view_with(issued, approvals)
            }
        }
    }

    /// An approval changed nothing: say why, from the request as it is now.
    async fn why_not_applied(&self, op: &Operator, id: &str, now: OffsetDateTime) -> Error {
        let today = crate::ra::subscribers::format_date(now.date());
        let decision = match self.store().read().await {
            Ok(mut c) => match rows::get_for_decision(&mut c, id, &today).await {
                Ok(Some(d)) => d,
                Ok(None) => return Error::NotFound("request"),
                Err(e) => return e,
            },
            Err(e) => return e,
        };
        if let Some(e) = self.undecidable(op, &decision.request, now).await {
            return e;
        }
        // The policy changed between the pre-check and the compare-and-set.
        let refusal = if decision.has_valid_evidence == 0 {
            Some(no_valid_evidence())
        } else {
            decision.blocked_reason.map(blocked_key)
        };
        if let Some(e) = refusal {
            let details = serde_json::json!({"error": e.code(), "message": e.to_string()});
            self.audit_refusal(
                Some(&op.id),
                Action::RequestApprovalRefused,
                Some(id),
                details,
            )
            .await;
            return e;
        }
        Error::conflict(
            "already_approved",
            "this operator has already approved the request",
        )
    }

    /// Reject a pending request, with a reason.
    pub async fn reject(&self, op: &Operator, id: &str, reason: &str) -> Result<RequestView> {
        self.authorize(op, Role::Approver, "request.reject", Some(id))
            .await?;
        let reason = check_reason(reason)?;
        let now = self.now();
        let req = self.load_request(id).await?;
        if let Some(e) = self.undecidable(op, &req, now).await {
            return Err(e);
        }
        let (rid, by) = (id.to_string(), op.id.clone());
        let rejected = self
            .store()
            .write(job!(|c, log| {
                if !rows::reject(c, &rid, &by, &reason, now.unix_timestamp()).await? {
                    return Ok(false);
                }
                let details = serde_json::json!({"reason": reason});
                audit::record(
                    log,
                    now,
                    Event::new(Some(&by), Action::RequestRejected, Some(&rid), details),
                );
                Ok(true)
            }))
            .await?;
        if !rejected {
            return Err(self.why_not_applied(op, id, now).await);
        }
        self.request(op, id).await
    }

    /// Move every overdue pending request to `expired`. Returns how many were expired.
    pub async fn expire_overdue(&self) -> Result<usize> {
        let now = self.now();
        self.store()
            .write(job!(|c, log| {
                let ids = rows::overdue(c, now.unix_timestamp(), 1000).await?;
                for id in &ids {
                    if rows::expire(c, id, now.unix_timestamp()).await? {
                        audit::record(
                            log,
                            now,
                            Event::new(
                                None,
                                Action::RequestExpired,
                                Some(id),
                                serde_json::json!({}),
                            ),
                        );
                    }
                }
                Ok(ids.len())
            }))
            .await
    }
}
