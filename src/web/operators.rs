//! `/operators` (admins): the operators, adding one with roles and a password, disabling one,
//! resetting another's TOTP.

use super::render::{self, error_text};
use super::session::Console;
use crate::ra::Role;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

async fn list_page(
    c: &Console,
    name: &str,
    roles: &[String],
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let ops = match c.ra.list_operators(c.op()).await {
        Ok(o) => o,
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
        "operators.html",
        context! { ops => ops, all_roles => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        name => name, chosen => roles, notice => notice, error => error },
    )
}

/// `GET /operators`.
pub async fn list(c: Console) -> Response {
    list_page(&c, "", &[], None, None).await
}

/// The form to add an operator (`role` repeated).
#[derive(Deserialize, Serialize, Default)]
pub struct Add {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "role")]
    roles: Vec<String>,
}

/// `POST /operators`: the operator with a console password; their API token is shown once.
pub async fn create(c: Console, body: axum::body::Bytes) -> Response {
    // `role` repeats: serde_urlencoded would keep only one, so the pairs are read here.
    let mut f = Add::default();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "name" => f.name = v.into_owned(),
            "password" => f.password = v.into_owned(),
            "role" => f.roles.push(v.into_owned()),
            _ => {}
        }
    }
    let outcome = async {
        let roles = f
            .roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        crate::ra::console::password::check_new(&f.password)?;
        let created = c.ra.create_operator(c.op(), f.name.trim(), &roles).await?;
        c.ra.set_operator_password(c.op(), &created.view.id, Zeroizing::new(f.password.clone()))
            .await?;
        Ok::<_, crate::error::Error>(created)
    }
    .await;
    match outcome {
        Ok(created) => {
            let notice = c
                .lang
                .t("operator_created")
                .replace("{name}", &created.view.name)
                + " "
                + created.token.as_str();
            list_page(&c, "", &[], Some(notice), None).await
        }
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => list_page(&c, &f.name, &f.roles, None, Some(error_text(c.lang, &e))).await,
    }
}

/// `POST /operators/{id}/disable`.
pub async fn disable(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.disable_operator(c.op(), &id).await {
        Ok(()) => Redirect::to("/operators").into_response(),
        Err(e) => list_page(&c, "", &[], None, Some(error_text(c.lang, &e))).await,
    }
}

/// `POST /operators/{id}/reset-totp`.
pub async fn reset_totp(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.reset_operator_totp(c.op(), &id).await {
        Ok(()) => Redirect::to("/operators").into_response(),
        Err(e) => list_page(&c, "", &[], None, Some(error_text(c.lang, &e))).await,
    }
}
