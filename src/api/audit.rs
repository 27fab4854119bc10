//! `/api/v1/audit`: the audit log read over the API (auditor): its entries page by page, and a
//! check of its hash chain.

use super::error::ApiResult;
use super::extract::{Auth, Query};
use crate::audit::Verdict;
use crate::ra::Ra;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The query of `GET /api/v1/audit`: entries after sequence number `after` (default 0), at most
/// `limit` (default 100).
#[derive(Deserialize)]
pub struct AuditParams {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit?after=&limit=`: `{"entries": [...]}` in sequence order.
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

/// `GET /api/v1/audit/verify`: the verdict on the hash chain (intact, or where it breaks).
pub async fn audit_verify(State(ra): State<Ra>, Auth(op): Auth) -> ApiResult<Json<Verdict>> {
    Ok(Json(ra.audit_verify(&op).await?))
}
