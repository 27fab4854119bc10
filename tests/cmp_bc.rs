//! Upstream CAs over CMP against an independent CMP implementation that really signs: a CA made
//! of Bouncy Castle's CMP and CRMF classes (`tests/cmp/BcCmpCa.java`). Bouncy Castle parses and
//! verifies every message Vouch sends (ir or cr, certConf, rr, genm, each signed with the RA's
//! key) and Vouch checks every answer Bouncy Castle builds. The certificates it issues are
//! verified by `openssl verify`, and the counts on both sides must agree: what the CA issued is
//! what Vouch recorded, what Vouch revoked is what the CA was asked to revoke, with its reason.
//! The CA binds 127.0.0.1, so these tests run on SQLite and PostgreSQL.

mod common;

use common::bc_cmp::BcCmpCa;
use common::cmp::{signature_keys, upstream_toml, Pki};
use common::{run, Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

/// Issue `n` person-signing certificates through the CA with `request` (ir or cr), revoke the
/// first (keyCompromise), and hold both sides to the same counts.
async fn enrol_and_revoke(request: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start(&pki);
    let keys = format!("{}\nrequest = \"{request}\"", signature_keys(&pki));
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(&pki, &ca.url, &keys)),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let mut serials = Vec::new();
    for _ in 0..n {
        let (status, req) = app
            .submit(&clerk, &sub, "person-signing", &pki.subscriber_csr())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let id = req["id"].as_str().unwrap();
        let (status, body) = app
            .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", ca.stderr_text());
        assert_eq!(body["status"], "issued", "{body}");
        let serial = body["serial"].as_str().unwrap().to_string();
        let (_, cert) = app
            .get(&approver, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["ca"], "city-cmp", "{cert}");
        let leaf = pki.path(&format!("issued-{serial}.pem"));
        std::fs::write(&leaf, cert["pem"].as_str().unwrap()).unwrap();
        let (ok, text) = run(Command::new("openssl")
            .args(["verify", "-purpose", "smimesign", "-CAfile"])
            .arg(pki.path("ca.pem"))
            .arg(&leaf));
        assert!(ok, "openssl verify: {text}");
        // The CA issued from Vouch's template: the approved subject and key.
        let x = openssl::x509::X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
        let cn = x
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .as_slice()
            .to_vec();
        assert_eq!(cn, b"Li Wei");
        let key = std::fs::read(pki.path("subscriber.key")).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(&key).unwrap();
        assert!(x.public_key().unwrap().public_eq(&key));
        serials.push(serial);
    }
    assert_eq!(ca.issued(), serials, "issued at the CA = recorded by Vouch");

    let revoker = app.operator("revoker1", &["revoker"]).await;
    let (status, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{}/revoke", serials[0]),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("upstream_errors").is_none(), "{body}");
    let revoked = ca.revoked();
    assert!(
        revoked.contains(&(serials[0].clone(), "1".to_string())),
        "the CA was asked to revoke {} for keyCompromise: {revoked:?}",
        serials[0]
    );
    let forwarded: Vec<_> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "certificate.revocation_forwarded")
        .collect();
    assert!(!forwarded.is_empty());
    assert!(forwarded.iter().all(|e| e["details"]["ca"] == "city-cmp"));
    app.stop().await;
}

#[tokio::test]
async fn ir_through_a_bouncy_castle_cmp_ca_then_rr() {
    enrol_and_revoke("ir", 2).await;
}

#[tokio::test]
async fn cr_through_a_bouncy_castle_cmp_ca_then_rr() {
    enrol_and_revoke("cr", 1).await;
}

/// Through CMP, the CA signs and Vouch's database write fails (an injected fault): the CA's
/// answer was kept in the issuance journal before the certConf, so reconciliation does not ask
/// the CA again while the database fails, and records that very certificate once it works.
/// Counts at the end: one request, one certificate issued by the CA, one recorded.
#[tokio::test]
async fn through_cmp_a_failed_database_write_loses_no_certificate() {
    use common::database::{count, fail_certificate_inserts, heal_certificate_inserts};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start(&pki);
    let keys = format!("{}\nrequest = \"ir\"", signature_keys(&pki));
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(&pki, &ca.url, &keys)),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &pki.subscriber_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    let db = app.data.database_target();
    fail_certificate_inserts(&db).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert!(!status.is_success(), "{body}");
    assert_eq!(ca.issued().len(), 1, "{}", ca.stderr_text());
    assert_eq!(count(&db, "certificates").await, 0);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");

    // While the database still fails, the CA is not asked again.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(ca.issued().len(), 1);
    heal_certificate_inserts(&db).await;
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    assert_eq!(
        ca.issued(),
        vec![req["serial"].as_str().unwrap().to_string()]
    );
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// A CMP CA that accepts the connection and never answers: with `timeout_secs = 2`, `vouch
/// upstream check` gives up on it after that time, well before the 30 s default, saying the CA
/// timed out (and `vouch serve` would refuse to start on a CA it never reached, for the same
/// reason, as quickly).
#[tokio::test]
async fn a_cmp_ca_that_never_answers_times_out_after_timeout_secs() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pkix/", silent.local_addr().unwrap());
    // Connections are accepted and held open, unanswered.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    // A data directory (profiles) for the check.
    let app = TestApp::spawn().await;
    let keys = format!(
        "{}\nrequest = \"ir\"\ntimeout_secs = 2",
        signature_keys(&pki)
    );
    std::fs::write(
        app.data.root().join("upstream.toml"),
        upstream_toml(&pki, &url, &keys),
    )
    .unwrap();
    let check = tokio::process::Command::new(common::BIN)
        .args(["upstream", "check", "--data-dir"])
        .arg(app.data.root())
        .env("VOUCH_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), check)
        .await
        .expect("the check gives up after timeout_secs, not the 30 s default")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("status: failed") && text.contains("timed out"),
        "{text}"
    );
    app.stop().await;
}

/// `kill -9` of a real `vouch serve` between the CMP CA's answer (confirmed with certConf) and the
/// database write: the restart records the kept certificate without a second ir. Counts: one
/// request, one certificate issued by the CA, one recorded, and it is the CA's.
#[tokio::test]
async fn through_cmp_kill_9_between_the_answer_and_the_write_loses_nothing() {
    use common::kill9::kill_9_between_the_answer_and_the_write;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start(&pki);
    let keys = format!("{}\nrequest = \"ir\"", signature_keys(&pki));
    let toml = upstream_toml(&pki, &ca.url, &keys);
    let issued = || ca.issued().len();
    let confirmed = || !ca.confirmations().is_empty();
    let serial =
        kill_9_between_the_answer_and_the_write(dir.path(), &toml, "city-cmp", &issued, &confirmed)
            .await;
    assert_eq!(ca.issued(), vec![serial], "{}", ca.stderr_text());
    // One exchange at the CA: the ir and its certConf, none after the restart.
    assert_eq!(ca.confirmations(), ca.issued_transactions());
}

/// Short retry periods, so that the background task acts within the test.
fn fast_retries() -> vouch::ra::RetrySchedule {
    vouch::ra::RetrySchedule {
        interval: std::time::Duration::from_millis(200),
        backoff: time::Duration::seconds(1),
        backoff_max: time::Duration::seconds(2),
        min_age: time::Duration::ZERO,
    }
}

/// GET /requests/{id} until `done` holds for it (the background task acts on its own time);
/// panics after 30 s.
async fn request_until(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (_, req) = app.get(token, &format!("/api/v1/requests/{id}")).await;
        if done(&req) {
            return req;
        }
        assert!(start.elapsed().as_secs() < 30, "never: {req}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The app and a person-signing request submitted to the CMP CA `ca`: (app, approver, request id).
async fn submitted_through(
    pki: &Pki,
    ca: &BcCmpCa,
    retry: vouch::ra::RetrySchedule,
) -> (TestApp, String, String) {
    let keys = format!("{}\nrequest = \"ir\"", signature_keys(pki));
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(pki, &ca.url, &keys)),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &pki.subscriber_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    (app, approver, id)
}

/// The CA issues and its answer to the ir is lost (the connection drops). The request stays
/// approved with the error, and the retry is the same transaction with the same request, which a
/// CA that keeps its transactions (as RFC 4210 has it wait for the certConf) answers with the
/// certificate it issued: recovered by the same transaction, no second certificate. Counts at
/// the end: one request, one certificate issued by the CA, one recorded, and it is that one.
#[tokio::test]
async fn through_cmp_a_lost_answer_is_recovered_by_the_same_transaction() {
    use common::database::count;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start_in_mode(&pki, 0, "remember,lose-first");
    let (app, approver, id) = submitted_through(&pki, &ca, fast_retries()).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert!(!status.is_success(), "{body}");
    assert_eq!(ca.issued().len(), 1, "{}", ca.stderr_text());
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    // The error names the CA and the transaction, by which the CA's records find the certificate.
    let error = req["issuance"]["last_error"].as_str().unwrap_or_default();
    let tid = ca.issued_transactions()[0].clone();
    assert!(
        error.contains("city-cmp") && error.contains("transactionID"),
        "{req}"
    );
    let named = error
        .rsplit("transactionID ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert_eq!(named.trim_start_matches('0'), tid, "{error}");
    // The background retry asks again in the same transaction.
    let req = request_until(&app, &approver, &id, |r| r["status"] != "approved").await;
    assert_eq!(req["status"], "issued", "{req}");
    let serial = req["serial"].as_str().unwrap().to_string();
    assert_eq!(ca.retransmitted(), vec![serial.clone()]);
    assert_eq!(ca.issued(), vec![serial], "one certificate at the CA");
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// The answer to the ir is lost, and the CA keeps the transaction but will not answer it again
/// (transactionIdInUse): no second certificate; the request stays approved, its error naming
/// the CA's refusal and the transactionID, by which the operator finds the certificate in the
/// CA's records and puts it in the issuance journal, as docs/OPERATIONS.md says. The next round
/// records it after the usual check. Counts: one request, one certificate at the CA, one
/// recorded, and it is that one.
#[tokio::test]
async fn through_cmp_a_lost_answer_the_ca_will_not_repeat_is_recovered_from_its_records() {
    use common::database::count;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start_in_mode(&pki, 0, "remember,no-retransmit,lose-first");
    let (app, approver, id) = submitted_through(&pki, &ca, fast_retries()).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert!(!status.is_success(), "{body}");
    let refused = |r: &Value| {
        r["issuance"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("transactionIdInUse"))
    };
    let req = request_until(&app, &approver, &id, refused).await;
    assert_eq!(req["status"], "approved", "{req}");
    let error = req["issuance"]["last_error"].as_str().unwrap();
    let tid = ca.issued_transactions()[0].clone();
    assert!(
        error.contains("CMP transactionID") && error.contains(&tid),
        "{error}"
    );
    let issued = ca.issued();
    assert_eq!(
        issued.len(),
        1,
        "no second certificate: {}",
        ca.stderr_text()
    );
    // The operator takes the certificate from the CA's records into the journal (made at the
    // start, owner only, although no answer was kept yet).
    let journal = std::fs::metadata(app.data.issuance_journal_dir()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&journal.permissions()) & 0o777,
        0o700
    );
    std::fs::write(
        app.data.issuance_journal_dir().join(format!("{id}.pem")),
        ca.issued_pem(&issued[0]),
    )
    .unwrap();
    let req = request_until(&app, &approver, &id, |r| r["status"] != "approved").await;
    assert_eq!(req["status"], "issued", "{req}");
    assert_eq!(req["serial"], issued[0].as_str());
    assert_eq!(ca.issued(), issued, "still one certificate at the CA");
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// The CA (in `mode`, which has it depart from the approved order) returns a certificate whose
/// key is the subscriber's, so the certConf accepts it; Vouch's check against the order
/// quarantines it, saying `why`: never delivered, the request fails saying why, the quarantine
/// is audited with the certificate, and an rr (superseded) asks the CA to revoke it when the CA
/// issued it. Returns the serial the CA issued, the audit entry's details, the quarantine as
/// `vouch upstream queue` lists it, and the CA's revocations, after checking the counts: one
/// request, one certificate at the CA, none recorded.
async fn quarantined(mode: &str, why: &str) -> (String, Value, Value, Vec<(String, String)>) {
    let (serial, details, listed, revoked, app) = quarantined_in(mode, why).await;
    app.stop().await;
    (serial, details, listed, revoked)
}

/// As [`quarantined`], leaving the app running.
async fn quarantined_in(
    mode: &str,
    why: &str,
) -> (String, Value, Value, Vec<(String, String)>, TestApp) {
    use common::database::count;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start_in_mode(&pki, 0, mode);
    let (app, approver, id) = submitted_through(&pki, &ca, Default::default()).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "failed", "{req}");
    let issued = ca.issued();
    assert_eq!(issued.len(), 1, "{}", ca.stderr_text());
    let quarantined: Vec<_> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "certificate.quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    let details = quarantined[0]["details"].clone();
    assert!(
        details["error"].as_str().unwrap().contains(why),
        "{details}"
    );
    assert_eq!(details["upstream_revocation"]["serial"], issued[0].as_str());
    // Not in the log alone: `vouch upstream queue` lists it.
    let text = app.upstream_queue_text(&[]);
    assert!(
        text.contains(
            "quarantined certificates (never delivered; not acknowledged, of the newest 100): 1"
        ) && text.contains(&format!("certificate {} from the CA city-cmp", issued[0])),
        "{text}"
    );
    let listed = app.upstream_queue()["quarantined"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let listed = listed[0].clone();
    assert_eq!(listed["request_id"], id.as_str());
    assert_eq!(listed["ca"], "city-cmp");
    assert_eq!(listed["serial"], issued[0].as_str());
    assert_eq!(listed["certificate_sha256"], details["certificate_sha256"]);
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(count(&db, "certificates").await, 0);
    (issued[0].clone(), details, listed, ca.revoked(), app)
}

/// A certificate for another subject is quarantined and revoked at the CA: nothing is left to do.
#[tokio::test]
async fn through_cmp_a_certificate_for_another_subject_is_quarantined_and_revoked_at_the_ca() {
    let (serial, details, listed, revoked) =
        quarantined("wrong-subject", "subject is CN=Not Approved").await;
    assert_eq!(details["upstream_revocation"]["revoked"], true, "{details}");
    assert_eq!(revoked, vec![(serial, "4".to_string())]);
    assert_eq!(listed["revoked_at_ca"], true);
    assert_eq!(listed["action"], Value::Null);
}

/// As above, with a CA that refuses the rr: the certificate stays valid at the CA, and the queue
/// says so, with what to do and the CA's refusal.
#[tokio::test]
async fn a_quarantined_certificate_the_ca_would_not_revoke_is_left_to_an_admin() {
    let (serial, details, listed, revoked, app) =
        quarantined_in("wrong-subject,refuse-rr", "subject is CN=Not Approved").await;
    assert_eq!(
        details["upstream_revocation"]["revoked"], false,
        "{details}"
    );
    assert!(revoked.is_empty(), "{revoked:?}");
    assert_eq!(listed["serial"], serial.as_str());
    assert_eq!(listed["revoked_at_ca"], false);
    let action = listed["action"].as_str().unwrap_or_default();
    assert!(
        action.contains("by hand") && action.contains("notAuthorized"),
        "{listed}"
    );
    // /readyz says that something awaits an admin (a count, not what: it is public).
    let ready = |app: &TestApp| {
        let (client, url) = (app.client.clone(), format!("{}/readyz", app.base));
        async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let before = ready(&app).await;
    assert_eq!(before["quarantined_unacknowledged"], 1, "{before}");
    assert!(
        before["warnings"]
            .to_string()
            .contains("vouch upstream queue"),
        "{before}"
    );
    // Once revoked there by hand, the admin acknowledges it; the queue lists it no more.
    let seq = listed["audit_seq"].as_i64().unwrap().to_string();
    let text = String::from_utf8_lossy(&app.upstream_queue_run(&[]).stdout).to_string();
    assert!(
        text.contains(&format!("vouch upstream queue ack {seq} --reason")),
        "{text}"
    );
    let refused = app.upstream_queue_run(&["ack", &seq, "--reason", " "]);
    assert!(!refused.status.success(), "{refused:?}");
    let not_one = app.upstream_queue_run(&["ack", "1", "--reason", "nothing"]);
    assert_eq!(not_one.status.code(), Some(2), "{not_one:?}");
    assert!(
        String::from_utf8_lossy(&not_one.stderr).contains("audit entry 1 is not a quarantined"),
        "{not_one:?}"
    );
    let why = "revoked at the CA by hand, ticket 42";
    let out = app.upstream_queue_run(&["ack", &seq, "--reason", why]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(app.upstream_queue()["quarantined"], serde_json::json!([]));
    let after = ready(&app).await;
    assert!(after.get("quarantined_unacknowledged").is_none(), "{after}");
    let all: Value = serde_json::from_str(&app.upstream_queue_text(&["--all", "--json"])).unwrap();
    assert_eq!(all["quarantined"][0]["acknowledged_reason"], why, "{all}");
    let again = app.upstream_queue_run(&["ack", &seq, "--reason", why]);
    assert!(!again.status.success(), "acknowledged once: {again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("acknowledged already"),
        "{again:?}"
    );
    let acks: Vec<_> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "certificate.quarantine_acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(
        acks[0]["details"]["audit_seq"]
            .as_i64()
            .unwrap()
            .to_string(),
        seq
    );
    assert_eq!(acks[0]["details"]["reason"], why);
    app.stop().await;
}

/// Each departure from the order that the key check in the certConf cannot see is quarantined
/// the same way: a validity a year longer than approved, a CA certificate (basicConstraints cA),
/// a signature by another key under the CA's name. The last is not the CA's (its issuing
/// certificate did not sign it), so no rr is sent for its serial, which could be another's:
/// the queue leaves it to an admin, saying so.
#[tokio::test]
async fn through_cmp_every_departure_from_the_order_is_quarantined() {
    let (_, details, listed, revoked) = quarantined("longer", "its validity").await;
    assert_eq!(details["upstream_revocation"]["revoked"], true, "{details}");
    assert_eq!(revoked.len(), 1);
    assert_eq!(listed["action"], Value::Null);
    let (_, details, _, revoked) = quarantined("ca-flag", "it is a CA certificate").await;
    assert_eq!(details["upstream_revocation"]["revoked"], true, "{details}");
    assert_eq!(revoked.len(), 1);
    let (_, details, listed, revoked) = quarantined("other-key", "signature does not verify").await;
    assert_eq!(
        details["upstream_revocation"]["revoked"], false,
        "{details}"
    );
    assert!(revoked.is_empty(), "{revoked:?}");
    let action = listed["action"].as_str().unwrap_or_default();
    assert!(action.contains("did not issue it"), "{listed}");
}
