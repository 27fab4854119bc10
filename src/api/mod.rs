//! HTTP: routes, extractors, JSON shapes and the error mapping. Handlers parse, call `ra`, render.

pub mod caching;
pub mod error;
pub mod extract;
pub mod listener;
mod operators;
mod pki;
mod requests;
mod subscribers;

use crate::ra::Ra;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

/// Largest request body accepted (a subscriber with all its evidence, or a request with a CSR).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(ra: Ra) -> Router {
    let api = Router::new()
        .route(
            "/subscribers",
            post(subscribers::create).get(subscribers::search),
        )
        .route("/subscribers/{id}", get(subscribers::show))
        .route(
            "/subscribers/{id}/identifiers",
            post(subscribers::add_identifier),
        )
        .route("/requests", post(requests::submit).get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/approve", post(requests::approve))
        .route("/requests/{id}/reject", post(requests::reject))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/certificates/{serial}", get(pki::certificate))
        .route("/certificates/{serial}/revoke", post(pki::revoke))
        .route("/certificates/{serial}/hold", post(pki::hold))
        .route("/certificates/{serial}/release", post(pki::release))
        // A signed statement is small: the limit is the CMS reader's own (docs/API.md).
        .route(
            "/revocations/by-key",
            post(pki::revoke_by_key).layer(DefaultBodyLimit::max(crate::x509::cms::MAX_CMS_BYTES)),
        )
        .route("/revocations/{id}", get(pki::revocation))
        .route("/revocations/{id}/approve", post(pki::approve_revocation))
        .route("/revocations/{id}/reject", post(pki::reject_revocation))
        .route("/blocked-keys", post(pki::block_key))
        .route("/operators", post(operators::create).get(operators::list))
        .route("/operators/{id}/disable", post(operators::disable))
        .route("/audit", get(operators::audit_page))
        .route("/audit/verify", get(operators::audit_verify));
    Router::new()
        .nest("/api/v1", api)
        .route("/", get(about))
        .route("/ca/{file}", get(pki::ca_pem))
        .route("/crl/{file}", get(pki::crl))
        .route("/ocsp", post(pki::ocsp_post))
        .route("/ocsp/{*request}", get(pki::ocsp_get))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .method_not_allowed_fallback(|| async {
            error::error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .fallback(|| async {
            error::error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost: whatever is answered above, an error leaves as JSON.
        .layer(error::JsonErrorsLayer)
        .with_state(ra)
}

/// `GET /`: what this is and where things are, for someone who points a browser or curl at the
/// server (until a console takes this path).
async fn about() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "service": "Vouch certificate Registration Authority",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/api/v1",
        "authentication": "Authorization: Bearer <operator token> on /api/v1",
        "health": "/healthz",
        "ready": "/readyz",
        "ca_certificates": ["/ca/root.pem", "/ca/issuing.pem"],
        "crls": ["/crl/issuing.crl", "/crl/issuing-delta.crl", "/crl/root.crl"],
        "ocsp": "/ocsp",
        "docs": "docs/API.md (HTTP API and command line) and docs/OPERATIONS.md in the Vouch source",
    }))
}

/// `GET /readyz`: 200 when this instance can serve (its database answers, its writer runs and the
/// audit chain's head is sound or its breaks acknowledged), 503 otherwise, so a load balancer stops
/// sending it traffic. `/healthz` only says the process is alive.
async fn readyz(axum::extract::State(ra): axum::extract::State<Ra>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let checks = async {
        ra.store().ready().await?;
        crate::audit::health::check(ra.store(), ra.now()).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), checks).await {
        Ok(Ok(None)) => {
            // The root CA's state is news for operators, not a reason to stop serving: relying
            // parties still need this instance's OCSP answers and CRLs.
            let mut body = serde_json::json!({"status": "ready"});
            match ra.root_status().await {
                Ok(Some(root)) => {
                    body["warnings"] = serde_json::json!(root.warnings);
                    body["root_ca"] = serde_json::json!(root);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the root CA's state"),
            }
            axum::Json(body).into_response()
        }
        Ok(Ok(Some(b))) => (
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
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            error::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database is not reachable",
            )
        }
        Err(_) => error::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database did not answer within 2 s",
        ),
    }
}
