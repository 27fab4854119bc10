use super::Conn;
use crate::error::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub serial: String,
    pub request_id: String,
    pub subscriber_id: String,
    pub ca_id: String,
    pub profile: String,
    pub subject: String,
    pub key_sha256: String,
    pub not_before: i64,
    pub not_after: i64,
    pub der: Vec<u8>,
    pub status: String,
    pub issued_at: i64,
}

pub async fn insert(conn: &mut Conn, c: &CertificateRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO certificates (serial, request_id, subscriber_id, ca_id, profile, subject, key_sha256, \
         not_before, not_after, der, status, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&c.serial)
    .bind(&c.request_id)
    .bind(&c.subscriber_id)
    .bind(&c.ca_id)
    .bind(&c.profile)
    .bind(&c.subject)
    .bind(&c.key_sha256)
    .bind(c.not_before)
    .bind(c.not_after)
    .bind(&c.der)
    .bind(&c.status)
    .bind(c.issued_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, serial: &str) -> Result<Option<CertificateRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, request_id, subscriber_id, ca_id, profile, subject, key_sha256, not_before, not_after, \
         der, status, issued_at FROM certificates WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(conn)
    .await?)
}

pub async fn count_for_request(conn: &mut Conn, request_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(conn)
            .await?,
    )
}

pub async fn is_key_blocked(conn: &mut Conn, key_sha256: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM blocked_keys WHERE key_sha256 = $1")
            .bind(key_sha256)
            .fetch_optional(conn)
            .await?,
    )
}

/// Returns false if the key was already blocked.
pub async fn block_key(
    conn: &mut Conn,
    key_sha256: &str,
    reason: &str,
    by: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO blocked_keys (key_sha256, reason, blocked_by, blocked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_sha256) DO NOTHING",
    )
    .bind(key_sha256)
    .bind(reason)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
