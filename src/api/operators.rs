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

/// The body of `POST /api/v1/operators`.
#[derive(Deserialize)]
pub struct CreateOperator {
    name: String,
    roles: Vec<String>,
}

/// `POST /api/v1/operators` `{"name", "roles"}`: 201 with the new operator and its bearer token
/// (the only time the token is shown).
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
    let created = ra.create_operator(&op, &b.name, &roles).await?;
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
