//! The domain error. It names what went wrong in RA terms; `api::error` alone maps it to HTTP.

use thiserror::Error;

/// The domain error: every fallible operation in the RA answers one of these.
#[derive(Debug, Error)]
pub enum Error {
    /// Input that is malformed or fails a field rule.
    #[error("{message}")]
    Invalid {
        /// The machine-readable code clients switch on.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// Well-formed input that the RA's policy refuses (weak key, expired evidence, ...).
    #[error("{message}")]
    Refused {
        /// The machine-readable code clients switch on.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// No such thing (the name says what: "request", "certificate", ...).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The action conflicts with the current state (already approved, not pending, ...).
    #[error("{message}")]
    Conflict {
        /// The machine-readable code clients switch on.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// No credentials, or credentials that do not name a live operator or subscriber.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// Too many calls of a kind in a short time; try again later.
    #[error("{0}")]
    RateLimited(String),
    /// Too many failed logins from one source: refused without looking at the credentials until
    /// the source's window closes.
    #[error("too many failed logins from this address; try again in {retry_after_secs} s")]
    LoginsLimited {
        /// Seconds until the source may try again (Retry-After).
        retry_after_secs: u64,
    },
    /// Authenticated, but this operator may not do this.
    #[error("{message}")]
    Forbidden {
        /// The machine-readable code clients switch on.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// The upstream CA failed; the request keeps its recorded intent and is retried.
    #[error("upstream CA: {0}")]
    Upstream(String),
    /// A remote CA that must take part in an action now (lifting a hold) could not be reached
    /// or failed: nothing changed, and the action may be tried again once it is back.
    #[error("{message}")]
    CaUnavailable {
        /// The machine-readable code clients switch on.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// The database failed. `store` classifies the failure (see [`DatabaseError`]); nothing
    /// outside `store` sees the database driver's own error type.
    #[error("database: {0}")]
    Database(DatabaseError),
    /// The machine, not Vouch: a file or directory that cannot be read or written, a port in
    /// use, a database that does not answer. The message says what is wrong and what to do.
    #[error("{0}")]
    Environment(String),
    /// A fault in Vouch itself or in data it wrote; logged, never shown to clients in detail.
    #[error("internal: {0}")]
    Internal(String),
}

/// What kind of database failure an [`Error::Database`] is. The store decides, from the driver's
/// error, when it converts it; callers switch on the kind, never on driver types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseErrorKind {
    /// A unique constraint refused the row: someone else got there first.
    UniqueViolation,
    /// Anything else (connection lost, a constraint other than uniqueness, a bad query, ...).
    Other,
}

/// A database failure as the domain sees it: its kind, and the driver's message for the log.
#[derive(Debug, Clone)]
pub struct DatabaseError {
    kind: DatabaseErrorKind,
    message: String,
}

impl DatabaseError {
    /// A failure of `kind`, described by `message` (logged, not sent to clients).
    pub fn new(kind: DatabaseErrorKind, message: impl Into<String>) -> Self {
        DatabaseError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> DatabaseErrorKind {
        self.kind
    }

    /// True when a unique constraint refused the row (someone else got there first).
    pub fn is_unique_violation(&self) -> bool {
        self.kind == DatabaseErrorKind::UniqueViolation
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DatabaseError {}

impl Error {
    /// Input that is malformed or fails a field rule ([`Error::Invalid`]).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    /// Well-formed input that policy refuses ([`Error::Refused`]).
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    /// An action that conflicts with the current state ([`Error::Conflict`]).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// An action this operator may not take ([`Error::Forbidden`]).
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A fault in Vouch itself ([`Error::Internal`]).
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// An I/O failure on `what` (a path, an address), with a hint for the usual causes.
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        Error::Environment(format!("{what}: {}", describe_io(e)))
    }

    /// An environment problem described by the caller.
    pub fn environment(message: impl Into<String>) -> Self {
        Error::Environment(message.into())
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { code, .. }
            | Error::Refused { code, .. }
            | Error::Conflict { code, .. }
            | Error::Forbidden { code, .. }
            | Error::CaUnavailable { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::Unauthenticated => "unauthorized",
            Error::RateLimited(_) | Error::LoginsLimited { .. } => "rate_limited",
            Error::Upstream(_) => "upstream_ca_error",
            Error::Database(_) | Error::Environment(_) | Error::Internal(_) => "internal",
        }
    }
}

/// A result whose error is the domain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an I/O error means to the person running Vouch, and what to do about it.
fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied => "permission denied; run as a user who may use it, or change its \
             owner or mode (or choose another place)"
            .to_string(),
        K::NotADirectory => {
            "a path component is a file, not a directory; choose another path".to_string()
        }
        K::IsADirectory => "is a directory, not a file".to_string(),
        K::NotFound => "no such file or directory".to_string(),
        K::AlreadyExists => "already exists".to_string(),
        K::ReadOnlyFilesystem => {
            "the file system is read-only; choose a writable place".to_string()
        }
        K::StorageFull => "no space left on the device; free some space".to_string(),
        K::AddrInUse => "the address is already in use (another `vouch serve` or another \
             program listens there); stop it or choose another port with --listen"
            .to_string(),
        K::AddrNotAvailable => "this machine has no such address; choose one of its own \
             addresses with --listen (e.g. 127.0.0.1:8080)"
            .to_string(),
        K::ConnectionRefused => "connection refused: nothing listens there; is the server \
             running?"
            .to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_errors_say_what_is_wrong_and_are_not_internal() {
        let e = Error::io(
            "creating /x",
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.to_string().find("internal"), None);
        assert!(
            e.to_string().starts_with("creating /x: permission denied"),
            "{e}"
        );
        let e = Error::io(
            "listening on 127.0.0.1:8080",
            &std::io::Error::from(std::io::ErrorKind::AddrInUse),
        );
        assert!(e.to_string().contains("already in use"), "{e}");
        assert!(e.to_string().contains("--listen"), "{e}");
    }
}
