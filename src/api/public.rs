//! What relying parties, browsers and load balancers fetch without a token: the CA
//! certificates, the CRLs and ARL, OCSP, `GET /` and the health probes.

use super::caching::{cached_response, no_store_response, validated_response};
use super::error::{error_response, ApiError};
use crate::ra::readiness::Readiness;
use crate::ra::Ra;
use crate::x509::pem_encode;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `GET /` for clients that do not ask for HTML (curl, scripts): what this is and where things
/// are. Browsers get the console (`web::login::index`).
pub async fn about() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "service": "Vouch certificate Registration Authority",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/api/v1",
        "authentication": "Authorization: Bearer <operator token> on /api/v1",
        "health": "/healthz",
        "ready": "/readyz",
        "ca_certificates": ["/ca/root.pem", "/ca/issuing.pem", "/ca/aa.pem", "/ca/aa-chain.pem"],
        "crls": ["/crl/issuing.crl", "/crl/issuing-delta.crl", "/crl/root.crl", "/crl/aa.crl"],
        "ocsp": "/ocsp",
        "docs": "docs/API.md (HTTP API and command line) and docs/OPERATIONS.md in the Vouch source",
    }))
}

/// `GET /healthz`: the process is alive (whatever its database says; see [`readyz`]).
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when this instance can serve (its database answers, its writer runs and the
/// audit chain's head is sound or its breaks acknowledged), 503 otherwise, so a load balancer stops
/// sending it traffic. `/healthz` only says the process is alive.
pub async fn readyz(State(ra): State<Ra>) -> Response {
    match ra.readiness().await {
        Readiness::Ready {
            root,
            unreached,
            quarantined,
        } => {
            let mut body = serde_json::json!({"status": "ready"});
            let mut warnings = Vec::new();
            if let Some(root) = root {
                warnings.extend(root.warnings.iter().cloned());
                body["root_ca"] = serde_json::json!(root);
            }
            if !unreached.is_empty() {
                body["upstream_cas_unreached"] = unreached
                    .iter()
                    .map(|(id, why)| serde_json::json!({"ca": id, "error": why}))
                    .collect();
                warnings.extend(unreached.iter().map(|(id, _)| {
                    format!("the CA {id} has not been reached since the start: its issuances wait")
                }));
            }
            if quarantined > 0 {
                // A count only: what and why is for an admin (`vouch upstream queue`).
                body["quarantined_unacknowledged"] = quarantined.into();
                warnings.push(format!(
                    "{quarantined} quarantined certificate(s) from a remote CA await an admin: \
                     see `vouch upstream queue`, then `vouch upstream queue ack`"
                ));
            }
            if !warnings.is_empty() || body.get("root_ca").is_some() {
                body["warnings"] = serde_json::json!(warnings);
            }
            axum::Json(body).into_response()
        }
        Readiness::AuditChainBroken(b) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "audit_chain_broken",
                "message": format!(
                    "the audit chain is broken at entry {}: {}; check it with `vouch audit verify`, \
                     then record the finding with `vouch audit acknowledge`",
                    b.seq, b.problem
                ),
                "entry": b.seq,
                "problem": b.problem,
            })),
        )
            .into_response(),
        Readiness::DatabaseUnreachable => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database is not reachable",
        ),
        Readiness::TimedOut => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database did not answer within 2 s",
        ),
    }
}

/// `GET /ca/{id}.pem` (PEM) and `GET /ca/{id}.cer` (DER, what Windows fetches from AIA
/// caIssuers): the public CA certificates, `root` and `issuing`, and the attribute authority's,
/// `aa` (with `GET /ca/aa-chain.pem`: the AA certificate, then the root), with an ETag (304 when
/// it matches).
pub async fn ca_pem(State(ra): State<Ra>, Path(file): Path<String>, req: Request) -> Response {
    if let Some(aa) = ra.aa_certificate() {
        let aa_id = crate::ca::aa::AA_ID;
        let root = ra.ca().chain().root().der.clone();
        let body = match file.strip_prefix(aa_id) {
            Some(".pem") => Some((pem_encode("CERTIFICATE", aa), "application/x-pem-file")),
            Some("-chain.pem") => Some((
                pem_encode("CERTIFICATE", aa) + &pem_encode("CERTIFICATE", &root),
                "application/x-pem-file",
            )),
            _ => None,
        };
        if let Some((body, kind)) = body {
            return validated_response(req.headers(), Bytes::from(body), kind);
        }
        if file == format!("{aa_id}.cer") {
            return validated_response(
                req.headers(),
                Bytes::from(aa.to_vec()),
                "application/pkix-cert",
            );
        }
    }
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
/// `GET /crl/root.crl`: the root's ARL (the CRL of CA certificates); `GET /crl/aa.crl`: the
/// attribute authority's CRL of attribute certificates. All DER, with caching headers
/// from their thisUpdate and nextUpdate.
pub async fn crl(State(ra): State<Ra>, Path(file): Path<String>, req: Request) -> Response {
    let Some(name) = file.strip_suffix(".crl") else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such CRL");
    };
    if name == crate::ca::aa::AA_ID {
        return match ra.ac_crl().await {
            Ok((der, f)) => cached_response(req.headers(), der, PKIX_CRL, &f, ra.now()),
            Err(e) => ApiError(e).into_response(),
        };
    }
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
