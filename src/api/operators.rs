//! `/api/v1/operators`: the people who work the RA, and their roles (admin); and
//! `/api/v1/operator-resets`: TOTP resets and password changes that wait for a second admin.

use super::error::ApiResult;
use super::extract::{Auth, Body, Query};
use crate::ra::operator_resets::{PasswordChange, ResetView};
use crate::ra::operators::OperatorView;
use crate::ra::{Ra, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// The body of `POST /api/v1/operators`.
#[derive(Deserialize)]
pub struct CreateOperator {
    name: String,
    roles: Vec<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/v1/operators` `{"name", "roles", "password"?}`: 201 with the new operator and its
/// bearer token (the only time the token is shown). A password is checked before the operator is
/// made, and set for the console in the same transaction.
pub async fn create(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(b): Body<CreateOperator>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let roles = b
        .roles
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let password = b.password.map(Zeroizing::new);
    let created = ra.create_operator(&op, &b.name, &roles, password).await?;
    let mut body = serde_json::to_value(&created.view).unwrap_or_default();
    body["token"] = Value::String(created.token.to_string());
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/v1/operators`: `{"operators": [...]}`.
pub async fn list(State(ra): State<Ra>, Auth(op): Auth) -> ApiResult<Json<Value>> {
    let ops: Vec<OperatorView> = ra.list_operators(&op).await?;
    Ok(Json(json!({"operators": ops})))
}

/// `POST /api/v1/operators/{id}/disable`: the operator's token stops working.
pub async fn disable(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ra.disable_operator(&op, &id).await?;
    Ok(Json(json!({"id": id, "disabled": true})))
}

/// The body of `POST /api/v1/operators/{id}/password`.
#[derive(Deserialize)]
pub struct SetPassword {
    password: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The answer for a reset that waits for a second admin: 202 with the reset.
fn pending(reset: ResetView) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(reset).unwrap_or_default()),
    )
}

/// `POST /api/v1/operators/{id}/password` `{"password", "reason"}`: one's own password is set at
/// once (200, `{"id", "password_set": true}`; the console sessions end); another operator's
/// waits for a second admin (202 with the pending reset; `reason` required).
pub async fn set_password(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<SetPassword>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let password = Zeroizing::new(b.password);
    match ra
        .set_operator_password(&op, &id, password, b.reason.as_deref())
        .await?
    {
        PasswordChange::Set => Ok((
            StatusCode::OK,
            Json(json!({"id": id, "password_set": true})),
        )),
        PasswordChange::Pending(reset) => Ok(pending(*reset)),
    }
}

/// The body of `POST /api/v1/operators/{id}/reset-totp` and of a rejection.
#[derive(Deserialize)]
pub struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/operators/{id}/reset-totp` `{"reason"}`: 202 with the pending reset; a second
/// admin approves it (`/api/v1/operator-resets/{id}/approve`), then the operator enrols TOTP
/// again at their next console login.
pub async fn reset_totp(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<Reason>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let reset = ra.request_totp_reset(&op, &id, b.reason.as_deref()).await?;
    Ok(pending(reset))
}

/// The query of `GET /api/v1/operator-resets`.
#[derive(Deserialize)]
pub struct ResetListParams {
    #[serde(default)]
    status: Option<String>,
}

/// `GET /api/v1/operator-resets?status=`: `{"resets": [...]}`, pending ones by default.
pub async fn resets(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<ResetListParams>,
) -> ApiResult<Json<Value>> {
    let resets = ra.operator_resets(&op, p.status.as_deref()).await?;
    Ok(Json(json!({"resets": resets})))
}

/// `GET /api/v1/operator-resets/{id}`.
pub async fn reset(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ResetView>> {
    Ok(Json(ra.operator_reset(&op, &id).await?))
}

/// `POST /api/v1/operator-resets/{id}/approve`: a second admin approves; the change is applied.
pub async fn approve_reset(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ResetView>> {
    Ok(Json(ra.approve_operator_reset(&op, &id).await?))
}

/// `POST /api/v1/operator-resets/{id}/reject` `{"reason"}`.
pub async fn reject_reset(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<Reason>,
) -> ApiResult<Json<ResetView>> {
    Ok(Json(
        ra.reject_operator_reset(&op, &id, b.reason.as_deref())
            .await?,
    ))
}

/// `POST /api/v1/operator-resets/{id}/cancel`: the admin who asked withdraws it.
pub async fn cancel_reset(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ResetView>> {
    Ok(Json(ra.cancel_operator_reset(&op, &id).await?))
}
