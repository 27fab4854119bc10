//! Decisions on grants that wait for approvals: approval by other `aa` operators (the last one
//! issues the AC, through [`super::grants`]), rejection, expiry, and reading grants.

use super::{Grant, GrantView};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::ra::{rfc3339, Operator, Ra, Role};
use crate::state::GrantState;
use crate::store::attributes::{self as rows, GrantRow};
use crate::store::job;
use time::OffsetDateTime;

impl Ra {
    /// Approve a pending grant (role `aa`, never the granter); the last approval issues the AC.
    pub async fn approve_grant(&self, op: &Operator, id: &str) -> Result<GrantView> {
        self.authorize(op, Role::Aa, "attribute.grant_approve", Some(id))
            .await?;
        let row = self.load_grant(id).await?;
        let now = self.now();
        self.refuse_unless_pending(op, &row, now).await?;
        if row.requested_by == op.id {
            self.audit_refusal(
                Some(&op.id),
                Action::AccessForbidden,
                Some(id),
                serde_json::json!({"attempted": "attribute.grant_approve", "reason": "own_grant"}),
            )
            .await;
            return Err(Error::forbidden(
                "self_approval",
                "the granter cannot approve their own grant; another aa operator must",
            ));
        }
        let grant: Grant = serde_json::from_str(&row.grant_json).map_err(Error::internal)?;
        let (grant, profile) = match self.grant_at_approval(&grant, now).await {
            Ok(checked) => checked,
            Err(e @ (Error::Database(_) | Error::Internal(_) | Error::Environment(_))) => {
                return Err(e)
            }
            // What no later approval can mend: the grant ends, with the reason.
            Err(e) => {
                self.fail_grant(&op.id, &row.id, &e, now).await?;
                return Err(e);
            }
        };
        let approval = Some((row.id.as_str(), row.required_approvals));
        self.issue_ac(&op.id, &grant, &profile, approval, now)
            .await?;
        let row = self.load_grant(id).await?;
        self.grant_view(&row).await
    }

    /// pending -> failed, with the error that ended it; audited.
    async fn fail_grant(&self, by: &str, id: &str, e: &Error, now: OffsetDateTime) -> Result<()> {
        let (gid, by, reason) = (id.to_string(), by.to_string(), e.to_string());
        let details = serde_json::json!({"error": e.code(), "message": reason});
        self.store()
            .write(job!(|c, log| {
                let at = now.unix_timestamp();
                let failed = GrantState::Failed;
                if rows::decide_grant(c, &gid, failed, Some(&by), at, Some(&reason), None).await? {
                    let event =
                        Event::new(Some(&by), Action::AttributeGrantFailed, Some(&gid), details);
                    audit::record(log, now, event);
                }
                Ok(())
            }))
            .await
    }

    /// Reject a pending grant (role `aa`; the granter may withdraw their own).
    pub async fn reject_grant(&self, op: &Operator, id: &str, reason: &str) -> Result<GrantView> {
        self.authorize(op, Role::Aa, "attribute.grant_reject", Some(id))
            .await?;
        let reason = crate::ra::free_text("reason", reason, 1000, true)?;
        let row = self.load_grant(id).await?;
        let now = self.now();
        self.refuse_unless_pending(op, &row, now).await?;
        let (gid, by) = (row.id.clone(), op.id.clone());
        let moved = self
            .store()
            .write(job!(|c, log| {
                let moved = rows::decide_grant(
                    c,
                    &gid,
                    GrantState::Rejected,
                    Some(&by),
                    now.unix_timestamp(),
                    Some(&reason),
                    None,
                )
                .await?;
                if moved {
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            Action::AttributeGrantRejected,
                            Some(&gid),
                            serde_json::json!({"reason": reason}),
                        ),
                    );
                }
                Ok(moved)
            }))
            .await?;
        if !moved {
            return Err(Error::conflict(
                "not_pending",
                "the grant is no longer pending",
            ));
        }
        let row = self.load_grant(id).await?;
        self.grant_view(&row).await
    }

    async fn load_grant(&self, id: &str) -> Result<GrantRow> {
        let mut c = self.store().read().await?;
        rows::grant(&mut c, id)
            .await?
            .ok_or(Error::NotFound("grant"))
    }

    /// Refuse a decision on a grant that is not pending; a pending one past its expiry is expired
    /// now (and audited).
    async fn refuse_unless_pending(
        &self,
        op: &Operator,
        row: &GrantRow,
        now: OffsetDateTime,
    ) -> Result<()> {
        if row.status != GrantState::Pending {
            return Err(Error::conflict(
                "not_pending",
                format!("the grant is {}", row.status),
            ));
        }
        if row.expires_at <= now.unix_timestamp() {
            self.expire_grant(Some(&op.id), &row.id, now).await?;
            return Err(Error::conflict(
                "grant_expired",
                format!("the grant expired at {}", rfc3339(row.expires_at)),
            ));
        }
        Ok(())
    }

    async fn expire_grant(&self, by: Option<&str>, id: &str, now: OffsetDateTime) -> Result<bool> {
        let (gid, by) = (id.to_string(), by.map(str::to_string));
        self.store()
            .write(job!(|c, log| {
                let moved = rows::decide_grant(
                    c,
                    &gid,
                    GrantState::Expired,
                    None,
                    now.unix_timestamp(),
                    Some("still pending at its expiry"),
                    None,
                )
                .await?;
                if moved {
                    audit::record(
                        log,
                        now,
                        Event::new(
                            by.as_deref(),
                            Action::AttributeGrantExpired,
                            Some(&gid),
                            serde_json::json!({}),
                        ),
                    );
                }
                Ok(moved)
            }))
            .await
    }

    /// Expire every grant still pending past its expiry (the background upkeep calls this).
    pub async fn expire_grants(&self) -> Result<usize> {
        let now = self.now();
        let overdue = {
            let mut c = self.store().read().await?;
            rows::overdue_grants(&mut c, now.unix_timestamp()).await?
        };
        let mut n = 0;
        for id in overdue {
            if self.expire_grant(None, &id, now).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// A grant (roles `aa`, `auditor`).
    pub async fn grant_status(&self, op: &Operator, id: &str) -> Result<GrantView> {
        self.authorize_any(op, &[Role::Aa, Role::Auditor], "attribute.read", Some(id))
            .await?;
        let row = self.load_grant(id).await?;
        self.grant_view(&row).await
    }

    /// A page of grants in grant order after grant `after` (None: from the first), pending
    /// ones by default (roles `aa`, `auditor`); the console's queue.
    pub async fn grants_page(
        &self,
        op: &Operator,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GrantView>> {
        self.authorize_any(op, &[Role::Aa, Role::Auditor], "attribute.read", None)
            .await?;
        let status = grant_status_filter(status)?;
        let rows = {
            let mut c = self.store().read().await?;
            let cursor = match after {
                Some(id) => {
                    let row = rows::grant(&mut c, id)
                        .await?
                        .ok_or(Error::NotFound("grant"))?;
                    (row.created_at, row.id)
                }
                None => (i64::MIN, String::new()),
            };
            rows::grants_after(&mut c, status, (cursor.0, &cursor.1), limit.clamp(1, 1000)).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.grant_view(row).await?);
        }
        Ok(out)
    }

    /// Grants, pending ones by default (roles `aa`, `auditor`).
    pub async fn grants(
        &self,
        op: &Operator,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GrantView>> {
        self.authorize_any(op, &[Role::Aa, Role::Auditor], "attribute.read", None)
            .await?;
        let status = grant_status_filter(status)?;
        let rows = {
            let mut c = self.store().read().await?;
            rows::grants(&mut c, status, limit.clamp(1, 1000)).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.grant_view(row).await?);
        }
        Ok(out)
    }
}

/// `pending` (also when None), `all`, or one grant state.
fn grant_status_filter(status: Option<&str>) -> Result<Option<GrantState>> {
    Ok(match status {
        None | Some("pending") => Some(GrantState::Pending),
        Some("all") => None,
        Some(s) => Some(GrantState::parse(s).ok_or_else(|| {
            Error::invalid(
                "invalid_field",
                format!("status: one of all, {}", GrantState::names()),
            )
        })?),
    })
}
