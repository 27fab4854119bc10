//! Stored key fingerprints, for re-keying them to the canonical key identity (see
//! `ra::keys`).

use super::Conn;
use crate::error::Result;

/// (request id, SPKI as stored, key_sha256 as stored), in id order after `after`.
pub async fn request_keys_after(
    conn: &mut Conn,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, spki_der, key_sha256 FROM requests WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// (serial, certificate DER, key_sha256 as stored), in serial order after `after`.
pub async fn certificate_keys_after(
    conn: &mut Conn,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>, String)>> {
    Ok(sqlx::query_as(
        "SELECT serial, der, key_sha256 FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Store a request's canonical SPKI and fingerprint, and its issuance intent's fingerprint.
pub async fn set_request_key(
    conn: &mut Conn,
    id: &str,
    spki_der: &[u8],
    sha256: &str,
) -> Result<()> {
    sqlx::query("UPDATE requests SET spki_der = $1, key_sha256 = $2 WHERE id = $3")
        .bind(spki_der)
        .bind(sha256)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE issuance_intents SET key_sha256 = $1 WHERE request_id = $2")
        .bind(sha256)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Store a certificate's canonical key fingerprint.
pub async fn set_certificate_key(conn: &mut Conn, serial: &str, sha256: &str) -> Result<()> {
    sqlx::query("UPDATE certificates SET key_sha256 = $1 WHERE serial = $2")
        .bind(sha256)
        .bind(serial)
        .execute(conn)
        .await?;
    Ok(())
}

/// A block recorded under a key's old fingerprint applies to its canonical one too. Returns
/// whether a block was carried over.
pub async fn carry_block(conn: &mut Conn, old: &str, new: &str) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO blocked_keys (key_sha256, reason, blocked_by, blocked_at) \
         SELECT $2, reason, blocked_by, blocked_at FROM blocked_keys WHERE key_sha256 = $1 \
         ON CONFLICT (key_sha256) DO NOTHING",
    )
    .bind(old)
    .bind(new)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
