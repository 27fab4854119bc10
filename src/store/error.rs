//! Where database driver errors become domain errors. The store classifies each failure here (a
//! unique violation or something else), so that `ra` and `api` switch on
//! [`DatabaseErrorKind`](crate::error::DatabaseErrorKind) and never see sqlx.

use crate::error::{DatabaseError, DatabaseErrorKind, Error};

/// True when `e` is a unique-constraint violation (someone else got there first).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let kind = if is_unique_violation(&e) {
            DatabaseErrorKind::UniqueViolation
        } else {
            DatabaseErrorKind::Other
        };
        Error::Database(DatabaseError::new(kind, e.to_string()))
    }
}
