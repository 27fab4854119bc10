use super::caching::{cached_response, no_store_response, validated_response};
use super::error::{error_response, ApiError, ApiResult};
use super::extract::{Auth, Body};
use crate::ra::certificates::CertificateView;
use crate::ra::revocation::{RevocationOutcome, RevocationRequestView};
use crate::ra::Ra;
use crate::x509::pem_encode;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
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

/// `GET /ca/{id}.pem` (PEM) and `GET /ca/{id}.cer` (DER, what Windows fetches from AIA
/// caIssuers): the public CA certificates, `root` and `issuing`, with an ETag (304 when it
/// matches).
pub async fn ca_pem(State(ra): State<Ra>, Path(file): Path<String>, req: Request) -> Response {
    let chain = ra.ca().chain();
    let find = |id: &str| chain.iter().find(|c| c.id == id);
    if let Some(c) = file.strip_suffix(".pem").and_then(find) {
        return validated_response(
            req.headers(),
            Bytes::from(pem_encode("CERTIFICATE", &c.der)),
            "application/x-pem-file",
        );
    }
    if let Some(c) = file.strip_suffix(".cer").and_then(find) {
        return validated_response(
            req.headers(),
            Bytes::from(c.der.clone()),
            "application/pkix-cert",
        );
    }
    error_response(StatusCode::NOT_FOUND, "not_found", "no such CA certificate")
}

#[derive(Deserialize)]
pub struct Revoke {
    reason: String,
    invalidity_date: Option<String>,
    comment: Option<String>,
}

pub async fn revoke(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    Body(b): Body<Revoke>,
) -> ApiResult<(StatusCode, Json<RevocationOutcome>)> {
    let outcome = ra
        .revoke(
            &op,
            &serial,
            &b.reason,
            b.invalidity_date.as_deref(),
            b.comment.as_deref(),
        )
        .await?;
    // 202 when the profile needs a second revoker: nothing is revoked yet.
    let status = if outcome.id.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

/// `POST /api/v1/revocations/by-key`: no token; the body is the subscriber's CMS SignedData.
pub async fn revoke_by_key(
    State(ra): State<Ra>,
    body: Bytes,
) -> ApiResult<Json<RevocationOutcome>> {
    Ok(Json(ra.revoke_by_key(&body).await?))
}

pub async fn revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RevocationRequestView>> {
    Ok(Json(ra.revocation_request(&op, &id).await?))
}

pub async fn approve_revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RevocationOutcome>> {
    Ok(Json(ra.approve_revocation(&op, &id).await?))
}

#[derive(Deserialize)]
pub struct RejectRevocation {
    reason: String,
}

pub async fn reject_revocation(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(id): Path<String>,
    Body(b): Body<RejectRevocation>,
) -> ApiResult<Json<RevocationRequestView>> {
    Ok(Json(ra.reject_revocation(&op, &id, &b.reason).await?))
}

#[derive(Deserialize, Default)]
pub struct Comment {
    comment: Option<String>,
}

/// Hold and release take an optional JSON body `{"comment": ...}`.
async fn set_hold(
    ra: Ra,
    op: crate::ra::Operator,
    serial: String,
    body: Bytes,
    hold: bool,
) -> Response {
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Comment::default())
    } else {
        serde_json::from_slice::<Comment>(&body)
    };
    let comment = match parsed {
        Ok(c) => c.comment,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string()),
    };
    let outcome = if hold {
        ra.hold(&op, &serial, comment.as_deref()).await
    } else {
        ra.release(&op, &serial, comment.as_deref()).await
    };
    match outcome {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn hold(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    set_hold(ra, op, serial, body, true).await
}

pub async fn release(
    State(ra): State<Ra>,
    Auth(op): Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    set_hold(ra, op, serial, body, false).await
}

const OCSP_RESPONSE: &str = "application/ocsp-response";
const PKIX_CRL: &str = "application/pkix-crl";

/// `POST /ocsp`: a DER OCSP request in the body (RFC 6960 A.1). A body that cannot be read (over
/// the size limit) is answered in OCSP's own terms: `malformedRequest`. Never cacheable: every
/// request goes to the one URL, so a cache keyed on it would hand one certificate's answer to the
/// next question (RFC 5019 §5 keeps caching to GET).
pub async fn ocsp_post(
    State(ra): State<Ra>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let der = match body {
        Ok(body) => ra.ocsp(&body).await.der,
        Err(_) => Bytes::from(crate::x509::ocsp::malformed()),
    };
    no_store_response(der, OCSP_RESPONSE)
}

/// `GET /ocsp/{base64 request}`: url-safe or standard base64, padded or not (RFC 5019 5). A
/// signed answer the RA would serve again carries the RFC 5019 §6.2 caching headers and answers
/// conditional requests; any other (error, nonce, `unknown`) is `no-store`.
pub async fn ocsp_get(State(ra): State<Ra>, Path(encoded): Path<String>, req: Request) -> Response {
    use base64::Engine;
    // Whitespace (a wrapped base64 line) is dropped; the usual request has none and is not copied.
    let cleaned: std::borrow::Cow<'_, str> = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        encoded
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        encoded.as_str().into()
    };
    let trimmed = cleaned.trim_end_matches('=');
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let der = engines
        .iter()
        .find_map(|e| e.decode(trimmed).ok())
        .unwrap_or_default();
    let answer = ra.ocsp(&der).await;
    match answer.freshness {
        Some(f) => cached_response(req.headers(), answer.der, OCSP_RESPONSE, &f, ra.now()),
        None => no_store_response(answer.der, OCSP_RESPONSE),
    }
}

/// `GET /crl/{ca}.crl`: the CA's current full CRL; `GET /crl/{ca}-delta.crl`: its delta CRL;
/// `GET /crl/root.crl`: the root's ARL (the CRL of CA certificates). All DER, with caching headers
/// from their thisUpdate and nextUpdate.
pub async fn crl(State(ra): State<Ra>, Path(file): Path<String>, req: Request) -> Response {
    let Some(name) = file.strip_suffix(".crl") else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such CRL");
    };
    if name == crate::ca::local::ROOT_ID {
        return match ra.arl().await {
            Ok(arl) => cached_response(
                req.headers(),
                arl.der.clone(),
                PKIX_CRL,
                &arl.freshness,
                ra.now(),
            ),
            Err(e) => ApiError(e).into_response(),
        };
    }
    let crl = match name.strip_suffix("-delta") {
        Some(ca) => ra.delta_crl_with_freshness(ca).await,
        None => ra.crl_with_freshness(name).await,
    };
    match crl {
        Ok((der, f)) => cached_response(req.headers(), der, PKIX_CRL, &f, ra.now()),
        Err(e) => ApiError(e).into_response(),
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
