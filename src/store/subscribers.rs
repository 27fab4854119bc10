//! The `subscribers` table (vetted people and organisations) and their `evidence` (identity
//! documents seen, with validity dates), and the subscriber search.

use super::Conn;
use crate::error::Result;

/// A vetted subscriber.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRow {
    /// The subscriber's id.
    pub id: String,
    /// `person` or `organisation`.
    pub kind: String,
    /// The vetted name.
    pub name: String,
    /// The vetted email address.
    pub email: Option<String>,
    /// The organisation a person belongs to.
    pub organisation: Option<String>,
    /// The operator who vetted them.
    pub created_by: String,
    /// When they were recorded (Unix seconds).
    pub created_at: i64,
}

/// An identity document seen when vetting.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    /// The kind of document (`passport`, `national-id`, ...).
    pub doc_type: String,
    /// The document's number.
    pub number: String,
    /// Who issued the document.
    pub issuer: String,
    /// The document's expiry (YYYY-MM-DD).
    pub valid_until: String,
    /// SHA-256 of a scan of the document, if one was kept.
    pub document_sha256: Option<String>,
    /// The operator who saw it.
    pub recorded_by: String,
    /// When it was recorded (Unix seconds).
    pub recorded_at: i64,
}

/// Record a subscriber.
pub async fn insert(conn: &mut Conn, s: &SubscriberRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO subscribers (id, kind, name, email, organisation, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id)
    .bind(&s.kind)
    .bind(&s.name)
    .bind(&s.email)
    .bind(&s.organisation)
    .bind(&s.created_by)
    .bind(s.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Record a document seen for `subscriber_id`.
pub async fn insert_evidence(conn: &mut Conn, subscriber_id: &str, e: &EvidenceRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO evidence (subscriber_id, doc_type, number, issuer, valid_until, document_sha256, recorded_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(subscriber_id)
    .bind(&e.doc_type)
    .bind(&e.number)
    .bind(&e.issuer)
    .bind(&e.valid_until)
    .bind(&e.document_sha256)
    .bind(&e.recorded_by)
    .bind(e.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, kind, name, email, organisation, created_by, created_at";

/// The subscriber `id`.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<SubscriberRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The documents recorded for a subscriber, in the order recorded.
pub async fn evidence(conn: &mut Conn, subscriber_id: &str) -> Result<Vec<EvidenceRow>> {
    Ok(sqlx::query_as(
        "SELECT doc_type, number, issuer, valid_until, document_sha256, recorded_by, recorded_at \
         FROM evidence WHERE subscriber_id = $1 ORDER BY id",
    )
    .bind(subscriber_id)
    .fetch_all(conn)
    .await?)
}

/// Case-insensitive substring search over name, email, organisation and identifier numbers.
pub async fn search(conn: &mut Conn, q: &str, limit: i64) -> Result<Vec<SubscriberRow>> {
    // Case-insensitive on both engines: the lower-cased query against LOWER(column) (SQLite's
    // LOWER folds ASCII only, PostgreSQL's all of Unicode), and the query as typed against the
    // column, so "Élodie" is found by "É" on either engine.
    let lower = format!("%{}%", escape_like(&q.to_lowercase()));
    let typed = format!("%{}%", escape_like(q));
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscribers WHERE LOWER(name) LIKE $1 ESCAPE '\\' OR name LIKE $3 ESCAPE '\\' \
         OR LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(organisation) LIKE $1 ESCAPE '\\' \
         OR organisation LIKE $3 ESCAPE '\\' \
         OR id IN (SELECT subscriber_id FROM evidence WHERE LOWER(number) LIKE $1 ESCAPE '\\' \
                   OR number LIKE $3 ESCAPE '\\') \
         ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(lower)
    .bind(limit)
    .bind(typed)
    .fetch_all(conn)
    .await?)
}

fn escape_like(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
