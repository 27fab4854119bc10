//! The root CA's records (migration 0010): issuing CA certificates and ARLs.

use super::Conn;
use crate::error::Result;

/// A CA certificate the root has issued.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaCertificateRow {
    /// The serial (hex).
    pub serial: String,
    /// The CA it certifies (`issuing`).
    pub ca_id: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// When it was recorded (Unix seconds).
    pub recorded_at: i64,
    /// When it was revoked (Unix seconds).
    pub revoked_at: Option<i64>,
    /// The revocation reason's name.
    pub reason: Option<String>,
}

/// Record a CA certificate; one already recorded is left as it is. Returns whether it was new.
pub async fn record(
    conn: &mut Conn,
    serial: &str,
    ca_id: &str,
    der: &[u8],
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO ca_certificates (serial, ca_id, der, recorded_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (serial) DO NOTHING",
    )
    .bind(serial)
    .bind(ca_id)
    .bind(der)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Every certificate recorded for `ca_id`.
pub async fn list(conn: &mut Conn, ca_id: &str) -> Result<Vec<CaCertificateRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, ca_id, der, recorded_at, revoked_at, reason FROM ca_certificates \
         WHERE ca_id = $1 ORDER BY recorded_at, serial",
    )
    .bind(ca_id)
    .fetch_all(conn)
    .await?)
}

/// Every revoked CA certificate: the ARL's entries.
pub async fn revoked(conn: &mut Conn) -> Result<Vec<CaCertificateRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, ca_id, der, recorded_at, revoked_at, reason FROM ca_certificates \
         WHERE revoked_at IS NOT NULL ORDER BY serial",
    )
    .fetch_all(conn)
    .await?)
}

/// Revoke every certificate of `ca_id` not revoked yet; returns their serials.
pub async fn revoke_all(
    conn: &mut Conn,
    ca_id: &str,
    reason: &str,
    at: i64,
) -> Result<Vec<String>> {
    let serials: Vec<String> = sqlx::query_scalar(
        "SELECT serial FROM ca_certificates WHERE ca_id = $1 AND revoked_at IS NULL ORDER BY serial",
    )
    .bind(ca_id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE ca_certificates SET revoked_at = $2, reason = $3 \
         WHERE ca_id = $1 AND revoked_at IS NULL",
    )
    .bind(ca_id)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(serials)
}

/// A signed ARL (the root's CRL of CA certificates).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArlRow {
    /// Its CRL number.
    pub number: i64,
    /// thisUpdate (Unix seconds).
    pub this_update: i64,
    /// nextUpdate (Unix seconds).
    pub next_update: i64,
    /// The ARL, DER.
    pub der: Vec<u8>,
}

/// The ARL with the highest number.
pub async fn current_arl(conn: &mut Conn) -> Result<Option<ArlRow>> {
    Ok(sqlx::query_as(
        "SELECT number, this_update, next_update, der FROM arls ORDER BY number DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?)
}

/// Store a signed ARL.
pub async fn insert_arl(conn: &mut Conn, arl: &ArlRow) -> Result<()> {
    sqlx::query("INSERT INTO arls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)")
        .bind(arl.number)
        .bind(arl.this_update)
        .bind(arl.next_update)
        .bind(&arl.der)
        .execute(conn)
        .await?;
    Ok(())
}
