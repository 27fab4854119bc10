//! The one place where domain errors become HTTP statuses. Internal and database errors are logged
//! and answered with a bare 500; their details never reach the client.

use crate::error::Error;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::Upstream(_) => StatusCode::BAD_GATEWAY,
        Error::Database(db) if crate::store::is_unique_violation(db) => StatusCode::CONFLICT,
        Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON error body with an explicit code, for errors raised by the HTTP layer itself.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let (code, message) = match &self.0 {
            Error::Database(db) if crate::store::is_unique_violation(db) => {
                ("conflict", "the record already exists".to_string())
            }
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %self.0, "internal error");
                ("internal", "internal error; see the server log".to_string())
            }
            Error::Upstream(m) => {
                tracing::warn!(error = %m, "upstream CA error");
                ("upstream_ca_error", "the CA could not issue now; the approved request will be issued when it recovers".to_string())
            }
            other => (other.code(), other.to_string()),
        };
        let mut resp = error_response(status, code, &message);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
