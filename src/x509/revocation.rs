//! RFC 5280 revocation reasons (CRLReason) by their ASN.1 names.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

const NAMES: [(Reason, &str); 9] = [
    (Reason::Unspecified, "unspecified"),
    (Reason::KeyCompromise, "keyCompromise"),
    (Reason::CaCompromise, "cACompromise"),
    (Reason::AffiliationChanged, "affiliationChanged"),
    (Reason::Superseded, "superseded"),
    (Reason::CessationOfOperation, "cessationOfOperation"),
    (Reason::CertificateHold, "certificateHold"),
    (Reason::PrivilegeWithdrawn, "privilegeWithdrawn"),
    (Reason::AaCompromise, "aACompromise"),
];

/// CRLReason value of removeFromCRL (delta CRLs only).
pub const REMOVE_FROM_CRL: u8 = 8;

impl Reason {
    /// The CRLReason ENUMERATED value (RFC 5280 5.3.1).
    pub fn code(self) -> u8 {
        match self {
            Reason::Unspecified => 0,
            Reason::KeyCompromise => 1,
            Reason::CaCompromise => 2,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::CertificateHold => 6,
            Reason::PrivilegeWithdrawn => 9,
            Reason::AaCompromise => 10,
        }
    }

    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or("unspecified")
    }

    /// Parse a reason name as RFC 5280 spells it (case-insensitive). `removeFromCRL` is not a
    /// reason one revokes for: it only appears in delta CRLs.
    pub fn parse(name: &str) -> Result<Reason> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(r, _)| *r)
            .ok_or_else(|| {
                let all: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
                Error::invalid(
                    "invalid_reason",
                    format!(
                        "unknown revocation reason {name:?}; reasons: {}",
                        all.join(", ")
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_remove_from_crl_is_refused() {
        for (r, n) in NAMES {
            assert_eq!(Reason::parse(n).unwrap(), r);
            assert_eq!(r.as_str(), n);
        }
        assert_eq!(
            Reason::parse("KEYCOMPROMISE").unwrap(),
            Reason::KeyCompromise
        );
        assert_eq!(
            Reason::parse("removeFromCRL").unwrap_err().code(),
            "invalid_reason"
        );
    }
}
