//! `POST /api/v1/verify`: a signed submission in, a decision and a receipt out.

use super::error::ApiResult;
use super::extract::{Auth, Body};
use crate::ra::Ra;
use crate::verify::VerifyRequest;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// Largest verification body: the CMS and the content in base64, and the caller's attribute
/// certificates.
pub const MAX_VERIFY_BODY_BYTES: usize = 1024 * 1024;

/// `POST /api/v1/verify` (role `verifier`): 200 with the decision for any readable submission.
pub async fn verify(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(req): Body<VerifyRequest>,
) -> ApiResult<impl IntoResponse> {
    let body = ra.verify_json(&op, &req).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
