//! The one place where domain errors become HTTP statuses. Internal and database errors are logged
//! and answered with a bare 500; their details never reach the client.

use crate::error::Error;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A domain error on its way out as an HTTP answer: its status from [`status_of`], its body
/// `{"error": code, "message": ...}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of a domain error: the one place where errors meet status codes.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::RateLimited(_) | Error::LoginsLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::Upstream(_) => StatusCode::BAD_GATEWAY,
        Error::CaUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Database(db) if db.is_unique_violation() => StatusCode::CONFLICT,
        Error::Database(_) | Error::Environment(_) | Error::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
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
            Error::Database(db) if db.is_unique_violation() => {
                ("conflict", "the record already exists".to_string())
            }
            Error::Database(_) | Error::Environment(_) | Error::Internal(_) => {
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
        if let Error::LoginsLimited { retry_after_secs } = &self.0 {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// What a handler returns: its answer, or a domain error rendered by [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

/// The code and default message for an error status that no handler put into words.
fn code_for(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("invalid_request", "the request is malformed"),
        401 => ("unauthorized", "missing or invalid credentials"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such endpoint"),
        405 => (
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        408 => ("request_timeout", "the request took too long to arrive"),
        411 => ("length_required", "send a Content-Length"),
        413 => ("payload_too_large", "the request body is too large"),
        414 => ("uri_too_long", "the request URI is too long"),
        415 => ("unsupported_media_type", "unsupported Content-Type"),
        422 => ("invalid_request", "the request cannot be processed"),
        429 => ("rate_limited", "too many requests; try again later"),
        431 => ("headers_too_large", "the request headers are too large"),
        503 => ("unavailable", "the service is unavailable"),
        504 => ("timeout", "the request timed out"),
        s if s >= 500 => ("internal", "internal error; see the server log"),
        _ => ("invalid_request", "the request was refused"),
    }
}

/// Middleware over the whole router: an error response that is not already JSON (axum's own
/// rejections: a body over the limit, a bad path parameter, a missing Content-Type, ...) is
/// rewritten into our JSON error shape, keeping its status and headers (Allow, Retry-After,
/// WWW-Authenticate). Routes added later get this without doing anything. Bodies of other types
/// (HTML pages, DER answers) are left alone: only `text/plain` and bodies without a type are
/// rewritten.
pub async fn json_errors(resp: Response) -> Response {
    if !needs_json(&resp) {
        return resp;
    }
    let status = resp.status();
    let (mut parts, body) = resp.into_parts();
    let (code, default) = code_for(status);
    // axum's rejection texts say what was wrong with the request; 5xx texts and 413 (which
    // would name no limit) are replaced.
    let text = if status.is_client_error() && status != StatusCode::PAYLOAD_TOO_LARGE {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    } else {
        None
    };
    let message = text.as_deref().unwrap_or(default);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (json_parts, json_body) = error_response(status, code, message).into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

/// Whether [`json_errors`] would rewrite `resp`: an error status with a plain-text or no body
/// type. Cheap: what every successful answer pays.
pub fn needs_json(resp: &Response) -> bool {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    match resp.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v
            .to_str()
            .map(|t| t.to_ascii_lowercase().starts_with("text/plain"))
            .unwrap_or(false),
    }
}

/// [`json_errors`] as a tower layer around every route. A response that needs no rewriting (every
/// success, every JSON or DER error) passes through with one status check: no boxed future, no
/// re-wrapped body, unlike `axum::middleware::map_response`, which cost about 13 % of an OCSP
/// answer's instructions (docs/PERFORMANCE.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonErrorsLayer;

impl<S> tower_layer::Layer<S> for JsonErrorsLayer {
    type Service = JsonErrors<S>;
    fn layer(&self, inner: S) -> JsonErrors<S> {
        JsonErrors { inner }
    }
}

/// The service [`JsonErrorsLayer`] puts around the router.
#[derive(Debug, Clone)]
pub struct JsonErrors<S> {
    inner: S,
}

impl<S, R> tower_service::Service<R> for JsonErrors<S>
where
    S: tower_service::Service<R, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = JsonErrorsFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        JsonErrorsFuture::Inner {
            fut: self.inner.call(request),
        }
    }
}

type Rewriting = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

pin_project_lite::pin_project! {
    /// The route's own future, then, only for an error to rewrite, the rewriting.
    // Each variant has one field, `fut`, the future it polls: pin_project_lite takes no doc
    // comments on fields.
    #[allow(missing_docs)]
    #[project = JsonErrorsProj]
    pub enum JsonErrorsFuture<F> {
        /// The route's future, still running.
        Inner { #[pin] fut: F },
        /// An error answer being rewritten as JSON.
        Rewrite { fut: Rewriting },
    }
}

impl<F> std::future::Future for JsonErrorsFuture<F>
where
    F: std::future::Future<Output = Result<Response, std::convert::Infallible>>,
{
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        loop {
            match self.as_mut().project() {
                JsonErrorsProj::Inner { fut } => {
                    let Ok(resp) = std::task::ready!(fut.poll(cx));
                    if !needs_json(&resp) {
                        return Poll::Ready(Ok(resp));
                    }
                    self.set(JsonErrorsFuture::Rewrite {
                        fut: Box::pin(json_errors(resp)),
                    });
                }
                JsonErrorsProj::Rewrite { fut } => return fut.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_text_errors_become_json_and_keep_their_headers() {
        let plain = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET")],
            "Method Not Allowed",
        )
            .into_response();
        let resp = json_errors(plain).await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "method_not_allowed");
        // Other bodies and successes are untouched.
        let der = (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/ocsp-response")],
            vec![0x30u8, 0x03, 0x0a, 0x01, 0x01],
        )
            .into_response();
        let resp = json_errors(der).await;
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/ocsp-response"
        );
        let ok = json_errors("fine".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
