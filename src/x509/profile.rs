//! Certificate profiles as data (`profiles/*.toml`): what a certificate of a kind looks like, which
//! keys it accepts and how many approvals it needs.

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
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
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

/// The loaded set of profiles, by name.
#[derive(Debug, Clone, Default)]
pub struct Profiles(BTreeMap<String, Profile>);

impl Profiles {
    /// Load every `*.toml` in `dir`. Any bad file stops the load: a server must not start with a
    /// profile silently missing.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut map = BTreeMap::new();
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
            let profile = Profile::parse(&text)
                .map_err(|e| Error::internal(format!("profile {}: {e}", path.display())))?;
            if map.insert(profile.name.clone(), profile).is_some() {
                return Err(Error::internal(format!(
                    "duplicate profile name in {}",
                    path.display()
                )));
            }
        }
        if map.is_empty() {
            return Err(Error::internal(format!("no profiles in {}", dir.display())));
        }
        Ok(Profiles(map))
    }

    /// The profile `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.get(name)
    }

    /// The profiles' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
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
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse() {
        for (file, text) in BUILT_IN {
            let p = Profile::parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{}.toml", p.name), *file);
        }
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
