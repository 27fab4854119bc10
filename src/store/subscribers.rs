use super::Conn;
use crate::error::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub email: Option<String>,
    pub organisation: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    pub doc_type: String,
    pub number: String,
    pub issuer: String,
    pub valid_until: String,
    pub document_sha256: Option<String>,
    pub recorded_by: String,
    pub recorded_at: i64,
}

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

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<SubscriberRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

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
