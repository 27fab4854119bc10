//! `/subscribers`: search by name or identifier, register a subscriber with identity evidence;
//! `/subscribers/{id}`: the subscriber, their evidence and requests, and the request form.

use super::render::{self, error_text};
use super::session::Console;
use crate::ra::subscribers::{NewEvidence, NewSubscriber};
use axum::extract::{Form, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

/// `?q=` of the search.
#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

/// The registration form (one piece of evidence; more can be added over the API).
#[derive(Deserialize, Serialize, Default)]
pub struct Register {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    doc_type: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    document_sha256: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

async fn list_page(c: &Console, q: &str, form: &Register, error: Option<String>) -> Response {
    let found = match c
        .ra
        .search_subscribers(c.op(), q.trim(), super::PAGE_SIZE)
        .await
    {
        Ok(found) => found,
        Err(e) => return render::error(c, &e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render::page(
        c.lang,
        Some(&c.live.session),
        status,
        "subscribers.html",
        context! { q => q, found => found, form => form, error => error },
    )
}

/// `GET /subscribers?q=`.
pub async fn list(c: Console, Query(s): Query<Search>) -> Response {
    let form = Register {
        kind: "person".into(),
        ..Default::default()
    };
    list_page(&c, &s.q, &form, None).await
}

/// `POST /subscribers`: register; on a refused field the form comes back as typed.
pub async fn create(c: Console, Form(f): Form<Register>) -> Response {
    let input = NewSubscriber {
        kind: f.kind.clone(),
        name: f.name.clone(),
        email: some(&f.email),
        organisation: some(&f.organisation),
        identifiers: vec![NewEvidence {
            doc_type: f.doc_type.clone(),
            number: f.number.clone(),
            issuer: f.issuer.clone(),
            valid_until: f.valid_until.clone(),
            document_sha256: some(&f.document_sha256),
        }],
    };
    match c.ra.register_subscriber(c.op(), input).await {
        Ok(id) => Redirect::to(&format!("/subscribers/{id}")).into_response(),
        Err(e) if matches!(e, crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => list_page(&c, "", &f, Some(error_text(c.lang, &e))).await,
    }
}

/// `GET /subscribers/{id}`.
pub async fn show(c: Console, Path(id): Path<String>) -> Response {
    show_page(&c, &id, "", "", None).await
}

/// The subscriber page, with the request form as typed and its error, if any.
pub async fn show_page(
    c: &Console,
    id: &str,
    profile: &str,
    csr: &str,
    error: Option<String>,
) -> Response {
    let subscriber = match c.ra.subscriber(c.op(), id).await {
        Ok(s) => s,
        Err(e) => return render::error(c, &e),
    };
    let requests =
        c.ra.list_requests(c.op(), None, Some(id), super::PAGE_SIZE)
            .await
            .unwrap_or_default();
    let profiles: Vec<&str> = c.ra.profiles().names().collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render::page(
        c.lang,
        Some(&c.live.session),
        status,
        "subscriber.html",
        context! { s => subscriber, requests => requests, profiles => profiles,
        profile => profile, csr => csr, error => error },
    )
}
