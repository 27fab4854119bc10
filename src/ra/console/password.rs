//! Operator passwords: argon2id (RFC 9106) PHC strings, hashed and checked off the async threads.
//! Passwords are held in `Zeroizing` buffers and never logged.

use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use zeroize::Zeroizing;

/// Fewest characters in a password.
pub const MIN_CHARS: usize = 12;
/// Most bytes in a password (argon2 takes more; a bound keeps hashing cheap to refuse).
pub const MAX_BYTES: usize = 1024;

/// Check a new password's length.
pub fn check_new(password: &str) -> Result<()> {
    if password.chars().count() < MIN_CHARS || password.len() > MAX_BYTES {
        return Err(Error::invalid(
            "weak_password",
            format!("a password must have at least {MIN_CHARS} characters (and at most {MAX_BYTES} bytes)"),
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password` (default parameters: 19 MiB, 2 passes).
pub async fn hash(password: Zeroizing<String>) -> Result<String> {
    check_new(&password)?;
    let _slot = slots()
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("password slots: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| Error::Internal(format!("password salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("password hash: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("password hash task: {e}")))?
}

/// Password checks (and hashes) that may run at once: argon2id takes 19 MiB and a core each, so
/// more than there are cores only queues up memory.
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(1, 16))
    })
}

/// A PHC string no password matches, checked when the name is unknown so that the answer takes
/// as long as for a known name.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    0Ai5Bf4I0xEbkVXJ7P3DqJXvmmlk5U2Gf5lxHxYkQ1c";

/// Whether `password` matches `stored` (an argon2 PHC string; None: check a dummy, answer false).
/// When every check slot is busy the login is refused at once (429) rather than queued.
pub async fn verify(password: Zeroizing<String>, stored: Option<String>) -> Result<bool> {
    verify_in(slots(), password, stored).await
}

async fn verify_in(
    slots: &tokio::sync::Semaphore,
    password: Zeroizing<String>,
    stored: Option<String>,
) -> Result<bool> {
    if password.len() > MAX_BYTES {
        return Ok(false);
    }
    let Ok(_slot) = slots.try_acquire() else {
        return Err(Error::LoginsLimited {
            retry_after_secs: 1,
        });
    };
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY.to_string());
    Ok(tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_verify_and_short_passwords_are_refused() {
        let pw = || Zeroizing::new("correct horse battery".to_string());
        let h = hash(pw()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify(pw(), Some(h.clone())).await.unwrap());
        assert!(
            !verify(Zeroizing::new("wrong horse battery".into()), Some(h))
                .await
                .unwrap()
        );
        assert!(!verify(pw(), None).await.unwrap());
        assert!(PasswordHash::new(DUMMY).is_ok());
        assert_eq!(
            hash(Zeroizing::new("short".into()))
                .await
                .unwrap_err()
                .code(),
            "weak_password"
        );
    }

    #[tokio::test]
    async fn a_check_is_refused_not_queued_when_every_slot_is_busy() {
        let slots = tokio::sync::Semaphore::new(1);
        let held = slots.acquire().await.unwrap();
        let pw = || Zeroizing::new("correct horse battery".to_string());
        let e = verify_in(&slots, pw(), None).await.unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        drop(held);
        assert!(!verify_in(&slots, pw(), None).await.unwrap());
    }
}
