//! `operator_resets`: four-eyes TOTP resets and password changes of operators, pending until a
//! second admin decides them (migration 0019).

use super::Conn;
use crate::error::Result;
use crate::state::ResetState;

/// A reset as stored, with the names of the operator concerned and of the admin who asked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResetRow {
    /// The reset's id.
    pub id: String,
    /// The operator whose TOTP or password is to change.
    pub operator_id: String,
    /// That operator's name.
    pub operator_name: String,
    /// `totp` or `password`.
    pub kind: String,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: ResetState,
    /// Why the admin asked.
    pub reason: String,
    /// The admin who asked.
    pub requested_by: String,
    /// That admin's name.
    pub requested_by_name: String,
    /// When it was asked (Unix seconds).
    pub created_at: i64,
    /// When it expires if still pending (Unix seconds).
    pub expires_at: i64,
    /// Who decided it (approved, rejected, cancelled).
    pub decided_by: Option<String>,
    /// When it was decided or expired (Unix seconds).
    pub decided_at: Option<i64>,
    /// Why it was rejected.
    pub decision_reason: Option<String>,
}

const COLUMNS: &str = "r.id, r.operator_id, t.name AS operator_name, r.kind, r.status, r.reason, \
     r.requested_by, q.name AS requested_by_name, r.created_at, r.expires_at, r.decided_by, \
     r.decided_at, r.decision_reason";
const FROM: &str = "FROM operator_resets r JOIN operators t ON t.id = r.operator_id \
     JOIN operators q ON q.id = r.requested_by";

/// What a new reset records.
pub struct NewReset<'a> {
    /// The reset's id.
    pub id: &'a str,
    /// The operator concerned.
    pub operator_id: &'a str,
    /// `totp` or `password`.
    pub kind: &'a str,
    /// Why.
    pub reason: &'a str,
    /// The argon2id PHC string of the new password (`password` only).
    pub password_hash: Option<&'a str>,
    /// The admin who asks.
    pub requested_by: &'a str,
    /// Now (Unix seconds).
    pub created_at: i64,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// Record a pending reset (one pending per operator and kind: a second is a unique violation).
pub async fn insert(conn: &mut Conn, r: &NewReset<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO operator_resets (id, operator_id, kind, status, reason, password_hash, \
         requested_by, created_at, expires_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)",
    )
    .bind(r.id)
    .bind(r.operator_id)
    .bind(r.kind)
    .bind(r.reason)
    .bind(r.password_hash)
    .bind(r.requested_by)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The reset `id`.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<ResetRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} {FROM} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Resets in `status` (all when None), newest first, at most `limit`.
pub async fn list(
    conn: &mut Conn,
    status: Option<ResetState>,
    limit: i64,
) -> Result<Vec<ResetRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE ($1 IS NULL OR r.status = $1) \
         ORDER BY r.created_at DESC, r.id DESC LIMIT $2"
    ))
    .bind(status.map(|s| s.as_str()))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The new password's hash of a pending reset (read inside the approving transaction).
pub async fn pending_password_hash(conn: &mut Conn, id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT password_hash FROM operator_resets WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Move a pending reset to `to` (compare-and-set on `pending`), forgetting its password hash;
/// false when it was no longer pending. `approved` applies only while unexpired, when `by` is
/// neither the admin who asked nor the operator concerned, when `by`, the admin who asked and the
/// operator concerned are all still enabled, and when `by` was neither created by the admin who
/// asked nor created after the reset was asked for: the four-eyes rule is a condition of this
/// statement, so a check that raced with it cannot let one person through.
pub async fn decide(
    conn: &mut Conn,
    id: &str,
    to: ResetState,
    by: Option<&str>,
    now: i64,
    why: Option<&str>,
) -> Result<bool> {
    let approving = to == ResetState::Approved;
    let r = sqlx::query(
        "UPDATE operator_resets SET status = $1, decided_by = $2, decided_at = $3, \
         decision_reason = $4, password_hash = NULL \
         WHERE id = $5 AND status = 'pending' \
         AND ($6 = 0 OR (expires_at > $3 AND requested_by <> $2 AND operator_id <> $2 \
           AND EXISTS (SELECT 1 FROM operators q \
             WHERE q.id = operator_resets.requested_by AND q.disabled_at IS NULL) \
           AND EXISTS (SELECT 1 FROM operators t \
             WHERE t.id = operator_resets.operator_id AND t.disabled_at IS NULL) \
           AND EXISTS (SELECT 1 FROM operators a WHERE a.id = $2 AND a.disabled_at IS NULL \
             AND a.created_at <= operator_resets.created_at \
             AND (a.created_by IS NULL OR a.created_by <> operator_resets.requested_by))))",
    )
    .bind(to.as_str())
    .bind(by)
    .bind(now)
    .bind(why)
    .bind(id)
    .bind(i64::from(approving))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Pending resets an operator asked for or is the subject of (they are being disabled, or their
/// password or TOTP was set on the host).
pub async fn pending_concerning(conn: &mut Conn, operator: &str) -> Result<Vec<ResetRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE (r.requested_by = $1 OR r.operator_id = $1) \
         AND r.status = 'pending' ORDER BY r.created_at, r.id"
    ))
    .bind(operator)
    .fetch_all(conn)
    .await?)
}

/// The pending reset of `kind` for `operator`, if any (expired or not).
pub async fn pending_of(conn: &mut Conn, operator: &str, kind: &str) -> Result<Option<ResetRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE r.operator_id = $1 AND r.kind = $2 \
         AND r.status = 'pending'"
    ))
    .bind(operator)
    .bind(kind)
    .fetch_optional(conn)
    .await?)
}

/// Pending resets past their expiry, as of `now`.
pub async fn overdue(conn: &mut Conn, now: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM operator_resets WHERE status = 'pending' AND expires_at <= $1 \
         ORDER BY expires_at LIMIT 1000",
    )
    .bind(now)
    .fetch_all(conn)
    .await?)
}
