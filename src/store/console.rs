//! The console's rows: operators' login columns (password hash, sealed TOTP secret, failed
//! logins, lock) and `console_sessions`, which holds only the SHA-256 of each session token.

use super::Conn;
use crate::error::Result;

/// What a console login needs to know of an operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    /// The operator's id.
    pub id: String,
    /// The operator's name.
    pub name: String,
    /// Comma-separated roles.
    pub roles: String,
    /// When disabled (Unix seconds).
    pub disabled_at: Option<i64>,
    /// argon2id PHC string, if a password was set.
    pub password_hash: Option<String>,
    /// The TOTP secret, sealed with the console key.
    pub totp_sealed: Option<Vec<u8>>,
    /// When TOTP enrolment was confirmed.
    pub totp_enrolled_at: Option<i64>,
    /// The last TOTP step accepted (a code is good once).
    pub totp_last_step: Option<i64>,
    /// Failed logins since the last success.
    pub failed_logins: i64,
    /// Locked until (Unix seconds).
    pub locked_until: Option<i64>,
}

const LOGIN_COLUMNS: &str = "id, name, roles, disabled_at, password_hash, totp_sealed, \
     totp_enrolled_at, totp_last_step, failed_logins, locked_until";

/// The operator named `name` (ignoring case), with its login columns.
pub async fn login_by_name(conn: &mut Conn, name: &str) -> Result<Option<LoginRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOGIN_COLUMNS} FROM operators WHERE lower(name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

/// The operator `id`, with its login columns.
pub async fn login_by_id(conn: &mut Conn, id: &str) -> Result<Option<LoginRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOGIN_COLUMNS} FROM operators WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Set an operator's password hash; false if there is no such operator.
pub async fn set_password(conn: &mut Conn, id: &str, hash: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE operators SET password_hash = $1, failed_logins = 0, locked_until = NULL WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Count a failed login and set the lock (None: no lock yet).
pub async fn login_failed(
    conn: &mut Conn,
    id: &str,
    failures: i64,
    locked_until: Option<i64>,
) -> Result<()> {
    sqlx::query("UPDATE operators SET failed_logins = $1, locked_until = $2 WHERE id = $3")
        .bind(failures)
        .bind(locked_until)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A successful login: failures forgotten, the TOTP step used recorded (when one was).
pub async fn login_succeeded(conn: &mut Conn, id: &str, totp_step: Option<i64>) -> Result<()> {
    sqlx::query(
        "UPDATE operators SET failed_logins = 0, locked_until = NULL, \
         totp_last_step = COALESCE($1, totp_last_step) WHERE id = $2",
    )
    .bind(totp_step)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Store a new, not yet confirmed, TOTP secret (replacing any earlier unconfirmed one).
pub async fn set_totp_pending(conn: &mut Conn, id: &str, sealed: &[u8]) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE operators SET totp_sealed = $1, totp_last_step = NULL \
         WHERE id = $2 AND totp_enrolled_at IS NULL",
    )
    .bind(sealed)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Confirm the TOTP enrolment with the step of the code that proved it.
pub async fn confirm_totp(conn: &mut Conn, id: &str, now: i64, step: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE operators SET totp_enrolled_at = $1, totp_last_step = $2 \
         WHERE id = $3 AND totp_enrolled_at IS NULL AND totp_sealed IS NOT NULL",
    )
    .bind(now)
    .bind(step)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forget an operator's TOTP (they enrol again at their next login).
pub async fn reset_totp(conn: &mut Conn, id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE operators SET totp_sealed = NULL, totp_enrolled_at = NULL, totp_last_step = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A console session, joined with its operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// The operator's id.
    pub operator_id: String,
    /// The operator's name.
    pub name: String,
    /// The operator's roles, comma-separated.
    pub roles: String,
    /// When the operator was disabled.
    pub disabled_at: Option<i64>,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// `enrol` or `full`.
    pub stage: String,
    /// When it started.
    pub created_at: i64,
    /// When it was last used.
    pub last_seen_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
}

/// Record a new session.
pub async fn insert_session(
    conn: &mut Conn,
    token_hash: &[u8],
    operator_id: &str,
    csrf: &str,
    stage: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, operator_id, csrf_token, stage, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(token_hash)
    .bind(operator_id)
    .bind(csrf)
    .bind(stage)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The session whose token hashes to `token_hash`.
pub async fn session(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT s.operator_id, o.name, o.roles, o.disabled_at, s.csrf_token, s.stage, \
         s.created_at, s.last_seen_at, s.ended_at \
         FROM console_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Note that a session was used now.
pub async fn touch_session(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Move a session to the `full` stage (TOTP enrolled).
pub async fn upgrade_session(conn: &mut Conn, token_hash: &[u8]) -> Result<()> {
    sqlx::query(
        "UPDATE console_sessions SET stage = 'full' WHERE token_hash = $1 AND ended_at IS NULL",
    )
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// End a session; false if it had ended already.
pub async fn end_session(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE console_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// End every live session of an operator (disabled, password or TOTP reset).
pub async fn end_sessions_of(conn: &mut Conn, operator_id: &str, now: i64) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE console_sessions SET ended_at = $1 WHERE operator_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(operator_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Delete sessions that are over (ended, or idle or old past their timeouts, as of `idle_before`
/// and `created_before`); returns how many.
pub async fn prune_sessions(conn: &mut Conn, idle_before: i64, created_before: i64) -> Result<u64> {
    let r = sqlx::query(
        "DELETE FROM console_sessions WHERE ended_at IS NOT NULL OR last_seen_at < $1 \
         OR created_at < $2",
    )
    .bind(idle_before)
    .bind(created_before)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
