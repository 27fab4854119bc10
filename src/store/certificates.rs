//! The `certificates` table (issued certificates, their status and revocation) and
//! `blocked_keys` (keys refused for new requests), with the status version that stamps each
//! change for CRL and OCSP caches. Each status change is also appended to `status_history`
//! ([`super::history`]) in the same transaction.

use super::history::{self, HistoryKind};
use super::Conn;
use crate::error::Result;
use crate::state::{CertificateStatus, RevocationRequestState};

/// An issued certificate as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    /// The serial (hex).
    pub serial: String,
    /// The request it was issued for.
    pub request_id: String,
    /// The subscriber it certifies.
    pub subscriber_id: String,
    /// The CA that signed it.
    pub ca_id: String,
    /// The certificate profile's name.
    pub profile: String,
    /// The subject, as text.
    pub subject: String,
    /// The certified key's identity.
    pub key_sha256: String,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// `valid`, `on-hold` or `revoked`.
    #[sqlx(try_from = "String")]
    pub status: CertificateStatus,
    /// When it was stored (Unix seconds).
    pub issued_at: i64,
    /// When it was revoked or put on hold (Unix seconds).
    #[sqlx(default)]
    pub revoked_at: Option<i64>,
    /// The revocation reason's name.
    #[sqlx(default)]
    pub revocation_reason: Option<String>,
    /// When the key is believed compromised (Unix seconds).
    #[sqlx(default)]
    pub invalidity_date: Option<i64>,
}

/// Store an issued certificate.
pub async fn insert(conn: &mut Conn, c: &CertificateRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO certificates (serial, request_id, subscriber_id, ca_id, profile, subject, key_sha256, \
         not_before, not_after, der, status, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&c.serial)
    .bind(&c.request_id)
    .bind(&c.subscriber_id)
    .bind(&c.ca_id)
    .bind(&c.profile)
    .bind(&c.subject)
    .bind(&c.key_sha256)
    .bind(c.not_before)
    .bind(c.not_after)
    .bind(&c.der)
    .bind(c.status.as_str())
    .bind(c.issued_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The certificate `serial`.
pub async fn get(conn: &mut Conn, serial: &str) -> Result<Option<CertificateRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, request_id, subscriber_id, ca_id, profile, subject, key_sha256, not_before, not_after, \
         der, status, issued_at, revoked_at, revocation_reason, invalidity_date FROM certificates WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(conn)
    .await?)
}

/// How many certificates were issued for a request.
pub async fn count_for_request(conn: &mut Conn, request_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(conn)
            .await?,
    )
}

/// The reason a key is blocked, if it is.
pub async fn is_key_blocked(conn: &mut Conn, key_sha256: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM blocked_keys WHERE key_sha256 = $1")
            .bind(key_sha256)
            .fetch_optional(conn)
            .await?,
    )
}

/// Returns false if the key was already blocked.
pub async fn block_key(
    conn: &mut Conn,
    key_sha256: &str,
    reason: &str,
    by: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO blocked_keys (key_sha256, reason, blocked_by, blocked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_sha256) DO NOTHING",
    )
    .bind(key_sha256)
    .bind(reason)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The status version a change made now is stamped with (see migration 0005). Write jobs run one
/// at a time (SQLite's write lock; the advisory lock on PostgreSQL), so this is the next number.
const NEXT_VERSION: &str = "(SELECT version + 1 FROM status_counter WHERE id = 1)";

/// After certificate `serial` took [`NEXT_VERSION`] at `at`, move the counter to it and append
/// the change to its history. Only does so when a status really changed, so a refused change
/// writes nothing and drops no cache.
async fn took_status_version(
    conn: &mut Conn,
    changed: bool,
    serial: &str,
    at: i64,
) -> Result<bool> {
    if changed {
        sqlx::query("UPDATE status_counter SET version = version + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        history::record(conn, HistoryKind::Certificate, serial, at).await?;
    }
    Ok(changed)
}

/// Move the status version without a certificate changing (the root's ARL was signed or the
/// issuing CA revoked), so that every instance drops its cached CRLs, ARL and OCSP responses.
pub async fn bump_status_version(conn: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE status_counter SET version = version + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest status version: it moves whenever any certificate's status changes, whichever
/// instance made the change.
pub async fn status_version(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT version FROM status_counter WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

/// valid | on-hold -> revoked. Returns false if the certificate was not live.
pub async fn revoke(
    conn: &mut Conn,
    serial: &str,
    reason: &str,
    at: i64,
    invalidity: Option<i64>,
) -> Result<bool> {
    let r = sqlx::query(&format!(
        "UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3, invalidity_date = $4, \
         status_version = {NEXT_VERSION}, status_changed_at = $2 WHERE serial = $1 AND status IN ('valid', 'on-hold')",
    ))
    .bind(serial)
    .bind(at)
    .bind(reason)
    .bind(invalidity)
    .execute(&mut *conn)
    .await?;
    took_status_version(conn, r.rows_affected() == 1, serial, at).await
}

/// A revoked certificate's reason becomes keyCompromise (the revocation time stays; its history
/// records the change at `at`).
pub async fn escalate_to_key_compromise(
    conn: &mut Conn,
    serial: &str,
    invalidity: Option<i64>,
    at: i64,
) -> Result<bool> {
    let r = sqlx::query(&format!(
        "UPDATE certificates SET revocation_reason = 'keyCompromise', invalidity_date = COALESCE($2, invalidity_date), \
         status_version = {NEXT_VERSION}, status_changed_at = $3 \
         WHERE serial = $1 AND status = 'revoked' AND revocation_reason <> 'keyCompromise'",
    ))
    .bind(serial)
    .bind(invalidity)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    took_status_version(conn, r.rows_affected() == 1, serial, at).await
}

/// valid -> on-hold (certificateHold).
pub async fn hold(conn: &mut Conn, serial: &str, at: i64) -> Result<bool> {
    let r = sqlx::query(&format!(
        "UPDATE certificates SET status = 'on-hold', revoked_at = $2, revocation_reason = 'certificateHold', \
         invalidity_date = NULL, status_version = {NEXT_VERSION}, status_changed_at = $2 \
         WHERE serial = $1 AND status = 'valid'",
    ))
    .bind(serial)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    took_status_version(conn, r.rows_affected() == 1, serial, at).await
}

/// on-hold -> valid.
pub async fn release(conn: &mut Conn, serial: &str, at: i64) -> Result<bool> {
    let r = sqlx::query(&format!(
        "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL, invalidity_date = NULL, \
         status_version = {NEXT_VERSION}, status_changed_at = $2 WHERE serial = $1 AND status = 'on-hold'",
    ))
    .bind(serial)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    took_status_version(conn, r.rows_affected() == 1, serial, at).await
}

/// Serials of live (valid or on-hold) certificates for a key.
pub async fn live_with_key(conn: &mut Conn, key_sha256: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT serial FROM certificates WHERE key_sha256 = $1 AND status IN ('valid', 'on-hold') ORDER BY serial",
    )
    .bind(key_sha256)
    .fetch_all(conn)
    .await?)
}

/// A revoked or held certificate, as its CRL entry needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevokedRow {
    /// The serial (hex).
    pub serial: String,
    /// When it was revoked or held (Unix seconds).
    pub revoked_at: i64,
    /// The reason's name.
    pub revocation_reason: String,
    /// When the key is believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
}

/// Every revoked or held certificate of a CA, for its CRL.
pub async fn revoked(conn: &mut Conn, ca_id: &str) -> Result<Vec<RevokedRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates \
         WHERE ca_id = $1 AND status IN ('revoked', 'on-hold') ORDER BY serial",
    )
    .bind(ca_id)
    .fetch_all(conn)
    .await?)
}

/// A certificate whose status changed, as a delta CRL needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangedRow {
    /// The serial (hex).
    pub serial: String,
    /// Its status now.
    #[sqlx(try_from = "String")]
    pub status: CertificateStatus,
    /// When it was revoked or held (Unix seconds).
    pub revoked_at: Option<i64>,
    /// The reason's name.
    pub revocation_reason: Option<String>,
    /// When the key is believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
    /// When its status last changed (Unix seconds).
    pub status_changed_at: Option<i64>,
}

/// Certificates of a CA whose status changed after status version `since`, for a delta CRL.
pub async fn changed_since(conn: &mut Conn, ca_id: &str, since: i64) -> Result<Vec<ChangedRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, status, revoked_at, revocation_reason, invalidity_date, status_changed_at \
         FROM certificates WHERE ca_id = $1 AND status_version > $2 ORDER BY serial",
    )
    .bind(ca_id)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// The next CRL number for a CA (1, 2, 3, ...).
pub async fn next_crl_number(conn: &mut Conn, ca_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO crl_numbers (ca_id, last_number) VALUES ($1, 1) \
         ON CONFLICT (ca_id) DO UPDATE SET last_number = crl_numbers.last_number + 1 RETURNING last_number",
    )
    .bind(ca_id)
    .fetch_one(conn)
    .await?)
}

/// A four-eyes revocation request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevocationRequestRow {
    /// The revocation request's id.
    pub id: String,
    /// The certificate to revoke.
    pub serial: String,
    /// The revocation reason's name.
    pub reason: String,
    /// When the key is believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
    /// The requester's comment.
    pub comment: Option<String>,
    /// `pending`, `approved` or `rejected`.
    #[sqlx(try_from = "String")]
    pub status: RevocationRequestState,
    /// The requesting operator.
    pub requested_by: String,
    /// When it was requested (Unix seconds).
    pub created_at: i64,
    /// The operator who decided it.
    pub decided_by: Option<String>,
    /// When it was decided (Unix seconds).
    pub decided_at: Option<i64>,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
}

/// Record a pending revocation request (one pending per certificate: a second is a unique violation).
pub async fn insert_revocation_request(conn: &mut Conn, r: &RevocationRequestRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO revocation_requests (id, serial, reason, invalidity_date, comment, status, requested_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
    )
    .bind(&r.id)
    .bind(&r.serial)
    .bind(&r.reason)
    .bind(r.invalidity_date)
    .bind(&r.comment)
    .bind(&r.requested_by)
    .bind(r.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending revocation requests, oldest first, of one certificate or of all.
pub async fn pending_revocation_requests(
    conn: &mut Conn,
    serial: Option<&str>,
    limit: i64,
) -> Result<Vec<RevocationRequestRow>> {
    Ok(sqlx::query_as(
        "SELECT id, serial, reason, invalidity_date, comment, status, requested_by, created_at, decided_by, \
         decided_at, reject_reason FROM revocation_requests \
         WHERE status = 'pending' AND ($1 IS NULL OR serial = $1) ORDER BY created_at, id LIMIT $2",
    )
    .bind(serial)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The revocation request `id`.
pub async fn revocation_request(conn: &mut Conn, id: &str) -> Result<Option<RevocationRequestRow>> {
    Ok(sqlx::query_as(
        "SELECT id, serial, reason, invalidity_date, comment, status, requested_by, created_at, decided_by, \
         decided_at, reject_reason FROM revocation_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// pending -> approved | rejected, by someone other than the requester. Returns whether it moved.
pub async fn decide_revocation_request(
    conn: &mut Conn,
    id: &str,
    to: RevocationRequestState,
    by: &str,
    at: i64,
    reject_reason: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE revocation_requests SET status = $2, decided_by = $3, decided_at = $4, reject_reason = $5 \
         WHERE id = $1 AND status = 'pending' AND ($2 = 'rejected' OR requested_by <> $3)",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(by)
    .bind(at)
    .bind(reject_reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Remember a used self-revocation statement; false if it was used before.
pub async fn use_statement(conn: &mut Conn, sha256: &str, serial: &str, at: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO self_revocation_statements (sha256, serial, used_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(serial)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A certificate of a remote CA that is valid, on hold, or revoked with another reason than
/// keyCompromise: (serial, status, key_sha256, status_changed_at, der).
pub type LiveOfCa = (String, String, String, Option<i64>, Vec<u8>);

/// Which of `serials` are certificates of `ca_id` that are valid or on hold (or revoked with
/// another reason than keyCompromise, which a CRL may raise), asked in slices of 500 so that a long CRL makes no oversized statement.
pub async fn live_of_ca(conn: &mut Conn, ca_id: &str, serials: &[String]) -> Result<Vec<LiveOfCa>> {
    let mut out = Vec::new();
    for slice in serials.chunks(500) {
        let marks: Vec<String> = (0..slice.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT serial, status, key_sha256, status_changed_at, der FROM certificates WHERE ca_id = $1 \
             AND (status IN ('valid', 'on-hold') OR (status = 'revoked' \
             AND revocation_reason <> 'keyCompromise')) AND serial IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query_as::<_, LiveOfCa>(&sql).bind(ca_id);
        for s in slice {
            q = q.bind(s);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// A certificate as a list of found certificates shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FoundRow {
    /// The serial (hex).
    pub serial: String,
    /// The subject, as text.
    pub subject: String,
    /// `valid`, `on-hold` or `revoked`.
    #[sqlx(try_from = "String")]
    pub status: CertificateStatus,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// The subscriber it certifies.
    pub subscriber_id: String,
    /// The subscriber's vetted name.
    pub subscriber_name: String,
    /// When it was stored (Unix seconds).
    pub issued_at: i64,
}

/// What to find certificates by.
pub enum FindBy<'a> {
    /// Serials that begin with these lower-case hex digits.
    SerialPrefix(&'a str),
    /// Certificates of the subscribers these query words find (see [`super::subscribers::search`]).
    Words(&'a [String]),
}

/// Up to `limit` certificates found `by`, newest first (by when they were stored, then serial),
/// after `before` (the `issued_at` and serial of the last certificate of the previous page):
/// keyset paging, so a page costs the same at any depth.
pub async fn find(
    conn: &mut Conn,
    by: FindBy<'_>,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<FoundRow>> {
    let (filter, binds) = match by {
        // The hex digits are followed by 'g' in byte order and in any collation.
        FindBy::SerialPrefix(p) => (
            "c.serial >= $4 AND c.serial < $5".to_string(),
            vec![p.to_string(), format!("{p}g")],
        ),
        FindBy::Words(words) => super::subscribers::term_filter("c.subscriber_id", words, 4),
    };
    let (at, serial) = before.unwrap_or((i64::MAX, ""));
    let sql = format!(
        "SELECT c.serial, c.subject, c.status, c.not_after, c.subscriber_id, \
         s.name AS subscriber_name, c.issued_at \
         FROM certificates c JOIN subscribers s ON s.id = c.subscriber_id \
         WHERE {filter} AND (c.issued_at < $1 OR (c.issued_at = $1 AND c.serial < $2)) \
         ORDER BY c.issued_at DESC, c.serial DESC LIMIT $3"
    );
    let mut query = sqlx::query_as(&sql).bind(at).bind(serial).bind(limit);
    for b in &binds {
        query = query.bind(b.as_str());
    }
    Ok(query.fetch_all(conn).await?)
}
