//! Pages from minijinja templates embedded in the binary. Every template sees `t` (the
//! catalog of the request's language), `lang`, and, when logged in, `me` (name and roles, for
//! the menus) and `csrf` (for its forms). HTML auto-escaping is on for every `.html` template.

use super::i18n::Lang;
use super::session::Console;
use crate::error::Error;
use crate::ra::console::Session;
use crate::ra::Role;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Environment, Value};
use std::sync::OnceLock;

macro_rules! templates {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),+]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "message.html",
    "login.html",
    "enrol.html",
    "home.html",
    "subscribers.html",
    "subscriber.html",
    "requests.html",
    "request.html",
    "certificate.html",
    "audit.html",
    "operators.html",
    "attribute_certificates.html",
    "attribute_certificate.html",
    "attribute_grants.html",
    "attribute_grant.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Optional fields are left out of the views; a missing catalog key is caught by the
        // test below instead.
        for (name, text) in TEMPLATES {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env.add_filter("when", |v: String, lang: String| {
            Lang::from_tag(&lang).unwrap_or(Lang::En).datetime(&v)
        });
        // An audit action's name in the operator's language (the code itself when unnamed).
        env.add_filter("action", |v: String, lang: String| {
            let lang = Lang::from_tag(&lang).unwrap_or(Lang::En);
            match lang.catalog().get(&format!("audit.{v}")) {
                Some(label) => label.clone(),
                None => v,
            }
        });
        env
    })
}

/// The `me` of the templates: the operator's name and which menus to show.
fn me(s: &Session) -> Value {
    let has = |r| s.operator.has(r);
    context! {
        name => s.operator.name,
        roles => s.operator.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        clerk => has(Role::Clerk),
        approver => has(Role::Approver),
        // Ra::revoke and Ra::set_hold need the revoker role itself: admins without it see no
        // forms that would only answer 403.
        revoker => has(Role::Revoker),
        admin => has(Role::Admin),
        auditor => has(Role::Auditor),
        aa => has(Role::Aa),
        // Who may read ACs (Ra::attribute_certificates) and grants (Ra::grants).
        ac_reader => [Role::Aa, Role::Auditor, Role::Revoker].iter().any(|r| has(*r)),
        grant_reader => [Role::Aa, Role::Auditor].iter().any(|r| has(*r)),
        reader => crate::ra::subscribers::READERS.iter().any(|r| has(*r)),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages are personal: no cache keeps them; no other site frames them.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Search terms (national ID numbers among them) are in page URLs: no Referer carries them.
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    resp
}

/// Render `name` with `extra` for a language and an optional session.
pub fn page(
    lang: Lang,
    session: Option<&Session>,
    status: StatusCode,
    name: &str,
    extra: Value,
) -> Response {
    let base = context! {
        t => lang.catalog(),
        lang => lang.tag(),
        me => session.map(me),
        csrf => session.map(|s| s.csrf.clone()),
    };
    let ctx = context! { ..extra, ..base };
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                lang.t("err_internal").to_string(),
            )
        }
    }
}

/// A page with a single message (`key` from the catalog), no session needed.
pub fn message(lang: Lang, status: StatusCode, key: &str) -> Response {
    page(
        lang,
        None,
        status,
        "message.html",
        context! { message => lang.t(key), status => status.as_u16() },
    )
}

/// A page with a single message already in the operator's language.
pub fn message_text(lang: Lang, status: StatusCode, text: &str) -> Response {
    page(
        lang,
        None,
        status,
        "message.html",
        context! { message => text, status => status.as_u16() },
    )
}

/// A domain error in the operator's language: the code's catalog entry (`err_<code>`), with the
/// field it concerns when it names one. Unknown codes get the generic text and the code.
pub fn error_text(lang: Lang, e: &Error) -> String {
    let code = match e {
        Error::NotFound(_) => "not_found",
        Error::Unauthenticated => "unauthenticated",
        Error::LoginsLimited { .. } => "logins_limited",
        Error::Database(_) | Error::Environment(_) | Error::Internal(_) => {
            // Shown as "internal" (inline on a form, or on its own page): the cause is logged.
            tracing::error!(error = %e, "internal error in the console");
            "internal"
        }
        Error::Upstream(_) => "upstream_ca_error",
        other => other.code(),
    };
    let key = format!("err_{code}");
    let text = match lang.catalog().get(&key) {
        Some(t) => t.clone(),
        None => format!("{} ({code})", lang.t("err_generic")),
    };
    match e {
        // "name: must be 1..=200 characters": the field's name is the same in every language.
        Error::Invalid { message, .. } | Error::Refused { message, .. }
            if code == "invalid_field" =>
        {
            match message.split_once(':') {
                Some((field, _)) if field.len() <= 40 && !field.contains(' ') => {
                    format!("{text}: {field}")
                }
                _ => text,
            }
        }
        Error::LoginsLimited { retry_after_secs } => {
            format!(
                "{text} ({})",
                lang.t("err_retry_after")
                    .replace("{secs}", &retry_after_secs.to_string())
            )
        }
        _ => text,
    }
}

/// An error as a page: `/login` for a session that is gone, else the message with the status
/// `api::error` gives the error.
pub fn error(c: &Console, e: &Error) -> Response {
    if matches!(e, Error::Unauthenticated) {
        return Redirect::to("/login").into_response();
    }
    let status = crate::api::error::status_of(e);
    page(
        c.lang,
        Some(&c.live.session),
        status,
        "message.html",
        context! { message => error_text(c.lang, e), status => status.as_u16() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_every_text_it_names_is_in_the_catalogs() {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text).expect(name);
        }
        for (name, text) in TEMPLATES {
            let mut rest = *text;
            while let Some(i) = rest.find("t.") {
                let before = rest[..i].chars().last();
                rest = &rest[i + 2..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let key: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                for lang in [Lang::En, Lang::ZhCn] {
                    assert!(
                        lang.catalog().contains_key(&key),
                        "{name}: t.{key} in {}",
                        lang.tag()
                    );
                }
            }
        }
        for lang in [Lang::En, Lang::ZhCn] {
            for s in crate::state::RequestState::ALL {
                assert!(lang
                    .catalog()
                    .contains_key(&format!("state_{}", s.as_str())));
            }
            for s in ["valid", "expired", "on-hold", "revoked"] {
                assert!(lang.catalog().contains_key(&format!("cert_{s}")));
            }
            for s in crate::state::GrantState::ALL {
                assert!(lang
                    .catalog()
                    .contains_key(&format!("grant_{}", s.as_str())));
            }
        }
    }
}
