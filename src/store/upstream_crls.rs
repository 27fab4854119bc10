//! The last CRL used for each remote CA (`upstream_crls`, migration 0017): its thisUpdate, so
//! that a replayed or stale CRL is not used after a restart or by another instance.

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
