//! The attribute authority's tables (migration 0011): attribute certificates with their status,
//! the role and application names they carry (one row each, for lookups), and grants awaiting a
//! second operator with their approvals. Every AC status change moves the shared status counter,
//! so that every instance re-signs its AC CRL, and is appended to `status_history`
//! ([`super::history`]) in the same transaction.

use super::certificates::bump_status_version;
use super::history::{self, HistoryKind};
use super::Conn;
use crate::error::Result;
use crate::state::{CertificateStatus, GrantState};

/// An attribute certificate as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AcRow {
    /// The AC's serial (hex).
    pub serial: String,
    /// The serial of the holder's identity certificate.
    pub holder_serial: String,
    /// The AC profile's name.
    pub profile: String,
    /// Role names, a JSON array.
    pub roles_json: String,
    /// Group names, a JSON array.
    pub groups_json: String,
    /// Application names, a JSON array.
    pub targets_json: String,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// 1 when listed on the AC CRL, 0 for noRevAvail.
    pub revocable: i64,
    /// The AC, DER.
    pub der: Vec<u8>,
    /// `valid`, `on-hold` or `revoked`.
    #[sqlx(try_from = "String")]
    pub status: CertificateStatus,
    /// 1 when on hold because its holder's certificate is.
    pub held_with_holder: i64,
    /// The grant it was issued for, when it needed approvals.
    pub grant_id: Option<String>,
    /// The operator who granted it.
    pub granted_by: String,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// When it was revoked or put on hold (Unix seconds).
    pub revoked_at: Option<i64>,
    /// The revocation reason's name.
    pub revocation_reason: Option<String>,
    /// When the holder's key is believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
}

const AC_COLUMNS: &str = "serial, holder_serial, profile, roles_json, groups_json, targets_json, \
     not_before, not_after, revocable, der, status, held_with_holder, grant_id, granted_by, issued_at, \
     revoked_at, revocation_reason, invalidity_date";

/// Store an issued AC with its role and application names.
pub async fn insert(
    conn: &mut Conn,
    ac: &AcRow,
    roles: &[String],
    targets: &[String],
) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO attribute_certificates ({AC_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(&ac.serial)
    .bind(&ac.holder_serial)
    .bind(&ac.profile)
    .bind(&ac.roles_json)
    .bind(&ac.groups_json)
    .bind(&ac.targets_json)
    .bind(ac.not_before)
    .bind(ac.not_after)
    .bind(ac.revocable)
    .bind(&ac.der)
    .bind(ac.status.as_str())
    .bind(ac.held_with_holder)
    .bind(&ac.grant_id)
    .bind(&ac.granted_by)
    .bind(ac.issued_at)
    .bind(ac.revoked_at)
    .bind(&ac.revocation_reason)
    .bind(ac.invalidity_date)
    .execute(&mut *conn)
    .await?;
    for (kind, names) in [("role", roles), ("target", targets)] {
        for name in names {
            sqlx::query(
                "INSERT INTO attribute_names (serial, kind, name, issued_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&ac.serial)
            .bind(kind)
            .bind(name)
            .bind(ac.issued_at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The AC `serial`.
pub async fn get(conn: &mut Conn, serial: &str) -> Result<Option<AcRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {AC_COLUMNS} FROM attribute_certificates WHERE serial = $1"
    ))
    .bind(serial)
    .fetch_optional(conn)
    .await?)
}

/// Which ACs to list.
#[derive(Debug, Clone, Default)]
pub struct AcFilter {
    /// Of this holder certificate.
    pub holder_serial: Option<String>,
    /// Carrying this role.
    pub role: Option<String>,
    /// For this application.
    pub target: Option<String>,
}

/// ACs matching `filter`, newest first, at most `limit`.
pub async fn list(conn: &mut Conn, filter: &AcFilter, limit: i64) -> Result<Vec<AcRow>> {
    // Each condition is either switched off by a NULL parameter or applied.
    Ok(sqlx::query_as(&format!(
        "SELECT {AC_COLUMNS} FROM attribute_certificates a \
         WHERE ($1 IS NULL OR a.holder_serial = $1) \
         AND ($2 IS NULL OR a.serial IN (SELECT serial FROM attribute_names WHERE kind = 'role' AND name = $2)) \
         AND ($3 IS NULL OR a.serial IN (SELECT serial FROM attribute_names WHERE kind = 'target' AND name = $3)) \
         ORDER BY a.issued_at DESC, a.serial LIMIT $4"
    ))
    .bind(&filter.holder_serial)
    .bind(&filter.role)
    .bind(&filter.target)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Which ACs a console page lists: the [`AcFilter`], a status, and where the page starts.
#[derive(Debug, Clone)]
pub struct AcPage {
    /// Holder, role, application.
    pub filter: AcFilter,
    /// In this stored status.
    pub status: Option<CertificateStatus>,
    /// With `not_after` in `[not_after_from, not_after_to)` (how "expired" and "valid" differ).
    pub not_after_from: i64,
    /// See `not_after_from`.
    pub not_after_to: i64,
    /// Issued before `(issued_at, serial)`: the last AC of the previous page.
    pub before: (i64, String),
}

/// Up to `limit` ACs matching `page`, newest first: keyset paging, so a page costs the same at
/// any depth. The first filter given (holder, role, application, status) picks the index the
/// page is a range of (migration 0020: each in `(…, issued_at, serial)` order); the others are
/// checked on its rows. One query shape per driver: an `IS NULL OR` test would leave the
/// planner scanning the table.
pub async fn page(conn: &mut Conn, page: &AcPage, limit: i64) -> Result<Vec<AcRow>> {
    let f = &page.filter;
    let columns = AC_COLUMNS
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    // The name kind whose index drives the page, when no holder is given.
    let by_name = match (&f.holder_serial, &f.role, &f.target) {
        (Some(_), _, _) => None,
        (None, Some(_), _) => Some("role"),
        (None, None, Some(_)) => Some("target"),
        (None, None, None) => None,
    };
    let (mut sql, key) = match by_name {
        Some(kind) => (
            format!(
                "SELECT {columns} FROM attribute_names d \
                 JOIN attribute_certificates a ON a.serial = d.serial WHERE d.kind = '{kind}'"
            ),
            "d",
        ),
        None => (
            format!("SELECT {columns} FROM attribute_certificates a WHERE 1 = 1"),
            "a",
        ),
    };
    let mut binds: Vec<&str> = Vec::new();
    fn bind<'a>(binds: &mut Vec<&'a str>, value: &'a str) -> String {
        binds.push(value);
        format!("${}", binds.len())
    }
    if let Some(h) = &f.holder_serial {
        sql += &format!(" AND a.holder_serial = {}", bind(&mut binds, h));
    }
    for (kind, name) in [("role", &f.role), ("target", &f.target)] {
        let Some(name) = name else { continue };
        let n = bind(&mut binds, name);
        if by_name == Some(kind) {
            sql += &format!(" AND d.name = {n}");
        } else {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM attribute_names x \
                 WHERE x.serial = a.serial AND x.kind = '{kind}' AND x.name = {n})"
            );
        }
    }
    if let Some(s) = page.status {
        let n = bind(&mut binds, s.as_str());
        if f.holder_serial.is_none() && by_name.is_none() {
            sql += &format!(" AND a.status = {n}");
        } else {
            // Not the driver: `|| ''` keeps SQLite (no statistics) from reading the status
            // index instead of the holder's.
            sql += &format!(" AND (a.status || '') = {n}");
        }
    }
    let n = binds.len();
    sql += &format!(
        " AND a.not_after >= ${} AND a.not_after < ${} \
         AND ({key}.issued_at, {key}.serial) < (${}, ${}) \
         ORDER BY {key}.issued_at DESC, {key}.serial DESC LIMIT ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5
    );
    let mut q = sqlx::query_as(&sql);
    for b in binds {
        q = q.bind(b);
    }
    Ok(q.bind(page.not_after_from)
        .bind(page.not_after_to)
        .bind(page.before.0)
        .bind(&page.before.1)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// valid | on-hold -> revoked, for one AC. Returns whether it changed.
pub async fn revoke(
    conn: &mut Conn,
    serial: &str,
    reason: &str,
    at: i64,
    invalidity: Option<i64>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE attribute_certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3, \
         invalidity_date = $4, held_with_holder = 0, status_changed_at = $2 \
         WHERE serial = $1 AND status IN ('valid', 'on-hold')",
    )
    .bind(serial)
    .bind(at)
    .bind(reason)
    .bind(invalidity)
    .execute(&mut *conn)
    .await?;
    let changed = r.rows_affected() == 1;
    if changed {
        bump_status_version(conn).await?;
        history::record(conn, HistoryKind::Attribute, serial, at).await?;
    }
    Ok(changed)
}

/// Append the change just made at `at` to the history of each of `serials`.
async fn record_all(conn: &mut Conn, serials: &[String], at: i64) -> Result<()> {
    for serial in serials {
        history::record(conn, HistoryKind::Attribute, serial, at).await?;
    }
    Ok(())
}

async fn serials_where(conn: &mut Conn, holder: &str, condition: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT serial FROM attribute_certificates WHERE holder_serial = $1 AND {condition} ORDER BY serial"
    ))
    .bind(holder)
    .fetch_all(conn)
    .await?)
}

/// Revoke every live AC of a holder certificate (it was revoked); returns their serials.
pub async fn revoke_with_holder(
    conn: &mut Conn,
    holder: &str,
    reason: &str,
    at: i64,
    invalidity: Option<i64>,
) -> Result<Vec<String>> {
    let serials = serials_where(conn, holder, "status IN ('valid', 'on-hold')").await?;
    for serial in &serials {
        revoke(conn, serial, reason, at, invalidity).await?;
    }
    Ok(serials)
}

/// A revoked holder's revoked ACs take the reason keyCompromise (and the invalidity date, when
/// given), as their holder certificate did; returns their serials.
pub async fn escalate_with_holder(
    conn: &mut Conn,
    holder: &str,
    invalidity: Option<i64>,
    at: i64,
) -> Result<Vec<String>> {
    let serials = serials_where(
        conn,
        holder,
        "status = 'revoked' AND revocation_reason <> 'keyCompromise'",
    )
    .await?;
    if !serials.is_empty() {
        sqlx::query(
            "UPDATE attribute_certificates SET revocation_reason = 'keyCompromise', \
             invalidity_date = COALESCE($2, invalidity_date), status_changed_at = $3 \
             WHERE holder_serial = $1 AND status = 'revoked' AND revocation_reason <> 'keyCompromise'",
        )
        .bind(holder)
        .bind(invalidity)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        bump_status_version(conn).await?;
        record_all(conn, &serials, at).await?;
    }
    Ok(serials)
}

/// Revoke every live AC whose holder certificate the CA `ca_id` issued (that CA was revoked);
/// returns their serials.
pub async fn revoke_of_ca(
    conn: &mut Conn,
    ca_id: &str,
    reason: &str,
    at: i64,
) -> Result<Vec<String>> {
    let serials: Vec<String> = sqlx::query_scalar(
        "SELECT a.serial FROM attribute_certificates a JOIN certificates c ON c.serial = a.holder_serial \
         WHERE c.ca_id = $1 AND a.status IN ('valid', 'on-hold') ORDER BY a.serial",
    )
    .bind(ca_id)
    .fetch_all(&mut *conn)
    .await?;
    for serial in &serials {
        revoke(conn, serial, reason, at, None).await?;
    }
    Ok(serials)
}

/// Put every valid AC of a holder certificate on hold with it; returns their serials.
pub async fn hold_with_holder(conn: &mut Conn, holder: &str, at: i64) -> Result<Vec<String>> {
    let serials = serials_where(conn, holder, "status = 'valid'").await?;
    if !serials.is_empty() {
        sqlx::query(
            "UPDATE attribute_certificates SET status = 'on-hold', revoked_at = $2, \
             revocation_reason = 'certificateHold', held_with_holder = 1, status_changed_at = $2 \
             WHERE holder_serial = $1 AND status = 'valid'",
        )
        .bind(holder)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        bump_status_version(conn).await?;
        record_all(conn, &serials, at).await?;
    }
    Ok(serials)
}

/// Release the ACs held with their holder certificate; returns their serials.
pub async fn release_with_holder(conn: &mut Conn, holder: &str, at: i64) -> Result<Vec<String>> {
    let serials =
        serials_where(conn, holder, "status = 'on-hold' AND held_with_holder = 1").await?;
    if !serials.is_empty() {
        sqlx::query(
            "UPDATE attribute_certificates SET status = 'valid', revoked_at = NULL, \
             revocation_reason = NULL, held_with_holder = 0, status_changed_at = $2 \
             WHERE holder_serial = $1 AND status = 'on-hold' AND held_with_holder = 1",
        )
        .bind(holder)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        bump_status_version(conn).await?;
        record_all(conn, &serials, at).await?;
    }
    Ok(serials)
}

/// A revoked or held AC, as its AC CRL entry needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevokedAcRow {
    /// The serial (hex).
    pub serial: String,
    /// When it was revoked or held (Unix seconds).
    pub revoked_at: i64,
    /// The reason's name.
    pub revocation_reason: String,
    /// When the holder's key is believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
}

/// Every revoked or held AC that is listed on the AC CRL (not the noRevAvail ones).
pub async fn revoked(conn: &mut Conn) -> Result<Vec<RevokedAcRow>> {
    Ok(sqlx::query_as(
        "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM attribute_certificates \
         WHERE revocable = 1 AND status IN ('revoked', 'on-hold') ORDER BY serial",
    )
    .fetch_all(conn)
    .await?)
}

/// A grant awaiting approvals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    /// The grant's id.
    pub id: String,
    /// The holder certificate's serial.
    pub holder_serial: String,
    /// The AC profile's name.
    pub profile: String,
    /// What is to be granted (roles, groups, targets, validity), JSON.
    pub grant_json: String,
    /// Its state.
    #[sqlx(try_from = "String")]
    pub status: GrantState,
    /// Approvals needed.
    pub required_approvals: i64,
    /// The granting operator.
    pub requested_by: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it expires if still pending (Unix seconds).
    pub expires_at: i64,
    /// Who decided it (rejected, or the last approver).
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<i64>,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    /// The AC issued for it.
    pub serial: Option<String>,
}

const GRANT_COLUMNS: &str = "id, holder_serial, profile, grant_json, status, required_approvals, \
     requested_by, created_at, expires_at, decided_by, decided_at, reason, serial";

/// Record a pending grant.
pub async fn insert_grant(conn: &mut Conn, g: &GrantRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO attribute_grants (id, holder_serial, profile, grant_json, status, required_approvals, \
         requested_by, created_at, expires_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)",
    )
    .bind(&g.id)
    .bind(&g.holder_serial)
    .bind(&g.profile)
    .bind(&g.grant_json)
    .bind(g.required_approvals)
    .bind(&g.requested_by)
    .bind(g.created_at)
    .bind(g.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The grant `id`.
pub async fn grant(conn: &mut Conn, id: &str) -> Result<Option<GrantRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM attribute_grants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Grants in `status` (all when None), oldest first, at most `limit`.
pub async fn grants(
    conn: &mut Conn,
    status: Option<GrantState>,
    limit: i64,
) -> Result<Vec<GrantRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM attribute_grants WHERE ($1 IS NULL OR status = $1) \
         ORDER BY created_at, id LIMIT $2"
    ))
    .bind(status.map(GrantState::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Up to `limit` grants in `status` (all when None) made after `(created_at, id)`, oldest
/// first: keyset paging over `(status, created_at, id)` (migration 0020).
pub async fn grants_after(
    conn: &mut Conn,
    status: Option<GrantState>,
    after: (i64, &str),
    limit: i64,
) -> Result<Vec<GrantRow>> {
    // Two statements, not `($1 IS NULL OR status = $1)`: SQLite would not use the status index
    // for that shape, and the pending queue would read every decided grant.
    // Placeholders in the order of their numbers (SQLite numbers them as they appear).
    let (status_clause, limit_mark) = match status {
        Some(_) => ("AND status = $3", "$4"),
        None => ("", "$3"),
    };
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM attribute_grants WHERE (created_at, id) > ($1, $2) \
         {status_clause} ORDER BY created_at, id LIMIT {limit_mark}"
    );
    let mut q = sqlx::query_as(&sql).bind(after.0).bind(after.1);
    if let Some(status) = status {
        q = q.bind(status.as_str());
    }
    let q = q.bind(limit);
    Ok(q.fetch_all(conn).await?)
}

/// Count an approval of a pending, unexpired grant by someone other than its granter. Returns the
/// number of approvals after it, or None when it did not count (not pending, expired, the
/// granter, or already approved by this operator).
pub async fn approve_grant(conn: &mut Conn, id: &str, by: &str, at: i64) -> Result<Option<i64>> {
    let r = sqlx::query(
        "INSERT INTO attribute_grant_approvals (grant_id, approver_id, approved_at) \
         SELECT id, $2, $3 FROM attribute_grants \
         WHERE id = $1 AND status = 'pending' AND expires_at > $3 AND requested_by <> $2 \
         ON CONFLICT (grant_id, approver_id) DO NOTHING",
    )
    .bind(id)
    .bind(by)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() != 1 {
        return Ok(None);
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attribute_grant_approvals WHERE grant_id = $1")
            .bind(id)
            .fetch_one(conn)
            .await?;
    Ok(Some(n))
}

/// The operators who approved a grant and when, in order.
pub async fn grant_approvers(conn: &mut Conn, id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT approver_id, approved_at FROM attribute_grant_approvals WHERE grant_id = $1 \
         ORDER BY approved_at, approver_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// pending -> `to`, recording who, when, why and the AC issued. Returns whether it moved.
pub async fn decide_grant(
    conn: &mut Conn,
    id: &str,
    to: GrantState,
    by: Option<&str>,
    at: i64,
    reason: Option<&str>,
    serial: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE attribute_grants SET status = $2, decided_by = $3, decided_at = $4, reason = $5, serial = $6 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(by)
    .bind(at)
    .bind(reason)
    .bind(serial)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Pending grants past their expiry.
pub async fn overdue_grants(conn: &mut Conn, now: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM attribute_grants WHERE status = 'pending' AND expires_at <= $1 ORDER BY id LIMIT 1000",
    )
    .bind(now)
    .fetch_all(conn)
    .await?)
}
