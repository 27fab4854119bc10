use super::Conn;
use crate::error::Result;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

/// prev_hash of the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];
const DOMAIN: &[u8] = b"vouch-audit-v1";

/// An entry waiting for its place in the chain.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Microseconds since the Unix epoch.
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub details: String,
}

fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        None => h.update(u64::MAX.to_be_bytes()),
    }
}

/// The hash that links an entry to its predecessor. Every field is length-prefixed, so field
/// boundaries are unambiguous.
pub fn row_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    details: &str,
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    put(&mut h, Some(prev));
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    put(&mut h, actor.map(str::as_bytes));
    put(&mut h, Some(action.as_bytes()));
    put(&mut h, target.map(str::as_bytes));
    put(&mut h, Some(details.as_bytes()));
    h.finalize().to_vec()
}

fn chain(start: &(i64, Vec<u8>), entries: &[NewEntry]) -> Vec<AuditRow> {
    let (mut seq, mut prev) = start.clone();
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let hash = row_hash(
            &prev,
            seq,
            e.at,
            e.actor.as_deref(),
            &e.action,
            e.target.as_deref(),
            &e.details,
        );
        rows.push(AuditRow {
            seq,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            details: e.details.clone(),
            prev_hash: prev,
            hash: hash.clone(),
        });
        prev = hash;
    }
    rows
}

/// Append `entries` to the chain inside the current write transaction and return the new head.
/// The head row moves by compare-and-set from `cached` (what this writer last committed); if
/// another writer moved it since, the head is re-read and the entries are chained onto it.
pub(crate) async fn append_batch(
    conn: &mut Conn,
    cached: Option<(i64, Vec<u8>)>,
    entries: &[NewEntry],
) -> Result<(i64, Vec<u8>)> {
    let mut start = match cached {
        Some(h) => h,
        None => head(conn).await?.unwrap_or((0, GENESIS.to_vec())),
    };
    for attempt in 0..2 {
        let rows = chain(&start, entries);
        let last = rows
            .last()
            .map(|r| (r.seq, r.hash.clone()))
            .unwrap_or_else(|| start.clone());
        let moved = if start.0 == 0 {
            sqlx::query("INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(last.0)
                .bind(&last.1)
                .execute(&mut *conn)
                .await?
        } else {
            sqlx::query(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4",
            )
            .bind(last.0)
            .bind(&last.1)
            .bind(start.0)
            .bind(&start.1)
            .execute(&mut *conn)
            .await?
        };
        if moved.rows_affected() == 1 {
            for chunk in rows.chunks(500) {
                // `$n` placeholders written out: both engines take them (the Any driver's query
                // builder would write `?`, which PostgreSQL does not).
                let mut sql = String::from(
                    "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) VALUES ",
                );
                for i in 0..chunk.len() {
                    let n = i * 8;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7,
                        n + 8
                    ));
                }
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q
                        .bind(r.seq)
                        .bind(r.at)
                        .bind(&r.actor)
                        .bind(&r.action)
                        .bind(&r.target)
                        .bind(&r.details)
                        .bind(&r.prev_hash)
                        .bind(&r.hash);
                }
                q.execute(&mut *conn).await?;
            }
            return Ok(last);
        }
        if attempt == 0 {
            start = head(conn).await?.unwrap_or((0, GENESIS.to_vec()));
        }
    }
    Err(crate::error::Error::internal(
        "the audit chain head moved during a write transaction",
    ))
}

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

/// The newest `n` rows, oldest first.
pub async fn last(conn: &mut Conn, n: i64) -> Result<Vec<AuditRow>> {
    let mut rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log \
         ORDER BY seq DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(conn)
    .await?;
    rows.reverse();
    Ok(rows)
}

/// Move the chain head to (seq, hash), creating the head row if it is missing. Only the
/// acknowledgement of a broken chain does this; appends move the head by compare-and-set.
pub async fn set_head(conn: &mut Conn, seq: i64, hash: &[u8]) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(seq)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks about the chain's state kept in `instance_meta` under keys starting with `audit.`:
/// (key, value) pairs. They are only ever inserted, so the application role needs no UPDATE or
/// DELETE on the table.
pub async fn marks(conn: &mut Conn) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as(
            "SELECT key, value FROM instance_meta WHERE key LIKE 'audit.%' ORDER BY key",
        )
        .fetch_all(conn)
        .await?,
    )
}

/// Insert a mark unless it exists; true when this call inserted it.
pub async fn add_mark(conn: &mut Conn, key: &str, value: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO instance_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
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
