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

/// A PHC string no password matches, checked when the name is unknown so that the answer takes
/// as long as for a known name.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    0Ai5Bf4I0xEbkVXJ7P3DqJXvmmlk5U2Gf5lxHxYkQ1c";

/// Whether `password` matches `stored` (an argon2 PHC string; None: check a dummy, answer false).
pub async fn verify(password: Zeroizing<String>, stored: Option<String>) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY.to_string());
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false)
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
        assert!(verify(pw(), Some(h.clone())).await);
        assert!(!verify(Zeroizing::new("wrong horse battery".into()), Some(h)).await);
        assert!(!verify(pw(), None).await);
        assert!(PasswordHash::new(DUMMY).is_ok());
        assert_eq!(
            hash(Zeroizing::new("short".into()))
                .await
                .unwrap_err()
                .code(),
            "weak_password"
        );
    }
}
