//! Operators (the people and applications that call the RA) and their bearer tokens. Tokens carry
//! 256 bits of CSPRNG output; only their SHA-256 is stored.

use super::{new_id, rfc3339, Ra};
use crate::audit::{self, Event};
use crate::error::{Error, Result};
use crate::store::{self, operators as rows, AuditLog, Conn, Store};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use time::OffsetDateTime;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Clerk,
    Approver,
    Revoker,
    Admin,
    Aa,
    Auditor,
    Verifier,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Clerk,
        Role::Approver,
        Role::Revoker,
        Role::Admin,
        Role::Aa,
        Role::Auditor,
        Role::Verifier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Approver => "approver",
            Role::Revoker => "revoker",
            Role::Admin => "admin",
            Role::Aa => "aa",
            Role::Auditor => "auditor",
            Role::Verifier => "verifier",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "invalid_role",
                format!("unknown role {s:?}; roles are clerk, approver, revoker, admin, aa, auditor, verifier"),
            )
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
}

impl Operator {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub created_at: String,
    pub disabled: bool,
}

/// A newly created operator and its token, which is shown once and never stored.
pub struct NewOperator {
    pub view: OperatorView,
    pub token: Zeroizing<String>,
}

const TOKEN_PREFIX: &str = "vouch_";

/// How long a verified token is trusted without looking it up again. Disabling an operator
/// clears its entries at once on this instance.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Memory for verified tokens. Only tokens that matched an operator are kept, so this holds
/// every operator several times over; a cap all the same, since nothing grows without one.
const TOKEN_CACHE_BYTES: u64 = 4 << 20;

/// Recently verified tokens (by hash), so that a busy client costs no database read per call.
pub struct TokenCache(moka::sync::Cache<Vec<u8>, Operator>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(
            moka::sync::Cache::builder()
                .max_capacity(TOKEN_CACHE_BYTES)
                .weigher(|hash: &Vec<u8>, op: &Operator| {
                    let size = hash.len() + op.id.len() + op.name.len() + op.roles.len() + 128;
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .time_to_live(TOKEN_CACHE_TTL)
                .build(),
        )
    }
}

impl TokenCache {
    fn get(&self, hash: &[u8]) -> Option<Operator> {
        self.0.get(hash)
    }

    fn put(&self, hash: Vec<u8>, op: Operator) {
        self.0.insert(hash, op);
    }

    /// Drop an operator's entries now (it was disabled): the next call with its token reads the
    /// database.
    fn forget(&self, operator_id: &str) {
        let hashes: Vec<std::sync::Arc<Vec<u8>>> = self
            .0
            .iter()
            .filter(|(_, op)| op.id == operator_id)
            .map(|(hash, _)| hash)
            .collect();
        for hash in hashes {
            self.0.invalidate(hash.as_slice());
        }
    }
}

fn new_token() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    ))
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_field",
            "operator name must be 1..=64 of [A-Za-z0-9._@-]",
        ))
    }
}

fn name_taken(name: &str, existing: &str) -> Error {
    let msg = if name == existing {
        format!("an operator named {name:?} exists")
    } else {
        format!(
            "an operator named {existing:?} exists; operator names are unique regardless of case, \
             so {name:?} is taken"
        )
    };
    Error::conflict("name_taken", msg)
}

fn parse_roles(stored: &str) -> Vec<Role> {
    stored
        .split(',')
        .filter_map(|r| Role::parse(r).ok())
        .collect()
}

fn view(r: rows::OperatorRow) -> OperatorView {
    OperatorView {
        id: r.id,
        name: r.name,
        roles: parse_roles(&r.roles),
        created_at: rfc3339(r.created_at),
        disabled: r.disabled_at.is_some(),
    }
}

/// Create an operator inside a write job. Used by the API, the CLI and first start.
pub async fn create_in(
    conn: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    created_by: Option<&str>,
    name: &str,
    roles: &[Role],
) -> Result<NewOperator> {
    check_name(name)?;
    if roles.is_empty() {
        return Err(Error::invalid(
            "invalid_role",
            "an operator needs at least one role",
        ));
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let stored = roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",");
    // Names are unique regardless of case ("Alice" and "alice" are one person to a reader of
    // the audit log); migration 0008's index on lower(name) backs this up under races.
    if let Some(existing) = rows::by_name_ignoring_case(conn, name).await? {
        return Err(name_taken(name, &existing.name));
    }
    let id = new_id("op");
    let token = new_token();
    match rows::insert(
        conn,
        &id,
        name,
        &stored,
        &token_hash(&token),
        created_by,
        now.unix_timestamp(),
    )
    .await
    {
        Err(Error::Database(e)) if store::is_unique_violation(&e) => {
            return Err(name_taken(name, name))
        }
        other => other?,
    }
    audit::record(
        log,
        now,
        Event::new(
            created_by,
            "operator.created",
            Some(&id),
            serde_json::json!({"name": name, "roles": roles}),
        ),
    );
    Ok(NewOperator {
        view: OperatorView {
            id,
            name: name.to_string(),
            roles,
            created_at: rfc3339(now.unix_timestamp()),
            disabled: false,
        },
        token,
    })
}

/// Create an operator as its own write.
pub async fn create(
    store: &Store,
    now: OffsetDateTime,
    created_by: Option<String>,
    name: String,
    roles: Vec<Role>,
) -> Result<NewOperator> {
    store
        .write(move |c, log| {
            Box::pin(
                async move { create_in(c, log, now, created_by.as_deref(), &name, &roles).await },
            )
        })
        .await
}

/// Create the bootstrap admin if there is no operator at all; returns its token.
pub async fn bootstrap_admin(
    store: &Store,
    now: OffsetDateTime,
) -> Result<Option<Zeroizing<String>>> {
    store
        .write(move |c, log| {
            Box::pin(async move {
                if rows::count(c).await? > 0 {
                    return Ok(None);
                }
                Ok(Some(
                    create_in(c, log, now, None, "admin", &[Role::Admin])
                        .await?
                        .token,
                ))
            })
        })
        .await
}

/// Failed logins one source may make in a window before it is refused outright (429) until the
/// window closes.
pub const LOGIN_FAILURES_ALLOWED: u32 = 10;
/// The window failed logins are counted (and aggregated in the audit log) over.
pub const LOGIN_FAILURE_WINDOW: time::Duration = time::Duration::minutes(1);
/// Sources tracked at once; past this, closed windows and then the oldest are flushed.
const LOGIN_SOURCES_MAX: usize = 4096;

/// One source's failed logins in its current window.
struct Failures {
    since: OffsetDateTime,
    /// Every failure in the window, the first (audited at once) included.
    failures: u32,
    /// Failures after the first, audited together when the window closes.
    unaudited: u32,
    /// Requests refused with 429 without looking at their credentials.
    refused: u32,
    reasons: std::collections::BTreeMap<&'static str, u32>,
}

/// The audit row that sums up a source's window.
struct WindowSummary {
    source: Option<std::net::IpAddr>,
    since: OffsetDateTime,
    until: OffsetDateTime,
    failures: u32,
    refused: u32,
    reasons: std::collections::BTreeMap<&'static str, u32>,
}

impl WindowSummary {
    fn event(&self) -> Event {
        Event::new(
            None,
            "auth.failed",
            None,
            serde_json::json!({
                "source": source_name(self.source),
                "failures": self.failures,
                "refused": self.refused,
                "reasons": self.reasons,
                "since": rfc3339(self.since.unix_timestamp()),
                "until": rfc3339(self.until.unix_timestamp()),
            }),
        )
    }
}

fn source_name(source: Option<std::net::IpAddr>) -> String {
    source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// Failed logins per source (client address), bounded in memory: the first failure of a window
/// is audited at once, later ones are counted and audited as one row when the window closes.
#[derive(Default)]
pub struct LoginLimit(
    std::sync::Mutex<std::collections::HashMap<Option<std::net::IpAddr>, Failures>>,
);

impl LoginLimit {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Option<std::net::IpAddr>, Failures>>
    {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `source` may try again, if it is over the limit (the refusal is counted).
    fn blocked(&self, source: Option<std::net::IpAddr>, now: OffsetDateTime) -> Option<u64> {
        let mut map = self.lock();
        let f = map.get_mut(&source)?;
        let ends = f.since + LOGIN_FAILURE_WINDOW;
        if now >= ends || f.failures < LOGIN_FAILURES_ALLOWED {
            return None;
        }
        f.refused = f.refused.saturating_add(1);
        let secs = (ends - now).as_seconds_f64().ceil();
        Some((secs as u64).max(1))
    }

    /// Count a failure; returns whether to audit it at once (the first of a window), and the
    /// summaries of windows that closed.
    fn fail(
        &self,
        source: Option<std::net::IpAddr>,
        now: OffsetDateTime,
        reason: &'static str,
    ) -> (bool, Vec<WindowSummary>) {
        let mut map = self.lock();
        let mut closed = Vec::new();
        if let Some(f) = map.get_mut(&source) {
            if now < f.since + LOGIN_FAILURE_WINDOW {
                f.failures = f.failures.saturating_add(1);
                f.unaudited = f.unaudited.saturating_add(1);
                *f.reasons.entry(reason).or_default() += 1;
                return (false, closed);
            }
        }
        if let Some(f) = map.remove(&source) {
            closed.extend(summary(source, f, None));
        }
        if map.len() >= LOGIN_SOURCES_MAX {
            closed.extend(take_closed(&mut map, now));
        }
        if map.len() >= LOGIN_SOURCES_MAX {
            let oldest = map.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k);
            if let Some(k) = oldest {
                if let Some(f) = map.remove(&k) {
                    closed.extend(summary(k, f, Some(now)));
                }
            }
        }
        map.insert(
            source,
            Failures {
                since: now,
                failures: 1,
                unaudited: 0,
                refused: 0,
                reasons: Default::default(),
            },
        );
        (true, closed)
    }

    /// Windows that have closed, removed, as summaries to audit.
    fn due(&self, now: OffsetDateTime) -> Vec<WindowSummary> {
        take_closed(&mut self.lock(), now)
    }
}

fn take_closed(
    map: &mut std::collections::HashMap<Option<std::net::IpAddr>, Failures>,
    now: OffsetDateTime,
) -> Vec<WindowSummary> {
    let keys: Vec<_> = map
        .iter()
        .filter(|(_, f)| now >= f.since + LOGIN_FAILURE_WINDOW)
        .map(|(k, _)| *k)
        .collect();
    keys.into_iter()
        .filter_map(|k| map.remove(&k).and_then(|f| summary(k, f, None)))
        .collect()
}

/// The summary of a window, if anything in it is not audited yet. `cut` ends a window early
/// (evicted to make room).
fn summary(
    source: Option<std::net::IpAddr>,
    f: Failures,
    cut: Option<OffsetDateTime>,
) -> Option<WindowSummary> {
    (f.unaudited > 0 || f.refused > 0).then(|| WindowSummary {
        source,
        since: f.since,
        until: cut.unwrap_or(f.since + LOGIN_FAILURE_WINDOW),
        failures: f.unaudited,
        refused: f.refused,
        reasons: f.reasons,
    })
}

impl Ra {
    /// Resolve a bearer token sent from `source`. A source with more than
    /// [`LOGIN_FAILURES_ALLOWED`] failures in its window is refused without the token being
    /// looked at. Failures are audited (never with the token itself): the first of a window at
    /// once, the rest as one row per source and window.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        context: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<Operator> {
        let now = self.now();
        if let Some(retry_after_secs) = self.logins().blocked(source, now) {
            return Err(Error::LoginsLimited { retry_after_secs });
        }
        let reason = match token {
            None => "missing bearer token",
            Some(t) if !t.starts_with(TOKEN_PREFIX) || t.len() > 128 => "malformed token",
            Some(t) => {
                let hash = token_hash(t);
                if let Some(op) = self.tokens().get(&hash) {
                    return Ok(op);
                }
                let mut c = self.store().read().await?;
                match rows::by_token_hash(&mut c, &hash).await? {
                    Some(r) if r.disabled_at.is_none() => {
                        let op = Operator {
                            id: r.id,
                            name: r.name,
                            roles: parse_roles(&r.roles),
                        };
                        self.tokens().put(hash, op.clone());
                        return Ok(op);
                    }
                    Some(_) => "operator disabled",
                    None => "unknown token",
                }
            }
        };
        let (first, closed) = self.logins().fail(source, now, reason);
        let mut events: Vec<Event> = closed.iter().map(WindowSummary::event).collect();
        if first {
            events.push(Event::new(
                None,
                "auth.failed",
                None,
                serde_json::json!({"reason": reason, "request": context,
                                   "source": source_name(source), "failures": 1}),
            ));
        }
        self.audit_events(events).await;
        Err(Error::Unauthenticated)
    }

    /// Audit the failed-login windows that have closed (the server does this every few seconds).
    pub async fn flush_login_failures(&self) {
        let events = self
            .logins()
            .due(self.now())
            .iter()
            .map(WindowSummary::event)
            .collect();
        self.audit_events(events).await;
    }

    async fn audit_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let now = self.now();
        let result = self
            .store()
            .write(move |_, log| {
                for e in events {
                    audit::record(log, now, e);
                }
                Box::pin(async { Ok(()) })
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not audit failed logins");
        }
    }

    pub async fn create_operator(
        &self,
        by: &Operator,
        name: &str,
        roles: &[Role],
    ) -> Result<NewOperator> {
        self.authorize(by, Role::Admin, "operator.create", None)
            .await?;
        create(
            self.store(),
            self.now(),
            Some(by.id.clone()),
            name.to_string(),
            roles.to_vec(),
        )
        .await
    }

    pub async fn list_operators(&self, by: &Operator) -> Result<Vec<OperatorView>> {
        self.authorize(by, Role::Admin, "operator.list", None)
            .await?;
        let mut c = self.store().read().await?;
        Ok(rows::list(&mut c).await?.into_iter().map(view).collect())
    }

    pub async fn disable_operator(&self, by: &Operator, id: &str) -> Result<()> {
        self.authorize(by, Role::Admin, "operator.disable", Some(id))
            .await?;
        if by.id == id {
            return Err(Error::conflict(
                "self_disable",
                "an admin cannot disable their own account",
            ));
        }
        let now = self.now();
        self.tokens().forget(id);
        let (by, target) = (by.id.clone(), id.to_string());
        let id = target.clone();
        let result = self
            .store()
            .write(move |c, log| {
                Box::pin(async move {
                    if !rows::disable(c, &id, now.unix_timestamp()).await? {
                        if rows::list(c).await?.iter().any(|o| o.id == id) {
                            return Err(Error::conflict(
                                "already_disabled",
                                "the operator is already disabled",
                            ));
                        }
                        return Err(Error::NotFound("operator"));
                    }
                    let event = Event::new(
                        Some(&by),
                        "operator.disabled",
                        Some(&id),
                        serde_json::json!({}),
                    );
                    audit::record(log, now, event);
                    Ok(())
                })
            })
            .await;
        // Again after the commit: a call that looked the token up meanwhile may have cached it.
        self.tokens().forget(&target);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(*a, *b);
        assert!(a.starts_with(TOKEN_PREFIX));
        // 32 bytes -> 43 base64url characters.
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(token_hash(&a).len(), 32);
    }

    #[test]
    fn failed_logins_are_limited_per_source_and_summed_up_per_window() {
        let limit = LoginLimit::default();
        let t0 = time::macros::datetime!(2030-01-01 00:00 UTC);
        let a = Some(std::net::IpAddr::from([10, 0, 0, 1]));
        let b = Some(std::net::IpAddr::from([10, 0, 0, 2]));
        let (first, closed) = limit.fail(a, t0, "unknown token");
        assert!(first && closed.is_empty());
        for _ in 1..LOGIN_FAILURES_ALLOWED {
            assert!(limit.blocked(a, t0).is_none());
            assert!(!limit.fail(a, t0, "unknown token").0);
        }
        assert_eq!(limit.blocked(a, t0 + time::Duration::seconds(20)), Some(40));
        assert!(
            limit.blocked(b, t0).is_none(),
            "another source is not affected"
        );
        assert!(limit.due(t0 + time::Duration::seconds(59)).is_empty());
        let due = limit.due(t0 + LOGIN_FAILURE_WINDOW);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].failures, due[0].refused),
            (LOGIN_FAILURES_ALLOWED - 1, 1)
        );
        assert!(limit.blocked(a, t0 + LOGIN_FAILURE_WINDOW).is_none());
        // A lone failure needs no summary.
        limit.fail(b, t0, "malformed token");
        assert!(limit.due(t0 + LOGIN_FAILURE_WINDOW).is_empty());
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let limit = LoginLimit::default();
        let t0 = time::macros::datetime!(2030-01-01 00:00 UTC);
        for n in 0..(LOGIN_SOURCES_MAX as u32 + 10) {
            let ip = Some(std::net::IpAddr::from(n.to_be_bytes()));
            limit.fail(ip, t0 + time::Duration::milliseconds(i64::from(n)), "x");
            limit.fail(ip, t0 + time::Duration::milliseconds(i64::from(n)), "x");
        }
        assert_eq!(limit.lock().len(), LOGIN_SOURCES_MAX);
    }

    #[test]
    fn roles_parse_and_reject_unknown() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert_eq!(Role::parse("root").unwrap_err().code(), "invalid_role");
    }

    #[test]
    fn token_cache_forgets_an_operator_at_once_and_stays_bounded() {
        let cache = TokenCache::default();
        let op = |id: &str| Operator {
            id: id.into(),
            name: "n".into(),
            roles: vec![Role::Clerk],
        };
        cache.put(vec![1; 32], op("op_a"));
        cache.put(vec![2; 32], op("op_a"));
        cache.put(vec![3; 32], op("op_b"));
        cache.forget("op_a");
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_none());
        assert_eq!(cache.get(&[3; 32]).map(|o| o.id), Some("op_b".into()));
        for i in 0..100_000u32 {
            let mut hash = vec![0; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            cache.put(hash, op("op_c"));
        }
        cache.0.run_pending_tasks();
        assert!(cache.0.weighted_size() <= TOKEN_CACHE_BYTES);
    }
}
