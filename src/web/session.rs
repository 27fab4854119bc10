//! What every console request goes through: the language (`?lang=`, cookie, Accept-Language),
//! the session cookie, and the CSRF check on every POST (403 without the form's token).

use super::i18n::Lang;
use super::render;
use crate::ra::console::{Session, Stage};
use crate::ra::Ra;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The session cookie: the token, HttpOnly, SameSite=Strict (Secure under https).
pub const SESSION_COOKIE: &str = "vouch_session";
/// The login form's CSRF cookie (there is no session yet to hold the token).
pub const LOGIN_CSRF_COOKIE: &str = "vouch_login_csrf";
/// The language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "vouch_lang";
/// Largest form body the console reads (a CSR pasted in is a few KiB).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when the console is served
/// over https (this server's own TLS, or an https `--public-url` in front of it); `max_age` 0
/// deletes it, None makes it last the browser session.
pub fn set_cookie(ra: &Ra, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let https = ra.config().tls || ra.public_url().is_some_and(|u| u.starts_with("https://"));
    let secure = if https { "; Secure" } else { "" };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn query_lang(parts: &Parts) -> Option<Lang> {
    let q = parts.uri.query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::from_tag(&v))
}

fn request_lang(parts: &Parts) -> Lang {
    query_lang(parts)
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::from_tag))
        .unwrap_or_else(|| {
            Lang::from_accept_language(
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
}

/// The first value of `name` in a URL-encoded form.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The middleware of every console route: sets the language, checks the CSRF token of every POST
/// against the session's (or, for the login form, the login cookie's), and remembers `?lang=`.
pub async fn guard(State(ra): State<Ra>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let lang = request_lang(&parts);
    let chosen = query_lang(&parts);
    parts.extensions.insert(lang);
    let req = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return render::message(lang, StatusCode::PAYLOAD_TOO_LARGE, "err_too_large");
        };
        let sent = form_field(&bytes, "csrf").unwrap_or_default();
        let expected = if parts.uri.path() == "/login" {
            cookie(&parts.headers, LOGIN_CSRF_COOKIE).map(str::to_string)
        } else {
            match cookie(&parts.headers, SESSION_COOKIE) {
                Some(token) => match ra.console_session(token).await {
                    Ok(s) => {
                        let csrf = s.csrf.clone();
                        parts.extensions.insert(Live {
                            session: s,
                            token: token.to_string(),
                        });
                        Some(csrf)
                    }
                    Err(_) => None,
                },
                None => None,
            }
        };
        let good = expected.is_some_and(|e| {
            !sent.is_empty() && crate::ra::console::ct_eq(e.as_bytes(), sent.as_bytes())
        });
        if !good {
            // A logout whose session is already gone has nothing to protect: back to the login.
            if parts.uri.path() == "/logout" && parts.extensions.get::<Live>().is_none() {
                return axum::response::Redirect::to("/login").into_response();
            }
            return render::message(lang, StatusCode::FORBIDDEN, "err_csrf");
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    let mut resp = next.run(req).await;
    if let Some(lang) = chosen {
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&ra, LANG_COOKIE, lang.tag(), Some(365 * 24 * 3600)),
        );
    }
    resp
}

/// A session found for this request, with its cookie's token.
#[derive(Clone)]
pub struct Live {
    /// The session.
    pub session: Session,
    /// The cookie's token (to end the session at logout).
    pub token: String,
}

/// A visitor: the language, and the session if there is one (login page, `/`).
pub struct Visitor {
    /// The RA.
    pub ra: Ra,
    /// The language.
    pub lang: Lang,
    /// The session, if any (in any stage).
    pub live: Option<Live>,
    /// The client's address (for the per-source login limit).
    pub source: Option<std::net::IpAddr>,
}

impl FromRequestParts<Ra> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ra: &Ra) -> Result<Self, Response> {
        let lang = parts
            .extensions
            .get::<Lang>()
            .copied()
            .unwrap_or_else(|| request_lang(parts));
        let live = match parts.extensions.get::<Live>() {
            Some(l) => Some(l.clone()),
            None => match cookie(&parts.headers, SESSION_COOKIE) {
                Some(token) => ra.console_session(token).await.ok().map(|session| Live {
                    session,
                    token: token.to_string(),
                }),
                None => None,
            },
        };
        Ok(Visitor {
            ra: ra.clone(),
            lang,
            live,
            source: crate::api::extract::source_ip(parts),
        })
    }
}

/// A logged-in operator (full session); others are sent to `/login` (or `/enrol`).
pub struct Console {
    /// The RA.
    pub ra: Ra,
    /// The language.
    pub lang: Lang,
    /// The session.
    pub live: Live,
}

impl FromRequestParts<Ra> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ra: &Ra) -> Result<Self, Response> {
        let v = Visitor::from_request_parts(parts, ra).await?;
        match v.live {
            Some(live) if live.session.stage == Stage::Full => Ok(Console {
                ra: v.ra,
                lang: v.lang,
                live,
            }),
            Some(_) => Err(Redirect::to("/enrol").into_response()),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

impl Console {
    /// The operator.
    pub fn op(&self) -> &crate::ra::Operator {
        &self.live.session.operator
    }
}
