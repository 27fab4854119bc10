//! The last CRL used for each remote CA (`upstream_crls`, migration 0017): its thisUpdate, so
//! that a replayed or stale CRL is not used after a restart or by another instance; and the holds
//! a CA's CRL set here (`upstream_holds`, migration 0022), so that the CA's lifting them is
//! mirrored.

use super::Conn;
use crate::error::Result;

/// thisUpdate (Unix seconds) of the last CRL used for the CA `ca_id`, if any.
pub async fn last_this_update(conn: &mut Conn, ca_id: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT this_update FROM upstream_crls WHERE ca_id = $1")
            .bind(ca_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Record that a CRL of `ca_id` with `this_update` was used (never moves back).
pub async fn record_this_update(
    conn: &mut Conn,
    ca_id: &str,
    this_update: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_crls (ca_id, this_update, read_at) VALUES ($1, $2, $3) \
         ON CONFLICT (ca_id) DO UPDATE SET this_update = excluded.this_update, read_at = excluded.read_at \
         WHERE upstream_crls.this_update <= excluded.this_update",
    )
    .bind(ca_id)
    .bind(this_update)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the status of the certificate `serial` last changed (Unix seconds), if it ever did.
pub async fn status_changed_at(conn: &mut Conn, serial: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "SELECT status_changed_at FROM certificates WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Record that the certificate `serial` was put on hold here from a certificateHold entry of the
/// CRL of `ca_id` made at `crl_this_update` (migration 0022), at the status version the hold
/// gave it. Call in the write that made the hold.
pub async fn record_hold(
    conn: &mut Conn,
    serial: &str,
    ca_id: &str,
    crl_this_update: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_holds (serial, ca_id, status_version, crl_this_update) \
         SELECT serial, $2, status_version, $3 FROM certificates WHERE serial = $1 \
         ON CONFLICT (serial) DO UPDATE SET ca_id = excluded.ca_id, \
         status_version = excluded.status_version, crl_this_update = excluded.crl_this_update",
    )
    .bind(serial)
    .bind(ca_id)
    .bind(crl_this_update)
    .execute(conn)
    .await?;
    Ok(())
}

/// A hold of a certificate of `ca_id` that came from that CA's CRL and still stands (nothing
/// changed the certificate's status here since).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpstreamHold {
    /// The certificate's serial (hex).
    pub serial: String,
    /// Its status version, as the hold left it.
    pub status_version: i64,
    /// thisUpdate of the CRL that set the hold (Unix seconds).
    pub crl_this_update: i64,
    /// The certificate's DER.
    pub der: Vec<u8>,
}

/// The standing holds of certificates of `ca_id` that came from a CRL of it older than
/// `crl_time` and that are still within their validity then (a CA may leave an expired
/// certificate off its CRL: that lifts nothing), at most `limit`, the oldest first.
pub async fn standing_holds(
    conn: &mut Conn,
    ca_id: &str,
    crl_time: i64,
    limit: i64,
) -> Result<Vec<UpstreamHold>> {
    Ok(sqlx::query_as(
        "SELECT h.serial, h.status_version, h.crl_this_update, c.der FROM upstream_holds h \
         JOIN certificates c ON c.serial = h.serial AND c.status_version = h.status_version \
         AND c.status = 'on-hold' AND c.ca_id = h.ca_id \
         WHERE h.ca_id = $1 AND h.crl_this_update < $2 AND c.not_after > $2 \
         ORDER BY h.crl_this_update, h.serial LIMIT $3",
    )
    .bind(ca_id)
    .bind(crl_time)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Whether the hold of `serial` recorded from the CA's CRL still stands at `status_version`.
pub async fn hold_stands(conn: &mut Conn, serial: &str, status_version: i64) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM upstream_holds h JOIN certificates c ON c.serial = h.serial \
         AND c.status_version = h.status_version AND c.status = 'on-hold' \
         WHERE h.serial = $1 AND h.status_version = $2",
    )
    .bind(serial)
    .bind(status_version)
    .fetch_one(conn)
    .await?
        > 0)
}

/// The standing hold of the certificate `serial` that a CA's CRL or OCSP answer set, if any.
pub async fn standing_hold_of(conn: &mut Conn, serial: &str) -> Result<Option<UpstreamHold>> {
    Ok(sqlx::query_as(
        "SELECT h.serial, h.status_version, h.crl_this_update, c.der FROM upstream_holds h \
         JOIN certificates c ON c.serial = h.serial AND c.status_version = h.status_version \
         AND c.status = 'on-hold' AND c.ca_id = h.ca_id WHERE h.serial = $1",
    )
    .bind(serial)
    .fetch_optional(conn)
    .await?)
}
