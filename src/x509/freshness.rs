//! What an HTTP cache needs to know about a signed CRL or OCSP response: the thisUpdate and
//! nextUpdate it states and a digest of its DER. Recorded once, when the document is signed, so
//! that serving it again parses and hashes nothing.

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// thisUpdate, whole seconds (as encoded in the DER).
    pub this_update: OffsetDateTime,
    /// nextUpdate, whole seconds.
    pub next_update: OffsetDateTime,
    /// SHA-256 of the DER document.
    pub sha256: [u8; 32],
}

impl Freshness {
    /// Record the times a document was signed with (sub-second parts dropped, as the DER
    /// encoders do) and hash it.
    pub fn of(der: &[u8], this_update: OffsetDateTime, next_update: OffsetDateTime) -> Self {
        use sha2::Digest;
        Freshness {
            this_update: whole_seconds(this_update),
            next_update: whole_seconds(next_update),
            sha256: sha2::Sha256::digest(der).into(),
        }
    }
}

/// `t` with its fraction of a second dropped (UTCTime and GeneralizedTime as we encode them carry
/// whole seconds).
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_kept_in_whole_seconds_and_the_digest_is_sha256() {
        let f = Freshness::of(
            b"abc",
            datetime!(2026-11-26 10:00:00.75 UTC),
            datetime!(2026-11-26 11:00:00.999 UTC),
        );
        assert_eq!(f.this_update, datetime!(2026-11-26 10:00:00 UTC));
        assert_eq!(f.next_update, datetime!(2026-11-26 11:00:00 UTC));
        assert_eq!(
            hex::encode(f.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
