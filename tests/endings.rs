//! Every request state has a way out: a CA refusal ends a request `failed` with the reason, an
//! unavailable CA is retried with a growing back-off that operators can see, and an admin can
//! cancel an approved request that was never issued, even while the CA is signing it.

mod common;

use common::test_ca::{spawn, Mode};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn a_ca_refusal_ends_the_request_failed_with_the_reason() {
    let (app, ca) = spawn(Mode::RefuseAtSigning).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = app.pending(&clerk).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ca_refused")),
        "{body}"
    );
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(shown["failure"]
        .as_str()
        .unwrap()
        .contains("profile not permitted"));
    let (_, listed) = app.get(&clerk, "/api/v1/requests?status=failed").await;
    assert_eq!(listed["requests"][0]["id"].as_str(), Some(id.as_str()));
    let audit = app.audit_entries().await;
    let failed = audit
        .iter()
        .find(|e| e["action"] == "request.failed")
        .unwrap();
    assert_eq!(failed["target"].as_str(), Some(id.as_str()));
    // Terminal: reconciliation leaves it, and it cannot be cancelled.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(ca.calls.load(Ordering::SeqCst), 1);
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/api/v1/requests/{id}/cancel"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_approved"))
    );
    app.stop().await;
}

#[tokio::test]
async fn what_the_ca_would_refuse_is_refused_at_submission() {
    let (app, _) = spawn(Mode::RefuseAtCheck).await;
    let (clerk, _) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ca_refused")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("organisation not allowed"));
    let (_, listed) = app.get(&clerk, "/api/v1/requests").await;
    assert_eq!(listed["requests"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_unavailable_ca_is_retried_with_back_off_and_an_admin_can_cancel() {
    let (app, ca) = spawn(Mode::Down).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = app.pending(&clerk).await;
    let (status, _) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["issuance"]["failed_attempts"], 1, "{shown}");
    assert!(shown["issuance"]["last_error"]
        .as_str()
        .unwrap()
        .contains("connection refused"));

    // The first retry is reconciliation's own; after it fails, the next waits a minute.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(ca.calls.load(Ordering::SeqCst), 2);
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["issuance"]["failed_attempts"], 2);
    let next = time::OffsetDateTime::parse(
        shown["issuance"]["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = next - time::OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(50) && wait <= time::Duration::seconds(60),
        "{wait}"
    );
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(
        ca.calls.load(Ordering::SeqCst),
        2,
        "retried before its time"
    );

    // Only an admin cancels, with a reason; then nothing retries it.
    let path = format!("/api/v1/requests/{id}/cancel");
    let (status, _) = app
        .post(&approver, &path, json!({"reason": "CA retired"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post(&app.admin, &path, json!({"reason": " "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, shown) = app
        .post(&app.admin, &path, json!({"reason": "CA retired"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(
        (shown["status"].as_str(), shown["cancel_reason"].as_str()),
        (Some("cancelled"), Some("CA retired"))
    );
    assert!(shown.get("issuance").is_none());
    let (status, body) = app
        .post(&app.admin, &path, json!({"reason": "again"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_approved"))
    );
    let audit = app.audit_entries().await;
    let cancelled = audit
        .iter()
        .find(|e| e["action"] == "request.cancelled")
        .unwrap();
    assert_eq!(cancelled["details"]["reason"], "CA retired");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "issuance.failed")
            .count(),
        1,
        "retries are logged, not audited"
    );
    app.stop().await;
}

#[test]
fn the_back_off_doubles_up_to_an_hour() {
    use vouch::ra::issuance::retry_delay;
    let minutes: Vec<i64> = (1..=10).map(|n| retry_delay(n).whole_minutes()).collect();
    assert_eq!(minutes, [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

/// Approve request `id` in a task of its own, so the test can act while the CA signs.
fn approve_in_background(
    app: &TestApp,
    id: &str,
    approver: &str,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    let (client, url, token) = (
        app.client.clone(),
        app.url(&format!("/api/v1/requests/{id}/approve")),
        approver.to_string(),
    );
    tokio::spawn(
        async move { split(client.post(url).bearer_auth(token).send().await.unwrap()).await },
    )
}

/// An admin cancels while the CA is signing: the certificate the CA made is recorded (nobody may
/// hold a certificate the RA does not know of) and revoked at once.
#[tokio::test]
async fn a_cancellation_during_signing_leaves_no_unknown_certificate() {
    let (app, ca) = spawn(Mode::Slow).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = app.pending(&clerk).await;
    let approving = approve_in_background(&app, &id, &approver);
    ca.entered.notified().await;
    let (status, shown) = app
        .post(
            &app.admin,
            &format!("/api/v1/requests/{id}/cancel"),
            json!({"reason": "applicant withdrew"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    ca.release.notify_one();
    let (status, body) = approving.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    let serial = body["serial"]
        .as_str()
        .expect("the signed certificate is recorded");
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(
        (cert["status"].as_str(), cert["revocation_reason"].as_str()),
        (Some("revoked"), Some("cessationOfOperation"))
    );
    app.stop().await;
}

/// The key is blocked while the CA is signing: the certificate the CA made is recorded and, in
/// the same write, revoked for keyCompromise.
#[tokio::test]
async fn a_key_blocked_during_signing_leaves_its_certificate_revoked() {
    let (app, ca) = spawn(Mode::Slow).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = app.pending(&clerk).await;
    let (_, req) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    let key = req["key_sha256"].as_str().unwrap().to_string();
    let approving = approve_in_background(&app, &id, &approver);
    ca.entered.notified().await;
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/blocked-keys",
            json!({"key_sha256": key, "reason": "reported stolen"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    ca.release.notify_one();
    let (status, body) = approving.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "issued", "{body}");
    let serial = body["serial"]
        .as_str()
        .expect("the certificate is recorded");
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(
        (cert["status"].as_str(), cert["revocation_reason"].as_str()),
        (Some("revoked"), Some("keyCompromise")),
        "{cert}"
    );
    app.stop().await;
}
