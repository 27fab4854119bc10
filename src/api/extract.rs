//! Extractors that turn bad input into our JSON errors: the bearer token, JSON bodies and query
//! strings.

use super::error::{error_response, ApiError};
use crate::ra::{Operator, Ra};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// The authenticated operator behind the `Authorization: Bearer` header.
pub struct Auth(pub Operator);

/// The token of an `Authorization` header value in the Bearer scheme: the scheme name in any case,
/// one or more spaces, the token (RFC 7235 2.1, RFC 6750 2.1). Other schemes give None.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ').trim_end();
    (!token.is_empty()).then_some(token)
}

/// The address the request came from, when the server was started with connection info.
pub fn source_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

impl FromRequestParts<Ra> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ra: &Ra) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        let context = format!("{} {}", parts.method, parts.uri.path());
        Ok(Auth(
            ra.authenticate(token, &context, source_ip(parts)).await?,
        ))
    }
}

/// A JSON body; malformed, mistyped or oversized bodies get a JSON error.
pub struct Body<T>(pub T);

/// Why a [`Body`] was refused, already rendered as our JSON error.
pub struct BodyRejection(Response);

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(BodyRejection(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            )));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(BodyRejection(error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )))
            }
            Err(r) => {
                return Err(BodyRejection(error_response(
                    r.status(),
                    "invalid_request",
                    &r.body_text(),
                )))
            }
        };
        parse_json(&bytes)
            .map(Body)
            .map_err(|e| BodyRejection(e.into_response()))
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that is not JSON, or JSON of the wrong shape, in the API's words: the field's path
/// (`identifiers[0].valid_until`, the path style of every JSON error), what was expected, no
/// parser internals.
#[derive(Debug, PartialEq, Eq)]
pub struct JsonError {
    /// `invalid_json` (not JSON at all) or `invalid_request` (JSON of the wrong shape).
    pub code: &'static str,
    /// What was wrong, in the API's words.
    pub message: String,
    /// The path of the offending field, when there is one.
    pub field: Option<String>,
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if let Some(field) = self.field {
            body["field"] = serde_json::Value::String(field);
        }
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// Deserialise a JSON body, keeping the path of the field that failed. serde_path_to_error is
/// what axum's own Json extractor uses for its texts; using it directly gives the path as data.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (path, inner) = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (".".to_string(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    let text = without_position(&inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        return Err(JsonError {
            code: "invalid_json",
            message: format!("the body is not valid JSON: {text}"),
            field: None,
        });
    }
    {
        // A missing field is reported at its parent: name the field itself.
        let field = match text
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            Some(missing) if path == "." => Some(missing.to_string()),
            Some(missing) => Some(format!("{path}.{missing}")),
            None if path == "." => None,
            None => Some(path),
        };
        let message = match &field {
            Some(f) if text.starts_with("missing field") => format!("{f}: required"),
            Some(f) => format!("{f}: {text}"),
            None => text,
        };
        Err(JsonError {
            code: "invalid_request",
            message,
            field,
        })
    }
}

/// serde_json ends its messages with " at line L column C": the position is noise to an API
/// client (the field path says where).
fn without_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => text[..i].to_string(),
        _ => text.to_string(),
    }
}

/// A query string; bad parameters get a JSON error.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = BodyRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r @ QueryRejection::FailedToDeserializeQueryString(_)) => Err(BodyRejection(
                error_response(StatusCode::BAD_REQUEST, "invalid_request", &r.body_text()),
            )),
            Err(r) => Err(BodyRejection(error_response(
                r.status(),
                "invalid_request",
                &r.body_text(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, parse_json, JsonError};

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Evidence {
        valid_until: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Subscriber {
        kind: String,
        identifiers: Vec<Evidence>,
    }

    #[test]
    fn json_errors_name_the_field_by_its_path() {
        let err = |body: &str| parse_json::<Subscriber>(body.as_bytes()).unwrap_err();
        let e = err(r#"{"kind": "person", "identifiers": [{"valid_until": 7}]}"#);
        assert_eq!(e.code, "invalid_request");
        assert_eq!(e.field.as_deref(), Some("identifiers[0].valid_until"));
        assert_eq!(
            e.message,
            "identifiers[0].valid_until: invalid type: integer `7`, expected a string"
        );
        let e = err(r#"{"kind": "person", "identifiers": [{}]}"#);
        assert_eq!(e.field.as_deref(), Some("identifiers[0].valid_until"));
        assert_eq!(e.message, "identifiers[0].valid_until: required");
        let e = err(r#"{"identifiers": []}"#);
        assert_eq!(e.field.as_deref(), Some("kind"));
        let e = err(r#"{"kind": "#);
        assert_eq!(
            (e.code, e.field),
            ("invalid_json", None::<String>),
            "{}",
            e.message
        );
        assert!(!e.message.contains("line"), "{}", e.message);
        let e: JsonError = err(r#"{"kind": "x", "identifiers": []} trailing"#);
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_takes_one_or_more_spaces() {
        for v in [
            "Bearer x",
            "bearer x",
            "BEARER x",
            "bEaReR x",
            "Bearer   x",
            "Bearer x ",
        ] {
            assert_eq!(bearer_token(v), Some("x"), "{v:?}");
        }
        for v in ["Basic eDp5", "Bearer", "Bearer ", "Bearerx", "Token x", "x"] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }
}
