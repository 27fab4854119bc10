//! `/certificates/{serial}`: status and history, the PEM, revoke with a reason, hold, release.

use super::render::{self, error_text};
use super::session::Console;
use crate::ra::Role;
use axum::extract::{Form, Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

/// RFC 5280 reasons an operator may choose (certificateHold has its own button).
const REASONS: [&str; 6] = [
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
];

/// `?q=` of the finder (`?serial=` is its older name), `before` pages on.
#[derive(Deserialize)]
pub struct Find {
    #[serde(default)]
    q: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    before: Option<String>,
}

/// `GET /certificates?q=&before=`: a serial (any case, with or without ':') goes straight to
/// its certificate; anything else lists the certificates found by serial prefix, subscriber name
/// or identifier, newest first, a page at a time.
pub async fn find(c: Console, Query(f): Query<Find>) -> Response {
    let q = if f.q.trim().is_empty() {
        f.serial.trim()
    } else {
        f.q.trim()
    };
    let empty = Vec::<()>::new();
    if q.is_empty() {
        return render::page(
            c.lang,
            Some(&c.live.session),
            StatusCode::OK,
            "certificate.html",
            context! { cert => None::<()>, history => empty, reasons => REASONS, error => None::<String>, q => q },
        );
    }
    match c
        .ra
        .find_certificates(c.op(), q, f.before.as_deref(), super::PAGE_SIZE)
        .await
    {
        Ok(found) => match found.exact {
            Some(serial) => Redirect::to(&format!("/certificates/{serial}")).into_response(),
            None => render::page(
                c.lang,
                Some(&c.live.session),
                StatusCode::OK,
                "certificate.html",
                context! { cert => None::<()>, history => empty, reasons => REASONS, error => None::<String>,
                q => q, found => found.certificates, searched => true, next => found.next },
            ),
        },
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => render::page(
            c.lang,
            Some(&c.live.session),
            StatusCode::BAD_REQUEST,
            "certificate.html",
            context! { cert => None::<()>, history => empty, reasons => REASONS, q => q,
            find_error => error_text(c.lang, &e) },
        ),
    }
}

async fn show_page(c: &Console, serial: &str, error: Option<String>) -> Response {
    let cert = match c.ra.certificate(c.op(), serial).await {
        Ok(v) => v,
        Err(e) => return render::error(c, &e),
    };
    let history =
        c.ra.certificate_history(c.op(), serial)
            .await
            .unwrap_or_default();
    // Only roles that may read revocation requests are asked (a refusal would be audited).
    let pending = if [Role::Revoker, Role::Admin, Role::Auditor]
        .iter()
        .any(|r| c.op().has(*r))
    {
        c.ra.pending_revocations(c.op(), Some(&cert.serial))
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // The roles its holder holds through ACs, for operators who may read them.
    let acs = if super::attributes::may_read(c) {
        let q = crate::ra::attributes::AcQuery {
            holder_serial: Some(&cert.serial),
            role: None,
            target: None,
            status: None,
            after: None,
        };
        // The holder's index, not a scan: this runs on every certificate page.
        c.ra.attribute_certificates_page(c.op(), &q, 100)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(serial = %cert.serial, error = %e, "could not read the holder's attribute certificates");
                Vec::new()
            })
    } else {
        Vec::new()
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
        "certificate.html",
        context! { cert => cert, history => history, reasons => REASONS, error => error,
        pending => pending, me_id => c.op().id.clone(), acs => acs },
    )
}

/// `GET /certificates/{serial}`.
pub async fn show(c: Console, Path(serial): Path<String>) -> Response {
    show_page(&c, &serial, None).await
}

/// `GET /certificates/{serial}/pem`: the certificate, then its chain, as a download.
pub async fn pem(c: Console, Path(serial): Path<String>) -> Response {
    match c.ra.certificate(c.op(), &serial).await {
        Ok(v) => {
            let mut resp = format!("{}{}", v.pem, v.chain_pem).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"{}.pem\"", v.serial))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
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

fn comment(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

async fn answer(
    c: Console,
    serial: &str,
    r: crate::error::Result<crate::ra::revocation::RevocationOutcome>,
) -> Response {
    match r {
        Ok(_) => Redirect::to(&format!("/certificates/{serial}")).into_response(),
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => show_page(&c, serial, Some(error_text(c.lang, &e))).await,
    }
}

/// `POST /certificates/{serial}/revoke` with a reason.
pub async fn revoke(c: Console, Path(serial): Path<String>, Form(f): Form<Revoke>) -> Response {
    let r =
        c.ra.revoke(c.op(), &serial, &f.reason, None, comment(&f.comment))
            .await;
    answer(c, &serial, r).await
}

/// `POST /certificates/{serial}/hold`.
pub async fn hold(c: Console, Path(serial): Path<String>, Form(f): Form<Revoke>) -> Response {
    let r = c.ra.hold(c.op(), &serial, comment(&f.comment)).await;
    answer(c, &serial, r).await
}

/// `POST /certificates/{serial}/release`.
pub async fn release(c: Console, Path(serial): Path<String>, Form(f): Form<Revoke>) -> Response {
    let r = c.ra.release(c.op(), &serial, comment(&f.comment)).await;
    answer(c, &serial, r).await
}

/// `POST /revocations/{id}/approve`: a second revoker applies a pending revocation.
pub async fn approve_revocation(c: Console, Path(id): Path<String>) -> Response {
    let serial = match c.ra.revocation_request(c.op(), &id).await {
        Ok(r) => r.serial,
        Err(e) => return render::error(&c, &e),
    };
    let r = c.ra.approve_revocation(c.op(), &id).await;
    answer(c, &serial, r).await
}

/// `POST /revocations/{id}/reject` with a reason.
pub async fn reject_revocation(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<Revoke>,
) -> Response {
    match c.ra.reject_revocation(c.op(), &id, &f.comment).await {
        Ok(r) => Redirect::to(&format!("/certificates/{}", r.serial)).into_response(),
        Err(e) => render::error(&c, &e),
    }
}
