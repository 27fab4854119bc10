//! `/attribute-certificates`: the RFC 5755 attribute certificates (paged, filtered) and the `aa`
//! operator's grant form; `/attribute-certificates/{serial}`: one AC, its download and revocation;
//! `/attribute-grants`: grants waiting for a second `aa` operator, approve or reject.

use super::render::{self, error_text};
use super::session::Console;
use crate::error::Error;
use crate::ra::attributes::{AcQuery, GrantInput, GrantOutcome, GrantView};
use crate::ra::Role;
use axum::extract::{Form, Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

/// Reasons an operator may give for revoking an AC (certificateHold follows the holder only).
const REASONS: [&str; 5] = [
    "privilegeWithdrawn",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "unspecified",
];

/// Statuses the list filters by.
const STATUSES: [&str; 4] = ["valid", "expired", "on-hold", "revoked"];

/// Grant states the queue filters by.
const GRANT_STATES: [&str; 6] = ["pending", "granted", "rejected", "expired", "failed", "all"];

/// The list's filters, as typed (so that the form shows them again).
#[derive(Deserialize, Serialize, Default)]
pub struct Filter {
    #[serde(default)]
    holder_serial: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    status: String,
    /// The last AC of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// The grant form, as typed. Lists are comma-separated.
#[derive(Deserialize, Serialize, Default)]
pub struct GrantForm {
    #[serde(default)]
    holder_serial: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    targets: String,
    #[serde(default)]
    not_before: String,
    #[serde(default)]
    not_after: String,
    #[serde(default)]
    profile: String,
}

fn given(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// `a, b，c` → `["a", "b", "c"]` (ASCII or full-width commas; blanks dropped).
fn names(s: &str) -> Vec<String> {
    s.split([',', '，', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A time from the form: RFC 3339 as it is, or the `YYYY-MM-DDTHH:MM[:SS]` of a datetime-local
/// field, read as UTC (the console shows every time in UTC). Anything else goes to the RA as
/// typed, which refuses it naming the field.
fn time(s: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if time::OffsetDateTime::parse(s, &Rfc3339).is_ok() {
        return s.to_string();
    }
    let utc = match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => return s.to_string(),
    };
    if time::OffsetDateTime::parse(&utc, &Rfc3339).is_ok() {
        utc
    } else {
        s.to_string()
    }
}

impl GrantForm {
    fn input(&self) -> GrantInput {
        GrantInput {
            holder_serial: self.holder_serial.trim().to_string(),
            roles: names(&self.roles),
            groups: names(&self.groups),
            targets: names(&self.targets),
            not_before: given(&self.not_before).map(time),
            not_after: time(&self.not_after),
            profile: given(&self.profile).map(str::to_string),
        }
    }
}

/// The list page with the grant form (`form`, `error` when a grant was refused).
async fn list_page(c: &Console, f: &Filter, form: &GrantForm, error: Option<String>) -> Response {
    let q = AcQuery {
        holder_serial: given(&f.holder_serial),
        role: given(&f.role),
        target: given(&f.target),
        status: given(&f.status),
        after: f.after.as_deref().and_then(given),
    };
    let (rows, list_error) = match c
        .ra
        .attribute_certificates_page(c.op(), &q, super::PAGE_SIZE)
        .await
    {
        Ok(rows) => (rows, None),
        Err(e @ (Error::Forbidden { .. } | Error::Unauthenticated)) => return render::error(c, &e),
        // A filter that does not parse: the page says so and keeps it.
        Err(e) => (Vec::new(), Some(error_text(c.lang, &e))),
    };
    let next = (rows.len() as i64 == super::PAGE_SIZE)
        .then(|| rows.last().map(|r| r.serial.clone()))
        .flatten();
    let profiles: Vec<&str> = c.ra.profiles().attribute_names().collect();
    let status = if error.is_some() || list_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render::page(
        c.lang,
        Some(&c.live.session),
        status,
        "attribute_certificates.html",
        context! { rows => rows, f => f, next => next, statuses => STATUSES,
        list_error => list_error, form => form, error => error, profiles => profiles,
        default_profile => crate::ra::attributes::DEFAULT_PROFILE },
    )
}

/// `GET /attribute-certificates?holder_serial=&role=&target=&status=&after=`.
pub async fn list(c: Console, Query(f): Query<Filter>) -> Response {
    list_page(&c, &f, &GrantForm::default(), None).await
}

/// `POST /attribute-certificates`: grant; an AC issued at once opens its page, a grant that
/// needs approvals the grant's. A refusal brings the form back as typed.
pub async fn grant(c: Console, Form(form): Form<GrantForm>) -> Response {
    match c.ra.grant_attributes(c.op(), &form.input()).await {
        Ok(GrantOutcome::Issued(ac)) => {
            Redirect::to(&format!("/attribute-certificates/{}", ac.serial)).into_response()
        }
        Ok(GrantOutcome::Pending(g)) => {
            Redirect::to(&format!("/attribute-grants/{}", g.id)).into_response()
        }
        Err(e @ Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => {
            let text = error_text(c.lang, &e);
            list_page(&c, &Filter::default(), &form, Some(text)).await
        }
    }
}

async fn show_page(c: &Console, serial: &str, error: Option<String>) -> Response {
    let ac = match c.ra.attribute_certificate(c.op(), serial).await {
        Ok(v) => v,
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
        "attribute_certificate.html",
        context! { ac => ac, reasons => REASONS, error => error },
    )
}

/// `GET /attribute-certificates/{serial}`.
pub async fn show(c: Console, Path(serial): Path<String>) -> Response {
    show_page(&c, &serial, None).await
}

fn download(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /attribute-certificates/{serial}/pem`.
pub async fn pem(c: Console, Path(serial): Path<String>) -> Response {
    match c.ra.attribute_certificate(c.op(), &serial).await {
        Ok(ac) => download(
            ac.pem.into_bytes(),
            "application/x-pem-file",
            &format!("{}.ac.pem", ac.serial),
        ),
        Err(e) => render::error(&c, &e),
    }
}

/// `GET /attribute-certificates/{serial}/der`.
pub async fn der(c: Console, Path(serial): Path<String>) -> Response {
    use base64::Engine;
    match c.ra.attribute_certificate(c.op(), &serial).await {
        Ok(ac) => match base64::engine::general_purpose::STANDARD.decode(&ac.der) {
            Ok(der) => download(
                der,
                "application/pkix-attr-cert",
                &format!("{}.ac.der", ac.serial),
            ),
            Err(e) => render::error(&c, &Error::internal(e)),
        },
        Err(e) => render::error(&c, &e),
    }
}

/// The revocation form.
#[derive(Deserialize)]
pub struct Revoke {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    comment: String,
}

/// `POST /attribute-certificates/{serial}/revoke` with a reason.
pub async fn revoke(c: Console, Path(serial): Path<String>, Form(f): Form<Revoke>) -> Response {
    let comment = given(&f.comment);
    match c
        .ra
        .revoke_attribute_certificate(c.op(), &serial, &f.reason, comment)
        .await
    {
        Ok(ac) => Redirect::to(&format!("/attribute-certificates/{}", ac.serial)).into_response(),
        Err(e @ (Error::Forbidden { .. } | Error::NotFound(_))) => render::error(&c, &e),
        Err(e) => show_page(&c, &serial, Some(error_text(c.lang, &e))).await,
    }
}

/// `?status=` of the grant queue.
#[derive(Deserialize)]
pub struct GrantFilter {
    #[serde(default)]
    status: String,
    /// The last grant of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// A grant with what the queue shows beside it.
#[derive(Serialize)]
struct GrantRow {
    g: GrantView,
    own: bool,
    approved_by_me: bool,
}

fn grant_row(c: &Console, g: GrantView) -> GrantRow {
    let me = &c.op().id;
    GrantRow {
        own: &g.requested_by == me,
        approved_by_me: g.approvals.iter().any(|a| &a.operator == me),
        g,
    }
}

/// `GET /attribute-grants?status=&after=`: pending grants by default.
pub async fn grants(c: Console, Query(f): Query<GrantFilter>) -> Response {
    let status = given(&f.status).unwrap_or("pending");
    let list = match c
        .ra
        .grants_page(
            c.op(),
            Some(status),
            f.after.as_deref().and_then(given),
            super::PAGE_SIZE,
        )
        .await
    {
        Ok(l) => l,
        Err(e) => return render::error(&c, &e),
    };
    let next = (list.len() as i64 == super::PAGE_SIZE)
        .then(|| list.last().map(|g| g.id.clone()))
        .flatten();
    let rows: Vec<GrantRow> = list.into_iter().map(|g| grant_row(&c, g)).collect();
    render::page(
        c.lang,
        Some(&c.live.session),
        StatusCode::OK,
        "attribute_grants.html",
        context! { rows => rows, status => status, next => next, states => GRANT_STATES },
    )
}

/// The grant page; `error` with the status of the refusal it explains.
async fn grant_page(
    c: &Console,
    id: &str,
    error: Option<(StatusCode, String)>,
    reason: &str,
) -> Response {
    let g = match c.ra.grant_status(c.op(), id).await {
        Ok(g) => g,
        Err(e) => return render::error(c, &e),
    };
    let (status, error) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    render::page(
        c.lang,
        Some(&c.live.session),
        status,
        "attribute_grant.html",
        context! { row => grant_row(c, g), error => error, reason => reason },
    )
}

/// `GET /attribute-grants/{id}`.
pub async fn show_grant(c: Console, Path(id): Path<String>) -> Response {
    grant_page(&c, &id, None, "").await
}

/// A refused decision, with its status: the granter's own grant gets the four-eyes explanation.
fn decision_error(c: &Console, e: &Error) -> (StatusCode, String) {
    let text = if e.code() == "self_approval" {
        c.lang.t("own_grant").to_string()
    } else {
        error_text(c.lang, e)
    };
    (crate::api::error::status_of(e), text)
}

/// `POST /attribute-grants/{id}/approve`: the last approval issues the AC, whose page opens.
pub async fn approve(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.approve_grant(c.op(), &id).await {
        Ok(GrantView {
            serial: Some(serial),
            ..
        }) => Redirect::to(&format!("/attribute-certificates/{serial}")).into_response(),
        Ok(_) => Redirect::to(&format!("/attribute-grants/{id}")).into_response(),
        Err(e @ Error::Forbidden { .. }) if e.code() != "self_approval" => render::error(&c, &e),
        Err(e @ Error::NotFound(_)) => render::error(&c, &e),
        Err(e) => grant_page(&c, &id, Some(decision_error(&c, &e)), "").await,
    }
}

/// The rejection form.
#[derive(Deserialize)]
pub struct Reject {
    #[serde(default)]
    reason: String,
}

/// `POST /attribute-grants/{id}/reject` with a reason.
pub async fn reject(c: Console, Path(id): Path<String>, Form(f): Form<Reject>) -> Response {
    match c.ra.reject_grant(c.op(), &id, &f.reason).await {
        Ok(_) => Redirect::to(&format!("/attribute-grants/{id}")).into_response(),
        Err(e @ (Error::Forbidden { .. } | Error::NotFound(_))) => render::error(&c, &e),
        Err(e) => grant_page(&c, &id, Some(decision_error(&c, &e)), &f.reason).await,
    }
}

/// Whether the operator may read ACs (the certificate page lists the holder's only then: a
/// refusal would be audited).
pub fn may_read(c: &Console) -> bool {
    [Role::Aa, Role::Auditor, Role::Revoker]
        .iter()
        .any(|r| c.op().has(*r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_either_comma_and_times_read_datetime_local_as_utc() {
        assert_eq!(names(" approver,，clerk ，x"), ["approver", "clerk", "x"]);
        assert!(names(" , ").is_empty());
        assert_eq!(time("2026-12-01T09:30"), "2026-12-01T09:30:00Z");
        assert_eq!(time("2026-12-01T09:30:15"), "2026-12-01T09:30:15Z");
        assert_eq!(
            time("2026-12-01T09:30:00+08:00"),
            "2026-12-01T09:30:00+08:00"
        );
        assert_eq!(time("tomorrow"), "tomorrow");
        assert_eq!(time("2026-13-01T09:30"), "2026-13-01T09:30");
    }
}
