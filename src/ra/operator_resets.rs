//! Four eyes on taking over a console login. Resetting another operator's TOTP, or setting their
//! password, would let one admin log in as that operator (the two together: as anyone). So an
//! admin only asks for it: the request is pending until a second admin, who is neither the one
//! who asked nor the operator concerned, approves it (the change is applied in the same
//! transaction, the operator's console sessions end) or any other admin rejects it. The admin who
//! asked can cancel; a request nobody decides expires after [`RESET_EXPIRY`] (the upkeep).
//!
//! A new password is hashed (argon2id) when it is asked for; the hash waits in the request and is
//! cleared when it is decided. Setting one's own password stays direct. The way out when there is
//! only one admin is the host: `vouch operator reset-totp|set-password --data-dir`
//! ([`reset_totp_on_host`], [`super::console::sessions::set_password_hash`]).

use super::console::password;
use super::{new_id, rfc3339, Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::state::ResetState;
use crate::store::operator_resets as rows;
use crate::store::operators::{self as operator_rows, Standing};
use crate::store::{console as logins, job, AuditLog, Committed, Conn, Store};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// How long a reset waits for a second admin.
pub const RESET_EXPIRY: time::Duration = time::Duration::hours(24);
/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// What a reset changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// The operator's TOTP is forgotten; they enrol again at their next login.
    Totp,
    /// The operator's password is replaced by the one given with the request.
    Password,
}

impl ResetKind {
    fn as_str(self) -> &'static str {
        match self {
            ResetKind::Totp => "totp",
            ResetKind::Password => "password",
        }
    }
}

/// A reset as the API and the console show it (never the password or its hash).
#[derive(Debug, Clone, Serialize)]
pub struct ResetView {
    /// The reset's id.
    pub id: String,
    /// `totp` or `password`.
    pub kind: String,
    /// pending | approved | rejected | cancelled | expired
    pub status: ResetState,
    /// The operator concerned.
    pub operator_id: String,
    /// Their name.
    pub operator_name: String,
    /// Why it was asked for.
    pub reason: String,
    /// The admin who asked.
    pub requested_by: String,
    /// Their name.
    pub requested_by_name: String,
    /// When it was asked, RFC 3339.
    pub created_at: String,
    /// When it expires if nobody decides it, RFC 3339.
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Who approved, rejected or cancelled it.
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// When it was decided or expired, RFC 3339.
    pub decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why it was rejected.
    pub decision_reason: Option<String>,
}

fn view(r: rows::ResetRow) -> ResetView {
    ResetView {
        id: r.id,
        kind: r.kind,
        status: r.status,
        operator_id: r.operator_id,
        operator_name: r.operator_name,
        reason: r.reason,
        requested_by: r.requested_by,
        requested_by_name: r.requested_by_name,
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        decided_by: r.decided_by,
        decided_at: r.decided_at.map(rfc3339),
        decision_reason: r.decision_reason,
    }
}

/// What setting a password did.
#[derive(Debug, Clone)]
pub enum PasswordChange {
    /// The operator's own password: set at once.
    Set,
    /// Another operator's: waiting for a second admin.
    Pending(Box<ResetView>),
}

/// A reason given with a reset: required, at most [`MAX_REASON_CHARS`], no control characters.
pub(crate) fn check_reason(reason: Option<&str>) -> Result<String> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => super::free_text("reason", r, MAX_REASON_CHARS, true),
        None => Err(Error::invalid(
            "invalid_field",
            "reason: is required (a second admin decides on it)",
        )),
    }
}

/// Store `hash` as operator `id`'s password inside a write job, end their console sessions and
/// audit `operator.password_set` with `details` (by an admin, or on the host with `by` None).
pub(crate) async fn set_password_in(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    by: Option<&str>,
    id: &str,
    hash: &str,
    details: serde_json::Value,
) -> Result<()> {
    if !logins::set_password(c, id, hash).await? {
        return Err(Error::NotFound("operator"));
    }
    logins::end_sessions_of(c, id, now.unix_timestamp()).await?;
    let event = Event::new(by, Action::OperatorPasswordSet, Some(id), details);
    audit::record(log, now, event);
    Ok(())
}

/// Forget operator `id`'s TOTP inside a write job (they enrol again at their next login), end
/// their console sessions and audit `operator.totp_reset` with `details`.
async fn reset_totp_in(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    by: Option<&str>,
    id: &str,
    details: serde_json::Value,
) -> Result<()> {
    if !logins::reset_totp(c, id).await? {
        return Err(Error::NotFound("operator"));
    }
    logins::end_sessions_of(c, id, now.unix_timestamp()).await?;
    let event = Event::new(by, Action::OperatorTotpReset, Some(id), details);
    audit::record(log, now, event);
    Ok(())
}

/// Why pending resets are cancelled without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The operator was disabled: the resets they asked for, and the resets of their account.
    /// A request from an account that was taken away is not left for a second admin to approve
    /// without noticing, nor a reset of an account nobody can use.
    Disabled,
    /// The operator's TOTP or password was reset on the host: the resets of their account, so
    /// that an older request cannot later undo what the host did.
    Host,
}

/// Cancel the pending resets concerning `operator` inside the write job that disables them or
/// resets them on the host (`by` acts; None on the host). Audited `operator.reset_cancelled`
/// each, with the reason.
pub(crate) async fn cancel_concerning(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    by: Option<&str>,
    operator: &str,
    cause: Cancel,
) -> Result<()> {
    for r in rows::pending_concerning(c, operator).await? {
        let why = match cause {
            Cancel::Disabled if r.operator_id == operator => "the operator concerned was disabled",
            Cancel::Disabled => "the admin who asked was disabled",
            Cancel::Host if r.operator_id == operator => {
                "the operator's TOTP or password was reset on the host"
            }
            Cancel::Host => continue,
        };
        let at = now.unix_timestamp();
        if rows::decide(c, &r.id, ResetState::Cancelled, by, at, Some(why)).await? {
            let details = serde_json::json!({"operator": r.operator_id, "kind": r.kind,
                "reason": why});
            let event = Event::new(by, Action::OperatorResetCancelled, Some(&r.id), details);
            audit::record(log, now, event);
        }
    }
    Ok(())
}

/// Expire reset `r` inside a write job if it is pending past its expiry (audited, actor null);
/// true if it was.
async fn expire_in(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    r: &rows::ResetRow,
) -> Result<bool> {
    let at = now.unix_timestamp();
    if r.status != ResetState::Pending || r.expires_at > at {
        return Ok(false);
    }
    if !rows::decide(c, &r.id, ResetState::Expired, None, at, None).await? {
        return Ok(false);
    }
    let details = serde_json::json!({"operator": r.operator_id, "kind": r.kind,
        "expires_at": rfc3339(r.expires_at)});
    audit::record(
        log,
        now,
        Event::new(None, Action::OperatorResetExpired, Some(&r.id), details),
    );
    Ok(true)
}

/// Reset an operator's TOTP on the host (`vouch operator reset-totp --data-dir`): whoever can
/// write the data directory or the database needs no second admin. Audited with `via: host`;
/// the pending resets of the operator are cancelled in the same transaction.
pub async fn reset_totp_on_host(store: &Store, now: OffsetDateTime, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(job!(|c, log| {
            let details = serde_json::json!({"via": "host"});
            reset_totp_in(c, log, now, None, &id, details).await?;
            cancel_concerning(c, log, now, None, &id, Cancel::Host).await
        }))
        .await
}

/// Whether an operator is enabled and holds the admin role.
fn enabled_admin(s: &Option<Standing>) -> bool {
    s.as_ref().is_some_and(|s| {
        s.disabled_at.is_none() && super::operators::parse_roles(&s.roles).contains(&Role::Admin)
    })
}

fn operator_disabled() -> Error {
    Error::conflict(
        "operator_disabled",
        "the operator concerned is disabled: their TOTP and password are not reset",
    )
}

/// Who created operator `id` over the API, who created that admin, and so on up to one made on
/// the host (or the first admin). An admin who creates another is handed its token, and can
/// create more with that token: everyone down such a line is, as far as the RA can tell, the
/// same person as the one at the top.
async fn creators(c: &mut Conn, id: &str) -> Result<Vec<String>> {
    let mut line = Vec::new();
    let mut next = operator_rows::standing(c, id)
        .await?
        .and_then(|s| s.created_by);
    // A creator exists before what it creates, so the line ends; bounded all the same.
    while let Some(id) = next
        .take()
        .filter(|id| !line.contains(id) && line.len() < 10_000)
    {
        next = operator_rows::standing(c, &id)
            .await?
            .and_then(|s| s.created_by);
        line.push(id);
    }
    Ok(line)
}

/// Why admin `by` may not approve reset `r`, if they may not: the four-eyes rule. `approver`,
/// `requester` and `target` are the standings of `by`, of the admin who asked and of the
/// operator concerned, read in the approving transaction; `approver_line` and `requester_line`
/// their [`creators`].
#[allow(clippy::too_many_arguments)]
fn approval_refusal(
    r: &rows::ResetRow,
    by: &str,
    approver: &Option<Standing>,
    requester: &Option<Standing>,
    target: &Option<Standing>,
    approver_line: &[String],
    requester_line: &[String],
) -> Option<Error> {
    if r.requested_by == by {
        return Some(Error::forbidden(
            "own_reset",
            "you asked for this reset; another admin must approve it",
        ));
    }
    if r.operator_id == by {
        return Some(Error::forbidden(
            "own_account",
            "this reset is of your own account; another admin must approve it",
        ));
    }
    if target.as_ref().is_none_or(|t| t.disabled_at.is_some()) {
        return Some(operator_disabled());
    }
    if !enabled_admin(requester) {
        return Some(Error::conflict(
            "requester_disabled",
            "the admin who asked for this reset is disabled",
        ));
    }
    let Some(a) = approver.as_ref().filter(|_| enabled_admin(approver)) else {
        return Some(Error::Unauthenticated);
    };
    if approver_line.contains(&r.requested_by) {
        return Some(Error::forbidden(
            "approver_created_by_requester",
            "the admin who asked for this reset created your account (or the admin who did); an \
             admin outside their line must approve it",
        ));
    }
    if requester_line.iter().any(|id| id == by) {
        return Some(Error::forbidden(
            "requester_created_by_approver",
            "you created the account of the admin who asked for this reset (or the admin who \
             did); an admin outside your line must approve it",
        ));
    }
    if a.created_at > r.created_at {
        return Some(Error::forbidden(
            "approver_newer_than_reset",
            "your account was created after this reset was asked for; an admin who already \
             existed must approve it, or ask again",
        ));
    }
    None
}

impl Ra {
    /// Ask for another operator's TOTP to be reset (admins; one's own too, when the phone is
    /// lost): pending until a second admin approves.
    pub async fn request_totp_reset(
        &self,
        by: &Operator,
        id: &str,
        reason: Option<&str>,
    ) -> Result<ResetView> {
        self.authorize(by, Role::Admin, "operator.reset_totp", Some(id))
            .await?;
        let reason = check_reason(reason)?;
        self.record_reset(by, id, ResetKind::Totp, reason, None)
            .await
    }

    /// Set an operator's console password (admins). One's own is set at once; another
    /// operator's waits for a second admin, with the new password hashed now (`reason` is
    /// required for it).
    pub async fn set_operator_password(
        &self,
        by: &Operator,
        id: &str,
        new_password: Zeroizing<String>,
        reason: Option<&str>,
    ) -> Result<PasswordChange> {
        self.authorize(by, Role::Admin, "operator.set_password", Some(id))
            .await?;
        if by.id == id {
            let hash = password::hash(new_password).await?;
            let (now, by) = (self.now(), by.id.clone());
            let id = id.to_string();
            self.store()
                .write(job!(|c, log| {
                    let details = serde_json::json!({"via": "api", "own": true});
                    set_password_in(c, log, now, Some(&by), &id, &hash, details).await
                }))
                .await?;
            return Ok(PasswordChange::Set);
        }
        let reason = check_reason(reason)?;
        let hash = password::hash(new_password).await?;
        let pending = self
            .record_reset(by, id, ResetKind::Password, reason, Some(hash))
            .await?;
        Ok(PasswordChange::Pending(Box::new(pending)))
    }

    async fn record_reset(
        &self,
        by: &Operator,
        target: &str,
        kind: ResetKind,
        reason: String,
        hash: Option<String>,
    ) -> Result<ResetView> {
        let now = self.now();
        let (id, by, target) = (new_id("rst"), by.id.clone(), target.to_string());
        let rid = id.clone();
        self.store()
            .write(job!(|c, log| {
                // Again inside the write: the admin may have been disabled since `authorize`
                // (a password is hashed in between), and disabling cancels only what is stored.
                if !enabled_admin(&operator_rows::standing(c, &by).await?) {
                    return Err(Error::Unauthenticated);
                }
                match operator_rows::standing(c, &target).await? {
                    None => return Err(Error::NotFound("operator")),
                    Some(t) if t.disabled_at.is_some() => return Err(operator_disabled()),
                    Some(_) => {}
                }
                // One pending per operator and kind; one past its expiry that the upkeep has not
                // swept yet is expired now rather than blocking the new request.
                let mut expired = false;
                if let Some(p) = rows::pending_of(c, &target, kind.as_str()).await? {
                    expired = expire_in(c, log, now, &p).await?;
                    if !expired {
                        return Err(reset_pending(kind));
                    }
                }
                let row = rows::NewReset {
                    id: &rid,
                    operator_id: &target,
                    kind: kind.as_str(),
                    reason: &reason,
                    password_hash: hash.as_deref(),
                    requested_by: &by,
                    created_at: now.unix_timestamp(),
                    expires_at: (now + RESET_EXPIRY).unix_timestamp(),
                };
                match rows::insert(c, &row).await {
                    // A refusal must not keep what the job wrote: after an expiry, the database
                    // error rolls the job back.
                    Err(Error::Database(e)) if e.is_unique_violation() && !expired => {
                        return Err(reset_pending(kind))
                    }
                    other => other?,
                }
                let details =
                    serde_json::json!({"operator": target, "kind": kind.as_str(), "reason": reason});
                audit::record(
                    log,
                    now,
                    Event::new(Some(&by), Action::OperatorResetRequested, Some(&rid), details),
                );
                Ok(())
            }))
            .await?;
        self.load_reset(&id).await
    }

    async fn load_reset(&self, id: &str) -> Result<ResetView> {
        let mut c = self.store().read().await?;
        rows::get(&mut c, id)
            .await?
            .map(view)
            .ok_or(Error::NotFound("operator reset"))
    }

    /// One reset (admins).
    pub async fn operator_reset(&self, by: &Operator, id: &str) -> Result<ResetView> {
        self.authorize(by, Role::Admin, "operator_reset.read", Some(id))
            .await?;
        self.load_reset(id).await
    }

    /// Resets, pending ones by default (`status`: a state or `all`), newest first, at most 200
    /// (admins). Overdue ones are expired first, so none is listed as pending past its expiry.
    pub async fn operator_resets(
        &self,
        by: &Operator,
        status: Option<&str>,
    ) -> Result<Vec<ResetView>> {
        self.authorize(by, Role::Admin, "operator_reset.read", None)
            .await?;
        let status = match status {
            None | Some("") | Some("pending") => Some(ResetState::Pending),
            Some("all") => None,
            Some(s) => Some(ResetState::parse(s).ok_or_else(|| {
                Error::invalid(
                    "invalid_field",
                    format!("status: one of all, {}", ResetState::names()),
                )
            })?),
        };
        // The list is still shown when the sweep fails (it is logged); approval checks expiry
        // itself.
        if let Err(e) = self.expire_operator_resets().await {
            tracing::warn!(error = %e, "could not expire overdue operator resets");
        }
        let mut c = self.store().read().await?;
        Ok(rows::list(&mut c, status, 200)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// A second admin approves: the TOTP is reset or the password set in the same transaction,
    /// and the operator's console sessions end. Not by the admin who asked, nor by the operator
    /// concerned (`own_reset`, `own_account`), nor by an admin down the line of admins the one
    /// who asked created (`approver_created_by_requester`), nor by one up their line
    /// (`requester_created_by_approver`), nor by one created after the reset was asked for
    /// (`approver_newer_than_reset`); not while the operator concerned or the admin who asked is
    /// disabled. Every refusal is audited. The checks run in the approving transaction, with the
    /// time taken there, and the compare-and-set that approves repeats them.
    pub async fn approve_operator_reset(&self, by: &Operator, id: &str) -> Result<ResetView> {
        self.authorize(by, Role::Admin, "operator_reset.approve", Some(id))
            .await?;
        let clock = self.inner.clock.clone();
        let (by, rid) = (by.id.clone(), id.to_string());
        self.store()
            .write(job!(|c, log| {
                let now = clock.now();
                let at = now.unix_timestamp();
                let Some(r) = rows::get(c, &rid).await? else {
                    return Err(Error::NotFound("operator reset"));
                };
                if r.status != ResetState::Pending {
                    return Err(not_pending(r.status));
                }
                if r.requested_by != by && r.operator_id != by && expire_in(c, log, now, &r).await?
                {
                    return Ok(Committed::Refused(Error::conflict(
                        "reset_expired",
                        "the reset expired before it was approved; ask again",
                    )));
                }
                let approver = operator_rows::standing(c, &by).await?;
                let requester = operator_rows::standing(c, &r.requested_by).await?;
                let target = operator_rows::standing(c, &r.operator_id).await?;
                let approver_line = creators(c, &by).await?;
                let requester_line = creators(c, &r.requested_by).await?;
                let refusal = approval_refusal(
                    &r,
                    &by,
                    &approver,
                    &requester,
                    &target,
                    &approver_line,
                    &requester_line,
                );
                if let Some(e) = refusal {
                    let details = serde_json::json!({"error": e.code(),
                        "operator": r.operator_id, "requested_by": r.requested_by});
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            Action::OperatorResetApprovalRefused,
                            Some(&rid),
                            details,
                        ),
                    );
                    return Ok(Committed::Refused(e));
                }
                let hash = rows::pending_password_hash(c, &rid).await?;
                if !rows::decide(c, &rid, ResetState::Approved, Some(&by), at, None).await? {
                    return Err(Error::conflict(
                        "not_pending",
                        "the reset was decided meanwhile",
                    ));
                }
                let (target, requester, kind) = (&r.operator_id, &r.requested_by, &r.kind);
                let details = serde_json::json!({"operator": target, "kind": kind,
                    "requested_by": requester});
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&by),
                        Action::OperatorResetApproved,
                        Some(&rid),
                        details,
                    ),
                );
                let details =
                    serde_json::json!({"via": "approval", "reset": rid, "requested_by": requester});
                let applied = if kind == ResetKind::Password.as_str() {
                    match hash {
                        Some(hash) => {
                            set_password_in(c, log, now, Some(&by), target, &hash, details).await
                        }
                        None => Err(Error::internal(
                            "a pending password reset has no password hash",
                        )),
                    }
                } else {
                    reset_totp_in(c, log, now, Some(&by), target, details).await
                };
                // The reset is already approved in this transaction: any failure from here on
                // must undo it, which a refusal (a domain error) would not (src/store/writer.rs).
                applied.map_err(|e| match e {
                    Error::Database(_) | Error::Internal(_) | Error::Environment(_) => e,
                    other => Error::internal(format!("applying an approved reset: {other}")),
                })?;
                Ok(Committed::Done(()))
            }))
            .await?
            .into_result()?;
        self.load_reset(id).await
    }

    /// An admin other than the one who asked rejects a reset, with a reason; nothing changes
    /// for the operator.
    pub async fn reject_operator_reset(
        &self,
        by: &Operator,
        id: &str,
        why: Option<&str>,
    ) -> Result<ResetView> {
        self.authorize(by, Role::Admin, "operator_reset.reject", Some(id))
            .await?;
        let why = check_reason(why)?;
        let r = self.load_reset(id).await?;
        if r.requested_by == by.id {
            return Err(Error::forbidden(
                "own_reset",
                "you asked for this reset: cancel it instead",
            ));
        }
        self.end_reset(by, r, ResetState::Rejected, Some(why)).await
    }

    /// The admin who asked for a reset withdraws it.
    pub async fn cancel_operator_reset(&self, by: &Operator, id: &str) -> Result<ResetView> {
        self.authorize(by, Role::Admin, "operator_reset.cancel", Some(id))
            .await?;
        let r = self.load_reset(id).await?;
        if r.requested_by != by.id {
            return Err(Error::forbidden(
                "not_requester",
                "only the admin who asked for a reset can cancel it; reject it instead",
            ));
        }
        self.end_reset(by, r, ResetState::Cancelled, None).await
    }

    async fn end_reset(
        &self,
        by: &Operator,
        r: ResetView,
        to: ResetState,
        why: Option<String>,
    ) -> Result<ResetView> {
        if r.status != ResetState::Pending {
            return Err(not_pending(r.status));
        }
        let now = self.now();
        let action = match to {
            ResetState::Rejected => Action::OperatorResetRejected,
            _ => Action::OperatorResetCancelled,
        };
        let (by, rid, target) = (by.id.clone(), r.id.clone(), r.operator_id);
        self.store()
            .write(job!(|c, log| {
                let at = now.unix_timestamp();
                if !rows::decide(c, &rid, to, Some(&by), at, why.as_deref()).await? {
                    return Err(Error::conflict(
                        "not_pending",
                        "the reset was decided meanwhile",
                    ));
                }
                let details = serde_json::json!({"operator": target, "reason": why});
                audit::record(log, now, Event::new(Some(&by), action, Some(&rid), details));
                Ok(())
            }))
            .await?;
        self.load_reset(&r.id).await
    }

    /// Expire reset `id` if it is pending past its expiry (audited, actor null); true if it was.
    async fn expire_reset(&self, id: &str, now: OffsetDateTime) -> Result<bool> {
        let id = id.to_string();
        self.store()
            .write(job!(|c, log| {
                match rows::get(c, &id).await? {
                    Some(r) => expire_in(c, log, now, &r).await,
                    None => Ok(false),
                }
            }))
            .await
    }

    /// Expire every reset still pending past its expiry (the background upkeep calls this, and
    /// so does the list of resets); the operators' TOTP and passwords stay as they are. A reset
    /// that cannot be expired is logged and the others are still expired.
    pub async fn expire_operator_resets(&self) -> Result<usize> {
        let now = self.now();
        let overdue = {
            let mut c = self.store().read().await?;
            rows::overdue(&mut c, now.unix_timestamp()).await?
        };
        let mut n = 0;
        for id in overdue {
            match self.expire_reset(&id, now).await {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(reset = %id, error = %e, "could not expire an operator reset")
                }
            }
        }
        Ok(n)
    }
}

fn reset_pending(kind: ResetKind) -> Error {
    Error::conflict(
        "reset_pending",
        format!(
            "a {} reset of this operator already awaits a second admin",
            kind.as_str()
        ),
    )
}

fn not_pending(status: ResetState) -> Error {
    Error::conflict("not_pending", format!("the reset is {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert_eq!(check_reason(None).unwrap_err().code(), "invalid_field");
        assert_eq!(
            check_reason(Some("  ")).unwrap_err().code(),
            "invalid_field"
        );
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(
            check_reason(Some(&long)).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(check_reason(Some(" lost phone ")).unwrap(), "lost phone");
    }
}
