//! `/api/v1/subscribers`: the people and organisations certificates are issued to, with the
//! identity evidence a clerk examined.

use super::error::ApiResult;
use super::extract::{Auth, Body, Query};
use crate::ra::subscribers::{NewEvidence, NewSubscriber, SubscriberView};
use crate::ra::Ra;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The body of `POST /api/v1/subscribers`.
#[derive(Deserialize)]
pub struct CreateSubscriber {
    kind: String,
    name: String,
    email: Option<String>,
    organisation: Option<String>,
    #[serde(default)]
    identifiers: Vec<Identifier>,
}

/// One piece of identity evidence: the document's type, number, issuer and expiry.
#[derive(Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    doc_type: String,
    number: String,
    issuer: String,
    valid_until: String,
    document_sha256: Option<String>,
}

impl From<Identifier> for NewEvidence {
    fn from(i: Identifier) -> Self {
        NewEvidence {
            doc_type: i.doc_type,
            number: i.number,
            issuer: i.issuer,
            valid_until: i.valid_until,
            document_sha256: i.document_sha256,
        }
    }
}

/// `POST /api/v1/subscribers`: 201 `{"id"}` (clerk).
pub async fn create(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(b): Body<CreateSubscriber>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewSubscriber {
        kind: b.kind,
        name: b.name,
        email: b.email,
        organisation: b.organisation,
        identifiers: b.identifiers.into_iter().map(NewEvidence::from).collect(),
    };
    let id = ra.register_subscriber(&op, input).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// `POST /api/v1/subscribers/{id}/identifiers`: 201 with the subscriber and its new evidence.
pub async fn add_identifier(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(i): Body<Identifier>,
) -> ApiResult<(StatusCode, Json<SubscriberView>)> {
    let evidence = NewEvidence::from(i);
    Ok((
        StatusCode::CREATED,
        Json(ra.add_evidence(&op, &id, evidence).await?),
    ))
}

/// `GET /api/v1/subscribers/{id}`: the subscriber and its evidence.
pub async fn show(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriberView>> {
    Ok(Json(ra.subscriber(&op, &id).await?))
}

/// The query of `GET /api/v1/subscribers`: text `q` and a limit (default 50).
#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

/// `GET /api/v1/subscribers?q=&limit=`: `{"subscribers": [...]}`.
pub async fn search(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let found = ra
        .search_subscribers(&op, &p.q, p.limit.unwrap_or(50))
        .await?;
    Ok(Json(json!({"subscribers": found})))
}
