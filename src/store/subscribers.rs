//! The `subscribers` table (vetted people and organisations) and their `evidence` (identity
//! documents seen, with validity dates), and the subscriber search over `search_terms`.

use super::Conn;
use crate::error::Result;
use std::collections::BTreeSet;
use unicode_script::{Script, UnicodeScript};

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
    .execute(&mut *conn)
    .await?;
    let mut terms = BTreeSet::new();
    for text in [Some(&s.name), s.email.as_ref(), s.organisation.as_ref()]
        .into_iter()
        .flatten()
    {
        name_terms(text, &mut terms);
    }
    insert_terms(conn, &s.id, &terms).await
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
    .execute(&mut *conn)
    .await?;
    let mut terms = BTreeSet::new();
    number_terms(&e.number, &mut terms);
    insert_terms(conn, subscriber_id, &terms).await
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

/// Most characters of a term kept (a longer word is found by its first 64 characters).
const MAX_TERM: usize = 64;
/// Most words of a query that are looked up.
pub const MAX_QUERY_WORDS: usize = 8;

/// The words of `text`, lower-cased: runs of letters and digits (anything else separates words,
/// so an e-mail address is its parts), each cut at [`MAX_TERM`] characters.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(MAX_TERM).collect())
        .collect()
}

/// Scripts written without spaces between words: any part of such a run may be a name.
fn unspaced(c: char) -> bool {
    matches!(
        c.script(),
        Script::Han | Script::Hiragana | Script::Katakana | Script::Hangul | Script::Thai
    )
}

/// Every tail of `word` (its last 1, 2, ... characters, and itself).
fn tails(word: &str, terms: &mut BTreeSet<String>) {
    for (i, _) in word.char_indices() {
        terms.insert(word[i..].to_string());
    }
}

/// The terms a name, e-mail address or organisation is found by: each of its words (a query
/// word matches the beginning of one), and every tail of a word in a script written without
/// spaces (王小明 is found by 小明).
fn name_terms(text: &str, terms: &mut BTreeSet<String>) {
    for w in words(text) {
        if w.chars().any(unspaced) {
            tails(&w, terms);
        } else {
            terms.insert(w);
        }
    }
}

/// The terms an evidence number is found by: every tail of each of its words, so that any part
/// of the number finds it.
fn number_terms(number: &str, terms: &mut BTreeSet<String>) {
    for w in words(number) {
        tails(&w, terms);
    }
}

async fn insert_terms(
    conn: &mut Conn,
    subscriber_id: &str,
    terms: &BTreeSet<String>,
) -> Result<()> {
    for term in terms {
        sqlx::query(
            "INSERT INTO search_terms (term, subscriber_id) VALUES ($1, $2) \
             ON CONFLICT (term, subscriber_id) DO NOTHING",
        )
        .bind(term)
        .bind(subscriber_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Fill `search_terms` for the subscribers recorded before it existed (once: an instance_meta
/// mark says it was done). Returns how many subscribers were indexed.
pub async fn fill_search_terms(conn: &mut Conn) -> Result<u64> {
    const MARK: &str = "search_terms.filled";
    if super::meta::get(conn, MARK).await?.is_some() {
        return Ok(0);
    }
    let subscribers: Vec<SubscriberRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM subscribers"))
            .fetch_all(&mut *conn)
            .await?;
    for s in &subscribers {
        let mut terms = BTreeSet::new();
        for text in [Some(&s.name), s.email.as_ref(), s.organisation.as_ref()]
            .into_iter()
            .flatten()
        {
            name_terms(text, &mut terms);
        }
        insert_terms(conn, &s.id, &terms).await?;
    }
    let numbers: Vec<(String, String)> =
        sqlx::query_as("SELECT subscriber_id, number FROM evidence")
            .fetch_all(&mut *conn)
            .await?;
    for (id, number) in &numbers {
        let mut terms = BTreeSet::new();
        number_terms(number, &mut terms);
        insert_terms(conn, id, &terms).await?;
    }
    super::meta::put(conn, MARK, "1").await?;
    Ok(subscribers.len() as u64)
}

/// The filter for "every query word matches a term of the subscriber in `column`", as SQL from
/// placeholder `$first` on, and the values to bind: each word's range `[word, word + U+10FFFF)`,
/// a prefix match that is one range of an index (binary order on both engines). The longest
/// word (the likeliest to be rare) picks the candidates through the `(term, subscriber_id)` key;
/// the others are checked per candidate through `(subscriber_id, term)`, so that a common word
/// (`example` of an e-mail address) is never gathered for the whole table.
pub fn term_filter(column: &str, words: &[String], first: usize) -> (String, Vec<String>) {
    let mut words: Vec<&String> = words.iter().take(MAX_QUERY_WORDS).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.dedup();
    let mut sql = String::new();
    let mut binds = Vec::new();
    for (i, w) in words.into_iter().enumerate() {
        let n = first + 2 * i;
        if i == 0 {
            sql.push_str(&format!(
                "{column} IN (SELECT subscriber_id FROM search_terms WHERE term >= ${n} AND term < ${})",
                n + 1
            ));
        } else {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM search_terms t WHERE t.subscriber_id = {column} \
                 AND t.term >= ${n} AND t.term < ${})",
                n + 1
            ));
        }
        binds.push(w.clone());
        binds.push(format!("{w}\u{10FFFF}"));
    }
    (sql, binds)
}

/// Subscribers found by `q`, newest first: every word of `q` begins a word of their name, e-mail
/// address or organisation (any part, in scripts written without spaces), or is part of one of
/// their evidence numbers. An empty `q` lists the newest; a `q` without letters or digits finds
/// nothing.
pub async fn search(conn: &mut Conn, q: &str, limit: i64) -> Result<Vec<SubscriberRow>> {
    if q.trim().is_empty() {
        return Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM subscribers ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(conn)
        .await?);
    }
    let words = words(q);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let (filter, binds) = term_filter("id", &words, 2);
    let sql = format!(
        "SELECT {COLUMNS} FROM subscribers WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $1"
    );
    let mut query = sqlx::query_as(&sql).bind(limit);
    for b in &binds {
        query = query.bind(b.as_str());
    }
    Ok(query.fetch_all(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(name: &str, email: &str, number: &str) -> BTreeSet<String> {
        let mut t = BTreeSet::new();
        name_terms(name, &mut t);
        name_terms(email, &mut t);
        number_terms(number, &mut t);
        t
    }

    #[test]
    fn terms_are_words_and_tails_of_numbers_and_unspaced_names() {
        let t = all("Élodie Martin", "e.martin@example.org", "AB-1234");
        for term in [
            "élodie", "martin", "e", "example", "org", "ab", "b", "1234", "234", "4",
        ] {
            assert!(t.contains(term), "{term}: {t:?}");
        }
        assert!(!t.contains("lodie"), "{t:?}");
        let t = all("王小明", "x@y.cn", "1");
        for term in ["王小明", "小明", "明"] {
            assert!(t.contains(term), "{term}: {t:?}");
        }
    }

    #[test]
    fn query_words_are_lower_case_and_split_at_punctuation() {
        assert_eq!(words(" Li.WEI@Example "), vec!["li", "wei", "example"]);
        assert!(words("%_\\").is_empty());
        assert_eq!(words(&"x".repeat(100))[0].len(), MAX_TERM);
    }
}
