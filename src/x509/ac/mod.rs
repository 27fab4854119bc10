//! RFC 5755 attribute certificates: "the holder of identity certificate X holds role R in
//! application A until T". Encoded ([`encode`]) and read ([`parse`]) here by hand on the strict DER
//! reader of [`super::der`], and checked against a holder certificate, the attribute authority's
//! certificate and a time ([`check`]).
//!
//! The forms used (RFC 5755 section 4):
//! - version v2; holder `baseCertificateID` (the identity certificate's issuer as a
//!   directoryName, and its serial); issuer `v2Form` with `issuerName` only (the AA's subject);
//! - validity in GeneralizedTime, whole seconds;
//! - attribute **role** (2.5.4.72, `RoleSyntax`): one value per role, `roleName` a
//!   uniformResourceIdentifier `<namespace>role:<name>`;
//! - attribute **group** (id-aca-group, 1.3.6.1.5.5.7.10.4, `IetfAttrSyntax`) when groups are
//!   given: one value listing them as UTF8Strings;
//! - extension **targetInformation** (2.5.29.55, critical): one `Targets` whose every `Target` is a
//!   `targetName` uniformResourceIdentifier `<namespace>app:<name>`;
//! - authorityKeyIdentifier (the AA's key identifier); then either noRevAvail (2.5.29.56) for
//!   short-lived ACs, or cRLDistributionPoints naming the AC CRL (`/crl/aa.crl`).
//!
//! The namespace is the deployment's (`attribute_namespace` in `vouch.toml`, by default
//! `urn:vouch:`), so that two deployments' roles never read as each other's.

pub mod check;
pub mod encode;
pub mod parse;

use crate::error::{Error, Result};

pub use check::{check, check_with, AcCheck, AcProblem, Expectation};
pub use encode::{AcContent, AcRevocation};
pub use parse::{parse, AttributeCertificate};

/// The namespace roles and applications are named in when none is configured.
pub const DEFAULT_NAMESPACE: &str = "urn:vouch:";

/// Longest role, group or application name.
pub const MAX_NAME_CHARS: usize = 64;

/// Most roles, groups or targets in one attribute certificate.
pub const MAX_ITEMS: usize = 32;

/// How role and application names become URIs, in the deployment's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeNames {
    namespace: String,
}

impl Default for AttributeNames {
    fn default() -> Self {
        AttributeNames {
            namespace: DEFAULT_NAMESPACE.to_string(),
        }
    }
}

impl AttributeNames {
    /// The names in `namespace`: an absolute URI prefix ending in `:`, `/` or `#`, such as
    /// `urn:example-city:` or `https://pki.example.gov/attributes/`.
    pub fn new(namespace: &str) -> Result<Self> {
        let bad = |m: &str| {
            Err(Error::invalid(
                "bad_attribute_namespace",
                format!("attribute_namespace {namespace:?}: {m}"),
            ))
        };
        if namespace.is_empty() || namespace.len() > 200 {
            return bad("must be 1 to 200 characters");
        }
        if !namespace.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("must be printable ASCII without spaces");
        }
        if !namespace.ends_with([':', '/', '#']) {
            return bad("must end in ':', '/' or '#'");
        }
        if url::Url::parse(&format!("{namespace}role:x")).is_err() {
            return bad("is not the start of an absolute URI (e.g. urn:example-city:)");
        }
        Ok(AttributeNames {
            namespace: namespace.to_string(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The roleName URI of a role.
    pub fn role_uri(&self, role: &str) -> String {
        format!("{}role:{role}", self.namespace)
    }

    /// The targetName URI of an application.
    pub fn target_uri(&self, application: &str) -> String {
        format!("{}app:{application}", self.namespace)
    }

    /// The role a roleName URI names, if it is in this namespace.
    pub fn role_of<'a>(&self, uri: &'a str) -> Option<&'a str> {
        uri.strip_prefix(self.namespace.as_str())?
            .strip_prefix("role:")
    }

    /// The application a targetName URI names, if it is in this namespace.
    pub fn target_of<'a>(&self, uri: &'a str) -> Option<&'a str> {
        uri.strip_prefix(self.namespace.as_str())?
            .strip_prefix("app:")
    }
}

/// Check a role or application name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a
/// letter or digit (they become URI path segments and are compared as given).
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_field",
            format!(
                "{field}: {name:?} is not a name: 1 to {MAX_NAME_CHARS} characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
            ),
        ))
    }
}

/// Check a group name (a UTF8String a person reads): 1 to 64 characters under the name rule of
/// [`crate::x509::subject::checked_name`] (no control, bidirectional or invisible characters, no
/// confusable script mixes); returns it in NFC.
pub fn check_group(name: &str) -> Result<String> {
    crate::x509::subject::checked_name("groups", name, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_their_namespace() {
        let n = AttributeNames::new("urn:example-city:").unwrap();
        assert_eq!(n.role_uri("approver"), "urn:example-city:role:approver");
        assert_eq!(n.target_uri("permits"), "urn:example-city:app:permits");
        assert_eq!(
            n.role_of("urn:example-city:role:approver"),
            Some("approver")
        );
        assert_eq!(n.target_of("urn:example-city:app:permits"), Some("permits"));
        assert_eq!(n.role_of("urn:other:role:approver"), None);
        assert_eq!(n.role_of("urn:example-city:app:permits"), None);
        assert_eq!(AttributeNames::default().namespace(), DEFAULT_NAMESPACE);
        assert!(AttributeNames::new("https://pki.example.gov/attributes/").is_ok());
        for bad in ["", "urn:x", "no scheme:", "urn:a b:", "例:"] {
            assert!(AttributeNames::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("roles", "approver").is_ok());
        assert!(check_name("roles", "level-2.a_b").is_ok());
        for bad in ["", "Approver", "-x", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_name("roles", bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_group("规划局").unwrap(), "规划局");
        for bad in [" ", "a\nb", "a\u{202e}b", "a\u{200b}b", ""] {
            assert!(check_group(bad).is_err(), "{bad:?}");
        }
    }
}
