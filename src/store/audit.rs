//! The audit log's tables: `audit_log` (the entries), `audit_head` (the newest entry's number and
//! hash) and the `audit.*` marks in `instance_meta`. Only SQL lives here; the hashing and linking
//! are [`crate::audit::chain`]'s.

use super::Conn;
use crate::audit::chain;
use crate::error::Result;
use futures_util::TryStreamExt;

pub use crate::audit::chain::{NewEntry, GENESIS};

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
        let rows = chain::link(&start, entries);
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
                        .bind(r.entry.at)
                        .bind(&r.entry.actor)
                        .bind(&r.entry.action)
                        .bind(&r.entry.target)
                        .bind(&r.entry.details)
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

/// One stored entry of `audit_log`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// The entry's number, from 1.
    pub seq: i64,
    /// Microseconds since the Unix epoch.
    pub at: i64,
    /// Operator id, or None for the system itself and unauthenticated callers.
    pub actor: Option<String>,
    /// The action string.
    pub action: String,
    /// What it happened to.
    pub target: Option<String>,
    /// JSON text.
    pub details: String,
    /// The hash of the entry before.
    pub prev_hash: Vec<u8>,
    /// This entry's hash ([`chain::entry_hash`]).
    pub hash: Vec<u8>,
}

/// The chain head `(seq, hash)`, or None before the first entry.
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

/// Up to `limit` entries after entry `after_seq`, oldest first.
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

/// What an auditor filters the log by; every field optional. Times are Unix microseconds, as
/// `at` is stored.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The actor's operator id.
    pub actor: Option<String>,
    /// The action string.
    pub action: Option<String>,
    /// The object (target) id.
    pub target: Option<String>,
    /// At or after.
    pub from_micros: Option<i64>,
    /// Before.
    pub to_micros: Option<i64>,
    /// Entries before this sequence number (the next page, newest first).
    pub before_seq: Option<i64>,
}

/// Up to `limit` entries matching `f`, newest first (walks an index backwards, so a page costs
/// the same at any depth of the log). Only the filters given are in the query, so an actor,
/// action or object filter is a range over its `(column, seq)` index (migration 0018).
pub async fn search(conn: &mut Conn, f: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>> {
    let mut sql = String::from(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log \
         WHERE seq < $1",
    );
    let mut n = 1;
    let mut cond = |sql: &mut String, text: &str| {
        n += 1;
        sql.push_str(&format!(" AND {text} ${n}"));
    };
    for (given, text) in [
        (f.actor.is_some(), "actor ="),
        (f.action.is_some(), "action ="),
        (f.target.is_some(), "target ="),
        (f.from_micros.is_some(), "at >="),
        (f.to_micros.is_some(), "at <"),
    ] {
        if given {
            cond(&mut sql, text);
        }
    }
    n += 1;
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${n}"));
    let mut q = sqlx::query_as(&sql).bind(f.before_seq.unwrap_or(i64::MAX));
    for text in [&f.actor, &f.action, &f.target].into_iter().flatten() {
        q = q.bind(text.as_str());
    }
    for micros in [f.from_micros, f.to_micros].into_iter().flatten() {
        q = q.bind(micros);
    }
    Ok(q.bind(limit).fetch_all(conn).await?)
}
