//! Every state of a revocation forward has a way out. A forward the CA *refuses* (it answered
//! no, rather than could not be reached) is marked failed with the CA's reason and is not
//! retried on its own; a transient failure still is. An admin then asks for it again (`vouch
//! upstream queue retry`) or gives it up (`vouch upstream queue drop --reason`), both audited;
//! the certificate stays revoked here throughout, and a dropped forward stays listed by
//! `vouch upstream queue --all`. An unreadable issuance journal entry is shown, never signed
//! over, and has a way out too. Counts at the end: requests, certificates the CA issued,
//! certificates Vouch recorded.

mod common;

use common::cfssl::{upstream_toml, AUTH_KEY};
use common::database::count;
use common::scripted_ca::{Mode, ScriptedCa};
use common::{p256_csr, Options, TestApp, BIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::time::Duration;

/// `vouch upstream queue ARGS` on the app's data directory.
fn queue_cmd(app: &TestApp, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["upstream", "queue"])
        .args(args)
        .arg("--data-dir")
        .arg(app.data.root())
        .env("VOUCH_LOG", "warn");
    if let Some(db) = &app.pg {
        cmd.env("VOUCH_DATABASE_URL", db.url());
    }
    cmd.output().unwrap()
}

fn queue_json(app: &TestApp, all: bool) -> Value {
    let args: &[&str] = if all {
        &["--json", "--all"]
    } else {
        &["--json"]
    };
    let out = queue_cmd(app, args);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Issue one person-signing certificate through the app's CA; returns its serial.
async fn issued(app: &TestApp, clerk: &str, approver: &str, name: &str) -> String {
    let sub = app.person(clerk, name, "2099-12-31").await;
    let (status, req) = app.submit(clerk, &sub, "person-signing", &p256_csr()).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, body) = app
        .post_empty(approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["serial"].as_str().unwrap().to_string()
}

fn of_action(entries: &[Value], action: &str, serial: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["action"] == action && e["target"] == serial)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_refused_forward_fails_visibly_and_an_admin_retries_or_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    // Rounds driven here (the background task's first round is an hour away); no back-off.
    let retry = vouch::ra::RetrySchedule {
        interval: Duration::from_secs(3600),
        backoff: time::Duration::ZERO,
        backoff_max: time::Duration::ZERO,
        min_age: time::Duration::ZERO,
    };
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(
            "city-ca",
            &ca.url,
            AUTH_KEY,
            &["person-signing"],
        )),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let first = issued(&app, &clerk, &approver, "Li Wei").await;
    let second = issued(&app, &clerk, &approver, "Wang Fang").await;
    let third = issued(&app, &clerk, &approver, "Zhang San").await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let revoke = |serial: String| {
        let (app, revoker) = (&app, revoker.clone());
        async move {
            app.post(
                &revoker,
                &format!("/api/v1/certificates/{serial}/revoke"),
                json!({"reason": "keyCompromise"}),
            )
            .await
        }
    };

    // The CA answers no: revoked here at once, the forward failed with the CA's reason.
    ca.set(Mode::Refuse);
    for serial in [&first, &second] {
        let (status, body) = revoke(serial.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "revoked");
        let errors = body["upstream_errors"].to_string();
        assert!(
            errors.contains("refused") && errors.contains("admin"),
            "{body}"
        );
        let (_, cert) = app
            .get(&revoker, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["status"], "revoked");
        let forward = &cert["upstream_forward"];
        assert_eq!(forward["state"], "failed", "{cert}");
        assert!(forward["failed_at"].as_str().is_some(), "{cert}");
        assert!(
            forward["last_error"]
                .as_str()
                .unwrap()
                .contains("refused for the test"),
            "{cert}"
        );
    }
    assert_eq!(ca.revoke_calls(), 2);
    // A transient failure is still retried; a refusal is not.
    ca.set(Mode::Down);
    let (status, body) = revoke(third.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{third}"))
        .await;
    assert_eq!(cert["upstream_forward"]["state"], "pending", "{cert}");
    assert_eq!(ca.revoke_calls(), 3);
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 0);
    assert_eq!(
        ca.revoke_calls(),
        4,
        "only the transient one was tried again"
    );
    let listed = queue_json(&app, false);
    let states: Vec<(String, String)> = listed["revocation_forwards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["serial"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (serial, state) in [(&first, "failed"), (&second, "failed"), (&third, "pending")] {
        assert!(
            states.contains(&(serial.clone(), state.to_string())),
            "{serial} {state}: {listed}"
        );
    }

    // The CA would now accept: nothing happens until an admin asks.
    ca.set(Mode::Up);
    assert_eq!(
        app.ra.retry_forwards().await.unwrap(),
        1,
        "the transient one"
    );
    assert_eq!(ca.revoke_calls(), 5);
    assert_eq!(ca.revocation(&first), None);
    let out = queue_cmd(&app, &["retry", &first]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 1);
    assert_eq!(ca.revoke_calls(), 6);
    assert_eq!(ca.revocation(&first).as_deref(), Some("keyCompromise"));

    // The second is given up: a reason is required; the CA is never told; it stays revoked here.
    let out = queue_cmd(&app, &["drop", &second]);
    assert!(!out.status.success(), "a drop without --reason: {out:?}");
    let out = queue_cmd(&app, &["drop", &second, "--reason", "   "]);
    assert!(!out.status.success(), "a blank reason: {out:?}");
    let why = "the CA lost that serial in its 2026 migration";
    let out = queue_cmd(&app, &["drop", &second, "--reason", why]);
    assert!(out.status.success(), "{out:?}");
    let out = queue_cmd(&app, &["drop", &second, "--reason", why]);
    assert!(!out.status.success(), "dropped twice: {out:?}");
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 0);
    assert_eq!(ca.revoke_calls(), 6);
    assert_eq!(ca.revocation(&second), None);
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{second}"))
        .await;
    assert_eq!(cert["status"], "revoked");
    assert!(cert.get("upstream_forward").is_none(), "{cert}");
    assert_eq!(queue_json(&app, false)["revocation_forwards"], json!([]));
    let all = queue_json(&app, true);
    let forwards = all["revocation_forwards"].as_array().unwrap();
    assert_eq!(forwards.len(), 3, "{all}");
    let of = |serial: &str| forwards.iter().find(|f| f["serial"] == serial).unwrap();
    assert_eq!(of(&first)["state"], "acknowledged");
    assert_eq!(of(&third)["state"], "acknowledged");
    assert_eq!(of(&second)["state"], "dropped");
    assert_eq!(of(&second)["drop_reason"], why);

    let entries = app.audit_entries().await;
    for serial in [&first, &second] {
        let failed = of_action(&entries, "certificate.revocation_forward_failed", serial);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0]["details"]["permanent"], true);
    }
    let retried = of_action(&entries, "certificate.revocation_forward_retried", &first);
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["details"]["was"], "failed");
    assert_eq!(
        of_action(&entries, "certificate.revocation_forwarded", &first).len(),
        1
    );
    let dropped = of_action(&entries, "certificate.revocation_forward_dropped", &second);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["details"]["drop_reason"], why);
    assert!(of_action(&entries, "certificate.revocation_forwarded", &second).is_empty());

    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 3);
    assert_eq!(ca.issued(), 3);
    assert_eq!(count(&db, "certificates").await, 3);
    app.stop().await;
}

/// After a CA outage, an admin asks again for many forwards at once: `retry --failed` takes the
/// refused ones only, `retry --ca ID` every pending or refused one to that CA; dropped forwards
/// are left (retried by their serial only); each retry is audited. `--all` tells a forward whose
/// status the certificate no longer has (a hold released here since) as superseded, not
/// pending.
#[tokio::test]
async fn an_admin_retries_many_forwards_at_once_by_ca_or_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    let retry = vouch::ra::RetrySchedule {
        interval: Duration::from_secs(3600),
        backoff: time::Duration::ZERO,
        backoff_max: time::Duration::ZERO,
        min_age: time::Duration::ZERO,
    };
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(
            "city-ca",
            &ca.url,
            AUTH_KEY,
            &["person-signing"],
        )),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let mut serials = Vec::new();
    for name in ["Li Wei", "Wang Fang", "Zhang San", "Zhao Liu", "Qian Qi"] {
        serials.push(issued(&app, &clerk, &approver, name).await);
    }
    let [first, second, third, fourth, fifth] = <[String; 5]>::try_from(serials).unwrap();
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let post = |serial: String, what: &'static str| {
        let (app, revoker) = (&app, revoker.clone());
        async move {
            let (status, body) = app
                .post(
                    &revoker,
                    &format!("/api/v1/certificates/{serial}/{what}"),
                    json!({"reason": "superseded"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    // Two refused, one and a hold waiting for the CA to come back.
    ca.set(Mode::Refuse);
    post(first.clone(), "revoke").await;
    post(second.clone(), "revoke").await;
    ca.set(Mode::Down);
    post(third.clone(), "revoke").await;
    post(fourth.clone(), "hold").await;
    let states = |all: bool| {
        let listed = queue_json(&app, all);
        listed["revocation_forwards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["serial"].as_str().unwrap().to_string(),
                    f["state"].as_str().unwrap().to_string(),
                )
            })
            .collect::<std::collections::HashMap<_, _>>()
    };
    let s = states(false);
    assert_eq!(
        [&first, &second, &third, &fourth].map(|x| s[x].as_str()),
        ["failed", "failed", "pending", "pending"]
    );
    let retried = |entries: &[Value], serial: &str| {
        of_action(entries, "certificate.revocation_forward_retried", serial).len()
    };

    // Neither a serial nor a selection: refused by the command line.
    let out = queue_cmd(&app, &["retry"]);
    assert!(!out.status.success(), "{out:?}");
    let out = queue_cmd(&app, &["retry", &first, "--failed"]);
    assert!(!out.status.success(), "a serial and a selection: {out:?}");
    // Another CA's id selects nothing.
    let out = queue_cmd(&app, &["retry", "--ca", "provincial-ca"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 pending or refused forwards"),
        "{out:?}"
    );

    // --failed: the two refused ones only.
    let out = queue_cmd(&app, &["retry", "--failed"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 refused forwards asked again"),
        "{out:?}"
    );
    let entries = app.audit_entries().await;
    assert_eq!(
        [&first, &second, &third, &fourth].map(|x| retried(&entries, x)),
        [1, 1, 0, 0]
    );
    assert_eq!(
        of_action(&entries, "certificate.revocation_forward_retried", &first)[0]["details"]["via"],
        "host"
    );
    let s = states(false);
    assert_eq!(s[&first], "pending");
    assert_eq!(s[&second], "pending");

    // The second is dropped; the CA refuses the rest again; --ca takes every one not dropped.
    let out = queue_cmd(&app, &["drop", &second, "--reason", "lost at the CA"]);
    assert!(out.status.success(), "{out:?}");
    ca.set(Mode::Refuse);
    app.ra.retry_forwards().await.unwrap();
    let out = queue_cmd(&app, &["retry", "--ca", "city-ca"]);
    assert!(out.status.success(), "{out:?}");
    let entries = app.audit_entries().await;
    assert_eq!(
        [&first, &second, &third, &fourth].map(|x| retried(&entries, x)),
        [2, 1, 1, 1]
    );
    // Once the CA is back, the next round forwards them.
    ca.set(Mode::Up);
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 3);
    assert_eq!(ca.revocation(&first).as_deref(), Some("superseded"));
    assert_eq!(ca.revocation(&second), None);

    // A hold released here after its forward was queued (as through a CA that lifts holds)
    // leaves the forward of the hold behind: listed as superseded, never as pending.
    ca.set(Mode::Down);
    post(fifth.clone(), "hold").await;
    assert_eq!(states(false)[&fifth], "pending");
    common::database::sql(
        &app.data.database_target(),
        &format!(
            "UPDATE certificates SET status = 'valid', revoked_at = NULL, \
             revocation_reason = NULL, status_version = status_version + 1000 \
             WHERE serial = '{fifth}'"
        ),
    )
    .await;
    assert!(!states(false).contains_key(&fifth));
    let all = states(true);
    assert_eq!(all[&fifth], "superseded", "{all:?}");
    assert_eq!(all[&second], "dropped");
    assert_eq!(all[&first], "acknowledged");
    app.stop().await;
}

/// An issuance journal entry that cannot be read is never signed over: the request stays
/// approved, and its error names the file and the way out; once the file is removed, the CA is
/// asked again and one certificate is recorded.
#[tokio::test]
async fn an_unreadable_journal_entry_is_shown_and_has_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    let retry = vouch::ra::RetrySchedule {
        interval: Duration::from_secs(3600),
        backoff: time::Duration::ZERO,
        backoff_max: time::Duration::ZERO,
        min_age: time::Duration::ZERO,
    };
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(
            "city-ca",
            &ca.url,
            AUTH_KEY,
            &["person-signing"],
        )),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    let id = req["id"].as_str().unwrap().to_string();
    ca.set(Mode::Down);
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let entry = app.data.issuance_journal_dir().join(format!("{id}.pem"));
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(&entry, "not a certificate\n").unwrap();
    ca.set(Mode::Up);
    let calls = ca.sign_calls();
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(ca.sign_calls(), calls, "not signed over the entry");
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    let error = req["issuance"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("<data directory>/issuance-journal/{id}.pem"))
            && error.contains("removed")
            && !error.contains(&app.data.root().display().to_string()),
        "{req}"
    );
    let listed = queue_json(&app, false);
    assert!(
        listed["issuances"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not a certificate"),
        "{listed}"
    );
    // The way out: the operator removes the file; the CA is asked again.
    std::fs::remove_file(&entry).unwrap();
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(ca.issued(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// The way out of an unreadable journal entry, pasting the CA's certificate into it, with the
/// wrong certificate (another request's): it fails the order check and the request fails,
/// quarantined, but nothing is revoked at the CA by its serial (it may be an unrelated
/// certificate); the other certificate stays valid at the CA and here.
#[tokio::test]
async fn a_wrong_certificate_pasted_into_the_journal_is_not_revoked_at_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    let retry = vouch::ra::RetrySchedule {
        interval: Duration::from_secs(3600),
        backoff: time::Duration::ZERO,
        backoff_max: time::Duration::ZERO,
        min_age: time::Duration::ZERO,
    };
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(
            "city-ca",
            &ca.url,
            AUTH_KEY,
            &["person-signing"],
        )),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let first = issued(&app, &clerk, &approver, "Wang Fang").await;
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{first}"))
        .await;
    let first_pem = cert["pem"].as_str().unwrap().to_string();
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    let id = req["id"].as_str().unwrap().to_string();
    ca.set(Mode::Down);
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    ca.set(Mode::Up);
    let entry = app.data.issuance_journal_dir().join(format!("{id}.pem"));
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(&entry, &first_pem).unwrap();
    app.ra.reconcile(time::Duration::ZERO).await.unwrap();
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "failed", "{req}");
    assert_eq!(ca.revoke_calls(), 0, "nothing revoked at the CA");
    assert_eq!(ca.revocation(&first), None);
    let entries = app.audit_entries().await;
    let quarantined: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "certificate.quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{entries:?}");
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{first}"))
        .await;
    assert_eq!(cert["status"], "valid", "{cert}");
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 2);
    assert_eq!(ca.issued(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}
