//! HTTP: routes, extractors, JSON shapes and the error mapping. Handlers parse, call `ra`, render.
//!
//! One file per group of routes: `subscribers`, `requests`, `certificates`, `revocations`,
//! `attributes`, `verify`, `operators` and `audit` under `/api/v1` (bearer token); `public` for what relying parties and
//! probes fetch without one. `extract` turns bad input into our JSON errors, `error` maps domain
//! errors to statuses once, `caching` serves signed documents with HTTP caching, and `listener`
//! accepts connections under the configured limits.

mod attributes;
mod audit;
pub mod caching;
mod certificates;
pub mod error;
pub mod extract;
pub mod listener;
mod operators;
pub(crate) mod public;
mod requests;
mod revocations;
mod subscribers;
mod verify;

use crate::ra::Ra;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

/// Largest request body accepted (a subscriber with all its evidence, or a request with a CSR).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route the server answers, with the body limits and the JSON error layer, over `ra`.
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
        .route("/certificates", get(certificates::search))
        .route("/certificates/{serial}", get(certificates::certificate))
        .route("/certificates/{serial}/revoke", post(certificates::revoke))
        .route("/certificates/{serial}/hold", post(certificates::hold))
        .route(
            "/certificates/{serial}/release",
            post(certificates::release),
        )
        // A signed statement is small: the limit is the CMS reader's own (docs/API.md).
        .route(
            "/revocations/by-key",
            post(revocations::revoke_by_key)
                .layer(DefaultBodyLimit::max(crate::x509::cms::MAX_CMS_BYTES)),
        )
        .route("/revocations/{id}", get(revocations::revocation))
        .route(
            "/revocations/{id}/approve",
            post(revocations::approve_revocation),
        )
        .route(
            "/revocations/{id}/reject",
            post(revocations::reject_revocation),
        )
        .route("/blocked-keys", post(revocations::block_key))
        .route("/operators", post(operators::create).get(operators::list))
        .route("/operators/{id}/disable", post(operators::disable))
        .route("/operators/{id}/password", post(operators::set_password))
        .route("/operators/{id}/reset-totp", post(operators::reset_totp))
        .route("/operator-resets", get(operators::resets))
        .route("/operator-resets/{id}", get(operators::reset))
        .route(
            "/operator-resets/{id}/approve",
            post(operators::approve_reset),
        )
        .route(
            "/operator-resets/{id}/reject",
            post(operators::reject_reset),
        )
        .route(
            "/operator-resets/{id}/cancel",
            post(operators::cancel_reset),
        )
        .route(
            "/attribute-certificates",
            post(attributes::grant).get(attributes::list),
        )
        .route("/attribute-certificates/{serial}", get(attributes::show))
        .route(
            "/attribute-certificates/{serial}/revoke",
            post(attributes::revoke),
        )
        .route("/attribute-grants", get(attributes::grants))
        .route("/attribute-grants/{id}", get(attributes::grant_status))
        .route("/attribute-grants/{id}/approve", post(attributes::approve))
        .route("/attribute-grants/{id}/reject", post(attributes::reject))
        .route(
            "/verify",
            post(verify::verify).layer(DefaultBodyLimit::max(verify::MAX_VERIFY_BODY_BYTES)),
        )
        .route("/audit", get(audit::audit_page))
        .route("/audit/verify", get(audit::audit_verify));
    Router::new()
        .nest("/api/v1", api)
        // The console: `/` (JSON about for non-browsers), `/login`, its pages and assets.
        .merge(crate::web::router(ra.clone()))
        .route("/ca/{file}", get(public::ca_pem))
        .route("/crl/{file}", get(public::crl))
        .route("/ocsp", post(public::ocsp_post))
        .route("/ocsp/{*request}", get(public::ocsp_get))
        .route("/healthz", get(public::healthz))
        .route("/readyz", get(public::readyz))
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
