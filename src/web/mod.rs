//! The console: server-rendered pages for clerks, approvers, revokers, admins and auditors, in
//! English and Chinese, served by the same binary beside the API (docs/CONSOLE.md).
//!
//! Handlers parse the form, call the same `Ra` methods the API handlers call (so the same roles
//! are checked and the same audit entries written) and render a template. `session` holds the
//! language, the session cookie and the CSRF check every POST passes; `render` the templates;
//! `i18n` the catalogs; `assets` the stylesheet and script.

pub mod assets;
mod attributes;
mod audit;
mod certificates;
pub mod i18n;
mod login;
mod operators;
pub mod render;
mod requests;
pub mod session;
mod subscribers;

use crate::ra::Ra;
use axum::routing::{get, post};
use axum::Router;

/// Rows on a list page.
pub const PAGE_SIZE: i64 = 50;

/// The console's routes, under the CSRF and language middleware.
pub fn router(ra: Ra) -> Router<Ra> {
    Router::new()
        .route("/", get(login::index))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/enrol", get(login::enrol_form).post(login::enrol_confirm))
        .route(
            "/subscribers",
            get(subscribers::list).post(subscribers::create),
        )
        .route("/subscribers/{id}", get(subscribers::show))
        .route("/requests", get(requests::list).post(requests::submit))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/approve", post(requests::approve))
        .route("/requests/{id}/reject", post(requests::reject))
        .route("/certificates", get(certificates::find))
        .route("/certificates/{serial}", get(certificates::show))
        .route("/certificates/{serial}/pem", get(certificates::pem))
        .route("/certificates/{serial}/revoke", post(certificates::revoke))
        .route("/certificates/{serial}/hold", post(certificates::hold))
        .route(
            "/certificates/{serial}/release",
            post(certificates::release),
        )
        .route(
            "/revocations/{id}/approve",
            post(certificates::approve_revocation),
        )
        .route(
            "/revocations/{id}/reject",
            post(certificates::reject_revocation),
        )
        .route(
            "/attribute-certificates",
            get(attributes::list).post(attributes::grant),
        )
        .route("/attribute-certificates/{serial}", get(attributes::show))
        .route("/attribute-certificates/{serial}/pem", get(attributes::pem))
        .route("/attribute-certificates/{serial}/der", get(attributes::der))
        .route(
            "/attribute-certificates/{serial}/revoke",
            post(attributes::revoke),
        )
        .route("/attribute-grants", get(attributes::grants))
        .route("/attribute-grants/{id}", get(attributes::show_grant))
        .route("/attribute-grants/{id}/approve", post(attributes::approve))
        .route("/attribute-grants/{id}/reject", post(attributes::reject))
        .route("/audit", get(audit::page))
        .route("/operators", get(operators::list).post(operators::create))
        .route("/operators/{id}/disable", post(operators::disable))
        .route("/operators/{id}/reset-totp", post(operators::reset_totp))
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
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(ra, session::guard))
}
