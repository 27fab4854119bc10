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
        // A row whose column names no known value (an unknown state string) was refused by our
        // own parsing: that is Vouch's internal error, not the database's.
        if let sqlx::Error::ColumnDecode { source, .. } = &e {
            if let Some(Error::Internal(message)) = source.downcast_ref::<Error>() {
                return Error::Internal(message.clone());
            }
        }
        let kind = if is_unique_violation(&e) {
            DatabaseErrorKind::UniqueViolation
        } else {
            DatabaseErrorKind::Other
        };
        Error::Database(DatabaseError::new(kind, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_state_in_a_row_is_an_internal_error_naming_it() {
        let e = sqlx::Error::ColumnDecode {
            index: "\"status\"".into(),
            source: Box::new(
                "on_hold"
                    .parse::<crate::state::CertificateStatus>()
                    .unwrap_err(),
            ),
        };
        let e = Error::from(e);
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
        assert!(e.to_string().contains("\"on_hold\""), "{e}");
        let other = Error::from(sqlx::Error::ColumnDecode {
            index: "\"n\"".into(),
            source: "not a number".into(),
        });
        assert!(matches!(other, Error::Database(_)), "{other:?}");
    }
}
