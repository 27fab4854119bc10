//! Extractors that turn bad input into our JSON errors: the bearer token, JSON bodies and query
//! strings.

use super::error::{error_response, ApiError};
use crate::ra::{Operator, Ra};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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

pub struct BodyRejection(Response);

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(BodyRejection(json_rejection(rejection))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Response {
    let text = r.body_text();
    match r {
        JsonRejection::JsonSyntaxError(_) => {
            error_response(StatusCode::BAD_REQUEST, "invalid_json", &text)
        }
        JsonRejection::JsonDataError(_) => {
            error_response(StatusCode::BAD_REQUEST, "invalid_request", &text)
        }
        JsonRejection::MissingJsonContentType(_) => error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        other => error_response(other.status(), "invalid_request", &text),
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
    use super::bearer_token;

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
