//! `/api/v1/requests`: certificate requests from submission to approval, rejection or
//! cancellation.

use super::error::ApiResult;
use super::extract::{Auth, Body, Query};
use crate::ra::requests::RequestView;
use crate::ra::Ra;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The body of `POST /api/v1/requests`.
#[derive(Deserialize)]
pub struct Submit {
    subscriber_id: String,
    profile: String,
    csr: String,
}

/// `POST /api/v1/requests` `{"subscriber_id", "profile", "csr"}`: 201 with the pending
/// request (clerk).
pub async fn submit(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(b): Body<Submit>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    let view = ra
        .submit_request(&op, &b.subscriber_id, &b.profile, &b.csr)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/requests/{id}`: one request and where it stands.
pub async fn show(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(ra.request(&op, &id).await?))
}

/// The query of `GET /api/v1/requests`: filters and a limit (default 100).
#[derive(Deserialize)]
pub struct ListParams {
    status: Option<String>,
    subscriber_id: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/requests?status=&subscriber_id=&limit=`: `{"requests": [...]}`.
pub async fn list(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let found = ra
        .list_requests(
            &op,
            p.status.as_deref(),
            p.subscriber_id.as_deref(),
            p.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(json!({"requests": found})))
}

/// `POST /api/v1/requests/{id}/approve`: an approver other than the requester approves, with the
/// policy checked again; once the profile's approvals are in, the certificate is issued.
pub async fn approve(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(ra.approve(&op, &id).await?))
}

/// The body of reject and cancel: `{"reason"}`.
#[derive(Deserialize)]
pub struct Reject {
    reason: String,
}

/// `POST /api/v1/requests/{id}/reject` `{"reason"}`: the request ends rejected.
pub async fn reject(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<Reject>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(ra.reject(&op, &id, &b.reason).await?))
}

/// `POST /api/v1/requests/{id}/cancel` `{"reason"}`: an admin withdraws an approved request that
/// is not issued.
pub async fn cancel(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<Reject>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(ra.cancel(&op, &id, &b.reason).await?))
}
