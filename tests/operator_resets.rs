//! Four eyes on operator resets: an admin asks for another operator's TOTP reset or password
//! change; only a second admin, neither the one who asked nor the operator concerned, can approve
//! it, and the approval applies it (TOTP cleared or password set, the operator's console sessions
//! ended). Rejection, cancellation and expiry change nothing. The host resets TOTP alone. Over
//! the API and on the console `/operators` page, in English and Chinese.
//!
//! The second admin must also be one the first did not create, and one who existed when the
//! reset was asked for: so the approving admins here are made on the host (as `vouch operator add
//! --data-dir` does), unless a test shows the refusal.

// Only part of the console tests' client is used here.
#[allow(dead_code)]
#[path = "console/browser.rs"]
mod browser;
mod common;

use browser::{base32_decode, Browser, Page};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;
use vouch::clock::{Clock, ManualClock};
use vouch::ra::console::totp;
use vouch::ra::operators::{Operator, Role};
use zeroize::Zeroizing;

const PASSWORD: &str = "correct horse battery";

async fn app_with_clock() -> (TestApp, ManualClock) {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(10));
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    (app, clock)
}

/// An operator with a console password; returns (id, API token).
async fn operator(app: &TestApp, name: &str, roles: &[&str]) -> (String, String) {
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/operators",
            json!({"name": name, "roles": roles, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

/// An operator made on the host (no creating admin), with a console password; returns (id, API
/// token).
async fn host_operator(app: &TestApp, name: &str, roles: &[Role]) -> (String, String) {
    let store = app.ra.store();
    let made = vouch::ra::operators::create(store, app.ra.now(), None, name.into(), roles.into())
        .await
        .unwrap();
    let hash = vouch::ra::console::password::hash(Zeroizing::new(PASSWORD.into()))
        .await
        .unwrap();
    vouch::ra::console::sessions::set_password_hash(store, app.ra.now(), &made.view.id, hash, None)
        .await
        .unwrap();
    (made.view.id, made.token.to_string())
}

async fn login(app: &TestApp, name: &str, password: &str, code: &str) -> (Browser, Page) {
    let mut b = Browser::new(&app.url(""));
    let page = b
        .submit(
            "/login",
            "/login",
            &[("name", name), ("password", password), ("totp", code)],
        )
        .await;
    (b, page)
}

fn code_at(secret: &[u8], unix: i64) -> String {
    format!("{:06}", totp::hotp(secret, totp::step_at(unix) as u64, 6))
}

/// First console login of an operator who needs TOTP: enrol and confirm; returns the browser,
/// logged in.
async fn enrol(app: &TestApp, clock: &ManualClock, name: &str) -> Browser {
    let (mut b, page) = login(app, name, PASSWORD, "").await;
    assert_eq!(page.location(), Some("/enrol"), "{}", page.body);
    let form = b.get("/enrol").await;
    let secret = base32_decode(&form.text_of("totp-secret").unwrap());
    let code = code_at(&secret, clock.now().unix_timestamp());
    let ok = b
        .post("/enrol", &[("totp", &code), ("csrf", &form.csrf())])
        .await;
    assert_eq!(ok.location(), Some("/"), "{}", ok.body);
    b
}

/// Whether operator `id` has an enrolled TOTP, read from the database.
async fn totp_enrolled(app: &TestApp, id: &str) -> bool {
    let mut c = app.ra.store().read().await.unwrap();
    let row = vouch::store::console::login_by_id(&mut c, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.totp_sealed.is_some(), row.totp_enrolled_at.is_some());
    row.totp_enrolled_at.is_some()
}

/// Whether a browser's session is still live (a page opens rather than sending it to /login).
async fn live(b: &mut Browser) -> bool {
    b.get("/certificates").await.location() != Some("/login")
}

fn entries<'a>(log: &'a [Value], action: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["action"] == action).collect()
}

async fn ask_totp_reset(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = app
        .post(
            token,
            &format!("/api/v1/operators/{id}/reset-totp"),
            json!({"reason": "lost phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_reset_waits_for_an_admin_who_neither_asked_nor_is_its_target() {
    let (app, clock) = app_with_clock().await;
    let (admin2, admin2_token) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (revoker, revoker_token) = operator(&app, "revoker1", &["revoker"]).await;
    let mut session = enrol(&app, &clock, "revoker1").await;
    assert!(totp_enrolled(&app, &revoker).await);

    let path = format!("/api/v1/operators/{revoker}/reset-totp");
    let (status, body) = app.post(&app.admin, &path, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required");
    assert_eq!(body["error"], "invalid_field");
    let (status, body) = app.post_empty(&app.admin, &path).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let asked = ask_totp_reset(&app, &app.admin, &revoker).await;
    assert_eq!(asked["kind"], "totp");
    assert_eq!(asked["operator_id"], revoker.as_str());
    assert_eq!(asked["reason"], "lost phone");
    let rid = asked["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(&app.admin, &path, json!({"reason": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "reset_pending");
    // Asking changed nothing yet.
    assert!(totp_enrolled(&app, &revoker).await);
    assert!(live(&mut session).await);

    let approve = format!("/api/v1/operator-resets/{rid}/approve");
    let (status, body) = app.post_empty(&app.admin, &approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not by the admin who asked");
    assert_eq!(body["error"], "own_reset");
    let (status, _) = app.post_empty(&revoker_token, &approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not by a non-admin");
    // An admin cannot approve a reset of their own account.
    let own = ask_totp_reset(&app, &app.admin, &admin2).await;
    let own_approve = format!(
        "/api/v1/operator-resets/{}/approve",
        own["id"].as_str().unwrap()
    );
    let (status, body) = app.post_empty(&admin2_token, &own_approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "own_account");
    assert!(totp_enrolled(&app, &revoker).await);
    assert!(live(&mut session).await);

    let (status, list) = app.get(&admin2_token, "/api/v1/operator-resets").await;
    assert_eq!(status, StatusCode::OK);
    let pending: Vec<&str> = list["resets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(pending.len(), 2, "{list}");
    assert!(pending.contains(&rid.as_str()));
    let (status, _) = app.get(&revoker_token, "/api/v1/operator-resets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = app.post_empty(&admin2_token, &approve).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(body["decided_by"], admin2.as_str());
    assert!(!totp_enrolled(&app, &revoker).await, "the TOTP is cleared");
    assert!(!live(&mut session).await, "the operator's sessions ended");
    let (status, body) = app.post_empty(&admin2_token, &approve).await;
    assert_eq!(status, StatusCode::CONFLICT, "approved once");
    assert_eq!(body["error"], "not_pending");
    // The operator must enrol again.
    clock.advance(time::Duration::seconds(60));
    let (_, page) = login(&app, "revoker1", PASSWORD, "").await;
    assert_eq!(page.location(), Some("/enrol"));

    let (_, list) = app
        .get(&admin2_token, "/api/v1/operator-resets?status=approved")
        .await;
    assert_eq!(list["resets"][0]["id"], rid.as_str());
    let (status, _) = app
        .get(&admin2_token, "/api/v1/operator-resets?status=bogus")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let log = app.audit_entries().await;
    let requested = entries(&log, "operator.reset_requested");
    assert_eq!(requested.len(), 2);
    assert_eq!(requested[0]["details"]["reason"], "lost phone");
    let refused = entries(&log, "operator.reset_approval_refused");
    let codes: Vec<&Value> = refused.iter().map(|e| &e["details"]["error"]).collect();
    assert_eq!(codes, [&json!("own_reset"), &json!("own_account")]);
    let approved = entries(&log, "operator.reset_approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["actor"], admin2.as_str());
    let reset = entries(&log, "operator.totp_reset");
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0]["target"], revoker.as_str());
    assert_eq!(reset[0]["details"]["via"], "approval");
    assert_eq!(reset[0]["details"]["reset"], rid.as_str());
    // The approval and the reset are in one transaction: adjacent entries.
    let seq = |e: &Value| e["seq"].as_i64().unwrap();
    assert_eq!(seq(reset[0]), seq(approved[0]) + 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_cancellation_and_expiry_leave_the_totp_intact() {
    let (app, clock) = app_with_clock().await;
    let (_, admin2) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let mut session = enrol(&app, &clock, "revoker1").await;

    // Rejected, with a reason, by another admin; the one who asked cannot reject (they cancel).
    let rid = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reject = format!("/api/v1/operator-resets/{rid}/reject");
    let (status, body) = app.post(&admin2, &reject, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .post(&app.admin, &reject, json!({"reason": "mine"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "own_reset");
    let (status, body) = app
        .post(
            &admin2,
            &reject,
            json!({"reason": "not asked by the revoker"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["decision_reason"], "not asked by the revoker");
    let approve = format!("/api/v1/operator-resets/{rid}/approve");
    let (status, _) = app.post_empty(&admin2, &approve).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a rejected reset stays rejected"
    );
    assert!(totp_enrolled(&app, &revoker).await);
    assert!(live(&mut session).await);

    // Cancelled by the admin who asked, and only by them.
    let rid = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cancel = format!("/api/v1/operator-resets/{rid}/cancel");
    let (status, body) = app.post_empty(&admin2, &cancel).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "not_requester");
    let (status, body) = app.post_empty(&app.admin, &cancel).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, _) = app
        .post_empty(&admin2, &format!("/api/v1/operator-resets/{rid}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(totp_enrolled(&app, &revoker).await);

    // Disabling the admin who asked cancels what they asked for.
    let (admin3, admin3_token) = operator(&app, "admin3", &["admin"]).await;
    let rid = ask_totp_reset(&app, &admin3_token, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .post_empty(&app.admin, &format!("/api/v1/operators/{admin3}/disable"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = app
        .get(&admin2, &format!("/api/v1/operator-resets/{rid}"))
        .await;
    assert_eq!(body["status"], "cancelled", "{body}");
    let (status, _) = app
        .post_empty(&admin2, &format!("/api/v1/operator-resets/{rid}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(totp_enrolled(&app, &revoker).await);

    // Expired: at approval after 24 hours, and by the upkeep's sweep.
    let late = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance(time::Duration::hours(24) + time::Duration::seconds(1));
    let (status, body) = app
        .post_empty(&admin2, &format!("/api/v1/operator-resets/{late}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "reset_expired");
    let swept = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance(time::Duration::hours(25));
    assert_eq!(app.ra.expire_operator_resets().await.unwrap(), 1);
    assert_eq!(app.ra.expire_operator_resets().await.unwrap(), 0);
    let (_, body) = app
        .get(&admin2, &format!("/api/v1/operator-resets/{swept}"))
        .await;
    assert_eq!(body["status"], "expired");
    let (status, body) = app
        .post_empty(&admin2, &format!("/api/v1/operator-resets/{swept}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "not_pending");
    assert!(totp_enrolled(&app, &revoker).await);

    let log = app.audit_entries().await;
    assert_eq!(entries(&log, "operator.reset_rejected").len(), 1);
    assert_eq!(entries(&log, "operator.reset_cancelled").len(), 2);
    let expired = entries(&log, "operator.reset_expired");
    assert_eq!(expired.len(), 2);
    assert!(expired.iter().all(|e| e["actor"].is_null()));
    assert!(entries(&log, "operator.totp_reset").is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_operators_password_waits_for_a_second_admin_and_ones_own_does_not() {
    let (app, _clock) = app_with_clock().await;
    let (_, admin2) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (clerk, _) = operator(&app, "clerk1", &["clerk"]).await;
    let new_password = "a brand new passphrase";
    let (mut clerk_session, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.location(), Some("/"));

    let path = format!("/api/v1/operators/{clerk}/password");
    let (status, body) = app
        .post(&app.admin, &path, json!({"password": new_password}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required");
    assert_eq!(body["error"], "invalid_field");
    let (status, body) = app
        .post(
            &app.admin,
            &path,
            json!({"password": "short", "reason": "forgotten"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "weak_password");
    let (status, asked) = app
        .post(
            &app.admin,
            &path,
            json!({"password": new_password, "reason": "forgotten"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["kind"], "password");
    assert!(!asked.to_string().contains(new_password));
    let rid = asked["id"].as_str().unwrap().to_string();
    // Waiting: the hash of the new password, never the password; the old one still works.
    let stored: Option<String> = {
        let mut c = app.ra.store().read().await.unwrap();
        sqlx::query_scalar("SELECT password_hash FROM operator_resets WHERE id = $1")
            .bind(&rid)
            .fetch_one(&mut *c)
            .await
            .unwrap()
    };
    let stored = stored.expect("the hash waits in the reset");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(new_password));
    assert!(live(&mut clerk_session).await);
    let (_, page) = login(&app, "clerk1", new_password, "").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    let approve = format!("/api/v1/operator-resets/{rid}/approve");
    let (status, _) = app.post_empty(&app.admin, &approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.post_empty(&admin2, &approve).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !live(&mut clerk_session).await,
        "the clerk's sessions ended"
    );
    let (_, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let (_, page) = login(&app, "clerk1", new_password, "").await;
    assert_eq!(page.location(), Some("/"));
    let stored: Option<String> = {
        let mut c = app.ra.store().read().await.unwrap();
        sqlx::query_scalar("SELECT password_hash FROM operator_resets WHERE id = $1")
            .bind(&rid)
            .fetch_one(&mut *c)
            .await
            .unwrap()
    };
    assert_eq!(stored, None, "the hash is cleared once decided");

    // An admin's own password is set at once.
    let (me, _) = {
        let (_, list) = app.get(&app.admin, "/api/v1/operators").await;
        let admin = list["operators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "admin")
            .unwrap()
            .clone();
        (admin["id"].as_str().unwrap().to_string(), admin)
    };
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/api/v1/operators/{me}/password"),
            json!({"password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["password_set"], true);

    let log = app.audit_entries().await;
    assert!(
        !serde_json::to_string(&log).unwrap().contains(new_password),
        "the password is never in the audit log"
    );
    let set = entries(&log, "operator.password_set");
    let via: Vec<(&Value, &Value)> = set
        .iter()
        .map(|e| (&e["target"], &e["details"]["via"]))
        .filter(|(t, _)| **t == json!(clerk) || **t == json!(me))
        .collect();
    assert_eq!(
        via,
        [
            (&json!(clerk), &json!("api")),
            (&json!(clerk), &json!("approval")),
            (&json!(me), &json!("api")),
        ],
        "at creation, at approval, one's own"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_resets_totp_without_a_second_admin() {
    let (app, clock) = app_with_clock().await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let mut session = enrol(&app, &clock, "revoker1").await;
    let vouch = |name: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["operator", "reset-totp", "--name", name, "--data-dir"])
            .arg(app.data.root());
        if let Some(pg) = &app.pg {
            cmd.args(["--database-url", &pg.url()]);
        }
        cmd.env_remove("VOUCH_URL").output().unwrap()
    };
    let rid = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = vouch("REVOKER1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("TOTP reset for operator revoker1"));
    assert!(!totp_enrolled(&app, &revoker).await);
    assert!(!live(&mut session).await);
    assert_eq!(
        reset_status(&app, &rid).await,
        "cancelled",
        "the request is moot once the host has reset the TOTP"
    );
    let out = vouch("nobody");
    assert!(!out.status.success(), "an unknown name is an error");
    let log = app.audit_entries().await;
    let reset = entries(&log, "operator.totp_reset");
    assert_eq!(reset.len(), 1);
    assert!(reset[0]["actor"].is_null());
    assert_eq!(reset[0]["details"]["via"], "host");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_console_one_admin_asks_and_another_approves() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "admin2", &["admin"]).await;
    operator(&app, "admin3", &["admin"]).await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let mut first = enrol(&app, &clock, "admin2").await;
    let mut second = enrol(&app, &clock, "admin3").await;
    let mut session = enrol(&app, &clock, "revoker1").await;

    let ask = format!("/operators/{revoker}/reset-totp");
    let refused = first.submit("/operators", &ask, &[("reason", " ")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text_of("error").is_some());
    let asked = first
        .submit("/operators", &ask, &[("reason", "new phone <b>")])
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    assert!(totp_enrolled(&app, &revoker).await);

    // The admin who asked sees why they cannot approve, and can cancel.
    let page = first.get("/operators").await;
    assert!(page.body.contains("id=\"pending-resets\""));
    assert!(page.body.contains("new phone &lt;b&gt;"), "escaped");
    assert!(page.body.contains("You asked for this reset"));
    assert!(
        !page.body.contains("/approve\""),
        "no approve form for them"
    );
    assert!(page.body.contains("/cancel\""));
    let zh = first.get("/operators?lang=zh-CN").await;
    assert!(zh.body.contains("此重置由您申请"), "in Chinese too");
    // Posting the approval anyway is refused.
    let rid = {
        let at = page.body.find("action=\"/operator-resets/").unwrap();
        let rest = &page.body[at + "action=\"/operator-resets/".len()..];
        rest[..rest.find('/').unwrap()].to_string()
    };
    let forced = first
        .submit(
            "/operators",
            &format!("/operator-resets/{rid}/approve"),
            &[],
        )
        .await;
    assert_eq!(forced.status, StatusCode::BAD_REQUEST);
    // The language chosen above sticks: the error is in Chinese.
    let error = forced.text_of("error").unwrap();
    assert!(error.contains("必须由另一名管理员批准"), "{error}");
    assert!(totp_enrolled(&app, &revoker).await);

    // Another admin sees approve and reject, and approves.
    let page = second.get("/operators").await;
    assert!(page
        .body
        .contains(&format!("action=\"/operator-resets/{rid}/approve\"")));
    assert!(page
        .body
        .contains(&format!("action=\"/operator-resets/{rid}/reject\"")));
    let forged = second
        .post(&format!("/operator-resets/{rid}/approve"), &[])
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "the CSRF token is needed"
    );
    assert!(totp_enrolled(&app, &revoker).await);
    let done = second
        .submit(
            "/operators",
            &format!("/operator-resets/{rid}/approve"),
            &[],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(!totp_enrolled(&app, &revoker).await);
    assert!(!live(&mut session).await);
    let page = second.get("/operators").await;
    assert!(page.body.contains("id=\"no-resets\""));
    app.stop().await;
}

async fn approve(app: &TestApp, token: &str, rid: &str) -> (StatusCode, Value) {
    app.post_empty(token, &format!("/api/v1/operator-resets/{rid}/approve"))
        .await
}

async fn reset_status(app: &TestApp, rid: &str) -> Value {
    let (status, body) = app
        .get(&app.admin, &format!("/api/v1/operator-resets/{rid}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["status"].clone()
}

/// The id of the first admin (`app.admin`).
async fn admin_id(app: &TestApp) -> String {
    let (_, list) = app.get(&app.admin, "/api/v1/operators").await;
    let admin = list["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "admin")
        .unwrap()
        .clone();
    admin["id"].as_str().unwrap().to_string()
}

/// The operator `id` as an authenticated caller with `roles` (what a cached token still says
/// for a few seconds after the operator is disabled).
fn caller(id: &str, roles: &[Role]) -> Operator {
    Operator {
        id: id.into(),
        name: id.into(),
        roles: roles.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_approve_with_an_admin_they_made_or_one_made_after_the_request() {
    let (app, clock) = app_with_clock().await;
    let admin = admin_id(&app).await;
    let (old_admin, old_admin_token) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let _session = enrol(&app, &clock, "revoker1").await;
    // The bypass: the admin makes a second admin over the API and approves with its token.
    let (puppet, puppet_token) = operator(&app, "puppet", &["admin"]).await;
    // And, with that admin's token, a third: down the same line.
    let (status, body) = app
        .post(
            &puppet_token,
            "/api/v1/operators",
            json!({"name": "puppet2", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (puppet2, puppet2_token) = (
        body["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    );
    let rid = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = approve(&app, &puppet_token, &rid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "approver_created_by_requester");
    let (status, body) = approve(&app, &puppet2_token, &rid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "approver_created_by_requester");
    // Nor an admin who did not exist when the reset was asked for, whoever made them.
    clock.advance(time::Duration::seconds(5));
    let (late, late_token) = host_operator(&app, "late-admin", &[Role::Admin]).await;
    let (status, body) = approve(&app, &late_token, &rid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "approver_newer_than_reset");
    assert_eq!(reset_status(&app, &rid).await, "pending");
    assert!(totp_enrolled(&app, &revoker).await, "nothing applied");

    // An admin who existed and whom the requester did not make approves.
    let (status, body) = approve(&app, &old_admin_token, &rid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decided_by"], old_admin.as_str());
    assert!(!totp_enrolled(&app, &revoker).await);

    // The other way round: the made admin asks (its maker holds its token) and the maker
    // approves; refused too. An admin outside that line approves it.
    let rid = ask_totp_reset(&app, &puppet2_token, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = approve(&app, &app.admin, &rid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "requester_created_by_approver");
    let (status, body) = approve(&app, &old_admin_token, &rid).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let log = app.audit_entries().await;
    let refused = entries(&log, "operator.reset_approval_refused");
    let seen: Vec<(&Value, &Value)> = refused
        .iter()
        .map(|e| (&e["actor"], &e["details"]["error"]))
        .collect();
    assert_eq!(
        seen,
        [
            (&json!(puppet), &json!("approver_created_by_requester")),
            (&json!(puppet2), &json!("approver_created_by_requester")),
            (&json!(late), &json!("approver_newer_than_reset")),
            (&json!(admin), &json!("requester_created_by_approver")),
        ]
    );
    assert_eq!(entries(&log, "operator.reset_approved").len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_operators_neither_ask_nor_approve_nor_are_reset() {
    let (app, clock) = app_with_clock().await;
    let (_, admin2) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (admin3, _) = host_operator(&app, "admin3", &[Role::Admin]).await;
    let (clerk, _) = operator(&app, "clerk1", &["clerk"]).await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let mut session = enrol(&app, &clock, "revoker1").await;

    // Disabling the operator concerned cancels the resets of their account.
    let rid = ask_totp_reset(&app, &app.admin, &clerk).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .post_empty(&app.admin, &format!("/api/v1/operators/{clerk}/disable"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reset_status(&app, &rid).await, "cancelled");
    let (status, body) = approve(&app, &admin2, &rid).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // And a disabled operator's reset is not asked for.
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/api/v1/operators/{clerk}/reset-totp"),
            json!({"reason": "lost phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "operator_disabled");
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/api/v1/operators/{clerk}/password"),
            json!({"password": "a brand new passphrase", "reason": "forgotten"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "operator_disabled");

    // An admin disabled after the role check (a token still cached) can neither ask nor
    // approve: both check again in the write.
    let rid = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .post_empty(&app.admin, &format!("/api/v1/operators/{admin3}/disable"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let stale = caller(&admin3, &[Role::Admin]);
    let err = app
        .ra
        .approve_operator_reset(&stale, &rid)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized");
    assert_eq!(reset_status(&app, &rid).await, "pending");
    assert!(totp_enrolled(&app, &revoker).await);
    assert!(live(&mut session).await);
    let err = app
        .ra
        .request_totp_reset(&stale, &clerk, Some("late"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized");
    let err = app
        .ra
        .set_operator_password(
            &stale,
            &revoker,
            Zeroizing::new("a brand new passphrase".into()),
            Some("late"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized");
    let (_, list) = app
        .get(&app.admin, "/api/v1/operator-resets?status=all")
        .await;
    assert!(
        list["resets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["requested_by"] != admin3.as_str()),
        "nothing recorded for the disabled admin: {list}"
    );
    // admin3 was never able to get in the way of the reset: an enabled admin approves.
    let (status, body) = approve(&app, &admin2, &rid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!totp_enrolled(&app, &revoker).await);

    let log = app.audit_entries().await;
    let cancelled = entries(&log, "operator.reset_cancelled");
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["details"]["operator"], clerk.as_str());
    assert_eq!(
        cancelled[0]["details"]["reason"],
        "the operator concerned was disabled"
    );
    let refused = entries(&log, "operator.reset_approval_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], admin3.as_str());
    assert_eq!(refused[0]["details"]["error"], "unauthorized");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_reset_not_yet_swept_does_not_block_a_new_request() {
    let (app, clock) = app_with_clock().await;
    let (_, admin2) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (revoker, _) = operator(&app, "revoker1", &["revoker"]).await;
    let old = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance(time::Duration::hours(24) + time::Duration::seconds(1));
    // No sweep has run: the old one is still stored as pending.
    let new = ask_totp_reset(&app, &app.admin, &revoker).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old, new);
    assert_eq!(reset_status(&app, &old).await, "expired");
    let (status, body) = approve(&app, &admin2, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log = app.audit_entries().await;
    let expired = entries(&log, "operator.reset_expired");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["target"], old.as_str());
    assert!(expired[0]["actor"].is_null());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_on_the_host_cancels_pending_resets_of_the_operator() {
    let (app, _clock) = app_with_clock().await;
    let (_, admin2) = host_operator(&app, "admin2", &[Role::Admin]).await;
    let (clerk, _) = operator(&app, "clerk1", &["clerk"]).await;
    let (status, asked) = app
        .post(
            &app.admin,
            &format!("/api/v1/operators/{clerk}/password"),
            json!({"password": "the old request's password", "reason": "forgotten"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    let rid = asked["id"].as_str().unwrap().to_string();
    let totp = ask_totp_reset(&app, &app.admin, &clerk).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let host = |reason: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["operator", "set-password", "--name", "clerk1"])
            .args(["--password-stdin", "--reason", reason, "--data-dir"])
            .arg(app.data.root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(pg) = &app.pg {
            cmd.args(["--database-url", &pg.url()]);
        }
        let mut child = cmd.env_remove("VOUCH_URL").spawn().unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"the host's new password\n").unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = host("bad\u{7}reason");
    assert!(!out.status.success(), "a reason with a control character");
    assert_eq!(reset_status(&app, &rid).await, "pending", "nothing done");
    let out = host("ticket 42");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(reset_status(&app, &rid).await, "cancelled");
    assert_eq!(reset_status(&app, &totp).await, "cancelled");
    let (status, body) = approve(&app, &admin2, &rid).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "not_pending");
    let (_, page) = login(&app, "clerk1", "the host's new password", "").await;
    assert_eq!(page.location(), Some("/"), "the host's password stands");

    let log = app.audit_entries().await;
    let set = entries(&log, "operator.password_set");
    let last = set.last().unwrap();
    assert_eq!(last["target"], clerk.as_str());
    assert!(last["actor"].is_null());
    assert_eq!(last["details"]["via"], "host");
    assert_eq!(last["details"]["reason"], "ticket 42");
    let cancelled = entries(&log, "operator.reset_cancelled");
    assert_eq!(cancelled.len(), 2);
    assert!(cancelled.iter().all(|e| e["actor"].is_null()
        && e["details"]["reason"] == "the operator's TOTP or password was reset on the host"));
    // Both cancellations are in the host's transaction: right after the password is set.
    let seq = |e: &Value| e["seq"].as_i64().unwrap();
    assert_eq!(seq(cancelled[0]), seq(last) + 1);
    app.stop().await;
}
