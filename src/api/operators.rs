use super::error::ApiResult;
use super::extract::{Auth, Body, Query};
use crate::audit::Verdict;
use crate::ra::operators::OperatorView;
use crate::ra::{Ra, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct CreateOperator {
    name: String,
    roles: Vec<String>,
}

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

pub async fn list(State(ra): State<Ra>, Auth(op): Auth) -> ApiResult<Json<Value>> {
    let ops: Vec<OperatorView> = ra.list_operators(&op).await?;
    Ok(Json(json!({"operators": ops})))
}

pub async fn disable(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ra.disable_operator(&op, &id).await?;
    Ok(Json(json!({"id": id, "disabled": true})))
}

#[derive(Deserialize)]
pub struct AuditParams {
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn audit_page(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<Value>> {
    let entries = ra
        .audit_page(&op, p.after.unwrap_or(0), p.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({"entries": entries})))
}

pub async fn audit_verify(State(ra): State<Ra>, Auth(op): Auth) -> ApiResult<Json<Verdict>> {
    Ok(Json(ra.audit_verify(&op).await?))
}
