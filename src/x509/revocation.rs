//! RFC 5280 revocation reasons (CRLReason) by their ASN.1 names.

use crate::error::{Error, Result};

/// An RFC 5280 CRLReason the RA records (removeFromCRL is for delta CRLs only: [`REMOVE_FROM_CRL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// unspecified (0).
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// cACompromise (2).
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// certificateHold (6): on hold, may be released.
    CertificateHold,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
    /// aACompromise (10).
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

    /// The reason of CRLReason value `code`; None for removeFromCRL and values RFC 5280 does not
    /// define.
    pub fn from_code(code: u8) -> Option<Reason> {
        NAMES.iter().map(|(r, _)| *r).find(|r| r.code() == code)
    }

    /// The ASN.1 name (`keyCompromise`, ...).
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
