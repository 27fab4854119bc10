//! The domain error. It names what went wrong in RA terms; `api::error` alone maps it to HTTP.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Input that is malformed or fails a field rule.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Well-formed input that the RA's policy refuses (weak key, expired evidence, ...).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The action conflicts with the current state (already approved, not pending, ...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// Too many calls of a kind in a short time; try again later.
    #[error("{0}")]
    RateLimited(String),
    /// Too many failed logins from one source: refused without looking at the credentials until
    /// the source's window closes.
    #[error("too many failed logins from this address; try again in {retry_after_secs} s")]
    LoginsLimited { retry_after_secs: u64 },
    /// Authenticated, but this operator may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The upstream CA failed; the request keeps its recorded intent and is retried.
    #[error("upstream CA: {0}")]
    Upstream(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The machine, not Vouch: a file or directory that cannot be read or written, a port in
    /// use, a database that does not answer. The message says what is wrong and what to do.
    #[error("{0}")]
    Environment(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

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
            | Error::Forbidden { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::Unauthenticated => "unauthorized",
            Error::RateLimited(_) | Error::LoginsLimited { .. } => "rate_limited",
            Error::Upstream(_) => "upstream_ca_error",
            Error::Database(_) | Error::Environment(_) | Error::Internal(_) => "internal",
        }
    }
}

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
