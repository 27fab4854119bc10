//! HTTP caching of signed status documents (OCSP responses, CRLs) as RFC 5019 §6.2 asks, with
//! conditional GETs answered 304 Not Modified (RFC 9110 §13, RFC 9111).
//!
//! [`cached_response`] serves a document whose thisUpdate and nextUpdate are known (its
//! [`Freshness`], recorded when it was signed):
//!
//! - `Cache-Control: max-age=<seconds until nextUpdate, at least 0>, public, no-transform,
//!   must-revalidate`: caches may keep it until nextUpdate and never serve it stale.
//! - `Last-Modified`: thisUpdate. RFC 5019 §6.2 names thisUpdate, not producedAt ("the same as the
//!   thisUpdate timestamp"): it is when the status information was known to be correct, the
//!   instant a cache's age arithmetic and an `If-Modified-Since` should start from. Our responses
//!   carry the same time in both anyway.
//! - `Expires`: nextUpdate (for HTTP/1.0 caches; `max-age` takes precedence in HTTP/1.1).
//! - `ETag`: the lowercase hex SHA-256 of the DER, quoted: a strong validator, as a signed
//!   document never changes without its bytes changing. RFC 5019 recommends SHA-1 here; an
//!   entity-tag is opaque to clients (RFC 9110 §8.8.3), so SHA-256, used everywhere else in Vouch,
//!   costs nothing in interoperability.
//!
//! [`no_store_response`] serves an answer that must not be reused by any cache (nonced or error
//! OCSP answers, anything answered to a POST); [`validated_response`] serves a document without a
//! known lifetime (a CA certificate) with an ETag only, revalidated on every use.
//!
//! Conditional requests (GET and HEAD, the only methods these are routed for): `If-None-Match`
//! with `*` or a list containing the ETag (weak comparison, RFC 9110 §13.1.2) gets 304; absent
//! `If-None-Match`, `If-Modified-Since` at or after Last-Modified (and not in the future) gets
//! 304. A 304 has no body and the same Cache-Control, ETag, Expires and Last-Modified as the 200.
//! A conditional header that does not parse is ignored.
//!
//! Last-Modified has one-second resolution: two documents signed within the same second (a status
//! change right after a signing) share it, so a client revalidating with `If-Modified-Since` alone
//! may get 304 for the older one. Both then also share nextUpdate (to the second), so the 304
//! never lets a cache keep the older document past its own nextUpdate; and a cache that has our
//! ETag sends `If-None-Match` (RFC 9111 §4.3.1), which decides exactly.

use crate::x509::freshness::entity_tag;
pub use crate::x509::freshness::{http_date, Freshness};
use axum::body::{Body, Bytes};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

/// A signed document with known thisUpdate/nextUpdate, with the RFC 5019 §6.2 caching headers,
/// or 304 when the request's validators match. `now` is the RA's clock; `content_type` the
/// document's media type (`application/ocsp-response`, `application/pkix-crl`).
///
/// For any other CRL, record its [`Freshness`] when it is signed (`Freshness::of(&der,
/// this_update, next_update)`, once, not per request) and call
/// `cached_response(request.headers(), der, "application/pkix-crl", &freshness, ra.now())`.
pub fn cached_response(
    req: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    freshness: &Freshness,
    now: OffsetDateTime,
) -> Response {
    let max_age = (freshness.next_update - now).whole_seconds().max(0);
    let headers = [
        (
            CACHE_CONTROL,
            value(&format!(
                "max-age={max_age}, public, no-transform, must-revalidate"
            )),
        ),
        (ETAG, shared(&freshness.etag)),
        (LAST_MODIFIED, shared(&freshness.last_modified)),
        (EXPIRES, shared(&freshness.expires)),
    ];
    let etag = std::str::from_utf8(&freshness.etag).unwrap_or_default();
    let fresh = not_modified(req, etag, Some(freshness.this_update), now);
    respond(fresh, body, content_type, headers)
}

/// A header value rendered once, when the document was signed (see [`Freshness`]).
fn shared(text: &Bytes) -> HeaderValue {
    HeaderValue::from_maybe_shared(text.clone()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A document without a lifetime of its own: a strong ETag (SHA-256 of `body`) and
/// `Cache-Control: no-cache`, so caches may keep it but ask every time; 304 for a matching
/// `If-None-Match`.
pub fn validated_response(req: &HeaderMap, body: Bytes, content_type: &'static str) -> Response {
    use sha2::Digest;
    let etag = entity_tag(&sha2::Sha256::digest(&body).into());
    let headers = [
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (ETAG, value(&etag)),
    ];
    let fresh = not_modified(req, &etag, None, OffsetDateTime::UNIX_EPOCH);
    respond(fresh, body, content_type, headers)
}

/// An answer no cache may store or reuse: `Cache-Control: no-store`.
pub fn no_store_response(body: Bytes, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn respond<const N: usize>(
    not_modified: bool,
    body: Bytes,
    content_type: &'static str,
    headers: [(axum::http::HeaderName, HeaderValue); N],
) -> Response {
    let mut resp = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = resp.headers_mut();
    for (name, v) in headers {
        h.insert(name, v);
    }
    resp
}

/// Header text we build ourselves is visible ASCII; should it ever not be, the header is sent
/// empty rather than the request failing.
fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the request's preconditions say the client already holds this representation
/// (RFC 9110 §13.2.2 steps 3 and 4, for GET and HEAD).
fn not_modified(
    req: &HeaderMap,
    etag: &str,
    last_modified: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    if let Some(matched) = if_none_match(req, etag) {
        return matched;
    }
    let Some(last_modified) = last_modified else {
        return false;
    };
    // More than one If-Modified-Since, or one that is not an HTTP-date: ignored (RFC 9110
    // §13.1.3). A date later than our clock is not a valid answer to compare with either.
    let mut values = req.get_all(IF_MODIFIED_SINCE).iter();
    let (Some(only), None) = (values.next(), values.next()) else {
        return false;
    };
    match only.to_str().ok().and_then(parse_http_date) {
        Some(since) => since <= now.unix_timestamp() && last_modified.unix_timestamp() <= since,
        None => false,
    }
}

/// Some(whether it matches) when the request has a well-formed If-None-Match; None when it has
/// none or only malformed ones (then it is ignored). Several header lines form one list.
fn if_none_match(req: &HeaderMap, etag: &str) -> Option<bool> {
    let mut seen = false;
    let mut matched = false;
    for v in req.get_all(IF_NONE_MATCH) {
        let list = v.to_str().ok().and_then(parse_etag_list)?;
        seen = true;
        matched |= match list {
            EtagList::Any => true,
            EtagList::Tags(tags) => tags.iter().any(|t| *t == opaque(etag)),
        };
    }
    seen.then_some(matched)
}

/// The quoted opaque-tag of an entity-tag, without a `W/` prefix (weak comparison).
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[derive(Debug, PartialEq, Eq)]
enum EtagList<'a> {
    Any,
    /// Opaque-tags with their quotes, weakness dropped.
    Tags(Vec<&'a str>),
}

/// `If-None-Match = "*" / #entity-tag` (RFC 9110 §13.1.2, §8.8.3). An opaque-tag may contain
/// commas, so the list is read tag by tag, not split. None if malformed.
fn parse_etag_list(text: &str) -> Option<EtagList<'_>> {
    let ows = |c: char| c == ' ' || c == '\t';
    if text.trim_matches(ows) == "*" {
        return Some(EtagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = text;
    loop {
        // Empty list elements are allowed (RFC 9110 §5.6.1).
        rest = rest.trim_start_matches(|c: char| ows(c) || c == ',');
        if rest.is_empty() {
            break;
        }
        let unweak = rest.strip_prefix("W/").unwrap_or(rest);
        let body = unweak.strip_prefix('"')?;
        let end = body.find('"')?;
        // etagc = %x21 / %x23-7E / obs-text; to_str() has already refused obs-text.
        if !body[..end]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push(&unweak[..end + 2]);
        rest = body[end + 1..].trim_start_matches(ows);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
    if tags.is_empty() {
        return None;
    }
    Some(EtagList::Tags(tags))
}

/// Seconds since the epoch of an HTTP-date in any of its three forms (IMF-fixdate, RFC 850,
/// asctime: a recipient must accept all three, RFC 9110 §5.6.7).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(text.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, v) in pairs {
            h.append(*name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn dates_are_imf_fixdate_in_gmt() {
        assert_eq!(
            http_date(datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // Another offset is converted; a fraction of a second is dropped.
        assert_eq!(
            http_date(datetime!(2026-01-01 01:02:03.9 +02:00)),
            "Wed, 31 Dec 2025 23:02:03 GMT"
        );
    }

    #[test]
    fn all_three_date_forms_parse_and_garbage_does_not() {
        let want = datetime!(1994-11-06 08:49:37 UTC).unix_timestamp();
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(text), Some(want), "{text}");
        }
        let round = datetime!(2049-12-31 23:59:59 UTC);
        assert_eq!(
            parse_http_date(&http_date(round)),
            Some(round.unix_timestamp())
        );
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn etag_lists_parse_tag_by_tag() {
        assert_eq!(parse_etag_list(" * "), Some(EtagList::Any));
        assert_eq!(
            parse_etag_list(r#""a", W/"b",, "c,d"  "#),
            Some(EtagList::Tags(vec![r#""a""#, r#""b""#, r#""c,d""#]))
        );
        assert_eq!(
            parse_etag_list(r#""""#),
            Some(EtagList::Tags(vec![r#""""#]))
        );
        for bad in [
            "",
            " , ",
            "abc",
            r#""unterminated"#,
            r#""a" "b""#,
            r#""a", *"#,
            r#"w/"lowercase-weak""#,
            "\"sp ace\"",
        ] {
            assert_eq!(parse_etag_list(bad), None, "{bad}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_ignores_malformed_values() {
        let tag = r#""abc""#;
        assert_eq!(if_none_match(&headers(&[]), tag), None);
        assert_eq!(
            if_none_match(&headers(&[("if-none-match", r#""x", "abc""#)]), tag),
            Some(true)
        );
        assert_eq!(
            if_none_match(&headers(&[("if-none-match", r#"W/"abc""#)]), tag),
            Some(true)
        );
        assert_eq!(
            if_none_match(&headers(&[("if-none-match", "*")]), tag),
            Some(true)
        );
        assert_eq!(
            if_none_match(&headers(&[("if-none-match", r#""abcd""#)]), tag),
            Some(false)
        );
        // Two header lines are one list.
        assert_eq!(
            if_none_match(
                &headers(&[("if-none-match", r#""x""#), ("if-none-match", r#""abc""#)]),
                tag
            ),
            Some(true)
        );
        assert_eq!(
            if_none_match(&headers(&[("if-none-match", "abc")]), tag),
            None
        );
    }

    fn freshness() -> Freshness {
        Freshness::of(
            b"der",
            datetime!(2026-11-26 10:00 UTC),
            datetime!(2026-11-26 11:00 UTC),
        )
    }

    fn get(h: &HeaderMap, now: OffsetDateTime) -> Response {
        cached_response(
            h,
            Bytes::from_static(b"der"),
            "application/pkix-crl",
            &freshness(),
            now,
        )
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn headers_follow_rfc_5019() {
        let r = get(&headers(&[]), datetime!(2026-11-26 10:15:30 UTC));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(&r, "cache-control"),
            "max-age=2670, public, no-transform, must-revalidate"
        );
        assert_eq!(header(&r, "last-modified"), "Thu, 26 Nov 2026 10:00:00 GMT");
        assert_eq!(header(&r, "expires"), "Thu, 26 Nov 2026 11:00:00 GMT");
        assert_eq!(
            header(&r, "etag"),
            format!("\"{}\"", crate::x509::sha256_hex(b"der"))
        );
        assert_eq!(header(&r, "content-type"), "application/pkix-crl");
        // Past nextUpdate: max-age 0, never negative.
        let late = get(&headers(&[]), datetime!(2026-11-26 12:00 UTC));
        assert!(header(&late, "cache-control").starts_with("max-age=0,"));
    }

    #[test]
    fn conditional_requests() {
        let now = datetime!(2026-11-26 10:15 UTC);
        let etag = format!("\"{}\"", crate::x509::sha256_hex(b"der"));
        let status = |pairs: &[(&'static str, &str)]| get(&headers(pairs), now).status();
        assert_eq!(
            status(&[("if-none-match", &etag)]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(status(&[("if-none-match", r#""old""#)]), StatusCode::OK);
        let at = "Thu, 26 Nov 2026 10:00:00 GMT";
        let before = "Thu, 26 Nov 2026 09:59:59 GMT";
        let future = "Thu, 26 Nov 2026 10:20:00 GMT";
        assert_eq!(
            status(&[("if-modified-since", at)]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(status(&[("if-modified-since", before)]), StatusCode::OK);
        assert_eq!(status(&[("if-modified-since", future)]), StatusCode::OK);
        assert_eq!(status(&[("if-modified-since", "soon")]), StatusCode::OK);
        assert_eq!(
            status(&[("if-modified-since", at), ("if-modified-since", at)]),
            StatusCode::OK
        );
        // If-None-Match decides when present: a stale tag wins over a matching date.
        assert_eq!(
            status(&[("if-none-match", r#""old""#), ("if-modified-since", at)]),
            StatusCode::OK
        );
        // A malformed If-None-Match is ignored, and If-Modified-Since decides.
        assert_eq!(
            status(&[("if-none-match", "old"), ("if-modified-since", at)]),
            StatusCode::NOT_MODIFIED
        );
        let r = get(&headers(&[("if-none-match", &etag)]), now);
        assert_eq!(header(&r, "etag"), etag);
        assert!(header(&r, "cache-control").starts_with("max-age=2700,"));
        assert_eq!(header(&r, "expires"), "Thu, 26 Nov 2026 11:00:00 GMT");
        assert_eq!(header(&r, "content-type"), "");
    }

    #[test]
    fn documents_without_a_lifetime_get_an_etag_only() {
        let body = Bytes::from_static(b"pem");
        let r = validated_response(&headers(&[]), body.clone(), "application/x-pem-file");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert_eq!(header(&r, "expires"), "");
        let etag = header(&r, "etag").to_string();
        let again = validated_response(
            &headers(&[("if-none-match", &etag)]),
            body,
            "application/x-pem-file",
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn no_store_says_so() {
        let r = no_store_response(Bytes::from_static(b"x"), "application/ocsp-response");
        assert_eq!(header(&r, "cache-control"), "no-store");
        assert_eq!(header(&r, "etag"), "");
    }
}
