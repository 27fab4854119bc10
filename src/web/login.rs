//! `GET/POST /login`, `POST /logout`, `GET/POST /enrol` (TOTP enrolment) and `/`.

use super::render::{self, error_text};
use super::session::{self as s, Visitor};
use crate::ra::console::{sessions::random_token, Stage};
use axum::extract::Form;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use zeroize::Zeroizing;

/// `GET /`: a browser (Accept: text/html) gets the console (its home, or `/login`); other clients
/// get the JSON description of the service, as before the console.
pub async fn index(v: Visitor, headers: HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !html {
        return crate::api::public::about().await.into_response();
    }
    match &v.live {
        Some(l) if l.session.stage == Stage::Full => render::page(
            v.lang,
            Some(&l.session),
            StatusCode::OK,
            "home.html",
            context! {},
        ),
        Some(_) => Redirect::to("/enrol").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

fn login_page(v: &Visitor, status: StatusCode, name: &str, error: Option<String>) -> Response {
    let csrf = random_token();
    let mut resp = render::page(
        v.lang,
        None,
        status,
        "login.html",
        context! { login_csrf => csrf.as_str(), name => name, error => error },
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        s::set_cookie(&v.ra, s::LOGIN_CSRF_COOKIE, &csrf, None),
    );
    resp
}

/// `GET /login`: the form (`name`, `password`, `totp`, and the CSRF token).
pub async fn form(v: Visitor) -> Response {
    if v.live.is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&v, StatusCode::OK, "", None)
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
}

/// `POST /login`: a session cookie and `/` (or `/enrol`), or the form again with the reason.
pub async fn submit(v: Visitor, Form(f): Form<LoginForm>) -> Response {
    let password = Zeroizing::new(f.password);
    match v
        .ra
        .console_login(f.name.trim(), password, &f.totp, v.source)
        .await
    {
        Ok(login) => {
            let to = if login.session.stage == Stage::Full {
                "/"
            } else {
                "/enrol"
            };
            let mut resp = Redirect::to(to).into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                s::set_cookie(&v.ra, s::SESSION_COOKIE, &login.token, None),
            );
            h.append(
                header::SET_COOKIE,
                s::set_cookie(&v.ra, s::LOGIN_CSRF_COOKIE, "", Some(0)),
            );
            resp
        }
        Err(e) => {
            let status = crate::api::error::status_of(&e);
            login_page(&v, status, &f.name, Some(error_text(v.lang, &e)))
        }
    }
}

/// `POST /logout`: the session ends in the database (its cookie is worth nothing anywhere).
pub async fn logout(v: Visitor) -> Response {
    if let Some(l) = &v.live {
        if let Err(e) = v.ra.console_logout(&l.token).await {
            tracing::error!(error = %e, "logout");
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        s::set_cookie(&v.ra, s::SESSION_COOKIE, "", Some(0)),
    );
    resp
}

/// `GET /enrol`: a new TOTP secret, shown this once as a QR code and as text.
pub async fn enrol_form(v: Visitor) -> Response {
    let Some(l) = &v.live else {
        return Redirect::to("/login").into_response();
    };
    if l.session.stage == Stage::Full {
        return Redirect::to("/").into_response();
    }
    let enrolment = match v.ra.totp_begin(&l.session).await {
        Ok(e) => e,
        Err(e) => {
            return render::message_text(v.lang, StatusCode::CONFLICT, &error_text(v.lang, &e))
        }
    };
    let qr = qr_svg(&enrolment.uri);
    render::page(
        v.lang,
        Some(&l.session),
        StatusCode::OK,
        "enrol.html",
        context! { qr => minijinja::Value::from_safe_string(qr), secret => enrolment.secret.as_str(), error => None::<String> },
    )
}

/// The QR code of `text` as inline SVG.
fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .build(),
        Err(_) => String::new(),
    }
}

/// The enrolment form.
#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    totp: String,
}

/// `POST /enrol`: the first code confirms the enrolment; a wrong one shows a new secret.
pub async fn enrol_confirm(v: Visitor, Form(f): Form<EnrolForm>) -> Response {
    let Some(l) = &v.live else {
        return Redirect::to("/login").into_response();
    };
    match v.ra.totp_confirm(&l.token, &l.session, &f.totp).await {
        Ok(()) => Redirect::to("/").into_response(),
        // The secret is not shown again: the operator tries the next code, or starts over.
        Err(e) => render::page(
            v.lang,
            Some(&l.session),
            StatusCode::BAD_REQUEST,
            "enrol.html",
            context! { qr => "", secret => None::<String>, error => error_text(v.lang, &e) },
        ),
    }
}
