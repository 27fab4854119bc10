//! `/api/v1/revocations/…` and `/api/v1/blocked-keys`: four-eyes revocation requests, a
//! subscriber's own revocation by a signed statement, and keys refused for good.

use super::error::ApiResult;
use super::extract::{Auth, Body};
use crate::ra::revocation::{RevocationOutcome, RevocationRequestView};
use crate::ra::Ra;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/revocations/by-key`: no token; the body is the subscriber's CMS SignedData.
pub async fn revoke_by_key(
    State(ra): State<Ra>,
    body: Bytes,
) -> ApiResult<Json<RevocationOutcome>> {
    Ok(Json(ra.revoke_by_key(&body).await?))
}

/// `GET /api/v1/revocations/{id}`: a revocation request awaiting (or past) its second revoker.
pub async fn revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RevocationRequestView>> {
    Ok(Json(ra.revocation_request(&op, &id).await?))
}

/// `POST /api/v1/revocations/{id}/approve`: the second revoker agrees; the certificate is revoked.
pub async fn approve_revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RevocationOutcome>> {
    Ok(Json(ra.approve_revocation(&op, &id).await?))
}

/// The body of `POST /api/v1/revocations/{id}/reject`.
#[derive(Deserialize)]
pub struct RejectRevocation {
    reason: String,
}

/// `POST /api/v1/revocations/{id}/reject` `{"reason"}`: the second revoker refuses.
pub async fn reject_revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<RejectRevocation>,
) -> ApiResult<Json<RevocationRequestView>> {
    Ok(Json(ra.reject_revocation(&op, &id, &b.reason).await?))
}

/// The body of `POST /api/v1/blocked-keys`: the key by its SPKI SHA-256 or as a PEM public key.
#[derive(Deserialize)]
pub struct BlockKey {
    key_sha256: Option<String>,
    public_key_pem: Option<String>,
    reason: String,
}

/// `POST /api/v1/blocked-keys`: refuse a key in every later request (201 with its fingerprint).
pub async fn block_key(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Body(b): Body<BlockKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let fp = ra
        .block_key(
            &op,
            b.key_sha256.as_deref(),
            b.public_key_pem.as_deref(),
            &b.reason,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key_sha256": fp, "blocked": true})),
    ))
}
