//! `/requests`: the requests and their states (the approver's queue with `?status=pending`),
//! submitting one from a CSR; `/requests/{id}`: what will be issued, approve or reject.

use super::render::{self, error_text};
use super::session::Console;
use super::subscribers::show_page as subscriber_page;
use crate::ra::requests::RequestView;
use axum::extract::{Form, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

/// `?status=` of the list.
#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    /// The last request of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// How long ago `rfc3339` was, in the operator's language.
fn age(c: &Console, rfc3339: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return String::new();
    };
    let minutes = (c.ra.now() - t).whole_minutes().max(0);
    let (n, key) = match minutes {
        m if m < 60 => (m, "age_minutes"),
        m if m < 48 * 60 => (m / 60, "age_hours"),
        m => (m / (24 * 60), "age_days"),
    };
    c.lang.t(key).replace("{n}", &n.to_string())
}

/// A request with what the queue shows beside it.
#[derive(Serialize)]
struct Row {
    r: RequestView,
    age: String,
    evidence: String,
    own: bool,
}

async fn rows(c: &Console, list: Vec<RequestView>, with_evidence: bool) -> Vec<Row> {
    let mut out = Vec::with_capacity(list.len());
    for r in list {
        let evidence = if with_evidence {
            match c.ra.subscriber(c.op(), &r.subscriber_id).await {
                Ok(s) => s
                    .identifiers
                    .iter()
                    .map(|e| {
                        let state = if e.valid {
                            c.lang.t("evidence_valid")
                        } else {
                            c.lang.t("evidence_expired")
                        };
                        format!(
                            "{} {} ({}, {} {}; {state})",
                            e.doc_type,
                            e.number,
                            e.issuer,
                            c.lang.t("until"),
                            e.valid_until
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(_) => String::new(),
            }
        } else {
            String::new()
        };
        out.push(Row {
            age: age(c, &r.created_at),
            own: r.requested_by == c.op().id,
            evidence,
            r,
        });
    }
    out
}

/// `GET /requests?status=`.
pub async fn list(c: Console, Query(f): Query<Filter>) -> Response {
    let status = (!f.status.is_empty()).then_some(f.status.as_str());
    let list = match c
        .ra
        .requests_page(c.op(), status, f.after.as_deref(), super::PAGE_SIZE)
        .await
    {
        Ok(l) => l,
        Err(e) => return render::error(&c, &e),
    };
    let queue = status == Some("pending");
    let next = (list.len() as i64 == super::PAGE_SIZE)
        .then(|| list.last().map(|r| r.id.clone()))
        .flatten();
    let rows = rows(&c, list, queue).await;
    render::page(
        c.lang,
        Some(&c.live.session),
        StatusCode::OK,
        "requests.html",
        context! { rows => rows, status => f.status, queue => queue, next => next,
        states => ["pending", "approved", "issued", "rejected", "expired", "failed", "cancelled"] },
    )
}

/// The request form on a subscriber's page.
#[derive(Deserialize)]
pub struct Submit {
    #[serde(default)]
    subscriber_id: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    csr: String,
}

/// `POST /requests`: submit; on refusal the subscriber page comes back with the form as typed.
pub async fn submit(c: Console, Form(f): Form<Submit>) -> Response {
    match c
        .ra
        .submit_request(c.op(), &f.subscriber_id, &f.profile, &f.csr)
        .await
    {
        Ok(r) => Redirect::to(&format!("/requests/{}", r.id)).into_response(),
        Err(e @ crate::error::Error::NotFound(_)) => render::error(&c, &e),
        Err(e) => {
            let text = error_text(c.lang, &e);
            subscriber_page(&c, &f.subscriber_id, &f.profile, &f.csr, Some(text)).await
        }
    }
}

async fn show_page(c: &Console, id: &str, error: Option<String>, reason: &str) -> Response {
    let r = match c.ra.request(c.op(), id).await {
        Ok(r) => r,
        Err(e) => return render::error(c, &e),
    };
    let row = rows(c, vec![r], true).await.pop();
    let approved_by_me = row
        .as_ref()
        .is_some_and(|row| row.r.approvals.iter().any(|a| a.operator == c.op().id));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render::page(
        c.lang,
        Some(&c.live.session),
        status,
        "request.html",
        context! { row => row, error => error, reason => reason, approved_by_me => approved_by_me },
    )
}

/// `GET /requests/{id}`.
pub async fn show(c: Console, Path(id): Path<String>) -> Response {
    show_page(&c, &id, None, "").await
}

/// `POST /requests/{id}/approve`.
pub async fn approve(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.approve(c.op(), &id).await {
        Ok(_) => Redirect::to(&format!("/requests/{id}")).into_response(),
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => show_page(&c, &id, Some(error_text(c.lang, &e)), "").await,
    }
}

/// The rejection form.
#[derive(Deserialize)]
pub struct Reject {
    #[serde(default)]
    reason: String,
}

/// `POST /requests/{id}/reject` with a reason.
pub async fn reject(c: Console, Path(id): Path<String>, Form(f): Form<Reject>) -> Response {
    match c.ra.reject(c.op(), &id, &f.reason).await {
        Ok(_) => Redirect::to(&format!("/requests/{id}")).into_response(),
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => show_page(&c, &id, Some(error_text(c.lang, &e)), &f.reason).await,
    }
}
