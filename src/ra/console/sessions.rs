//! Console login, sessions and TOTP enrolment, as `Ra` methods the web console calls.

use super::{lock_for, needs_totp, password, totp, ABSOLUTE_TIMEOUT, IDLE_TIMEOUT};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::ra::operators::parse_roles;
use crate::ra::{Operator, Ra};
use crate::store::console as rows;
use crate::store::job;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The operator must enrol TOTP before doing anything else.
    Enrol,
    /// Logged in.
    Full,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Enrol => "enrol",
            Stage::Full => "full",
        }
    }
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is logged in.
    pub operator: Operator,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Where the session stands.
    pub stage: Stage,
}

/// A new session: the cookie's token (shown to the browser only) and its CSRF token.
pub struct Login {
    /// The session token, for the cookie.
    pub token: Zeroizing<String>,
    /// The session.
    pub session: Session,
}

/// What an operator enrolling TOTP is shown, once.
pub struct Enrolment {
    /// The secret in base32, for typing into an app.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI, for the QR code.
    pub uri: Zeroizing<String>,
}

/// A random token: 256 bits, base64url.
pub fn random_token() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()))
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Why a login failed, as audited (never the password or code).
enum Failure {
    Password,
    Totp,
}

impl Ra {
    /// Log in to the console with a name, password and (for [`super::TOTP_ROLES`]) a TOTP code.
    /// An operator who needs TOTP and has not enrolled gets a session that can only enrol.
    pub async fn console_login(
        &self,
        name: &str,
        password: Zeroizing<String>,
        code: &str,
        source: Option<IpAddr>,
    ) -> Result<Login> {
        let now = self.now();
        if let Some(retry_after_secs) = self.logins().blocked(source, now) {
            return Err(Error::LoginsLimited { retry_after_secs });
        }
        // Counted as under way before the password is checked, and released only after a failure
        // is recorded: simultaneous guesses cannot slip past the limits.
        let name_key = if name.len() <= 64 { name } else { "" };
        let Some(_attempt) = self.logins().begin(name_key, source, now) else {
            return Err(Error::LoginsLimited {
                retry_after_secs: 1,
            });
        };
        let row = if name.len() <= 64 {
            let mut c = self.store().read().await?;
            rows::login_by_name(&mut c, name).await?
        } else {
            None
        };
        let live = row.filter(|r| r.disabled_at.is_none());
        // A locked operator who has TOTP still gets in with the right password and the right
        // code: guesses by others cannot keep an admin out. Everyone else waits for the lock to
        // end (or `vouch operator unlock`). While locked, every failure answers the same 429, so
        // a right password with a wrong code tells nothing.
        let mut locked = None;
        if let Some(r) = &live {
            let until = r.locked_until.unwrap_or(0);
            if until > now.unix_timestamp() {
                let retry = Error::LoginsLimited {
                    retry_after_secs: u64::try_from(until - now.unix_timestamp()).unwrap_or(1),
                };
                let two_factors = r.totp_enrolled_at.is_some()
                    && r.totp_sealed.is_some()
                    && needs_totp(&parse_roles(&r.roles));
                if !two_factors {
                    let events =
                        self.logins()
                            .failed(source, now, "operator locked", "POST /login");
                    self.audit_events(events).await;
                    return Err(retry);
                }
                locked = Some(retry);
            }
        }
        let refuse = |e: Error, locked: Option<Error>| locked.unwrap_or(e);
        let stored = live.as_ref().and_then(|r| r.password_hash.clone());
        let good = password::verify(password, stored).await?;
        let Some(row) = live.filter(|r| good && r.password_hash.is_some()) else {
            let e = self.login_failed(name, source, Failure::Password).await;
            return Err(refuse(e, locked));
        };
        let roles = parse_roles(&row.roles);
        let key = self.console_key();
        let (token, csrf) = (random_token(), random_token().to_string());
        let hash = token_hash(&token);
        let id = row.id.clone();
        let code = code.to_string();
        let csrf2 = csrf.clone();
        let must = needs_totp(&roles);
        let locked_now = locked.is_some();
        let outcome = self
            .store()
            .write(job!(|c, log| {
                // Read again inside the write: two logins with one code cannot both pass.
                let Some(r) = rows::login_by_id(c, &id).await? else {
                    return Ok(None);
                };
                let mut step = None;
                let stage = match (must, r.totp_enrolled_at, &r.totp_sealed) {
                    // Through a lock only with both factors.
                    (false, _, _) if locked_now => return Ok(None),
                    (false, _, _) => Stage::Full,
                    (true, Some(_), Some(sealed)) => {
                        let secret = key.open(&id, sealed)?;
                        match totp::check(&secret, &code, now.unix_timestamp(), r.totp_last_step) {
                            Some(s) => step = Some(s),
                            None => return Ok(None),
                        }
                        Stage::Full
                    }
                    (true, _, _) if locked_now => return Ok(None),
                    (true, _, _) => Stage::Enrol,
                };
                rows::login_succeeded(c, &id, step).await?;
                rows::insert_session(c, &hash, &id, &csrf2, stage.as_str(), now.unix_timestamp())
                    .await?;
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&id),
                        Action::ConsoleLogin,
                        Some(&id),
                        serde_json::json!({"stage": stage.as_str(), "totp": step.is_some()}),
                    ),
                );
                Ok(Some(stage))
            }))
            .await?;
        let Some(stage) = outcome else {
            let e = self.login_failed(name, source, Failure::Totp).await;
            return Err(refuse(e, locked));
        };
        Ok(Login {
            token,
            session: Session {
                operator: Operator {
                    id: row.id,
                    name: row.name,
                    roles,
                },
                csrf,
                stage,
            },
        })
    }

    /// Count a failed login against its source and, when the name is an operator's, against the
    /// operator (locking it after [`super::LOCK_AFTER`] in a row); audited.
    async fn login_failed(&self, name: &str, source: Option<IpAddr>, why: Failure) -> Error {
        let now = self.now();
        let reason = match why {
            Failure::Password => "wrong name or password",
            Failure::Totp => "wrong TOTP code",
        };
        let events = self.logins().failed(source, now, reason, "POST /login");
        self.audit_events(events).await;
        let name = name.chars().take(64).collect::<String>();
        let src = source.map(|s| s.to_string());
        let result = self
            .store()
            .write(job!(|c, log| {
                let Some(r) = rows::login_by_name(c, &name).await? else {
                    return Ok(());
                };
                let failures = r.failed_logins.saturating_add(1);
                let until = lock_for(failures).map(|d| (now + d).unix_timestamp());
                rows::login_failed(c, &r.id, failures, until).await?;
                let details =
                    serde_json::json!({"reason": reason, "failures": failures, "source": src});
                audit::record(
                    log,
                    now,
                    Event::new(None, Action::ConsoleLoginFailed, Some(&r.id), details),
                );
                if let Some(until) = until {
                    let details = serde_json::json!({"failures": failures,
                        "until": crate::ra::rfc3339(until)});
                    audit::record(
                        log,
                        now,
                        Event::new(None, Action::OperatorLocked, Some(&r.id), details),
                    );
                }
                Ok(())
            }))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record a failed console login");
        }
        Error::Unauthenticated
    }

    /// The live session behind a cookie's `token`: not ended, not idle past [`IDLE_TIMEOUT`],
    /// not older than [`ABSOLUTE_TIMEOUT`], its operator not disabled.
    pub async fn console_session(&self, token: &str) -> Result<Session> {
        if token.is_empty() || token.len() > 128 {
            return Err(Error::Unauthenticated);
        }
        let now = self.now().unix_timestamp();
        let hash = token_hash(token);
        let row = {
            let mut c = self.store().read().await?;
            rows::session(&mut c, &hash).await?
        };
        let Some(s) = row else {
            return Err(Error::Unauthenticated);
        };
        let expired = now - s.last_seen_at >= IDLE_TIMEOUT.whole_seconds()
            || now - s.created_at >= ABSOLUTE_TIMEOUT.whole_seconds();
        if s.ended_at.is_some() || s.disabled_at.is_some() || expired {
            return Err(Error::Unauthenticated);
        }
        // One write a minute at most per session, not one per page.
        if now - s.last_seen_at >= 60 {
            self.store()
                .write(job!(|c, _log| rows::touch_session(c, &hash, now).await))
                .await?;
        }
        Ok(Session {
            operator: Operator {
                id: s.operator_id,
                name: s.name,
                roles: parse_roles(&s.roles),
            },
            csrf: s.csrf_token,
            stage: if s.stage == "full" {
                Stage::Full
            } else {
                Stage::Enrol
            },
        })
    }

    /// End the session behind `token` (logout): the row says ended, so the cookie is worth
    /// nothing anywhere.
    pub async fn console_logout(&self, token: &str) -> Result<()> {
        let hash = token_hash(token);
        let now = self.now();
        let session = self.console_session(token).await.ok();
        self.store()
            .write(job!(|c, log| {
                if rows::end_session(c, &hash, now.unix_timestamp()).await? {
                    if let Some(s) = &session {
                        let id = s.operator.id.clone();
                        let event = Event::new(
                            Some(&id),
                            Action::ConsoleLogout,
                            Some(&id),
                            serde_json::json!({}),
                        );
                        audit::record(log, now, event);
                    }
                }
                Ok(())
            }))
            .await
    }

    /// Start (or restart) TOTP enrolment for a session in the enrol stage: a new secret, sealed
    /// in the database, shown this once.
    pub async fn totp_begin(&self, session: &Session) -> Result<Enrolment> {
        if session.stage != Stage::Enrol {
            return Err(Error::conflict("totp_enrolled", "TOTP is already enrolled"));
        }
        let secret = totp::new_secret();
        let sealed = self.console_key().seal(&session.operator.id, &secret)?;
        let id = session.operator.id.clone();
        let stored = self
            .store()
            .write(job!(|c, _log| rows::set_totp_pending(c, &id, &sealed).await))
            .await?;
        if !stored {
            return Err(Error::conflict("totp_enrolled", "TOTP is already enrolled"));
        }
        Ok(Enrolment {
            secret: totp::base32(&secret),
            uri: totp::otpauth_uri("Vouch", &session.operator.name, &secret),
        })
    }

    /// Confirm TOTP enrolment with a first code; the session becomes a full one.
    pub async fn totp_confirm(&self, token: &str, session: &Session, code: &str) -> Result<()> {
        let key = self.console_key();
        let now = self.now();
        let id = session.operator.id.clone();
        let hash = token_hash(token);
        let code = code.to_string();
        let ok = self
            .store()
            .write(job!(|c, log| {
                let Some(r) = rows::login_by_id(c, &id).await? else {
                    return Ok(false);
                };
                let Some(sealed) = r.totp_sealed.filter(|_| r.totp_enrolled_at.is_none()) else {
                    return Ok(false);
                };
                let secret = key.open(&id, &sealed)?;
                let Some(step) = totp::check(&secret, &code, now.unix_timestamp(), None) else {
                    return Ok(false);
                };
                if !rows::confirm_totp(c, &id, now.unix_timestamp(), step).await? {
                    return Ok(false);
                }
                rows::upgrade_session(c, &hash).await?;
                let event = Event::new(
                    Some(&id),
                    Action::OperatorTotpEnrolled,
                    Some(&id),
                    serde_json::json!({}),
                );
                audit::record(log, now, event);
                Ok(true)
            }))
            .await?;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "wrong_totp",
                "the code does not match; try the next one",
            ))
        }
    }

    /// Delete console sessions that are over (ended, idle or past the absolute timeout): the
    /// server's upkeep calls this, so `console_sessions` does not grow without bound. Only the
    /// rows go; the audit log keeps the logins and logouts.
    pub async fn prune_console_sessions(&self) -> Result<u64> {
        let now = self.now().unix_timestamp();
        let idle = now - IDLE_TIMEOUT.whole_seconds();
        let old = now - ABSOLUTE_TIMEOUT.whole_seconds();
        self.store()
            .write(job!(|c, _log| rows::prune_sessions(c, idle, old).await))
            .await
    }
}

/// Lift an operator's console lock (on the host: `vouch operator unlock`); audited. False when
/// there is no such operator.
pub async fn unlock(
    store: &crate::store::Store,
    now: time::OffsetDateTime,
    id: &str,
) -> Result<bool> {
    let id = id.to_string();
    store
        .write(job!(|c, log| {
            let Some(r) = rows::login_by_id(c, &id).await? else {
                return Ok(false);
            };
            rows::login_failed(c, &id, 0, None).await?;
            let details = serde_json::json!({"via": "host", "failures": r.failed_logins,
                "was_locked": r.locked_until.is_some_and(|u| u > now.unix_timestamp())});
            audit::record(
                log,
                now,
                Event::new(None, Action::OperatorUnlocked, Some(&id), details),
            );
            Ok(true)
        }))
        .await
}

/// Store a password hash for operator `id` on the host (`vouch operator add|set-password
/// --data-dir`), end the operator's sessions, audit it with `via: host` (and the `reason`, when
/// one is given). The pending resets of the operator are cancelled in the same transaction: an
/// older request must not later overwrite what the host set.
pub async fn set_password_hash(
    store: &crate::store::Store,
    now: time::OffsetDateTime,
    id: &str,
    hash: String,
    reason: Option<String>,
) -> Result<()> {
    use crate::ra::operator_resets::{cancel_concerning, set_password_in, Cancel};
    let id = id.to_string();
    store
        .write(job!(|c, log| {
            let mut details = serde_json::json!({"via": "host"});
            if let Some(reason) = &reason {
                details["reason"] = serde_json::json!(reason);
            }
            set_password_in(c, log, now, None, &id, &hash, details).await?;
            cancel_concerning(c, log, now, None, &id, Cancel::Host).await
        }))
        .await
}
