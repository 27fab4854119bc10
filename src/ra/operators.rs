//! Operators (the people and applications that call the RA) and their bearer tokens. Tokens carry
//! 256 bits of CSPRNG output; only their SHA-256 is stored.

use super::{new_id, rfc3339, Ra};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::{operators as rows, AuditLog, Conn, Store};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use time::OffsetDateTime;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
/// What an operator may do; an operator holds one or more roles.
pub enum Role {
    /// Registers subscribers and their evidence, submits requests.
    Clerk,
    /// Approves or rejects requests.
    Approver,
    /// Revokes, holds and releases certificates.
    Revoker,
    /// Manages operators and the blocklist.
    Admin,
    /// Grants attributes (the attribute authority).
    Aa,
    /// Reads and verifies the audit log.
    Auditor,
    /// Runs verifications.
    Verifier,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::Clerk,
        Role::Approver,
        Role::Revoker,
        Role::Admin,
        Role::Aa,
        Role::Auditor,
        Role::Verifier,
    ];

    /// The role's name, as in the API and the database.
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

    /// The role named `s`, or `invalid_role`.
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
    /// Operator identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The roles held.
    pub roles: Vec<Role>,
}

impl Operator {
    /// Whether the operator holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Serialize)]
/// An operator as the API shows it.
pub struct OperatorView {
    /// Operator identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The roles held.
    pub roles: Vec<Role>,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Whether it has been disabled (its tokens no longer work).
    pub disabled: bool,
}

/// A newly created operator and its token, which is shown once and never stored.
pub struct NewOperator {
    /// The operator as created.
    pub view: OperatorView,
    /// Its API token.
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

pub(crate) fn parse_roles(stored: &str) -> Vec<Role> {
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

/// How an operator came to be, as the audit log records it (`via` in `operator.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An admin's API call.
    Api,
    /// `vouch operator add` on the host: whoever can read the data directory (or the database).
    Host,
    /// The first admin, made by `vouch init` or the first `vouch serve`.
    Bootstrap,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Host => "host",
            Via::Bootstrap => "bootstrap",
        }
    }
}

/// Create an operator inside a write job. Used by the API, the CLI and first start.
pub async fn create_in(
    conn: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    created_by: Option<&str>,
    via: Via,
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
        Err(Error::Database(e)) if e.is_unique_violation() => return Err(name_taken(name, name)),
        other => other?,
    }
    audit::record(
        log,
        now,
        Event::new(
            created_by,
            Action::OperatorCreated,
            Some(&id),
            serde_json::json!({"name": name, "roles": roles, "via": via.as_str()}),
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

/// Create an operator as its own write: by an admin over the API (`created_by`), or, with
/// `created_by` None, by `vouch operator add` on the host.
pub async fn create(
    store: &Store,
    now: OffsetDateTime,
    created_by: Option<String>,
    name: String,
    roles: Vec<Role>,
) -> Result<NewOperator> {
    let via = if created_by.is_some() {
        Via::Api
    } else {
        Via::Host
    };
    store
        .write(job!(|c, log| {
            create_in(c, log, now, created_by.as_deref(), via, &name, &roles).await
        }))
        .await
}

/// Where the directory stands with its admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admins {
    /// No operator with the admin role was ever created.
    Never,
    /// At least one admin can log in.
    Active,
    /// Admins were created, and every one of them is disabled.
    AllDisabled,
}

/// Operators are never deleted, so the table itself says whether an admin was ever created.
async fn admins(conn: &mut Conn) -> Result<Admins> {
    let mut seen = false;
    for r in rows::list(conn).await? {
        if parse_roles(&r.roles).contains(&Role::Admin) {
            if r.disabled_at.is_none() {
                return Ok(Admins::Active);
            }
            seen = true;
        }
    }
    Ok(if seen {
        Admins::AllDisabled
    } else {
        Admins::Never
    })
}

/// Read where the database stands with its admins.
pub async fn admin_state(store: &Store) -> Result<Admins> {
    let mut c = store.read().await?;
    admins(&mut c).await
}

/// Create the bootstrap admin if no admin was ever created (other operators may exist: `vouch
/// operator add --role clerk` before the first start); returns its token. The check and the
/// insert are one write transaction, so concurrent first starts make one admin between them.
/// When every admin was disabled, none is made: re-enabling access is a decision for whoever runs
/// the host (`vouch operator add --role admin`), not something a restart should do silently.
pub async fn bootstrap_admin(
    store: &Store,
    now: OffsetDateTime,
) -> Result<Option<Zeroizing<String>>> {
    store
        .write(job!(|c, log| {
            if admins(c).await? != Admins::Never {
                return Ok(None);
            }
            // "admin", unless an operator already took that name (say, a clerk).
            let mut name = "admin".to_string();
            let mut n = 1;
            while rows::by_name_ignoring_case(c, &name).await?.is_some() {
                n += 1;
                name = format!("admin-{n}");
            }
            Ok(Some(
                create_in(c, log, now, None, Via::Bootstrap, &name, &[Role::Admin])
                    .await?
                    .token,
            ))
        }))
        .await
}

impl Ra {
    /// Resolve a bearer token sent from `source`. A source with more than
    /// [`super::logins::LOGIN_FAILURES_ALLOWED`] failures in its window is refused without the token being
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
        let events = self.logins().failed(source, now, reason, context);
        self.audit_events(events).await;
        Err(Error::Unauthenticated)
    }

    /// Create an operator with `roles`, and a console password when one is given; admins only.
    /// The password is checked and hashed before anything is written, and set in the same
    /// transaction: a refused password creates no operator. The token is in the answer, once.
    pub async fn create_operator(
        &self,
        by: &Operator,
        name: &str,
        roles: &[Role],
        password: Option<Zeroizing<String>>,
    ) -> Result<NewOperator> {
        self.authorize(by, Role::Admin, "operator.create", None)
            .await?;
        let hash = match password {
            Some(p) => {
                super::console::password::check_new(&p)?;
                Some(super::console::password::hash(p).await?)
            }
            None => None,
        };
        let (now, by, name, roles) = (self.now(), by.id.clone(), name.to_string(), roles.to_vec());
        self.store()
            .write(job!(|c, log| {
                let created = create_in(c, log, now, Some(&by), Via::Api, &name, &roles).await?;
                if let Some(hash) = &hash {
                    let details = serde_json::json!({"via": "api", "at_creation": true});
                    let id = &created.view.id;
                    super::operator_resets::set_password_in(
                        c,
                        log,
                        now,
                        Some(&by),
                        id,
                        hash,
                        details,
                    )
                    .await?;
                }
                Ok(created)
            }))
            .await
    }

    /// Every operator; admins only.
    pub async fn list_operators(&self, by: &Operator) -> Result<Vec<OperatorView>> {
        self.authorize(by, Role::Admin, "operator.list", None)
            .await?;
        let mut c = self.store().read().await?;
        Ok(rows::list(&mut c).await?.into_iter().map(view).collect())
    }

    /// Disable an operator, so its tokens stop working; admins only. The operator resets they
    /// asked for, and those of their account, that nobody decided yet are cancelled in the same
    /// transaction.
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
            .write(job!(|c, log| {
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
                    Action::OperatorDisabled,
                    Some(&id),
                    serde_json::json!({}),
                );
                audit::record(log, now, event);
                use super::operator_resets::{cancel_concerning, Cancel};
                cancel_concerning(c, log, now, Some(&by), &id, Cancel::Disabled).await
            }))
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
