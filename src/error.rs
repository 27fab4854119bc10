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
            Error::Database(_) | Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
