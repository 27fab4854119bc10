//! The `requests` table and what hangs off it: approvals, issuance intents (the serial and order
//! recorded before the CA is called), and the queries behind the request state machine.

use super::Conn;
use crate::error::Result;
use crate::state::RequestState;

/// A certificate request as stored, with its issuance intent's progress when it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    /// The request's id.
    pub id: String,
    /// The subscriber the certificate is for.
    pub subscriber_id: String,
    /// The certificate profile's name.
    pub profile: String,
    /// SHA-256 of the canonical SubjectPublicKeyInfo (the key's identity).
    pub key_sha256: String,
    /// The certificate contents decided at submission (subject, validity), JSON.
    pub template_json: String,
    /// The request's state.
    #[sqlx(try_from = "String")]
    pub status: RequestState,
    /// Approvals needed before it is approved.
    pub required_approvals: i64,
    /// The operator who submitted it.
    pub requested_by: String,
    /// When it was submitted (Unix seconds).
    pub created_at: i64,
    /// When a pending request expires (Unix seconds).
    pub expires_at: i64,
    /// When it left `pending` (Unix seconds).
    pub decided_at: Option<i64>,
    /// The operator who rejected it.
    pub rejected_by: Option<String>,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// The canonical SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// Set once the certificate is stored.
    pub serial: Option<String>,
    /// Why the CA refused the order (`failed`).
    pub failure: Option<String>,
    /// The operator who cancelled it.
    pub cancelled_by: Option<String>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Failed signing attempts of the issuance intent, if there is one.
    pub attempts: Option<i64>,
    /// The last signing error of the intent.
    pub last_error: Option<String>,
    /// When the intent is next tried (Unix seconds).
    pub next_attempt_at: Option<i64>,
    /// The CA the intent asks to sign.
    pub intent_ca_id: Option<String>,
}

/// One approval of a request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    /// The approving operator.
    pub approver_id: String,
    /// When (Unix seconds).
    pub approved_at: i64,
}

/// An issuance intent: the serial and order recorded before the CA is called.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntentRow {
    /// The reserved serial (hex).
    pub serial: String,
    /// The approved request.
    pub request_id: String,
    /// The certified key's identity.
    pub key_sha256: String,
    /// The CA asked to sign.
    pub ca_id: String,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// When the intent was recorded (Unix seconds).
    pub created_at: i64,
    /// Failed signing attempts so far.
    pub attempts: i64,
}

/// A request to insert, as submitted (status `pending`).
pub struct NewRequest<'a> {
    /// The new request's id.
    pub id: &'a str,
    /// The subscriber the certificate is for.
    pub subscriber_id: &'a str,
    /// The certificate profile's name.
    pub profile: &'a str,
    /// The CSR as received, DER.
    pub csr_der: &'a [u8],
    /// The canonical SubjectPublicKeyInfo, DER.
    pub spki_der: &'a [u8],
    /// The key's identity.
    pub key_sha256: &'a str,
    /// The certificate contents decided at submission, JSON.
    pub template_json: &'a str,
    /// Approvals needed.
    pub required_approvals: i64,
    /// The submitting operator.
    pub requested_by: &'a str,
    /// Submission time (Unix seconds).
    pub created_at: i64,
    /// Expiry of the pending request (Unix seconds).
    pub expires_at: i64,
}

/// Insert a new pending request.
pub async fn insert(conn: &mut Conn, r: &NewRequest<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO requests (id, subscriber_id, profile, csr_der, spki_der, key_sha256, template_json, status, \
         required_approvals, requested_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11)",
    )
    .bind(r.id)
    .bind(r.subscriber_id)
    .bind(r.profile)
    .bind(r.csr_der)
    .bind(r.spki_der)
    .bind(r.key_sha256)
    .bind(r.template_json)
    .bind(r.required_approvals)
    .bind(r.requested_by)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "r.id, r.subscriber_id, r.profile, r.key_sha256, r.template_json, r.status, \
    r.required_approvals, r.requested_by, r.created_at, r.expires_at, r.decided_at, r.rejected_by, \
    r.reject_reason, r.spki_der, c.serial, r.failure, r.cancelled_by, r.cancel_reason, \
    i.attempts, i.last_error, i.next_attempt_at, i.ca_id AS intent_ca_id";
/// The tables [`COLUMNS`] reads, joined.
const JOINED: &str = "requests r LEFT JOIN certificates c ON c.request_id = r.id \
    LEFT JOIN issuance_intents i ON i.request_id = r.id";

/// The request `id`.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<RequestRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM {JOINED} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Requests, oldest first, optionally only those in `status` or of `subscriber_id`.
pub async fn list(
    conn: &mut Conn,
    status: Option<RequestState>,
    subscriber_id: Option<&str>,
    limit: i64,
) -> Result<Vec<RequestRow>> {
    // Only the filters given are in the query: an `$1 IS NULL OR` test leaves the planner
    // walking every request in submission order instead of using the subscriber's index (a
    // subscriber's page took 80 ms with 100,000 requests; docs/PERFORMANCE.md).
    let mut wanted = Vec::new();
    if status.is_some() {
        wanted.push("r.status = $1");
    }
    if subscriber_id.is_some() {
        wanted.push("r.subscriber_id = $2");
    }
    let filter = if wanted.is_empty() {
        "$1 IS NULL AND $2 IS NULL".to_string()
    } else {
        // Unused placeholders are still bound: compared with themselves they change nothing.
        let mut all = wanted.join(" AND ");
        if status.is_none() {
            all.push_str(" AND $1 IS NULL");
        }
        if subscriber_id.is_none() {
            all.push_str(" AND $2 IS NULL");
        }
        all
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {JOINED} WHERE {filter} ORDER BY r.created_at, r.id LIMIT $3"
    ))
    .bind(status.map(RequestState::as_str))
    .bind(subscriber_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Up to `limit` requests submitted after `(created_at, id)` (a page of a listing in submission
/// order), optionally of one status: keyset paging, so a page costs the same at any depth.
pub async fn list_after(
    conn: &mut Conn,
    status: Option<RequestState>,
    after: (i64, &str),
    limit: i64,
) -> Result<Vec<RequestRow>> {
    // Two shapes, each a plain range over an index ((status, created_at, id) or (created_at,
    // id)): an `IS NULL OR` test and an OR-ed keyset would leave the planner scanning.
    let query = match status {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM {JOINED} WHERE r.status = $1 \
             AND (r.created_at, r.id) > ($2, $3) ORDER BY r.created_at, r.id LIMIT $4"
        ),
        None => format!(
            "SELECT {COLUMNS} FROM {JOINED} WHERE $1 IS NULL \
             AND (r.created_at, r.id) > ($2, $3) ORDER BY r.created_at, r.id LIMIT $4"
        ),
    };
    Ok(sqlx::query_as(&query)
        .bind(status.map(RequestState::as_str))
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// A request as an approver decides on it, with what the decision must re-check: does the
/// subscriber still have evidence valid on `today` (YYYY-MM-DD), and is the key blocked?
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    /// The request.
    #[sqlx(flatten)]
    pub request: RequestRow,
    /// 1 or 0 (an integer: the engines disagree on the type of EXISTS).
    pub has_valid_evidence: i64,
    /// Why its key is blocked, if it is.
    pub blocked_reason: Option<String>,
}

/// The request `id` with what a decision re-checks (see [`DecisionRow`]).
pub async fn get_for_decision(
    conn: &mut Conn,
    id: &str,
    today: &str,
) -> Result<Option<DecisionRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS}, \
         CASE WHEN EXISTS (SELECT 1 FROM evidence e WHERE e.subscriber_id = r.subscriber_id AND e.valid_until >= $2) \
             THEN 1 ELSE 0 END AS has_valid_evidence, \
         (SELECT b.reason FROM blocked_keys b WHERE b.key_sha256 = r.key_sha256) AS blocked_reason \
         FROM {JOINED} WHERE r.id = $1"
    ))
    .bind(id)
    .bind(today)
    .fetch_optional(conn)
    .await?)
}

/// The approvals of a request, oldest first.
pub async fn approvals(conn: &mut Conn, request_id: &str) -> Result<Vec<ApprovalRow>> {
    Ok(sqlx::query_as(
        "SELECT approver_id, approved_at FROM approvals WHERE request_id = $1 ORDER BY approved_at, approver_id",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?)
}

/// Record one approval if, at this moment, the request is pending, unexpired and not requested by
/// the approver, its key is not blocked, its subscriber holds evidence valid on `today`
/// (YYYY-MM-DD), and the approver has not approved it already. Returns whether it was recorded.
pub async fn add_approval_if_open(
    conn: &mut Conn,
    request_id: &str,
    approver_id: &str,
    now: i64,
    today: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO approvals (request_id, approver_id, approved_at) \
         SELECT r.id, $2, $3 FROM requests r \
         WHERE r.id = $1 AND r.status = 'pending' AND r.expires_at > $3 AND r.requested_by <> $2 \
         AND NOT EXISTS (SELECT 1 FROM blocked_keys b WHERE b.key_sha256 = r.key_sha256) \
         AND EXISTS (SELECT 1 FROM evidence e WHERE e.subscriber_id = r.subscriber_id AND e.valid_until >= $4) \
         ON CONFLICT (request_id, approver_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(approver_id)
    .bind(now)
    .bind(today)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// How many approvals a request has.
pub async fn count_approvals(conn: &mut Conn, request_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM approvals WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(conn)
            .await?,
    )
}

/// pending -> expired, if the request is pending and its expiry has passed.
pub async fn expire(conn: &mut Conn, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE requests SET status = 'expired', decided_at = $1 WHERE id = $2 AND status = 'pending' AND expires_at <= $1",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Compare-and-set the status. Returns false when the request was not in `from`.
pub async fn transition(
    conn: &mut Conn,
    id: &str,
    from: RequestState,
    to: RequestState,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE requests SET status = $1, decided_at = COALESCE(decided_at, $2) WHERE id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// pending -> rejected, by `by` for `reason`. Returns false when the request was not pending.
pub async fn reject(conn: &mut Conn, id: &str, by: &str, reason: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE requests SET status = 'rejected', decided_at = $1, rejected_by = $2, reject_reason = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(now)
    .bind(by)
    .bind(reason)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ids of pending requests whose expiry has passed.
pub async fn overdue(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM requests WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Record an issuance intent, claimed by the attempt about to be made until `claimed_until`
/// (no other attempt is started before then; 0: not claimed, see [`claim_intent`]).
pub async fn insert_intent(conn: &mut Conn, i: &IntentRow, claimed_until: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO issuance_intents (serial, request_id, key_sha256, ca_id, not_before, not_after, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&i.serial)
    .bind(&i.request_id)
    .bind(&i.key_sha256)
    .bind(&i.ca_id)
    .bind(i.not_before)
    .bind(i.not_after)
    .bind(i.created_at)
    .bind(claimed_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claim the intent of `request_id` for one attempt at its CA, until `until`: its next attempt
/// moves there, so that no other instance sharing the database starts one meanwhile. False when
/// the attempt is not due at `now` (another instance claimed it, or it failed and waits). An
/// attempt that fails sets its own next attempt ([`attempt_failed`]); one whose process dies
/// leaves the claim to run out.
pub async fn claim_intent(conn: &mut Conn, request_id: &str, now: i64, until: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE issuance_intents SET next_attempt_at = $3 \
         WHERE request_id = $1 AND next_attempt_at <= $2",
    )
    .bind(request_id)
    .bind(now)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Give up the claim on the intent of `request_id` ([`claim_intent`]): due again at `now`.
pub async fn release_intent(conn: &mut Conn, request_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE issuance_intents SET next_attempt_at = $2 WHERE request_id = $1 AND next_attempt_at > $2",
    )
    .bind(request_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Intents recorded before `before` whose request is still `approved` and whose next attempt is
/// due at `now`: issuance that was interrupted (crash or CA outage) and must be completed.
pub async fn unfinished_intents(
    conn: &mut Conn,
    before: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<IntentRow>> {
    Ok(sqlx::query_as(
        "SELECT i.serial, i.request_id, i.key_sha256, i.ca_id, i.not_before, i.not_after, i.created_at, i.attempts \
         FROM issuance_intents i JOIN requests r ON r.id = i.request_id \
         WHERE r.status = 'approved' AND i.created_at <= $1 AND i.next_attempt_at <= $2 \
         ORDER BY i.next_attempt_at, i.created_at LIMIT $3",
    )
    .bind(before)
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The issuance intent of request `id`, if it has one.
pub async fn intent_of(conn: &mut Conn, id: &str) -> Result<Option<IntentRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, request_id, key_sha256, ca_id, not_before, not_after, created_at, attempts \
         FROM issuance_intents WHERE request_id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The CSR of request `id` as it was received (DER), for a CA that signs CSRs.
pub async fn csr_der(conn: &mut Conn, id: &str) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT csr_der FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Record that the CA issued `request_id`'s certificate under `issued` rather than the serial
/// `reserved` in its intent (a remote CA picks its own): the intent's serial becomes `issued`, the
/// reserved one is kept in `reserved_serial`. Run in the transaction that stores the certificate,
/// before it (certificates.serial references the intent's). False if the intent does not hold
/// `reserved` any more.
pub async fn record_issued_serial(
    conn: &mut Conn,
    request_id: &str,
    reserved: &str,
    issued: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE issuance_intents SET serial = $3, reserved_serial = $2 \
         WHERE request_id = $1 AND serial = $2",
    )
    .bind(request_id)
    .bind(reserved)
    .bind(issued)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Count a failed signing attempt of `request_id`'s intent, and when to try again.
pub async fn attempt_failed(
    conn: &mut Conn,
    request_id: &str,
    error: &str,
    next_attempt_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE issuance_intents SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
         WHERE request_id = $1",
    )
    .bind(request_id)
    .bind(error)
    .bind(next_attempt_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The status of a request, if it exists.
pub async fn status(conn: &mut Conn, id: &str) -> Result<Option<RequestState>> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM requests WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    status.map(|s| s.parse()).transpose()
}

/// approved -> failed, with the CA's reason. Returns false when the request was not approved.
pub async fn fail(conn: &mut Conn, id: &str, failure: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE requests SET status = 'failed', failure = $2, decided_at = COALESCE(decided_at, $3) \
         WHERE id = $1 AND status = 'approved'",
    )
    .bind(id)
    .bind(failure)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// approved -> cancelled. Returns false when the request was not approved (or is issued).
pub async fn cancel(conn: &mut Conn, id: &str, by: &str, reason: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE requests SET status = 'cancelled', cancelled_by = $2, cancel_reason = $3 \
         WHERE id = $1 AND status = 'approved'",
    )
    .bind(id)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
