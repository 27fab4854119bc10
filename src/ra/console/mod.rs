//! Console logins: operators' passwords (argon2id), TOTP second factor (RFC 6238, required for the
//! roles that can cause issuance or revocation), per-operator back-off and lock after repeated
//! failures, and server-side sessions (only the token's SHA-256 is stored; logout ends the row,
//! so a copied cookie dies with it). The per-source limit of `logins` applies here as well.

pub mod password;
pub mod seal;
pub mod sessions;
pub mod totp;

use super::Role;

pub use seal::SealKey;
pub use sessions::{Login, Session, Stage};

/// Roles that need a second factor to log in to the console (CA/B Forum BR 6.5.1: multi-factor
/// for accounts that can cause issuance).
pub const TOTP_ROLES: [Role; 4] = [Role::Approver, Role::Revoker, Role::Admin, Role::Aa];

/// Failed logins an operator may make before being locked out.
pub const LOCK_AFTER: i64 = 5;
/// The first lock's length; each further failure doubles it, up to [`LOCK_MAX`].
pub const LOCK_FIRST: time::Duration = time::Duration::minutes(5);
/// The longest lock.
pub const LOCK_MAX: time::Duration = time::Duration::hours(24);
/// A session unused this long is over.
pub const IDLE_TIMEOUT: time::Duration = time::Duration::minutes(30);
/// A session is over this long after login, however busy.
pub const ABSOLUTE_TIMEOUT: time::Duration = time::Duration::hours(12);

/// Whether two byte strings are equal, in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an operator with `roles` must use TOTP.
pub fn needs_totp(roles: &[Role]) -> bool {
    roles.iter().any(|r| TOTP_ROLES.contains(r))
}

/// How long an operator with `failures` failed logins in a row is locked, if at all.
pub fn lock_for(failures: i64) -> Option<time::Duration> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = (failures - LOCK_AFTER).clamp(0, 20) as u32;
    let secs = LOCK_FIRST
        .whole_seconds()
        .saturating_mul(1i64 << doublings)
        .min(LOCK_MAX.whole_seconds());
    Some(time::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_starts_after_five_failures_and_doubles_up_to_a_day() {
        assert_eq!(lock_for(4), None);
        assert_eq!(lock_for(5), Some(time::Duration::minutes(5)));
        assert_eq!(lock_for(6), Some(time::Duration::minutes(10)));
        assert_eq!(lock_for(7), Some(time::Duration::minutes(20)));
        assert_eq!(lock_for(100), Some(LOCK_MAX));
        assert!(needs_totp(&[Role::Clerk, Role::Approver]));
        assert!(!needs_totp(&[Role::Clerk, Role::Auditor]));
    }
}
