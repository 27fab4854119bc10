//! `/operators` (admins): the operators, adding one with roles and a password, disabling one,
//! asking for an operator's TOTP reset, and the resets waiting for a second admin (approve,
//! reject, or cancel one's own request).

use super::render::{self, error_text};
use super::session::Console;
use crate::ra::Role;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What the operators page shows besides the lists: the add form's input, a notice or an
/// error, and the reset form's input when it was refused (`reset_for`: the operator it was for).
#[derive(Default)]
struct Shown {
    name: String,
    roles: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
    reset_for: String,
    reason: String,
}

async fn list_page(c: &Console, shown: Shown) -> Response {
    let ops = match c.ra.list_operators(c.op()).await {
        Ok(o) => o,
        Err(e) => return render::error(c, &e),
    };
    let resets = match c.ra.operator_resets(c.op(), None).await {
        Ok(r) => r,
        Err(e) => return render::error(c, &e),
    };
    let status = if shown.error.is_some() {
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
        name => shown.name, chosen => shown.roles, notice => shown.notice, error => shown.error,
        resets => resets, my_id => c.op().id.clone(), reset_for => shown.reset_for,
        reason => shown.reason },
    )
}

fn refused(c: &Console, e: &crate::error::Error) -> Shown {
    Shown {
        error: Some(error_text(c.lang, e)),
        ..Shown::default()
    }
}

/// `GET /operators`.
pub async fn list(c: Console) -> Response {
    list_page(&c, Shown::default()).await
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
        let password = Zeroizing::new(f.password.clone());
        c.ra.create_operator(c.op(), f.name.trim(), &roles, Some(password))
            .await
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
            let shown = Shown {
                notice: Some(notice),
                ..Shown::default()
            };
            list_page(&c, shown).await
        }
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => {
            let shown = Shown {
                name: f.name.clone(),
                roles: f.roles.clone(),
                ..refused(&c, &e)
            };
            list_page(&c, shown).await
        }
    }
}

/// `POST /operators/{id}/disable`.
pub async fn disable(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.disable_operator(c.op(), &id).await {
        Ok(()) => Redirect::to("/operators").into_response(),
        Err(e) => list_page(&c, refused(&c, &e)).await,
    }
}

/// The reason of a reset request or of a rejection.
#[derive(Deserialize, Default)]
pub struct Reason {
    #[serde(default)]
    reason: String,
}

/// `POST /operators/{id}/reset-totp` with a reason: the reset waits for a second admin.
pub async fn reset_totp(c: Console, Path(id): Path<String>, Form(f): Form<Reason>) -> Response {
    match c.ra.request_totp_reset(c.op(), &id, Some(&f.reason)).await {
        Ok(_) => Redirect::to("/operators#resets").into_response(),
        Err(e @ crate::error::Error::Forbidden { .. }) => render::error(&c, &e),
        Err(e) => {
            let shown = Shown {
                reset_for: id,
                reason: f.reason,
                ..refused(&c, &e)
            };
            list_page(&c, shown).await
        }
    }
}

/// `POST /operator-resets/{id}/approve`: a second admin approves; the change is applied.
pub async fn approve_reset(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.approve_operator_reset(c.op(), &id).await {
        Ok(_) => Redirect::to("/operators#resets").into_response(),
        Err(e) => list_page(&c, refused(&c, &e)).await,
    }
}

/// `POST /operator-resets/{id}/reject` with a reason.
pub async fn reject_reset(c: Console, Path(id): Path<String>, Form(f): Form<Reason>) -> Response {
    match c
        .ra
        .reject_operator_reset(c.op(), &id, Some(&f.reason))
        .await
    {
        Ok(_) => Redirect::to("/operators#resets").into_response(),
        Err(e) => {
            let shown = Shown {
                reset_for: id,
                reason: f.reason,
                ..refused(&c, &e)
            };
            list_page(&c, shown).await
        }
    }
}

/// `POST /operator-resets/{id}/cancel`: the admin who asked withdraws the reset.
pub async fn cancel_reset(c: Console, Path(id): Path<String>) -> Response {
    match c.ra.cancel_operator_reset(c.op(), &id).await {
        Ok(_) => Redirect::to("/operators#resets").into_response(),
        Err(e) => list_page(&c, refused(&c, &e)).await,
    }
}
