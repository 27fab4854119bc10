//! The rules the RA enforces, each shown failing the way it should: bad keys and CSRs, four eyes,
//! authentication and roles, input limits, and issue-at-most-once under concurrency and faults.

mod common;

use common::*;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

async fn refused_csr(app: &TestApp, csr: &str) -> (StatusCode, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let clerk = app
        .operator(
            &format!("clerk-csr-{}", N.fetch_add(1, Ordering::SeqCst)),
            &["clerk"],
        )
        .await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app.submit(&clerk, &sub, "person-signing", csr).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// Replace the bytes of `needle` inside the DER of a PEM CSR and re-wrap it.
fn patch_csr(pem: &str, needle: &[u8], replacement: &[u8]) -> String {
    let req = openssl::x509::X509Req::from_pem(pem.as_bytes()).unwrap();
    let mut der = req.to_der().unwrap();
    let at = der
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in DER");
    der[at..at + needle.len()].copy_from_slice(replacement);
    vouch::x509::pem_encode("CERTIFICATE REQUEST", &der)
}

#[tokio::test]
async fn csr_and_key_rules() {
    let app = TestApp::spawn().await;

    // Signature that does not verify: change one byte of the signed subject.
    let good = csr_for(
        &ec_key(Nid::X9_62_PRIME256V1),
        MessageDigest::sha256(),
        "AAAA",
    );
    assert_eq!(
        refused_csr(&app, &patch_csr(&good, b"AAAA", b"AAAB")).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "csr_signature_invalid".into()
        )
    );

    // Weak RSA.
    let weak = csr_for(&rsa_key(1024), MessageDigest::sha256(), "x");
    assert_eq!(
        refused_csr(&app, &weak).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "weak_key".into())
    );

    // Curves other than P-256/P-384.
    let k1 = csr_for(&ec_key(Nid::SECP256K1), MessageDigest::sha256(), "x");
    assert_eq!(
        refused_csr(&app, &k1).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_curve".into())
    );

    // A point that is not on the curve.
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let point = key
        .ec_key()
        .unwrap()
        .public_key()
        .to_bytes(
            key.ec_key().unwrap().group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut openssl::bn::BigNumContext::new().unwrap(),
        )
        .unwrap();
    let mut off = point.clone();
    *off.last_mut().unwrap() ^= 1;
    let bad_point = patch_csr(&csr_for(&key, MessageDigest::sha256(), "x"), &point, &off);
    assert_eq!(
        refused_csr(&app, &bad_point).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_ec_point".into())
    );

    // SHA-1 signatures.
    let sha1 = csr_for(&ec_key(Nid::X9_62_PRIME256V1), MessageDigest::sha1(), "x");
    assert_eq!(
        refused_csr(&app, &sha1).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_signature_algorithm".into()
        )
    );

    // Not a CSR at all.
    assert_eq!(
        refused_csr(
            &app,
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )
        .await,
        (StatusCode::BAD_REQUEST, "bad_csr".into())
    );

    // A blocked key.
    let blocked = ec_key(Nid::X9_62_PRIME256V1);
    let pem = String::from_utf8(blocked.public_key_to_pem().unwrap()).unwrap();
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/blocked-keys",
            json!({"public_key_pem": pem, "reason": "known compromised"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let csr = csr_for(&blocked, MessageDigest::sha256(), "x");
    assert_eq!(
        refused_csr(&app, &csr).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "blocked_key".into())
    );

    // Every refusal above was audited.
    let audit = app.audit_entries().await;
    let refused: Vec<String> = audit
        .iter()
        .filter(|e| e["action"] == "request.refused")
        .map(|e| e["details"]["error"].as_str().unwrap().to_string())
        .collect();
    for code in [
        "csr_signature_invalid",
        "weak_key",
        "unsupported_curve",
        "invalid_ec_point",
        "weak_signature_algorithm",
        "bad_csr",
        "blocked_key",
    ] {
        assert!(
            refused.iter().any(|c| c == code),
            "{code} not audited: {refused:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn evidence_and_profile_rules() {
    let app = TestApp::spawn().await;
    let (clerk, _) = app.clerk_and_approver().await;
    let expired = app.person(&clerk, "Old Passport", "2001-01-01").await;
    let (status, body) = app
        .submit(&clerk, &expired, "person-signing", &p256_csr())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("evidence_expired"))
    );
    let ok = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app
        .submit(&clerk, &ok, "no-such-profile", &p256_csr())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_profile"))
    );
    let (status, _) = app
        .submit(&clerk, "sub_missing", "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            &clerk,
            "/api/v1/subscribers",
            json!({"kind": "person", "name": "No Evidence", "identifiers": []}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, body) = app.post(&clerk, "/api/v1/subscribers", json!({"kind": "person", "name": "Bad Date",
        "identifiers": [{"type": "passport", "number": "E1", "issuer": "X", "valid_until": "31/12/2030"}]})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    // Refused registrations are audited too.
    let audit = app.audit_entries().await;
    let refused = audit
        .iter()
        .filter(|e| e["action"] == "subscriber.refused")
        .count();
    assert_eq!(refused, 2, "{audit:?}");
    app.stop().await;
}

#[tokio::test]
async fn four_eyes_the_requester_cannot_approve() {
    let app = TestApp::spawn().await;
    let both = app.operator("clerk-approver", &["clerk", "approver"]).await;
    let sub = app.person(&both, "Li Wei", "2099-12-31").await;
    let (_, req) = app.submit(&both, &sub, "person-signing", &p256_csr()).await;
    let id = req["id"].as_str().unwrap();
    let (status, body) = app
        .post_empty(&both, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval"))
    );
    let (_, shown) = app.get(&both, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "pending");
    assert!(shown["approvals"].as_array().unwrap().is_empty());
    app.stop().await;
}

/// A subscriber as a clerk would register one.
fn subscriber() -> serde_json::Value {
    json!({"kind": "person", "name": "X", "identifiers": [{"type": "passport", "number": "E1", "issuer": "X", "valid_until": "2099-01-01"}]})
}

/// No token, an unknown token and one that is not a token at all: 401, with the Bearer challenge.
#[tokio::test]
async fn a_request_without_a_valid_token_is_unauthorized() {
    let app = TestApp::spawn().await;
    let sub = subscriber();
    let resp = app
        .client
        .post(app.url("/api/v1/subscribers"))
        .json(&sub)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(split(resp).await.1["error"], "unauthorized");
    let (status, body) = app
        .post("vouch_not-a-real-token", "/api/v1/subscribers", sub.clone())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = app.post("garbage", "/api/v1/subscribers", sub).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Wrong role: an approver cannot register subscribers, a clerk cannot add operators.
#[tokio::test]
async fn an_operator_may_do_only_what_its_roles_allow() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let (status, body) = app
        .post(&approver, "/api/v1/subscribers", subscriber())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = app
        .post(
            &clerk,
            "/api/v1/operators",
            json!({"name": "eve", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_operators_token_stops_working() {
    let app = TestApp::spawn().await;
    let (clerk, _) = app.clerk_and_approver().await;
    // The clerk's token works, so it is in the token cache when the clerk is disabled: disabling
    // must evict it, not only stop it being found in the database.
    let (status, _) = app.get(&clerk, "/api/v1/requests").await;
    assert_eq!(status, StatusCode::OK);
    let (_, ops) = app.get(&app.admin, "/api/v1/operators").await;
    let clerk_id = ops["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "clerk1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .post_empty(&app.admin, &format!("/api/v1/operators/{clerk_id}/disable"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post(&clerk, "/api/v1/subscribers", subscriber()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Malformed JSON, wrong shape, wrong content type, oversized body.
#[tokio::test]
async fn a_body_that_is_not_the_json_asked_for_is_refused() {
    let app = TestApp::spawn().await;
    let clerk = app.operator("clerk2", &["clerk"]).await;
    let resp = app
        .client
        .post(app.url("/api/v1/subscribers"))
        .bearer_auth(&clerk)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (status, body) = app
        .post(&clerk, "/api/v1/subscribers", json!({"kind": 7}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let resp = app
        .client
        .post(app.url("/api/v1/subscribers"))
        .bearer_auth(&clerk)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"kind": "person", "name": "x".repeat(200_000), "identifiers": []});
    let (status, body) = app.post(&clerk, "/api/v1/subscribers", huge).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    app.stop().await;
}

/// A bad query value or path segment, a method a route does not take, a route that does not
/// exist: each refused with its own code.
#[tokio::test]
async fn bad_queries_paths_and_methods_are_refused_with_their_codes() {
    let app = TestApp::spawn().await;
    let clerk = app.operator("clerk2", &["clerk"]).await;
    let (status, body) = app.get(&clerk, "/api/v1/requests?status=bogus").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, body) = app.get(&clerk, "/api/v1/certificates/not-hex").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_serial"))
    );
    let resp = app
        .client
        .delete(app.url("/api/v1/subscribers"))
        .bearer_auth(&clerk)
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (status, body) = app.get(&clerk, "/api/v1/nowhere").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    app.stop().await;
}

/// Refused attempts (an unknown token, a wrong role, bad input) are in the audit log, without
/// the tokens.
#[tokio::test]
async fn refused_attempts_are_audited_without_the_tokens() {
    let app = TestApp::spawn().await;
    let (_, approver) = app.clerk_and_approver().await;
    let clerk = app.operator("clerk2", &["clerk"]).await;
    let (status, _) = app
        .post(
            "vouch_not-a-real-token",
            "/api/v1/subscribers",
            subscriber(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(&approver, "/api/v1/subscribers", subscriber())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(&clerk, "/api/v1/subscribers", json!({"kind": 7}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&clerk, "/api/v1/certificates/not-hex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let audit = app.audit_entries().await;
    let text = serde_json::Value::Array(audit.clone()).to_string();
    assert!(audit.iter().any(|e| e["action"] == "auth.failed"));
    assert!(audit.iter().any(|e| e["action"] == "access.forbidden"));
    assert!(
        !text.contains(&clerk)
            && !text.contains(&approver)
            && !text.contains(&app.admin)
            && !text.contains("vouch_not-a-real-token")
    );
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_approvals_issue_exactly_one_certificate() {
    let app = Arc::new(TestApp::spawn().await);
    let clerk = app.operator("clerk1", &["clerk"]).await;
    let mut approvers = Vec::new();
    for i in 0..20 {
        approvers.push(app.operator(&format!("approver{i}"), &["approver"]).await);
    }
    for same_approver in [false, true] {
        let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
        let (_, req) = app
            .submit(&clerk, &sub, "person-signing", &p256_csr())
            .await;
        let id = req["id"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let app = app.clone();
            let token = if same_approver {
                approvers[0].clone()
            } else {
                approvers[i].clone()
            };
            let path = format!("/api/v1/requests/{id}/approve");
            tasks.push(tokio::spawn(
                async move { app.post_empty(&token, &path).await },
            ));
        }
        let mut issued = Vec::new();
        let mut conflicts = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                StatusCode::OK => issued.push(body["serial"].as_str().unwrap().to_string()),
                StatusCode::CONFLICT => conflicts += 1,
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(
            issued.len(),
            1,
            "exactly one approval wins (same approver: {same_approver})"
        );
        assert_eq!(conflicts, 19);
        assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 1);
        let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(shown["serial"].as_str().unwrap(), issued[0]);
    }
}

#[tokio::test]
async fn ca_outage_keeps_the_intent_and_reconciliation_issues_with_the_reserved_serial() {
    // The CA fails the first signing and then works.
    let (app, _) = test_ca::spawn(test_ca::Mode::DownOnce).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = &app.pending(&clerk).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("upstream_ca_error"))
    );
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "approved");
    assert!(shown.get("serial").is_none());
    // The intent is in the audit log with its reserved serial.
    let audit = app.audit_entries().await;
    let intent = audit
        .iter()
        .find(|e| e["action"] == "issuance.intent")
        .unwrap()
        .clone();
    let reserved = intent["details"]["serial"].as_str().unwrap().to_string();
    // A second approval cannot start another issuance.
    let other = app.operator("approver2", &["approver"]).await;
    let (status, _) = app
        .post_empty(&other, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "issued");
    assert_eq!(shown["serial"].as_str().unwrap(), reserved);
    // Reconciling again changes nothing.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(app.ra.certificate_count_for_request(id).await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_key_blocked_after_submission_cannot_be_approved() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let (_, req) = app
        .submit(
            &clerk,
            &sub,
            "person-signing",
            &csr_for(&key, MessageDigest::sha256(), "x"),
        )
        .await;
    let body = json!({"key_sha256": req["key_sha256"], "reason": "reported lost"});
    let (status, _) = app.post(&app.admin, "/api/v1/blocked-keys", body).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap());
    let (status, body) = app.post_empty(&approver, &path).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_key"))
    );
    assert_eq!(
        app.ra
            .certificate_count_for_request(req["id"].as_str().unwrap())
            .await
            .unwrap(),
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_key_blocked_while_issuance_is_pending_yields_a_revoked_certificate() {
    // The CA fails the first signing and then works.
    let (app, _) = test_ca::spawn(test_ca::Mode::DownOnce).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = &app.pending(&clerk).await;
    let (status, _) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (_, req) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    let body = json!({"key_sha256": req["key_sha256"], "reason": "compromised"});
    let (status, _) = app.post(&app.admin, "/api/v1/blocked-keys", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    let (_, cert) = app
        .get(
            &clerk,
            &format!("/api/v1/certificates/{}", req["serial"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (cert["status"].as_str(), cert["revocation_reason"].as_str()),
        (Some("revoked"), Some("keyCompromise"))
    );
    app.stop().await;
}
