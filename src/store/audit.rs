use super::Conn;
use crate::error::Result;
use futures_util::TryStreamExt;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

pub async fn head(conn: &mut Conn) -> Result<Option<(i64, Vec<u8>)>> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn append(conn: &mut Conn, row: &AuditRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.seq)
    .bind(row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.details)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(row.seq)
    .bind(&row.hash)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn page(conn: &mut Conn, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Visit every row in order without holding the whole log in memory.
pub async fn for_each<F>(conn: &mut Conn, mut f: F) -> Result<()>
where
    F: FnMut(AuditRow) -> std::ops::ControlFlow<()>,
{
    let mut rows = sqlx::query_as::<_, AuditRow>(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log ORDER BY seq",
    )
    .fetch(conn);
    while let Some(row) = rows.try_next().await? {
        if f(row).is_break() {
            break;
        }
    }
    Ok(())
}
