//! Revocation: revoke (with an RFC 5280 reason, optional invalidity date), hold and release, key
//! compromise propagation, and the full CRL of the issuing CA.

use super::{Operator, Ra, Role};
use crate::audit::{self, Event};
use crate::ca::{CrlEntry, CrlOrder, CrlRemoval};
use crate::error::{Error, Result};
use crate::store::certificates as rows;
use crate::store::{job, Committed};
use crate::x509::freshness::Freshness;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use serde::Serialize;
use std::sync::atomic::Ordering;
use time::{Duration, OffsetDateTime};

/// How long a CRL is valid by default (nextUpdate - thisUpdate); it is re-signed at half-life, or
/// at once when a status changes.
pub const CRL_VALIDITY: Duration = Duration::hours(24);
pub const MAX_COMMENT_CHARS: usize = 1000;

/// How long a delta CRL is valid: a 24th of the full CRL's validity (1 h by default), at least 5
/// minutes. Relying parties cache a CRL until its nextUpdate, so a delta that lived as long as the
/// full CRL would never be fetched again in between.
pub fn delta_validity(full: Duration) -> Duration {
    (full / 24_i32).max(Duration::minutes(5)).min(full)
}

#[derive(Debug, Clone, Serialize)]
pub struct RevocationOutcome {
    pub serial: String,
    /// revoked | on-hold | valid
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Other live certificates with the same key, revoked with it (keyCompromise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_revoked: Vec<String>,
    /// The revocation request awaiting a second revoker (status `pending-approval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The signed full and delta CRLs, kept until a status changes or they reach half their
/// validity.
pub(crate) struct CachedCrl {
    generation: u64,
    this_update: OffsetDateTime,
    full: bytes::Bytes,
    delta: bytes::Bytes,
    /// thisUpdate, nextUpdate and digest of each, for HTTP caches.
    full_freshness: Freshness,
    delta_freshness: Freshness,
}

/// The full CRL the delta CRL is relative to: its number, and the status version its entries
/// were read at.
#[derive(Clone)]
pub(crate) struct DeltaBase {
    number: u64,
    version: i64,
    this_update: OffsetDateTime,
}

#[derive(Default)]
pub(crate) struct CrlState {
    current: Option<std::sync::Arc<CachedCrl>>,
    base: Option<DeltaBase>,
    entries: Option<Listed>,
}

/// The revoked and held certificates as of a status version, sorted by serial: the next full CRL
/// applies the rows changed since instead of reading a million rows again. Read afresh every
/// half validity.
struct Listed {
    version: i64,
    read_at: OffsetDateTime,
    entries: Vec<CrlEntry>,
}

/// What was read for the full CRL: every listed row, or the rows changed since the kept list.
enum FullRows {
    All(Vec<rows::RevokedRow>),
    Changed(Vec<rows::ChangedRow>),
}

/// One row of `changed_since` as a CRL change: the entry it now has, or None (valid again).
fn change_of(r: &rows::ChangedRow) -> Result<(Serial, Option<CrlEntry>)> {
    let serial = parse_serial(&r.serial)?;
    match (
        r.status.as_str(),
        r.revoked_at,
        r.revocation_reason.as_deref(),
    ) {
        ("revoked" | "on-hold", Some(at), Some(reason)) => Ok((
            serial.clone(),
            Some(CrlEntry {
                serial,
                revoked_at: unix(at)?,
                reason: Reason::parse(reason)?,
                invalidity_date: r.invalidity_date.map(unix).transpose()?,
            }),
        )),
        _ => Ok((serial, None)),
    }
}

/// Apply changes (sorted by serial, one per serial) to entries sorted by serial, in one pass.
fn merge(entries: Vec<CrlEntry>, changes: Vec<(Serial, Option<CrlEntry>)>) -> Vec<CrlEntry> {
    let mut out = Vec::with_capacity(entries.len() + changes.len());
    let mut changes = changes.into_iter().peekable();
    for e in entries {
        while let Some((s, _)) = changes.peek() {
            if s.as_bytes() < e.serial.as_bytes() {
                if let Some((_, Some(new))) = changes.next() {
                    out.push(new);
                }
            } else {
                break;
            }
        }
        match changes.peek() {
            Some((s, _)) if s.as_bytes() == e.serial.as_bytes() => {
                if let Some((_, Some(new))) = changes.next() {
                    out.push(new);
                }
            }
            _ => out.push(e),
        }
    }
    out.extend(changes.filter_map(|(_, new)| new));
    out
}

fn unix(t: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal)
}

fn parse_serial(s: &str) -> Result<Serial> {
    Serial::parse(s).ok_or_else(|| Error::internal("stored serial is malformed"))
}

fn serial_of(text: &str) -> Result<String> {
    Serial::from_client(text)
}

fn check_comment(comment: Option<&str>) -> Result<Option<String>> {
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => super::free_text("comment", c, MAX_COMMENT_CHARS, true).map(Some),
        None => Ok(None),
    }
}

fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Error::invalid(
            "invalid_field",
            format!("{name} must be an RFC 3339 time, e.g. 2026-11-26T09:30:00Z"),
        )
    })
}

/// Self-revocations accepted per second, across all callers (they need no token).
pub const SELF_REVOCATIONS_PER_SECOND: u32 = 20;
/// How old a signed self-revocation statement may be (and how far in the future its clock may be).
pub const STATEMENT_MAX_AGE: Duration = Duration::minutes(5);
pub const STATEMENT_MAX_SKEW: Duration = Duration::minutes(1);
/// Reasons a subscriber may give for revoking their own certificate.
const SUBSCRIBER_REASONS: [Reason; 5] = [
    Reason::Unspecified,
    Reason::KeyCompromise,
    Reason::AffiliationChanged,
    Reason::Superseded,
    Reason::CessationOfOperation,
];

/// A fixed one-second window counter.
#[derive(Default)]
pub(crate) struct RateLimit(std::sync::Mutex<Option<(std::time::Instant, u32)>>);

impl RateLimit {
    fn allow(&self, per_second: u32) -> bool {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        match w.as_mut() {
            Some((start, n)) if now.duration_since(*start) < std::time::Duration::from_secs(1) => {
                *n += 1;
                *n <= per_second
            }
            _ => {
                *w = Some((now, 1));
                true
            }
        }
    }
}

/// What a subscriber signs to revoke their own certificate.
#[derive(serde::Deserialize)]
struct Statement {
    serial: String,
    reason: String,
    time: String,
}

fn already_revoked() -> Error {
    Error::conflict("already_revoked", "the certificate is already revoked")
}

#[derive(Debug, Clone, Serialize)]
pub struct RevocationRequestView {
    pub id: String,
    pub serial: String,
    pub reason: String,
    /// pending | approved | rejected
    pub status: String,
    pub requested_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

/// Revoke inside a write job (see [`Ra::revoke`]); returns the other certificates revoked with it,
/// or None if nothing changed.
#[allow(clippy::too_many_arguments)]
async fn revoke_in(
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
        "certificate.revoked"
    } else if reason == Reason::KeyCompromise
        && rows::escalate_to_key_compromise(c, target, invalidity, ts).await?
    {
        // RFC 5280 5.3.1: a revoked certificate's reason may change to keyCompromise.
        "certificate.revocation_updated"
    } else {
        return Ok(None);
    };
    let details = serde_json::json!({"reason": reason.as_str(), "invalidity_date": invalidity, "comment": comment});
    audit::record(
        log,
        now,
        Event::new(Some(by), action, Some(target), details),
    );
    let mut others = Vec::new();
    if reason == Reason::KeyCompromise {
        if rows::block_key(c, key, "keyCompromise", Some(by), ts).await? {
            let details = serde_json::json!({"reason": "keyCompromise", "certificate": target});
            audit::record(
                log,
                now,
                Event::new(Some(by), "key.blocked", Some(key), details),
            );
        }
        for other in rows::live_with_key(c, key).await? {
            if rows::revoke(c, &other, reason.as_str(), ts, invalidity).await? {
                let details =
                    serde_json::json!({"reason": "keyCompromise", "propagated_from": target});
                audit::record(
                    log,
                    now,
                    Event::new(Some(by), "certificate.revoked", Some(&other), details),
                );
                others.push(other);
            }
        }
    }
    Ok(Some(others))
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
        if cert.status == "revoked" && reason != Reason::KeyCompromise {
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
        self.revoked_outcome(serial, reason, revoked)
    }

    fn revoked_outcome(
        &self,
        serial: String,
        reason: Reason,
        revoked: Option<Vec<String>>,
    ) -> Result<RevocationOutcome> {
        let Some(also_revoked) = revoked else {
            return Err(already_revoked());
        };
        self.status_changed();
        Ok(RevocationOutcome {
            serial,
            status: "revoked".into(),
            reason: Some(reason.as_str().into()),
            also_revoked,
            id: None,
        })
    }

    /// Record a revocation that a second revoker must approve.
    async fn request_revocation(
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
            status: "pending".into(),
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
                    Err(Error::Database(e)) if crate::store::is_unique_violation(&e) => {
                        return Err(Error::conflict("revocation_pending", "a revocation of this certificate awaits approval"))
                    }
                    other => other?,
                }
                let details = serde_json::json!({"serial": row.serial, "reason": row.reason, "invalidity_date": row.invalidity_date, "comment": row.comment});
                audit::record(log, now, Event::new(Some(&row.requested_by), "revocation.requested", Some(&row.id), details));
                Ok(())
            }))
            .await?;
        Ok(RevocationOutcome {
            serial: serial.to_string(),
            status: "pending-approval".into(),
            reason: Some(reason.as_str().into()),
            also_revoked: Vec::new(),
            id: Some(id),
        })
    }

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
        Ok(RevocationRequestView {
            id: r.id,
            serial: r.serial,
            reason: r.reason,
            status: r.status,
            requested_by: r.requested_by,
            created_at: super::rfc3339(r.created_at),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(super::rfc3339),
            reject_reason: r.reject_reason,
        })
    }

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
        if req.status != "pending" {
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
                "revocation.approval_refused",
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
                    "approved",
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
                        "revocation.approved",
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
        self.revoked_outcome(req.serial, reason, outcome)
    }

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
                    "rejected",
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
                        "revocation.rejected",
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

    /// Self-revocation: a CMS SignedData over `{"serial", "reason", "time"}`, signed with the key of
    /// that very certificate, and recent. No token; rate-limited; each statement works once.
    pub async fn revoke_by_key(&self, body: &[u8]) -> Result<RevocationOutcome> {
        if !self
            .self_revocation_limit()
            .allow(SELF_REVOCATIONS_PER_SECOND)
        {
            return Err(Error::RateLimited(
                "too many self-revocations; try again in a second".into(),
            ));
        }
        let refuse = |code: &'static str, message: &str| Error::refused(code, message.to_string());
        let content = crate::x509::cms::content(body)?;
        let statement: Statement = serde_json::from_slice(&content).map_err(|_| {
            Error::invalid(
                "invalid_statement",
                "the signed content must be JSON {\"serial\", \"reason\", \"time\"}",
            )
        })?;
        let serial = serial_of(&statement.serial)?;
        let reason = Reason::parse(&statement.reason)?;
        if !SUBSCRIBER_REASONS.contains(&reason) {
            return Err(refuse("reason_not_allowed", "a subscriber may give unspecified, keyCompromise, affiliationChanged, superseded or cessationOfOperation"));
        }
        let now = self.now();
        let signed_at = parse_time("time", &statement.time)?;
        if signed_at < now - STATEMENT_MAX_AGE || signed_at > now + STATEMENT_MAX_SKEW {
            return Err(refuse(
                "stale_statement",
                "the statement's time must be within the last 5 minutes",
            ));
        }
        let cert = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
        };
        if !crate::x509::cms::signed_by(body, &cert.der)? {
            let details = serde_json::json!({"serial": serial, "error": "not_key_holder"});
            self.audit_refusal(None, "revocation.by_key_refused", Some(&serial), details)
                .await;
            return Err(Error::forbidden(
                "not_key_holder",
                "the statement is not signed with this certificate's key",
            ));
        }
        let digest = crate::x509::sha256_hex(body);
        let (target, key, actor) = (
            serial.clone(),
            cert.key_sha256.clone(),
            format!("subscriber:{serial}"),
        );
        let revoked = self
            .store()
            .write(job!(|c, log| {
                if !rows::use_statement(c, &digest, &target, now.unix_timestamp()).await? {
                    return Ok(Committed::Refused(Error::conflict(
                        "replayed",
                        "this signed statement was used already",
                    )));
                }
                let comment =
                    Some("revoked by the subscriber with proof of key possession".to_string());
                Ok(Committed::Done(
                    revoke_in(c, log, now, &actor, &target, &key, reason, None, comment).await?,
                ))
            }))
            .await?
            .into_result()?;
        self.revoked_outcome(serial, reason, revoked)
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
        {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?;
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
                    let event = if hold {
                        "certificate.held"
                    } else {
                        "certificate.released"
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
        Ok(RevocationOutcome {
            serial,
            status: if hold { "on-hold" } else { "valid" }.into(),
            reason: hold.then(|| "certificateHold".to_string()),
            also_revoked: Vec::new(),
            id: None,
        })
    }

    /// Any status change makes the cached CRLs and OCSP responses stale.
    pub(crate) fn status_changed(&self) {
        self.crl_generation().fetch_add(1, Ordering::SeqCst);
    }

    /// Mark caches stale when the database's status version moved since the last call (a change
    /// made by another instance sharing the database). Called about once a second.
    pub async fn observe_status_changes(&self) -> Result<()> {
        let version = {
            let mut c = self.store().read().await?;
            rows::status_version(&mut c).await?
        };
        let seen = self.observed_status_version();
        if seen.swap(version, Ordering::SeqCst) != version {
            self.status_changed();
        }
        Ok(())
    }

    /// The current full CRL (DER) of the issuing CA `ca_id`.
    pub async fn crl(&self, ca_id: &str) -> Result<bytes::Bytes> {
        Ok(self.crls(ca_id).await?.full.clone())
    }

    /// The current delta CRL (DER) of the issuing CA `ca_id`: the changes since its base CRL,
    /// removeFromCRL entries for certificates released from hold.
    pub async fn delta_crl(&self, ca_id: &str) -> Result<bytes::Bytes> {
        Ok(self.crls(ca_id).await?.delta.clone())
    }

    /// [`Ra::crl`] with its thisUpdate, nextUpdate and digest, recorded when it was signed.
    pub async fn crl_with_freshness(&self, ca_id: &str) -> Result<(bytes::Bytes, Freshness)> {
        let c = self.crls(ca_id).await?;
        Ok((c.full.clone(), c.full_freshness.clone()))
    }

    /// [`Ra::delta_crl`] with its thisUpdate, nextUpdate and digest.
    pub async fn delta_crl_with_freshness(&self, ca_id: &str) -> Result<(bytes::Bytes, Freshness)> {
        let c = self.crls(ca_id).await?;
        Ok((c.delta.clone(), c.delta_freshness.clone()))
    }

    /// The full and delta CRLs, re-signed together when a status changed since the last ones, or
    /// when they have used half their validity. A delta CRL is relative to a base: a full CRL this
    /// process signed earlier, replaced by a newer one every half validity. Both carry the same
    /// CRL number when signed together (RFC 5280 5.2.3).
    async fn crls(&self, ca_id: &str) -> Result<std::sync::Arc<CachedCrl>> {
        if ca_id != self.ca().issuing_id() {
            return Err(Error::NotFound("CRL"));
        }
        let mut state = self.crl_cache().lock().await;
        let now = self.now();
        let validity = self.crl_validity();
        let generation = self.crl_generation().load(Ordering::SeqCst);
        if let Some(c) = state.current.as_ref() {
            // Re-signed at half the delta's validity, so a fresh delta is always there to fetch.
            if c.generation == generation && now < c.this_update + delta_validity(validity) / 2 {
                return Ok(c.clone());
            }
        }
        // With no base yet, the full CRL signed now becomes the base, and the delta takes the next
        // number. The numbers and the status version are taken in one write job, so across
        // instances a higher CRL number always goes with an equal or later version; the rows are
        // read after that, so a CRL lists at least every change up to its version. Numbers are
        // taken before signing (a failed signing leaves a gap, never a repeat); the signing is
        // audited once it has happened.
        let first = state.base.is_none();
        let ca = ca_id.to_string();
        let (number, delta_number, version) = self
            .store()
            .write(job!(|c, _| {
                let number = rows::next_crl_number(c, &ca).await?;
                let delta_number = if first {
                    rows::next_crl_number(c, &ca).await?
                } else {
                    number
                };
                Ok((number, delta_number, rows::status_version(c).await?))
            }))
            .await?;
        let number = u64::try_from(number).map_err(Error::internal)?;
        let delta_number = u64::try_from(delta_number).map_err(Error::internal)?;
        let ts = unix;
        let serial = parse_serial;
        let base = match state.base.clone() {
            Some(b) => b,
            None => DeltaBase {
                number,
                version,
                this_update: now,
            },
        };
        // The full list: the last one plus what changed since, or read afresh. Both CRLs are read
        // in one snapshot, so signed together they carry the same revocation information.
        let previous = state
            .entries
            .take()
            .filter(|listed| now < listed.read_at + validity / 2);
        let since = previous.as_ref().map(|l| l.version);
        let (ca, base_version) = (ca_id.to_string(), base.version);
        let (full_rows, changed) = self
            .store()
            .read_snapshot(move |c| {
                Box::pin(async move {
                    let full = match since {
                        Some(v) => FullRows::Changed(rows::changed_since(c, &ca, v).await?),
                        None => FullRows::All(rows::revoked(c, &ca).await?),
                    };
                    Ok((full, rows::changed_since(c, &ca, base_version).await?))
                })
            })
            .await?;
        let listed = match (previous, full_rows) {
            (Some(previous), FullRows::Changed(changed)) => {
                let changes = changed.iter().map(change_of).collect::<Result<Vec<_>>>()?;
                Listed {
                    version,
                    read_at: previous.read_at,
                    entries: merge(previous.entries, changes),
                }
            }
            (_, FullRows::All(revoked)) => Listed {
                version,
                read_at: now,
                entries: revoked
                    .into_iter()
                    .map(|r| {
                        Ok(CrlEntry {
                            serial: serial(&r.serial)?,
                            revoked_at: ts(r.revoked_at)?,
                            reason: Reason::parse(&r.revocation_reason)?,
                            invalidity_date: r.invalidity_date.map(ts).transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            },
            (None, FullRows::Changed(_)) => {
                return Err(Error::internal(
                    "CRL changes read without a list to apply them to",
                ))
            }
        };
        let entries = listed.entries.clone();
        state.entries = Some(listed);
        let count = entries.len();
        let (mut delta_entries, mut removed) = (Vec::new(), Vec::new());
        for r in &changed {
            match change_of(r)? {
                (_, Some(entry)) => delta_entries.push(entry),
                (serial, None) => removed.push(CrlRemoval {
                    serial,
                    at: ts(r.status_changed_at.unwrap_or(now.unix_timestamp()))?,
                }),
            }
        }
        let delta_url = self.delta_crl_urls();
        let full = CrlOrder {
            number,
            this_update: now,
            next_update: now + validity,
            entries,
            removed: Vec::new(),
            delta_base: None,
            freshest_urls: delta_url,
        };
        let delta_count = delta_entries.len() + removed.len();
        let delta = CrlOrder {
            number: delta_number,
            this_update: now,
            next_update: now + delta_validity(validity),
            entries: delta_entries,
            removed,
            delta_base: Some(base.number),
            freshest_urls: Vec::new(),
        };
        // Encoding and signing a large CRL is CPU work of seconds, and hashing it for its ETag
        // (once, here) a tenth of that: keep both off the request threads.
        let ca = self.ca_handle();
        let handle = tokio::runtime::Handle::current();
        let ((full_der, full_freshness), (delta_der, delta_freshness)) =
            tokio::task::spawn_blocking(move || {
                handle.block_on(async {
                    let signed = |order: CrlOrder, der: Vec<u8>| {
                        let f = Freshness::of(&der, order.this_update, order.next_update);
                        (der, f)
                    };
                    let full_der = ca.sign_crl(&full).await?;
                    let delta_der = ca.sign_crl(&delta).await?;
                    Ok::<_, crate::ca::CaError>((signed(full, full_der), signed(delta, delta_der)))
                })
            })
            .await
            .map_err(Error::internal)?
            .map_err(|e| Error::Upstream(e.to_string()))?;
        let ca = ca_id.to_string();
        let details = serde_json::json!({
            "number": number, "entries": count, "delta_number": delta_number,
            "delta_base": base.number, "delta_entries": delta_count,
        });
        self.store()
            .write(job!(|_, log| {
                audit::record(log, now, Event::new(None, "crl.signed", Some(&ca), details));
                Ok(())
            }))
            .await?;
        // The base moves forward every half validity, so a delta stays small.
        state.base = if first || now >= base.this_update + validity / 2 {
            Some(DeltaBase {
                number,
                version,
                this_update: now,
            })
        } else {
            Some(base)
        };
        let fresh = std::sync::Arc::new(CachedCrl {
            generation,
            this_update: now,
            full_freshness,
            delta_freshness,
            full: full_der.into(),
            delta: delta_der.into(),
        });
        state.current = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn entry(n: u8, reason: Reason) -> CrlEntry {
        let mut hex = format!("1{:031x}", n);
        hex.truncate(32);
        CrlEntry {
            serial: Serial::parse(&hex).unwrap(),
            revoked_at: OffsetDateTime::UNIX_EPOCH,
            reason,
            invalidity_date: None,
        }
    }

    #[test]
    fn a_delta_lives_a_24th_of_the_full_crl_and_at_least_5_minutes() {
        assert_eq!(delta_validity(Duration::hours(24)), Duration::hours(1));
        assert_eq!(delta_validity(Duration::hours(1)), Duration::minutes(5));
        assert_eq!(delta_validity(Duration::minutes(3)), Duration::minutes(3));
    }

    #[test]
    fn changes_are_applied_in_one_ordered_pass() {
        let list = vec![
            entry(2, Reason::Superseded),
            entry(4, Reason::CertificateHold),
            entry(6, Reason::KeyCompromise),
        ];
        let changes = vec![
            (
                entry(1, Reason::Unspecified).serial,
                Some(entry(1, Reason::Unspecified)),
            ),
            // released from hold: leaves the list
            (entry(4, Reason::CertificateHold).serial, None),
            // hold became keyCompromise elsewhere: replaced
            (
                entry(6, Reason::KeyCompromise).serial,
                Some(entry(6, Reason::CaCompromise)),
            ),
            (
                entry(9, Reason::Superseded).serial,
                Some(entry(9, Reason::Superseded)),
            ),
            // valid and not listed: nothing to remove
            (entry(10, Reason::Superseded).serial, None),
        ];
        let merged = merge(list, changes);
        let got: Vec<(String, Reason)> = merged
            .iter()
            .map(|e| (e.serial.to_string(), e.reason))
            .collect();
        let want: Vec<(String, Reason)> = [
            (1, Reason::Unspecified),
            (2, Reason::Superseded),
            (6, Reason::CaCompromise),
            (9, Reason::Superseded),
        ]
        .into_iter()
        .map(|(n, r)| (entry(n, r).serial.to_string(), r))
        .collect();
        assert_eq!(got, want);
    }
}
