//! Extractors that turn bad input into our JSON errors: the bearer token, JSON bodies and query
//! strings.

use super::error::{error_response, ApiError};
use crate::ra::{Operator, Ra};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The authenticated operator behind the `Authorization: Bearer` header.
pub struct Auth(pub Operator);

impl FromRequestParts<Ra> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ra: &Ra) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let context = format!("{} {}", parts.method, parts.uri.path());
        Ok(Auth(ra.authenticate(token, &context).await?))
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

/// A raw body (CMS, an optional JSON body read by hand); one over the size limit gets the same
/// JSON 413 as a JSON body, not axum's plain-text answer.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BodyRejection(error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )))
            }
            Err(r) => Err(BodyRejection(error_response(
                r.status(),
                "invalid_request",
                &r.body_text(),
            ))),
        }
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
