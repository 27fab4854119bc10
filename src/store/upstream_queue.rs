//! What remains to be done with the CAs: revocations to forward to the remote CA that issued the
//! certificate (`revocation_forwards`, migration 0014), and approved requests whose issuance is
//! waiting for its CA (`issuance_intents` of `approved` requests). `vouch upstream queue` and the
//! retry task read it.

use super::Conn;
use crate::error::Result;

/// A revocation to forward (or forwarded) to the CA that issued the certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ForwardRow {
    /// The certificate's serial (hex).
    pub serial: String,
    /// The CA that issued it.
    pub ca_id: String,
    /// The reason forwarded (certificateHold: on hold).
    pub reason: String,
    /// When it was revoked or put on hold here (Unix seconds).
    pub revoked_at: i64,
    /// The certificate's status version this forward tells.
    pub status_version: i64,
    /// When the forward was queued (Unix seconds).
    pub queued_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it is next tried (Unix seconds).
    pub next_attempt_at: i64,
    /// When the CA acknowledged it (Unix seconds); None while pending.
    pub acknowledged_at: Option<i64>,
    /// When the CA refused it for good (Unix seconds; `last_error` says why): no longer retried
    /// until an admin asks for it again. None while it is retried.
    pub failed_at: Option<i64>,
    /// When an admin gave it up (Unix seconds): the CA is never told.
    pub dropped_at: Option<i64>,
    /// Who gave it up (an operator id; None: on the host's command line).
    pub dropped_by: Option<String>,
    /// Why it was given up, in the admin's words.
    pub drop_reason: Option<String>,
}

impl ForwardRow {
    /// `acknowledged`, `dropped`, `failed` (refused by the CA, waiting for an admin) or
    /// `pending` (retried on its own).
    pub fn state(&self) -> &'static str {
        match (self.acknowledged_at, self.dropped_at, self.failed_at) {
            (Some(_), _, _) => "acknowledged",
            (None, Some(_), _) => "dropped",
            (None, None, Some(_)) => "failed",
            (None, None, None) => "pending",
        }
    }
}

const FORWARD_COLUMNS: &str = "serial, ca_id, reason, revoked_at, status_version, queued_at, \
    attempts, last_error, next_attempt_at, acknowledged_at, failed_at, dropped_at, dropped_by, \
    drop_reason";

/// Queue the forward of certificate `serial`'s current status (revoked or on hold) to `ca_id`, due
/// at `now`, unless that status version is already queued. Returns the queued row, or None when
/// the certificate is not revoked or on hold.
pub async fn queue(
    conn: &mut Conn,
    serial: &str,
    ca_id: &str,
    now: i64,
) -> Result<Option<ForwardRow>> {
    sqlx::query(
        "INSERT INTO revocation_forwards (serial, ca_id, reason, revoked_at, status_version, queued_at, \
         attempts, last_error, next_attempt_at, acknowledged_at) \
         SELECT serial, $2, revocation_reason, revoked_at, status_version, $3, 0, NULL, $3, NULL \
         FROM certificates WHERE serial = $1 AND status IN ('revoked', 'on-hold') \
         ON CONFLICT (serial) DO UPDATE SET ca_id = excluded.ca_id, reason = excluded.reason, \
         revoked_at = excluded.revoked_at, status_version = excluded.status_version, \
         queued_at = excluded.queued_at, attempts = 0, last_error = NULL, \
         next_attempt_at = excluded.next_attempt_at, acknowledged_at = NULL, failed_at = NULL, \
         dropped_at = NULL, dropped_by = NULL, drop_reason = NULL \
         WHERE revocation_forwards.status_version <> excluded.status_version",
    )
    .bind(serial)
    .bind(ca_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    get(conn, serial).await
}

/// The forward of certificate `serial`, pending or acknowledged.
pub async fn get(conn: &mut Conn, serial: &str) -> Result<Option<ForwardRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {FORWARD_COLUMNS} FROM revocation_forwards WHERE serial = $1"
    ))
    .bind(serial)
    .fetch_optional(conn)
    .await?)
}

/// Certificates of CAs other than `embedded` that are revoked or on hold and whose current status
/// was never queued for forwarding (revoked by a path that does not forward, such as the key
/// re-fingerprinting at start, or by a process that died before it queued): (serial, ca_id).
pub async fn unqueued(
    conn: &mut Conn,
    embedded: &str,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT c.serial, c.ca_id FROM certificates c \
         LEFT JOIN revocation_forwards f ON f.serial = c.serial \
         WHERE c.ca_id <> $1 AND c.status IN ('revoked', 'on-hold') \
         AND (f.serial IS NULL OR f.status_version <> c.status_version) \
         ORDER BY c.serial LIMIT $2",
    )
    .bind(embedded)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// [`FORWARD_COLUMNS`] of `f`, forwards of the certificate's current status only (a hold
/// released meanwhile is not forwarded) that the CA has not acknowledged (a macro, so that
/// [`PENDING`] can extend it with `concat!`).
macro_rules! undone {
    () => {
        "SELECT f.serial, f.ca_id, f.reason, f.revoked_at, f.status_version, f.queued_at, \
    f.attempts, f.last_error, f.next_attempt_at, f.acknowledged_at, f.failed_at, f.dropped_at, \
    f.dropped_by, f.drop_reason FROM revocation_forwards f \
    JOIN certificates c ON c.serial = f.serial AND c.status_version = f.status_version \
    AND c.status IN ('revoked', 'on-hold') WHERE f.acknowledged_at IS NULL"
    };
}

/// Forwards that are not acknowledged: pending, failed or dropped.
const UNDONE: &str = undone!();

/// [`UNDONE`] without the dropped ones: pending, or failed and waiting for an admin.
const PENDING: &str = concat!(undone!(), " AND f.dropped_at IS NULL");

/// Pending forwards due at `now` (not those the CA refused for good), oldest first.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<ForwardRow>> {
    Ok(sqlx::query_as(&format!(
        "{PENDING} AND f.failed_at IS NULL AND f.next_attempt_at <= $1 \
         ORDER BY f.next_attempt_at, f.serial LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The forward of certificate `serial`'s current status that is not acknowledged (pending,
/// failed or dropped), if any: what an admin may retry or drop.
pub async fn undone_of(conn: &mut Conn, serial: &str) -> Result<Option<ForwardRow>> {
    Ok(sqlx::query_as(&format!("{UNDONE} AND f.serial = $1"))
        .bind(serial)
        .fetch_optional(conn)
        .await?)
}

/// A forward as `vouch upstream queue --all` lists it: with whether it still tells the
/// certificate's current status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedForward {
    /// The forward.
    #[sqlx(flatten)]
    pub row: ForwardRow,
    /// 1 when the certificate's status changed here since (a hold released, a later revocation
    /// queued in its place, a certificate gone): nothing of it is forwarded any more.
    superseded: i64,
}

impl ListedForward {
    /// [`ForwardRow::state`], or `superseded` for a forward neither acknowledged nor dropped
    /// whose status is no longer the certificate's (never forwarded now).
    pub fn state(&self) -> &'static str {
        match self.row.state() {
            "pending" | "failed" if self.superseded != 0 => "superseded",
            state => state,
        }
    }
}

/// Every forward, acknowledged, dropped and superseded ones too, oldest first.
pub async fn all(conn: &mut Conn, limit: i64) -> Result<Vec<ListedForward>> {
    Ok(sqlx::query_as(
        "SELECT f.serial, f.ca_id, f.reason, f.revoked_at, f.status_version, f.queued_at, \
         f.attempts, f.last_error, f.next_attempt_at, f.acknowledged_at, f.failed_at, \
         f.dropped_at, f.dropped_by, f.drop_reason, \
         CAST(CASE WHEN c.serial IS NOT NULL AND c.status_version = f.status_version \
         AND c.status IN ('revoked', 'on-hold') THEN 0 ELSE 1 END AS BIGINT) AS superseded \
         FROM revocation_forwards f LEFT JOIN certificates c ON c.serial = f.serial \
         ORDER BY f.queued_at, f.serial LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The CA refused the forward of `serial`'s status `version` for good (`error`, its reason): it
/// is counted, marked failed at `now`, and not retried until an admin asks.
pub async fn refused(
    conn: &mut Conn,
    serial: &str,
    version: i64,
    error: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE revocation_forwards SET attempts = attempts + 1, last_error = $3, failed_at = $4 \
         WHERE serial = $1 AND status_version = $2 AND acknowledged_at IS NULL",
    )
    .bind(serial)
    .bind(version)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// An admin asks again for the forward of `serial`'s status `version` (failed, backing off, or,
/// with `dropped_too`, dropped): due at `now`, no longer failed or dropped. False when it was
/// acknowledged or replaced meanwhile (or dropped, without `dropped_too`).
pub async fn retry(
    conn: &mut Conn,
    serial: &str,
    version: i64,
    now: i64,
    dropped_too: bool,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE revocation_forwards SET failed_at = NULL, dropped_at = NULL, dropped_by = NULL, \
         drop_reason = NULL, next_attempt_at = $3 \
         WHERE serial = $1 AND status_version = $2 AND acknowledged_at IS NULL \
         AND ($4 = 1 OR dropped_at IS NULL)",
    )
    .bind(serial)
    .bind(version)
    .bind(now)
    .bind(i64::from(dropped_too))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The forwards a bulk retry asks again for, oldest first, at most `limit`: pending ones a retry
/// changes (refused, or waiting for a later attempt than `now`; not those already due, nor
/// dropped ones), to `ca_id` only when given, and only the refused ones when `failed_only`.
pub async fn retryable(
    conn: &mut Conn,
    ca_id: Option<&str>,
    failed_only: bool,
    now: i64,
    limit: i64,
) -> Result<Vec<ForwardRow>> {
    Ok(sqlx::query_as(&format!(
        "{PENDING} AND ($1 = '' OR f.ca_id = $1) \
         AND (f.failed_at IS NOT NULL OR ($2 = 0 AND f.next_attempt_at > $3)) \
         ORDER BY f.queued_at, f.serial LIMIT $4"
    ))
    .bind(ca_id.unwrap_or(""))
    .bind(i64::from(failed_only))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// An admin (`by`; None: the host's command line) gives up the forward of `serial`'s status
/// `version` for `reason`: the CA is never told. False when it was acknowledged, dropped or
/// replaced meanwhile.
pub async fn drop(
    conn: &mut Conn,
    serial: &str,
    version: i64,
    by: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE revocation_forwards SET dropped_at = $3, dropped_by = $4, drop_reason = $5 \
         WHERE serial = $1 AND status_version = $2 AND acknowledged_at IS NULL \
         AND dropped_at IS NULL",
    )
    .bind(serial)
    .bind(version)
    .bind(now)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The pending forward of certificate `serial`'s current status (retried, or failed and waiting
/// for an admin), if any.
pub async fn pending_of(conn: &mut Conn, serial: &str) -> Result<Option<ForwardRow>> {
    Ok(sqlx::query_as(&format!("{PENDING} AND f.serial = $1"))
        .bind(serial)
        .fetch_optional(conn)
        .await?)
}

/// The pending forwards (retried, or failed and waiting for an admin) to the CA `ca_id`,
/// oldest first, at most `limit`.
pub async fn pending_to(conn: &mut Conn, ca_id: &str, limit: i64) -> Result<Vec<ForwardRow>> {
    Ok(sqlx::query_as(&format!(
        "{PENDING} AND f.ca_id = $1 ORDER BY f.queued_at, f.serial LIMIT $2"
    ))
    .bind(ca_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Every pending forward (retried, or failed and waiting for an admin), oldest first.
pub async fn pending(conn: &mut Conn, limit: i64) -> Result<Vec<ForwardRow>> {
    Ok(sqlx::query_as(&format!(
        "{PENDING} ORDER BY f.queued_at, f.serial LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The CA acknowledged the forward of `serial`'s status `version`. False when a later status
/// replaced it meanwhile (that one stays pending).
pub async fn acknowledge(conn: &mut Conn, serial: &str, version: i64, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE revocation_forwards SET acknowledged_at = $3, last_error = NULL \
         WHERE serial = $1 AND status_version = $2 AND acknowledged_at IS NULL",
    )
    .bind(serial)
    .bind(version)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Count a failed attempt at forwarding `serial`'s status `version`, and when to try again.
pub async fn attempt_failed(
    conn: &mut Conn,
    serial: &str,
    version: i64,
    error: &str,
    next_attempt_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE revocation_forwards SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4 \
         WHERE serial = $1 AND status_version = $2 AND acknowledged_at IS NULL",
    )
    .bind(serial)
    .bind(version)
    .bind(error)
    .bind(next_attempt_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An approved request whose certificate its CA has not delivered yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingIssuanceRow {
    /// The request.
    pub request_id: String,
    /// The request's profile.
    pub profile: String,
    /// The CA asked to sign.
    pub ca_id: String,
    /// The serial reserved for it (hex).
    pub serial: String,
    /// When the intent was recorded (Unix seconds).
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it is next tried (Unix seconds).
    pub next_attempt_at: i64,
}

/// Approved requests waiting for their certificate, oldest first.
pub async fn pending_issuances(conn: &mut Conn, limit: i64) -> Result<Vec<PendingIssuanceRow>> {
    Ok(sqlx::query_as(
        "SELECT i.request_id, r.profile, i.ca_id, i.serial, i.created_at, i.attempts, i.last_error, \
         i.next_attempt_at FROM issuance_intents i JOIN requests r ON r.id = i.request_id \
         WHERE r.status = 'approved' ORDER BY i.created_at, i.request_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
