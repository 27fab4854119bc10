//! Error shapes on every route, the Bearer scheme and failed-login limits.

mod common;

use common::{split, TestApp};
use reqwest::{header, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use vouch::clock::ManualClock;
use vouch::ra::operators::{LOGIN_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW};

fn assert_json_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn every_error_is_json_and_ocsp_answers_in_ocsp() {
    let app = TestApp::spawn().await;
    let big = vec![b'a'; 70 * 1024];
    // Over the 64 KiB body limit, on routes that read raw bytes.
    let resp = app
        .client
        .post(app.url("/api/v1/revocations/by-key"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let resp = app
        .client
        .post(app.url("/api/v1/certificates/01/hold"))
        .bearer_auth(&app.admin)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // The self-revocation limit is the documented 32 KiB, and going over it is a size error.
    let resp = app
        .client
        .post(app.url("/api/v1/revocations/by-key"))
        .body(vec![b'a'; 40 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // A path parameter that is not UTF-8.
    let (status, body) = app.get(&app.admin, "/api/v1/requests/%FF%FE").await;
    assert_json_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // A wrong method on a PKI endpoint.
    let resp = app.client.delete(app.url("/ocsp")).send().await.unwrap();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{resp:?}"
    );
    // OCSP over the limit: an OCSP answer, malformedRequest (RFC 6960 4.2.1), as OpenSSL reads it.
    let resp = app
        .client
        .post(app.url("/ocsp"))
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/ocsp-response"
    );
    let der = resp.bytes().await.unwrap();
    let parsed = openssl::ocsp::OcspResponse::from_der(&der).unwrap();
    assert_eq!(
        parsed.status(),
        openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    for value in [
        format!("BEARER {}", app.admin),
        format!("bearer {}", app.admin),
        format!("Bearer   {}", app.admin),
    ] {
        let resp = app
            .client
            .get(app.url("/api/v1/operators"))
            .header(header::AUTHORIZATION, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{value}");
    }
    let resp = app
        .client
        .get(app.url("/api/v1/operators"))
        .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let (status, body) = split(resp).await;
    assert_json_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    app.stop().await;
}

async fn get_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/operators"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_logins_are_limited_per_source_and_audited_once_per_window() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let guess = "vouch_guessed-token-that-must-never-be-logged";
    for _ in 0..LOGIN_FAILURES_ALLOWED {
        assert_eq!(
            get_with(&app, guess).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Over the limit: refused without looking at the token, even a good one.
    for token in [guess, app.admin.as_str()] {
        let resp = get_with(&app, token).await;
        let retry: u64 = resp.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (status, body) = split(resp).await;
        assert_json_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    // The window closes; the next failure flushes the last window's count as one row.
    clock.advance(LOGIN_FAILURE_WINDOW + time::Duration::seconds(1));
    assert_eq!(get_with(&app, &app.admin).await.status(), StatusCode::OK);
    assert_eq!(
        get_with(&app, "garbage").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let audit = app.audit_entries().await;
    let failed: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0]["details"]["failures"], 1);
    assert_eq!(failed[0]["details"]["source"], "127.0.0.1");
    assert_eq!(failed[0]["details"]["reason"], "unknown token");
    let summary = &failed[1]["details"];
    assert_eq!(summary["failures"], LOGIN_FAILURES_ALLOWED - 1, "{summary}");
    assert_eq!(summary["refused"], 2, "{summary}");
    assert_eq!(summary["source"], "127.0.0.1");
    assert!(summary["since"].is_string() && summary["until"].is_string());
    assert_eq!(failed[2]["details"]["reason"], "malformed token");
    let text = Value::Array(audit).to_string();
    assert!(!text.contains("guessed-token"), "a token reached the log");
    app.stop().await;
}
