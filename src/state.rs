//! The states of the RA's state machines: certificate requests, issued certificates, four-eyes
//! revocation requests, attribute grants and four-eyes operator resets. `ra` decides the
//! transitions; `store` decodes rows into these types, so they live here, depending on nothing
//! but the domain error.
//!
//! Each state is stored and shown as the string its `as_str` gives: for requests and revocation
//! requests the strings in the migrations' CHECK constraints (certificates' `status` column has
//! none; its values are listed in migration 0002's header), and in the API's JSON. A stored string that names no state is an
//! internal error (the database holds something Vouch never wrote).

use crate::error::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One enum per state machine, with its strings, parsing, `Display` and serde as those strings.
macro_rules! states {
    (
        $(#[$doc:meta])*
        $name:ident ($what:literal) {
            $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every state, in the order the migrations list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The state as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The state named `text`, if there is one (for input, where an unknown name is the
            /// caller's mistake rather than an internal error).
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Every state's string, comma-separated (for messages that list them).
            pub fn names() -> String {
                $name::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        /// A stored string that names no state is an internal error naming the string.
        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<$name, Error> {
                $name::parse(text).ok_or_else(|| {
                    Error::internal(format!(concat!("unknown ", $what, " {:?}"), text))
                })
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;

            fn try_from(text: &str) -> Result<$name, Error> {
                text.parse()
            }
        }

        /// For `#[sqlx(try_from = "String")]` on store rows.
        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(text: String) -> Result<$name, Error> {
                text.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!(concat!("unknown ", $what, " {:?}"), text))
                })
            }
        }
    };
}

states! {
    /// A certificate request's state (see [`crate::ra::requests`] for the machine).
    RequestState("request state") {
        /// Submitted, awaiting approvals; it expires at its `expires_at`.
        Pending = "pending",
        /// Approved; its issuance intent is recorded and the CA is asked to sign.
        Approved = "approved",
        /// The certificate is stored.
        Issued = "issued",
        /// An approver rejected it.
        Rejected = "rejected",
        /// It was still pending at its expiry.
        Expired = "expired",
        /// The CA refused the order.
        Failed = "failed",
        /// An admin cancelled it after approval, before issuance.
        Cancelled = "cancelled",
    }
}

states! {
    /// An issued certificate's status (see [`crate::ra::revocation`]). Expiry is not a stored
    /// status: views derive it from `not_after`.
    CertificateStatus("certificate status") {
        /// Neither revoked nor on hold.
        Valid = "valid",
        /// Suspended (certificateHold); it can be released back to valid.
        OnHold = "on-hold",
        /// Revoked for good.
        Revoked = "revoked",
    }
}

states! {
    /// An attribute certificate grant's state, when its profile asks for approvals (see
    /// [`crate::ra::attributes`]).
    GrantState("grant state") {
        /// Awaiting approvals by other `aa` operators; it expires at its `expires_at`.
        Pending = "pending",
        /// Approved and its attribute certificate issued.
        Granted = "granted",
        /// An approver rejected it.
        Rejected = "rejected",
        /// It was still pending at its expiry.
        Expired = "expired",
        /// It could not be issued when approved (the holder certificate was no longer valid).
        Failed = "failed",
    }
}

impl CertificateStatus {
    /// True when the certificate is revoked or on hold: it has a CRL entry and OCSP answers
    /// "revoked".
    pub fn is_revoked_or_held(self) -> bool {
        matches!(self, CertificateStatus::Revoked | CertificateStatus::OnHold)
    }
}

states! {
    /// A four-eyes revocation request's state (see [`crate::ra::revocation_requests`]).
    RevocationRequestState("revocation request state") {
        /// Awaiting a second revoker.
        Pending = "pending",
        /// Approved; the certificate was revoked in the same transaction.
        Approved = "approved",
        /// A second revoker rejected it.
        Rejected = "rejected",
    }
}

states! {
    /// A four-eyes operator reset's state: another operator's TOTP reset or password change,
    /// asked for by one admin (see [`crate::ra::operator_resets`]).
    ResetState("operator reset state") {
        /// Awaiting a second admin; it expires at its `expires_at`.
        Pending = "pending",
        /// Approved; the change was applied in the same transaction.
        Approved = "approved",
        /// An admin rejected it.
        Rejected = "rejected",
        /// The admin who asked withdrew it.
        Cancelled = "cancelled",
        /// Nobody decided it before its expiry.
        Expired = "expired",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted strings of the first `CHECK (status IN (…))` list in `sql`.
    fn check_list(sql: &str) -> Vec<&str> {
        let start = sql.find("CHECK (status IN (").expect("a status CHECK") + 18;
        let end = start + sql[start..].find(')').expect("the list's end");
        sql[start..end]
            .split(',')
            .map(|s| s.trim().trim_matches('\''))
            .collect()
    }

    fn round_trips<T>(all: &[T])
    where
        T: Copy + Eq + fmt::Debug + fmt::Display + FromStr<Err = Error> + Serialize,
        T: for<'de> Deserialize<'de> + for<'a> TryFrom<&'a str, Error = Error>,
    {
        for &s in all {
            let text = s.to_string();
            assert_eq!(text.parse::<T>().unwrap(), s);
            assert_eq!(T::try_from(text.as_str()).unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), s);
        }
    }

    #[test]
    fn every_state_round_trips_through_its_string() {
        round_trips(RequestState::ALL);
        round_trips(CertificateStatus::ALL);
        round_trips(RevocationRequestState::ALL);
        round_trips(GrantState::ALL);
        round_trips(ResetState::ALL);
        assert_eq!(CertificateStatus::OnHold.as_str(), "on-hold");
    }

    #[test]
    fn an_unknown_stored_string_is_an_internal_error_naming_it() {
        let e = "on_hold".parse::<CertificateStatus>().unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
        assert!(e.to_string().contains("\"on_hold\""), "{e}");
        assert!(RequestState::try_from("Pending").is_err());
        assert!(serde_json::from_str::<RevocationRequestState>("\"issued\"").is_err());
        assert_eq!(RequestState::parse("nope"), None);
    }

    #[test]
    fn request_states_are_the_migrations_check_list() {
        for sql in [
            include_str!("../migrations/sqlite/0007_request_endings.sql"),
            include_str!("../migrations/postgres/0007_request_endings.sql"),
        ] {
            let list = check_list(sql);
            let ours: Vec<_> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(list, ours);
        }
        assert_eq!(
            RequestState::names(),
            "pending, approved, issued, rejected, expired, failed, cancelled"
        );
    }

    #[test]
    fn revocation_request_states_are_the_migrations_check_list() {
        for sql in [
            include_str!("../migrations/sqlite/0003_revocation_requests.sql"),
            include_str!("../migrations/postgres/0003_revocation_requests.sql"),
        ] {
            let list = check_list(sql);
            let ours: Vec<_> = RevocationRequestState::ALL
                .iter()
                .map(|s| s.as_str())
                .collect();
            assert_eq!(list, ours);
        }
    }

    #[test]
    fn reset_states_are_the_migrations_check_list() {
        for sql in [
            include_str!("../migrations/sqlite/0019_operator_resets.sql"),
            include_str!("../migrations/postgres/0019_operator_resets.sql"),
        ] {
            let ours: Vec<_> = ResetState::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(check_list(sql), ours);
        }
    }

    #[test]
    fn grant_states_and_ac_statuses_are_the_migrations_check_lists() {
        for sql in [
            include_str!("../migrations/sqlite/0011_attribute_certificates.sql"),
            include_str!("../migrations/postgres/0011_attribute_certificates.sql"),
        ] {
            let ours: Vec<_> = GrantState::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(check_list(sql), ours);
            // Attribute certificates have the identity certificates' statuses.
            let acs = &sql[sql.find("CREATE TABLE attribute_certificates").unwrap()..];
            let ours: Vec<_> = CertificateStatus::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(check_list(acs), ours);
        }
    }

    #[test]
    fn status_history_statuses_are_the_migrations_check_list() {
        for sql in [
            include_str!("../migrations/sqlite/0012_status_history.sql"),
            include_str!("../migrations/postgres/0012_status_history.sql"),
        ] {
            let ours: Vec<_> = CertificateStatus::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(check_list(sql), ours);
        }
    }

    #[test]
    fn certificate_statuses_are_the_ones_the_migrations_name() {
        // The certificates table has no CHECK on status; migration 0002 documents the values and
        // 0001 gives the default.
        for (sql, init) in [
            (
                include_str!("../migrations/sqlite/0002_revocation.sql"),
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            (
                include_str!("../migrations/postgres/0002_revocation.sql"),
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
        ] {
            let line = sql.lines().next().unwrap();
            let named: Vec<_> = line.split('\'').skip(1).step_by(2).collect::<Vec<_>>();
            let ours: Vec<_> = CertificateStatus::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(named, ours, "{line}");
            assert!(init.contains("status        TEXT NOT NULL DEFAULT 'valid'"));
        }
    }
}
