//! PKIStatusInfo (RFC 4210 5.2.3): the CA's verdict, its failure bits and its own words, read
//! from certificate, revocation, poll and error answers, and turned into a [`CaError`] that names
//! the CA, the request, the status, every failure bit and the CA's statusString.

use crate::ca::cfssl::wire::clean;
use crate::ca::CaError;
use crate::x509::der::{DerError, Reader};

/// PKIStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiStatus {
    /// accepted (0).
    Accepted,
    /// grantedWithMods (1).
    GrantedWithMods,
    /// rejection (2).
    Rejection,
    /// waiting (3): poll for the answer.
    Waiting,
    /// revocationWarning (4).
    RevocationWarning,
    /// revocationNotification (5).
    RevocationNotification,
    /// keyUpdateWarning (6).
    KeyUpdateWarning,
}

impl PkiStatus {
    fn from_code(code: u8) -> Option<PkiStatus> {
        Some(match code {
            0 => PkiStatus::Accepted,
            1 => PkiStatus::GrantedWithMods,
            2 => PkiStatus::Rejection,
            3 => PkiStatus::Waiting,
            4 => PkiStatus::RevocationWarning,
            5 => PkiStatus::RevocationNotification,
            6 => PkiStatus::KeyUpdateWarning,
            _ => return None,
        })
    }

    /// The ASN.1 name.
    pub fn as_str(self) -> &'static str {
        match self {
            PkiStatus::Accepted => "accepted",
            PkiStatus::GrantedWithMods => "grantedWithMods",
            PkiStatus::Rejection => "rejection",
            PkiStatus::Waiting => "waiting",
            PkiStatus::RevocationWarning => "revocationWarning",
            PkiStatus::RevocationNotification => "revocationNotification",
            PkiStatus::KeyUpdateWarning => "keyUpdateWarning",
        }
    }

    /// Whether the request was granted (accepted, or granted with modifications, or granted
    /// with a warning about the CA's own revocation or key update).
    pub fn is_granted(self) -> bool {
        !matches!(self, PkiStatus::Rejection | PkiStatus::Waiting)
    }
}

/// The PKIFailureInfo bits by number (RFC 4210 5.2.3, RFC 9480 2.9).
pub const FAILURE_NAMES: [&str; 27] = [
    "badAlg",
    "badMessageCheck",
    "badRequest",
    "badTime",
    "badCertId",
    "badDataFormat",
    "wrongAuthority",
    "incorrectData",
    "missingTimeStamp",
    "badPOP",
    "certRevoked",
    "certConfirmed",
    "wrongIntegrity",
    "badRecipientNonce",
    "timeNotAvailable",
    "unacceptedPolicy",
    "unacceptedExtension",
    "addInfoNotAvailable",
    "badSenderNonce",
    "badCertTemplate",
    "signerNotTrusted",
    "transactionIdInUse",
    "unsupportedVersion",
    "notAuthorized",
    "systemUnavail",
    "systemFailure",
    "duplicateCertReq",
];

/// certRevoked: the certificate an rr names is already revoked.
pub const CERT_REVOKED: usize = 10;

/// Failure bits after which the same request may succeed later: the CA is down or busy.
const TRANSIENT: [usize; 4] = [14, 21, 24, 25];

/// A PKIStatusInfo as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// The status.
    pub status: PkiStatus,
    /// The failure bits set, by number (see [`FAILURE_NAMES`]).
    pub failures: Vec<usize>,
    /// statusString, joined, cleaned of control characters and bounded.
    pub text: String,
}

impl StatusInfo {
    /// Read a PKIStatusInfo from the content of its SEQUENCE.
    pub fn parse(content: &[u8]) -> Result<StatusInfo, DerError> {
        let mut r = Reader::new(content);
        let code = r.read(0x02, "PKIStatus")?;
        let status = match code {
            [c] => PkiStatus::from_code(*c),
            _ => None,
        }
        .ok_or_else(|| DerError(format!("PKIStatus {code:02x?} is not 0 to 6")))?;
        let text = match r.optional(0x30)? {
            Some(t) => free_text(t)?,
            None => String::new(),
        };
        let failures = match r.optional(0x03)? {
            Some(bits) => bit_numbers(bits)?,
            None => Vec::new(),
        };
        r.finish("PKIStatusInfo")?;
        Ok(StatusInfo {
            status,
            failures,
            text,
        })
    }

    /// The failure bits by name (numbers past those RFC 9480 names as `bit N`).
    pub fn failure_names(&self) -> Vec<String> {
        self.failures
            .iter()
            .map(|&n| match FAILURE_NAMES.get(n) {
                Some(name) => name.to_string(),
                None => format!("bit {n}"),
            })
            .collect()
    }

    /// "PKIStatus rejection, PKIFailureInfo badPOP: <statusString>".
    pub fn describe(&self) -> String {
        let mut out = format!("PKIStatus {}", self.status.as_str());
        if !self.failures.is_empty() {
            out.push_str(&format!(
                ", PKIFailureInfo {}",
                self.failure_names().join(", ")
            ));
        }
        if !self.text.is_empty() {
            out.push_str(&format!(": \"{}\"", self.text));
        }
        out
    }

    /// A rejection of an rr because the certificate is already revoked (certRevoked): what a
    /// repeated rr gets when the CA's answer to the first was lost, or another instance sent it.
    pub fn already_revoked(&self) -> bool {
        self.status == PkiStatus::Rejection && self.failures.contains(&CERT_REVOKED)
    }

    /// The error for a request `what` the CA `ca` did not grant: `Unavailable` when a failure
    /// bit says the CA is down or busy (the same request may be sent again), `Refused` otherwise.
    pub fn to_error(&self, ca: &str, what: &str) -> CaError {
        let message = format!("the CA {ca} rejected the {what}: {}", self.describe());
        if self.failures.iter().any(|f| TRANSIENT.contains(f)) {
            CaError::Unavailable(message)
        } else {
            CaError::Refused(message)
        }
    }
}

/// PKIFreeText (SEQUENCE OF UTF8String, content octets) joined with "; ", cleaned and bounded.
pub fn free_text(content: &[u8]) -> Result<String, DerError> {
    let mut r = Reader::new(content);
    let mut parts = Vec::new();
    while !r.is_empty() {
        let s = r.read(0x0c, "PKIFreeText")?;
        let s = std::str::from_utf8(s).map_err(|_| DerError("PKIFreeText: not UTF-8".into()))?;
        parts.push(clean(s));
    }
    Ok(clean(&parts.join("; ")))
}

/// The numbers of the bits set in a BIT STRING (content octets: unused-bit count, then bits).
fn bit_numbers(content: &[u8]) -> Result<Vec<usize>, DerError> {
    let Some((&unused, bits)) = content.split_first() else {
        return Err(DerError("PKIFailureInfo: empty BIT STRING".into()));
    };
    if unused > 7 || (bits.is_empty() && unused != 0) {
        return Err(DerError("PKIFailureInfo: bad unused-bit count".into()));
    }
    let mut out = Vec::new();
    for (i, byte) in bits.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                out.push(i * 8 + b);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::der::tlv;

    fn info(status: u8, text: Option<&str>, bits: Option<&[u8]>) -> Vec<u8> {
        let mut c = tlv(0x02, &[status]);
        if let Some(t) = text {
            c.extend(tlv(0x30, &tlv(0x0c, t.as_bytes())));
        }
        if let Some(b) = bits {
            c.extend(tlv(0x03, b));
        }
        c
    }

    #[test]
    fn a_cert_revoked_rejection_says_already_revoked() {
        // certRevoked (10): bit 10, in the second byte.
        let s = StatusInfo::parse(&info(2, None, Some(&[5, 0x00, 0x20]))).unwrap();
        assert_eq!(s.failure_names(), ["certRevoked"]);
        assert!(s.already_revoked());
        let s = StatusInfo::parse(&info(2, None, Some(&[6, 0x00, 0x40]))).unwrap();
        assert_eq!(s.failure_names(), ["badPOP"]);
        assert!(!s.already_revoked());
    }

    #[test]
    fn status_failure_bits_and_text_are_read_and_named() {
        // badPOP (9) and badTime (3): bits 3 and 9 of the BIT STRING.
        let s = StatusInfo::parse(&info(2, Some("no\nway"), Some(&[6, 0x10, 0x40]))).unwrap();
        assert_eq!(s.status, PkiStatus::Rejection);
        assert_eq!(s.failures, vec![3, 9]);
        assert_eq!(s.failure_names(), vec!["badTime", "badPOP"]);
        assert_eq!(s.text, "noway");
        let CaError::Refused(m) = s.to_error("city-cmp", "ir") else {
            panic!("a rejection is final")
        };
        assert_eq!(
            m,
            "the CA city-cmp rejected the ir: PKIStatus rejection, PKIFailureInfo badTime, \
             badPOP: \"noway\""
        );
        // systemUnavail (24): the same request may be sent again.
        let s = StatusInfo::parse(&info(2, None, Some(&[7, 0, 0, 0, 0x80]))).unwrap();
        assert_eq!(s.failure_names(), vec!["systemUnavail"]);
        assert!(matches!(s.to_error("x", "rr"), CaError::Unavailable(_)));
        assert!(StatusInfo::parse(&info(7, None, None)).is_err());
        assert!(StatusInfo::parse(&info(0, None, Some(&[8, 0]))).is_err());
        assert!(StatusInfo::parse(&info(0, None, None))
            .unwrap()
            .status
            .is_granted());
    }
}
