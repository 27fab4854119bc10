use super::error::{error_response, ApiResult};
use super::extract::{Auth, Body};
use crate::ra::certificates::CertificateView;
use crate::ra::Ra;
use crate::x509::pem_encode;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn certificate(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
) -> ApiResult<Json<CertificateView>> {
    Ok(Json(ra.certificate(&op, &serial).await?))
}

/// `GET /ca/{id}.pem`: public CA certificates.
pub async fn ca_pem(State(ra): State<Ra>, Path(file): Path<String>) -> Response {
    let found = file
        .strip_suffix(".pem")
        .and_then(|id| ra.ca().chain().iter().find(|c| c.id == id));
    match found {
        Some(c) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem_encode("CERTIFICATE", &c.der),
        )
            .into_response(),
        None => error_response(StatusCode::NOT_FOUND, "not_found", "no such CA certificate"),
    }
}

#[derive(Deserialize)]
pub struct BlockKey {
    key_sha256: Option<String>,
    public_key_pem: Option<String>,
    reason: String,
}

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
