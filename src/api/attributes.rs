//! `/api/v1/attribute-certificates` and `/api/v1/attribute-grants`: the attribute authority's
//! grants of roles in applications (RFC 5755 attribute certificates), their approvals when the AC
//! profile asks for a second operator, reading and revoking them.

use super::error::ApiResult;
use super::extract::{Auth, Body, Query};
use crate::ra::attributes::{AcView, GrantInput, GrantOutcome, GrantView};
use crate::ra::Ra;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// `POST /api/v1/attribute-certificates`: 201 with the AC, or 202 `{"id", "status": "pending",
/// …}` when the profile asks for approvals.
pub async fn grant(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(input): Body<GrantInput>,
) -> ApiResult<Response> {
    Ok(match ra.grant_attributes(&op, &input).await? {
        GrantOutcome::Issued(ac) => (StatusCode::CREATED, Json(ac)).into_response(),
        GrantOutcome::Pending(grant) => (StatusCode::ACCEPTED, Json(grant)).into_response(),
    })
}

/// The query of `GET /api/v1/attribute-certificates`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcListParams {
    holder_serial: Option<String>,
    role: Option<String>,
    target: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/attribute-certificates?holder_serial=&role=&target=&limit=`:
/// `{"attribute_certificates": [...]}`, newest first.
pub async fn list(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<AcListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = ra
        .attribute_certificates(
            &op,
            p.holder_serial.as_deref(),
            p.role.as_deref(),
            p.target.as_deref(),
            p.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(json!({ "attribute_certificates": list })))
}

/// `GET /api/v1/attribute-certificates/{serial}`.
pub async fn show(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
) -> ApiResult<Json<AcView>> {
    Ok(Json(ra.attribute_certificate(&op, &serial).await?))
}

/// The body of `POST /api/v1/attribute-certificates/{serial}/revoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAc {
    reason: String,
    comment: Option<String>,
}

/// `POST /api/v1/attribute-certificates/{serial}/revoke` `{"reason", "comment"?}`.
pub async fn revoke(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    Body(b): Body<RevokeAc>,
) -> ApiResult<Json<AcView>> {
    Ok(Json(
        ra.revoke_attribute_certificate(&op, &serial, &b.reason, b.comment.as_deref())
            .await?,
    ))
}

/// The query of `GET /api/v1/attribute-grants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantListParams {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/attribute-grants?status=pending|granted|rejected|expired|failed|all`:
/// `{"grants": [...]}`, oldest first (pending by default).
pub async fn grants(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<GrantListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = ra
        .grants(&op, p.status.as_deref(), p.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "grants": list })))
}

/// `GET /api/v1/attribute-grants/{id}`.
pub async fn grant_status(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    Ok(Json(ra.grant_status(&op, &id).await?))
}

/// `POST /api/v1/attribute-grants/{id}/approve`: another `aa` operator agrees; the last approval
/// issues the AC (its serial is in the answer).
pub async fn approve(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    Ok(Json(ra.approve_grant(&op, &id).await?))
}

/// The body of `POST /api/v1/attribute-grants/{id}/reject`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectGrant {
    reason: String,
}

/// `POST /api/v1/attribute-grants/{id}/reject` `{"reason"}`.
pub async fn reject(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<RejectGrant>,
) -> ApiResult<Json<GrantView>> {
    Ok(Json(ra.reject_grant(&op, &id, &b.reason).await?))
}
