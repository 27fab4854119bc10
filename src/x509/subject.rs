//! The certified identity: subject DN attributes and subjectAltName entries, built from a profile
//! and the vetted subscriber record. It is frozen into the request when it is submitted, so the
//! approver approves exactly what will be issued.

use crate::error::{Error, Result};
use crate::x509::profile::{Profile, SubjectField};
use serde::{Deserialize, Serialize};

/// X.520 upper bound for commonName, organizationName and serialNumber.
pub const UB_NAME: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnAttr {
    CommonName,
    Organisation,
    SerialNumber,
}

impl DnAttr {
    fn short(self) -> &'static str {
        match self {
            DnAttr::CommonName => "CN",
            DnAttr::Organisation => "O",
            DnAttr::SerialNumber => "serialNumber",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectSpec {
    /// DN attributes in order, most significant first.
    pub dn: Vec<(DnAttr, String)>,
    /// rfc822Name entries for subjectAltName.
    pub emails: Vec<String>,
}

/// The parts of a vetted subscriber record a profile may certify.
pub struct VettedIdentity<'a> {
    pub name: &'a str,
    pub organisation: Option<&'a str>,
    pub email: Option<&'a str>,
    /// Number of the first identifier whose evidence is still valid.
    pub identifier: Option<&'a str>,
}

impl SubjectSpec {
    pub fn build(profile: &Profile, who: &VettedIdentity<'_>) -> Result<Self> {
        let mut dn = Vec::new();
        // Order: O before CN (most significant first), then serialNumber.
        if profile.subject.contains(&SubjectField::Organisation) {
            if let Some(o) = who.organisation.filter(|o| !o.is_empty()) {
                dn.push((DnAttr::Organisation, o.to_string()));
            }
        }
        dn.push((DnAttr::CommonName, who.name.to_string()));
        if profile.subject.contains(&SubjectField::SerialNumber) {
            let id = who.identifier.ok_or_else(|| {
                Error::refused(
                    "evidence_expired",
                    "the profile certifies an identifier, but none is valid",
                )
            })?;
            dn.push((DnAttr::SerialNumber, id.to_string()));
        }
        let emails = match (profile.email_in_san, who.email) {
            (true, Some(e)) if !e.is_empty() => vec![e.to_string()],
            _ => Vec::new(),
        };
        for (attr, value) in &dn {
            check_dn_value(*attr, value)?;
        }
        Ok(SubjectSpec { dn, emails })
    }

    /// RFC 4514 style rendering, most significant attribute last as OpenSSL's `-nameopt RFC2253`.
    pub fn display(&self) -> String {
        self.dn
            .iter()
            .rev()
            .map(|(a, v)| format!("{}={}", a.short(), escape_rfc4514(v)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn escape_rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rules every DN value must meet before it goes into a certificate.
pub fn check_dn_value(attr: DnAttr, value: &str) -> Result<()> {
    let n = value.chars().count();
    if n == 0 || n > UB_NAME {
        return Err(Error::invalid(
            "invalid_field",
            format!("{} must be 1..={UB_NAME} characters", attr.short()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_field",
            format!("{} contains control characters", attr.short()),
        ));
    }
    if value.trim() != value {
        return Err(Error::invalid(
            "invalid_field",
            format!("{} has leading or trailing spaces", attr.short()),
        ));
    }
    if attr == DnAttr::SerialNumber && !is_printable_string(value) {
        return Err(Error::invalid(
            "invalid_field",
            "identifier numbers certified as serialNumber must use PrintableString characters",
        ));
    }
    Ok(())
}

/// X.680 PrintableString alphabet.
pub fn is_printable_string(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::profile::{Profile, BUILT_IN};

    fn profile(i: usize) -> Profile {
        Profile::parse(BUILT_IN[i].1).unwrap()
    }

    #[test]
    fn person_subject_ignores_identifier_and_puts_email_in_san() {
        let who = VettedIdentity {
            name: "Li Wei",
            organisation: Some("City Hall"),
            email: Some("li.wei@example.org"),
            identifier: Some("110101199003070011"),
        };
        let s = SubjectSpec::build(&profile(0), &who).unwrap();
        assert_eq!(s.display(), "CN=Li Wei,O=City Hall");
        assert_eq!(s.emails, vec!["li.wei@example.org"]);
    }

    #[test]
    fn organisation_subject_certifies_registration_number() {
        let who = VettedIdentity {
            name: "Acme, Ltd",
            organisation: None,
            email: None,
            identifier: Some("91310000X"),
        };
        let s = SubjectSpec::build(&profile(2), &who).unwrap();
        assert_eq!(s.display(), "serialNumber=91310000X,CN=Acme\\, Ltd");
        let none = VettedIdentity {
            identifier: None,
            ..who
        };
        assert_eq!(
            SubjectSpec::build(&profile(2), &none).unwrap_err().code(),
            "evidence_expired"
        );
    }

    #[test]
    fn dn_value_rules() {
        assert!(check_dn_value(DnAttr::CommonName, &"a".repeat(65)).is_err());
        assert!(check_dn_value(DnAttr::CommonName, "a\u{7}b").is_err());
        assert!(check_dn_value(DnAttr::SerialNumber, "ID_1").is_err());
        assert!(check_dn_value(DnAttr::SerialNumber, "ID-1").is_ok());
    }
}
