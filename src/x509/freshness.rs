//! What an HTTP cache needs to know about a signed CRL or OCSP response: the thisUpdate and
//! nextUpdate it states and a digest of its DER. Recorded once, when the document is signed, so
//! that serving it again parses and hashes nothing.

use time::OffsetDateTime;

/// When a signed document (CRL, OCSP answer) was made and runs out, and its hash, with the HTTP headers that say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// thisUpdate, whole seconds (as encoded in the DER).
    pub this_update: OffsetDateTime,
    /// nextUpdate, whole seconds.
    pub next_update: OffsetDateTime,
    /// SHA-256 of the DER document.
    pub sha256: [u8; 32],
    /// The HTTP header texts that do not change while the document is served, rendered once:
    /// the quoted hex SHA-256 (ETag), thisUpdate and nextUpdate as IMF-fixdates (Last-Modified,
    /// Expires). Serving an answer again then formats nothing but its max-age.
    pub etag: bytes::Bytes,
    /// thisUpdate as an IMF-fixdate (Last-Modified).
    pub last_modified: bytes::Bytes,
    /// nextUpdate as an IMF-fixdate (Expires).
    pub expires: bytes::Bytes,
}

impl Freshness {
    /// Record the times a document was signed with (sub-second parts dropped, as the DER
    /// encoders do) and hash it.
    pub fn of(der: &[u8], this_update: OffsetDateTime, next_update: OffsetDateTime) -> Self {
        use sha2::Digest;
        let sha256: [u8; 32] = sha2::Sha256::digest(der).into();
        let (this_update, next_update) = (whole_seconds(this_update), whole_seconds(next_update));
        Freshness {
            this_update,
            next_update,
            sha256,
            etag: bytes::Bytes::from(entity_tag(&sha256)),
            last_modified: bytes::Bytes::from(http_date(this_update)),
            expires: bytes::Bytes::from(http_date(next_update)),
        }
    }
}

/// `"<hex SHA-256>"`: a strong entity-tag.
pub fn entity_tag(sha256: &[u8; 32]) -> String {
    let mut tag = String::with_capacity(66);
    tag.push('"');
    tag.push_str(&hex::encode(sha256));
    tag.push('"');
    tag
}

/// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
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
