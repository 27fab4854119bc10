//! The `operators` table: RA operators, their roles, their token hashes and whether they are
//! disabled.

use super::Conn;
use crate::error::Result;

/// An RA operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorRow {
    /// The operator's id.
    pub id: String,
    /// The operator's name (unique regardless of case).
    pub name: String,
    /// The operator's roles, comma-separated.
    pub roles: String,
    /// When the operator was created (Unix seconds).
    pub created_at: i64,
    /// When the operator was disabled (Unix seconds).
    pub disabled_at: Option<i64>,
}

/// What a four-eyes check needs of an operator: roles, when and by whom it was created, whether
/// it is disabled.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Standing {
    /// The operator's roles, comma-separated.
    pub roles: String,
    /// When the operator was created (Unix seconds).
    pub created_at: i64,
    /// The admin who created it over the API (None: on the host, or the first admin).
    pub created_by: Option<String>,
    /// When the operator was disabled (Unix seconds).
    pub disabled_at: Option<i64>,
}

/// The standing of operator `id`.
pub async fn standing(conn: &mut Conn, id: &str) -> Result<Option<Standing>> {
    Ok(sqlx::query_as(
        "SELECT roles, created_at, created_by, disabled_at FROM operators WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Record an operator with the hash of their token (a taken name is a unique violation).
pub async fn insert(
    conn: &mut Conn,
    id: &str,
    name: &str,
    roles: &str,
    token_hash: &[u8],
    created_by: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO operators (id, name, roles, token_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(roles)
    .bind(token_hash)
    .bind(now)
    .bind(created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// The operator whose token hashes to `token_hash`.
pub async fn by_token_hash(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<OperatorRow>> {
    Ok(sqlx::query_as(
        "SELECT id, name, roles, created_at, disabled_at FROM operators WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// The operator whose name equals `name` regardless of case (names are ASCII).
pub async fn by_name_ignoring_case(conn: &mut Conn, name: &str) -> Result<Option<OperatorRow>> {
    Ok(sqlx::query_as(
        "SELECT id, name, roles, created_at, disabled_at FROM operators WHERE lower(name) = lower($1)",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

/// Every operator, by name.
pub async fn list(conn: &mut Conn) -> Result<Vec<OperatorRow>> {
    Ok(sqlx::query_as(
        "SELECT id, name, roles, created_at, disabled_at FROM operators ORDER BY name",
    )
    .fetch_all(conn)
    .await?)
}

/// How many operators there are.
pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operators")
        .fetch_one(conn)
        .await?)
}

/// Disable an operator; false when already disabled or unknown.
pub async fn disable(conn: &mut Conn, id: &str, now: i64) -> Result<bool> {
    let r =
        sqlx::query("UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(r.rows_affected() == 1)
}
