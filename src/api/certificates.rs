//! `/api/v1/certificates/{serial}`: an issued certificate, and what operators do to it (revoke,
//! hold, release).

use super::error::{error_response, ApiError, ApiResult};
use super::extract::{Auth, Body, Query};
use crate::ra::certificates::{CertificateSearch, CertificateView};
use crate::ra::revocation::RevocationOutcome;
use crate::ra::Ra;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// `?q=&before=&limit=` of the certificate search.
#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/certificates?q=&before=&limit=`: certificates by serial (exactly, or its first
/// digits), subscriber name or identifier, newest first: `{"exact"?, "certificates", "next"?}`.
pub async fn search(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<CertificateSearch>> {
    Ok(Json(
        ra.find_certificates(&op, &p.q, p.before.as_deref(), p.limit.unwrap_or(50))
            .await?,
    ))
}

/// `GET /api/v1/certificates/{serial}`: the certificate, its status and its PEM.
pub async fn certificate(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
) -> ApiResult<Json<CertificateView>> {
    Ok(Json(ra.certificate(&op, &serial).await?))
}

/// The body of `POST /api/v1/certificates/{serial}/revoke`.
#[derive(Deserialize)]
pub struct Revoke {
    reason: String,
    invalidity_date: Option<String>,
    comment: Option<String>,
}

/// `POST /api/v1/certificates/{serial}/revoke` `{"reason", "invalidity_date"?, "comment"?}`:
/// revoke at once (200), or, when the profile needs a second revoker, open a revocation request
/// (202).
pub async fn revoke(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    Body(b): Body<Revoke>,
) -> ApiResult<(StatusCode, Json<RevocationOutcome>)> {
    let outcome = ra
        .revoke(
            &op,
            &serial,
            &b.reason,
            b.invalidity_date.as_deref(),
            b.comment.as_deref(),
        )
        .await?;
    // 202 when the profile needs a second revoker: nothing is revoked yet.
    let status = if outcome.id.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

/// The optional body of hold and release.
#[derive(Deserialize)]
pub struct Comment {
    comment: Option<String>,
}

/// Hold and release take an optional JSON body `{"comment": ...}`: an empty (or blank) body is
/// no comment; anything else must be that JSON object.
fn comment(body: &Bytes) -> Result<Option<String>, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Comment>(body).map(|c| c.comment)
}

/// A hold or release body that is not the JSON it should be.
fn invalid_json(e: &serde_json::Error) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string())
}

/// `POST /api/v1/certificates/{serial}/hold` `{"comment"?}`: suspend the certificate
/// (certificateHold).
pub async fn hold(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let comment = match comment(&body) {
        Ok(comment) => comment,
        Err(e) => return invalid_json(&e),
    };
    match ra.hold(&op, &serial, comment.as_deref()).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// `POST /api/v1/certificates/{serial}/release` `{"comment"?}`: lift a hold.
pub async fn release(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let comment = match comment(&body) {
        Ok(comment) => comment,
        Err(e) => return invalid_json(&e),
    };
    match ra.release(&op, &serial, comment.as_deref()).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}
