//! Certificate profiles as data (`profiles/*.toml`): what a certificate of a kind looks like, which
//! keys it accepts and how many approvals it needs; and attribute certificate profiles (`kind =
//! "attribute"`): which roles in which applications may be granted, for how long, revocable or
//! short-lived, and with how many approvals.

use crate::error::{Error, Result};
use crate::x509::key::KeyType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Whom a profile certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberKind {
    /// A natural person.
    Person,
    /// An organisation.
    Organisation,
}

impl SubscriberKind {
    /// The name in profiles and records.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::Person => "person",
            SubscriberKind::Organisation => "organisation",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(SubscriberKind::Person),
            "organisation" => Some(SubscriberKind::Organisation),
            _ => None,
        }
    }
}

/// keyUsage bits a profile may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// nonRepudiation (contentCommitment).
    NonRepudiation,
    /// keyEncipherment.
    KeyEncipherment,
    /// dataEncipherment.
    DataEncipherment,
    /// keyAgreement.
    KeyAgreement,
}

/// extendedKeyUsage purposes a profile may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtendedKeyUsage {
    /// id-kp-clientAuth.
    ClientAuth,
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-emailProtection.
    EmailProtection,
    /// id-kp-codeSigning.
    CodeSigning,
    /// id-kp-timeStamping.
    TimeStamping,
}

/// A DN attribute the profile fills from the vetted subscriber record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectField {
    /// commonName: the subscriber's name.
    CommonName,
    /// organizationName: the subscriber's organisation.
    Organisation,
    /// serialNumber: the number of an identifier with valid evidence.
    SerialNumber,
}

/// One certificate profile, as written in `profiles/<name>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (what requests name).
    pub name: String,
    /// What it is for, for operators.
    #[serde(default)]
    pub description: String,
    /// Whom it certifies.
    pub subscriber_kind: SubscriberKind,
    /// How long its certificates are valid.
    pub validity_days: u32,
    /// The key types it accepts.
    pub key_types: Vec<KeyType>,
    /// Smallest RSA modulus it accepts (default 2048).
    #[serde(default = "default_rsa_min_bits")]
    pub rsa_min_bits: u32,
    /// Approvals a request needs (default 1).
    #[serde(default = "default_required_approvals")]
    pub required_approvals: u32,
    /// How long a request waits for approval.
    pub request_expiry_hours: u32,
    /// keyUsage of its certificates.
    pub key_usage: Vec<KeyUsage>,
    /// extendedKeyUsage of its certificates.
    #[serde(default)]
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// The subject DN attributes, filled from the vetted record.
    pub subject: Vec<SubjectField>,
    /// Whether the subscriber's email goes into subjectAltName.
    #[serde(default)]
    pub email_in_san: bool,
    /// Revocations of certificates of this profile need a second revoker's approval.
    #[serde(default)]
    pub revocation_approval: bool,
}

fn default_rsa_min_bits() -> u32 {
    2048
}

fn default_required_approvals() -> u32 {
    1
}

impl Profile {
    /// Read and check a profile from its TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let profile: Profile =
            toml::from_str(text).map_err(|e| Error::invalid("bad_profile", e.to_string()))?;
        profile.check()?;
        Ok(profile)
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &str| {
            Err(Error::invalid(
                "bad_profile",
                format!("profile {:?}: {m}", self.name),
            ))
        };
        if !valid_profile_name(&self.name) {
            return bad("name must be non-empty [A-Za-z0-9_-]");
        }
        if !(1..=3650).contains(&self.validity_days) {
            return bad("validity_days must be 1..=3650");
        }
        if self.key_types.is_empty() {
            return bad("key_types must not be empty");
        }
        if self.rsa_min_bits < 2048 {
            return bad("rsa_min_bits must be at least 2048");
        }
        if !(1..=10).contains(&self.required_approvals) {
            return bad("required_approvals must be 1..=10");
        }
        if !(1..=24 * 365).contains(&self.request_expiry_hours) {
            return bad("request_expiry_hours must be 1..=8760");
        }
        if self.key_usage.is_empty() {
            return bad("key_usage must not be empty");
        }
        if !self.subject.contains(&SubjectField::CommonName) {
            return bad("subject must include common_name");
        }
        Ok(())
    }
}

/// How relying parties learn that an attribute certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcRevocationMode {
    /// Listed on the AC CRL (`/crl/aa.crl`), named by cRLDistributionPoints.
    Crl,
    /// Short-lived, with noRevAvail: relying parties do not check revocation.
    NoRevAvail,
}

/// Longest an attribute certificate profile may allow, in hours (two years).
pub const MAX_AC_HOURS: u32 = 24 * 731;

/// Longest a short-lived (noRevAvail) attribute certificate may be valid, in hours: what cannot be
/// revoked must end soon.
pub const MAX_NO_REV_AVAIL_HOURS: u32 = 24 * 7;

/// An attribute certificate profile, as written in `profiles/<name>.toml` with `kind =
/// "attribute"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeProfile {
    /// The profile's name (what grants name).
    pub name: String,
    /// What it is for, for operators.
    #[serde(default)]
    pub description: String,
    /// The longest validity of its ACs, in hours.
    pub max_validity_hours: u32,
    /// Revocable on the AC CRL, or short-lived with noRevAvail.
    pub revocation: AcRevocationMode,
    /// The roles it may grant.
    pub allowed_roles: Vec<String>,
    /// The applications (targets) it may grant them in.
    pub allowed_targets: Vec<String>,
    /// Approvals by other `aa` operators before the AC is issued (0: issued at once).
    #[serde(default)]
    pub required_approvals: u32,
    /// How long a grant waits for its approvals.
    #[serde(default = "default_grant_expiry_hours")]
    pub grant_expiry_hours: u32,
}

fn default_grant_expiry_hours() -> u32 {
    168
}

impl AttributeProfile {
    fn check(&self) -> Result<()> {
        let bad = |m: &str| {
            Err(Error::invalid(
                "bad_profile",
                format!("profile {:?}: {m}", self.name),
            ))
        };
        if !valid_profile_name(&self.name) {
            return bad("name must be non-empty [A-Za-z0-9_-]");
        }
        if !(1..=MAX_AC_HOURS).contains(&self.max_validity_hours) {
            return bad("max_validity_hours must be 1..=17544 (two years)");
        }
        if self.revocation == AcRevocationMode::NoRevAvail
            && self.max_validity_hours > MAX_NO_REV_AVAIL_HOURS
        {
            return bad("a no-rev-avail profile is short-lived: max_validity_hours at most 168");
        }
        if self.allowed_roles.is_empty() || self.allowed_targets.is_empty() {
            return bad("allowed_roles and allowed_targets must not be empty");
        }
        for name in self.allowed_roles.iter().chain(&self.allowed_targets) {
            if crate::x509::ac::check_name("profile", name).is_err() {
                return bad(&format!(
                    "{name:?} is not a role or application name (a-z, 0-9, '.', '_', '-')"
                ));
            }
        }
        if self.required_approvals > 10 {
            return bad("required_approvals must be 0..=10");
        }
        if !(1..=24 * 365).contains(&self.grant_expiry_hours) {
            return bad("grant_expiry_hours must be 1..=8760");
        }
        Ok(())
    }
}

fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What one profile file holds.
#[derive(Debug, Clone)]
pub enum AnyProfile {
    /// A certificate profile (no `kind`, or `kind = "certificate"`).
    Certificate(Profile),
    /// An attribute certificate profile (`kind = "attribute"`).
    Attribute(AttributeProfile),
}

impl AnyProfile {
    /// Read and check a profile of either kind from its TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::invalid("bad_profile", e.to_string()))?;
        let kind = match table.remove("kind") {
            None => "certificate".to_string(),
            Some(toml::Value::String(k)) => k,
            Some(_) => return Err(Error::invalid("bad_profile", "kind must be a string")),
        };
        let rest = toml::Value::Table(table);
        match kind.as_str() {
            "certificate" => {
                let p: Profile = rest
                    .try_into()
                    .map_err(|e: toml::de::Error| Error::invalid("bad_profile", e.to_string()))?;
                p.check()?;
                Ok(AnyProfile::Certificate(p))
            }
            "attribute" => {
                let p: AttributeProfile = rest
                    .try_into()
                    .map_err(|e: toml::de::Error| Error::invalid("bad_profile", e.to_string()))?;
                p.check()?;
                Ok(AnyProfile::Attribute(p))
            }
            other => Err(Error::invalid(
                "bad_profile",
                format!("kind {other:?}: use \"certificate\" or \"attribute\""),
            )),
        }
    }

    fn name(&self) -> &str {
        match self {
            AnyProfile::Certificate(p) => &p.name,
            AnyProfile::Attribute(p) => &p.name,
        }
    }
}

/// The loaded set of profiles, by name: certificate profiles and attribute certificate profiles
/// (one namespace: a name means one profile).
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    certificates: BTreeMap<String, Profile>,
    attributes: BTreeMap<String, AttributeProfile>,
}

impl Profiles {
    /// Load every `*.toml` in `dir`. Any bad file stops the load: a server must not start with a
    /// profile silently missing.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut all = Profiles::default();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::internal(format!("reading profiles from {}: {e}", dir.display()))
        })?;
        for entry in entries {
            let path = entry.map_err(Error::internal)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
            let profile = AnyProfile::parse(&text)
                .map_err(|e| Error::internal(format!("profile {}: {e}", path.display())))?;
            let name = profile.name().to_string();
            if all.certificates.contains_key(&name) || all.attributes.contains_key(&name) {
                return Err(Error::internal(format!(
                    "duplicate profile name in {}",
                    path.display()
                )));
            }
            match profile {
                AnyProfile::Certificate(p) => all.certificates.insert(name, p).map(|_| ()),
                AnyProfile::Attribute(p) => all.attributes.insert(name, p).map(|_| ()),
            };
        }
        if all.certificates.is_empty() {
            return Err(Error::internal(format!(
                "no certificate profiles in {}",
                dir.display()
            )));
        }
        Ok(all)
    }

    /// The certificate profile `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.certificates.get(name)
    }

    /// The certificate profiles' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.certificates.keys().map(String::as_str)
    }

    /// The attribute certificate profile `name`.
    pub fn attribute(&self, name: &str) -> Option<&AttributeProfile> {
        self.attributes.get(name)
    }

    /// The attribute certificate profiles' names, in order.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.attributes.keys().map(String::as_str)
    }
}

/// The profiles shipped in `pki/profiles`, written into a new data directory.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "person-signing.toml",
        include_str!("../../pki/profiles/person-signing.toml"),
    ),
    (
        "person-auth.toml",
        include_str!("../../pki/profiles/person-auth.toml"),
    ),
    (
        "organisation-signing.toml",
        include_str!("../../pki/profiles/organisation-signing.toml"),
    ),
    (
        "application-role.toml",
        include_str!("../../pki/profiles/application-role.toml"),
    ),
    (
        "application-role-approved.toml",
        include_str!("../../pki/profiles/application-role-approved.toml"),
    ),
    (
        "short-lived-role.toml",
        include_str!("../../pki/profiles/short-lived-role.toml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse() {
        for (file, text) in BUILT_IN {
            let p = AnyProfile::parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{}.toml", p.name()), *file);
        }
    }

    #[test]
    fn attribute_profiles_are_checked() {
        let base = include_str!("../../pki/profiles/application-role.toml");
        let AnyProfile::Attribute(p) = AnyProfile::parse(base).unwrap() else {
            panic!("not an attribute profile");
        };
        assert_eq!(p.revocation, AcRevocationMode::Crl);
        assert!(p.allowed_roles.iter().any(|r| r == "approver"));
        assert!(p.allowed_targets.iter().any(|t| t == "permits"));
        assert_eq!(p.required_approvals, 0);
        // A short-lived profile cannot live long; names must be names; kinds are known.
        let long = base.replace("revocation = \"crl\"", "revocation = \"no-rev-avail\"");
        assert!(AnyProfile::parse(&long).is_err());
        let bad_role = base.replace("\"approver\"", "\"Approver\"");
        assert!(AnyProfile::parse(&bad_role).is_err());
        assert!(AnyProfile::parse(&base.replace("\"attribute\"", "\"thing\"")).is_err());
        assert!(AnyProfile::parse(&format!("{base}\nbogus = 1\n")).is_err());
        // A certificate profile may say its kind.
        let cert = format!("kind = \"certificate\"\n{}", BUILT_IN[0].1);
        assert!(matches!(
            AnyProfile::parse(&cert),
            Ok(AnyProfile::Certificate(_))
        ));
    }

    #[test]
    fn person_signing_is_non_repudiation_with_email_protection() {
        let p = Profile::parse(BUILT_IN[0].1).unwrap();
        assert_eq!(
            p.key_usage,
            vec![KeyUsage::DigitalSignature, KeyUsage::NonRepudiation]
        );
        assert_eq!(
            p.extended_key_usage,
            vec![ExtendedKeyUsage::EmailProtection]
        );
        assert_eq!(p.required_approvals, 1);
    }

    #[test]
    fn rejects_unknown_fields_and_weak_settings() {
        let base = BUILT_IN[0].1;
        assert!(Profile::parse(&format!("{base}\nbogus = 1\n")).is_err());
        let weak = base.replace("rsa_min_bits = 2048", "rsa_min_bits = 1024");
        assert_eq!(Profile::parse(&weak).unwrap_err().code(), "bad_profile");
        let zero = base.replace("required_approvals = 1", "required_approvals = 0");
        assert!(Profile::parse(&zero).is_err());
    }
}
