//! `/api/v1/operators`: the people who work the RA, and their roles (admin).

use super::error::ApiResult;
use super::extract::{Auth, Body};
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
/// made, then set for the console.
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
    if let Some(p) = &password {
        crate::ra::console::password::check_new(p)?;
    }
    let created = ra.create_operator(&op, &b.name, &roles).await?;
    if let Some(p) = password {
        ra.set_operator_password(&op, &created.view.id, p).await?;
    }
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
}

/// `POST /api/v1/operators/{id}/password` `{"password"}`: sets the operator's console password
/// (admin); their console sessions end.
pub async fn set_password(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<SetPassword>,
) -> ApiResult<Json<Value>> {
    ra.set_operator_password(&op, &id, Zeroizing::new(b.password))
        .await?;
    Ok(Json(json!({"id": id, "password_set": true})))
}

/// `POST /api/v1/operators/{id}/reset-totp`: the operator enrols TOTP again at their next console
/// login (admin, not for oneself); their console sessions end.
pub async fn reset_totp(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ra.reset_operator_totp(&op, &id).await?;
    Ok(Json(json!({"id": id, "totp_reset": true})))
}
