//! The enrolment flow over HTTP: vet, request, approve (four eyes), issue, fetch.

mod common;

use common::*;
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use vouch::clock::ManualClock;

#[tokio::test]
async fn vet_request_approve_issue_fetch() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;

    let (status, sub_body) = app.get(&clerk, &format!("/api/v1/subscribers/{sub}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sub_body["name"], "Li Wei");
    assert_eq!(sub_body["identifiers"][0]["number"], "110101199003070011");
    assert_eq!(sub_body["identifiers"][0]["valid"], true);

    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    assert_eq!(req["status"], "pending");
    let id = req["id"].as_str().unwrap();

    let (_, pending) = app.get(&approver, "/api/v1/requests?status=pending").await;
    assert!(
        pending["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id),
        "{pending}"
    );

    let (status, approved) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "issued");
    let serial = approved["serial"].as_str().unwrap();
    assert!(
        serial.len() >= 16
            && serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let (_, fetched) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(fetched["status"], "issued");
    assert_eq!(fetched["serial"], serial);

    let (status, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(cert["serial"], serial);
    assert_eq!(cert["status"], "valid");
    for field in ["subject", "not_before", "not_after", "pem", "chain_pem"] {
        assert!(cert[field].is_string(), "{field} missing: {cert}");
    }
    let x = X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(
        hex::encode(x.serial_number().to_bn().unwrap().to_vec()),
        serial
    );
    let chain = X509::stack_from_pem(cert["chain_pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(chain.len(), 2, "issuing CA then root");
    assert!(
        x.verify(&chain[0].public_key().unwrap()).unwrap(),
        "signed by the first chain entry"
    );
    assert!(
        chain[0].verify(&chain[1].public_key().unwrap()).unwrap(),
        "issuing CA signed by root"
    );

    // The public CA endpoints serve the same certificates, without a token.
    let root = app
        .client
        .get(app.url("/ca/root.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(
        X509::from_pem(&root.bytes().await.unwrap())
            .unwrap()
            .to_der()
            .unwrap(),
        chain[1].to_der().unwrap()
    );
    let missing = app
        .client
        .get(app.url("/ca/nope.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn subject_comes_from_the_vetted_record_not_the_csr() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let csr = csr_for(
        &ec_key(openssl::nid::Nid::X9_62_PRIME256V1),
        openssl::hash::MessageDigest::sha256(),
        "Mallory the Admin",
    );
    let serial = app.issue(&clerk, &approver, &csr).await;
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let x = X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
    let cns: Vec<String> = x
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .map(|e| String::from_utf8(e.data().as_slice().to_vec()).unwrap())
        .collect();
    assert_eq!(cns, vec!["Li Wei".to_string()]);
    let emails: Vec<String> = x
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|n| n.email().map(str::to_string))
        .collect();
    assert_eq!(emails, vec!["person@example.org".to_string()]);
    app.stop().await;
}

#[tokio::test]
async fn organisation_profile_certifies_registration_number() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let (status, body) = app
        .post(
            &clerk,
            "/api/v1/subscribers",
            json!({"kind": "organisation", "name": "Acme Permits Ltd",
                   "identifiers": [{"type": "business-licence", "number": "91310000MA1FL0XX1Y",
                                     "issuer": "Market Regulation Bureau", "valid_until": "2099-01-01"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let org = body["id"].as_str().unwrap();
    // A person profile does not fit an organisation.
    let (status, body) = app.submit(&clerk, org, "person-signing", &p256_csr()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("profile_not_for_subscriber")
        )
    );
    let (status, req) = app
        .submit(&clerk, org, "organisation-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    assert_eq!(
        req["subject"],
        "serialNumber=91310000MA1FL0XX1Y,CN=Acme Permits Ltd"
    );
    let (_, done) = app
        .post_empty(
            &approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(done["status"], "issued", "{done}");
    app.stop().await;
}

#[tokio::test]
async fn search_finds_by_name_and_identifier() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let a = app.person(&clerk, "Zhang San", "2099-12-31").await;
    app.person(&clerk, "Wang Wu", "2099-12-31").await;
    let (status, found) = app.get(&approver, "/api/v1/subscribers?q=zhang").await;
    assert_eq!(status, StatusCode::OK);
    let ids = subscriber_ids(&found);
    assert_eq!(ids, vec![json!(a)]);
    let (_, by_number) = app.get(&clerk, "/api/v1/subscribers?q=19900307").await;
    assert_eq!(by_number["subscribers"].as_array().unwrap().len(), 2);
    // Non-ASCII capitals are found as typed (and case-insensitively where the engine folds them).
    let elodie = app.person(&clerk, "Élodie Martin", "2099-12-31").await;
    let (_, found) = app.get(&clerk, "/api/v1/subscribers?q=%C3%89lo").await;
    let ids = subscriber_ids(&found);
    assert_eq!(ids, vec![json!(elodie)]);
    // LIKE wildcards in the query are literal.
    let (_, none) = app.get(&clerk, "/api/v1/subscribers?q=%25").await;
    assert_eq!(none["subscribers"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn rejection_is_final() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let id = &app.pending(&clerk).await;
    let (status, body) = app
        .post(
            &approver,
            &format!("/api/v1/requests/{id}/reject"),
            json!({"reason": "photo does not match"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reject_reason"], "photo does not match");
    let other = app.operator("approver2", &["approver"]).await;
    let (status, body) = app
        .post_empty(&other, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_pending"))
    );
    let (status, _) = app
        .post(
            &other,
            &format!("/api/v1/requests/{id}/reject"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.ra.certificate_count_for_request(id).await.unwrap(), 0);
    app.stop().await;
}

const TWO_APPROVALS: &str = r#"
name = "person-signing-dual"
subscriber_kind = "person"
validity_days = 365
key_types = ["ec-p256"]
required_approvals = 2
request_expiry_hours = 24
key_usage = ["digitalSignature", "nonRepudiation"]
subject = ["common_name"]
"#;

#[tokio::test]
async fn m_of_n_approval_counts_each_approver_once() {
    let app = TestApp::spawn_with(Options {
        extra_profiles: vec![("dual.toml".into(), TWO_APPROVALS.into())],
        ..Options::default()
    })
    .await;
    let (clerk, a1) = app.clerk_and_approver().await;
    let a2 = app.operator("approver2", &["approver"]).await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing-dual", &p256_csr())
        .await;
    assert_eq!(req["required_approvals"], 2);
    let id = req["id"].as_str().unwrap();
    let path = format!("/api/v1/requests/{id}/approve");
    let (status, first) = app.post_empty(&a1, &path).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    assert_eq!(first["approvals"].as_array().unwrap().len(), 1);
    let (status, again) = app.post_empty(&a1, &path).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_approved"))
    );
    let (status, second) = app.post_empty(&a2, &path).await;
    assert_eq!(
        (status, second["status"].as_str()),
        (StatusCode::OK, Some("issued")),
        "{second}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pending_requests_expire() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    let id = req["id"].as_str().unwrap().to_string();
    let (_, req2) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    let id2 = req2["id"].as_str().unwrap().to_string();
    // person-signing requests expire after 168 hours.
    clock.advance(time::Duration::hours(169));
    let (_, shown) = app.get(&clerk, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["status"], "expired");
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("request_expired"))
    );
    // The sweep persists expiry for the others.
    assert_eq!(app.ra.expire_overdue().await.unwrap(), 1);
    let (_, pending) = app.get(&approver, "/api/v1/requests?status=pending").await;
    assert!(
        pending["requests"].as_array().unwrap().is_empty(),
        "{pending}"
    );
    let (_, expired) = app.get(&approver, "/api/v1/requests?status=expired").await;
    let ids: Vec<_> = expired["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&id) && ids.contains(&id2), "{expired}");
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn evidence_that_lapses_before_approval_blocks_issuance() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", &date_from_today(1)).await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    clock.advance(time::Duration::days(3));
    let (status, body) = app
        .post_empty(
            &approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("evidence_expired")),
        "{body}"
    );
    let (_, shown) = app
        .get(
            &clerk,
            &format!("/api/v1/requests/{}", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(shown["status"], "pending");
    assert!(shown["approvals"].as_array().unwrap().is_empty());
    // The clerk records the renewed document; now the approval goes through.
    let renewed = json!({"type": "national-id", "number": "110101199003070011",
                         "issuer": "Public Security Bureau", "valid_until": "2099-12-31"});
    let (status, sub_view) = app
        .post(
            &clerk,
            &format!("/api/v1/subscribers/{sub}/identifiers"),
            renewed,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub_view}");
    assert_eq!(sub_view["identifiers"].as_array().unwrap().len(), 2);
    assert_eq!(sub_view["identifiers"][0]["valid"], false);
    assert_eq!(sub_view["identifiers"][1]["valid"], true);
    let path = format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap());
    let (status, body) = app.post_empty(&approver, &path).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("issued")),
        "{body}"
    );
    app.stop().await;
}

/// The ids in a `GET /api/v1/subscribers` answer, in order.
fn subscriber_ids(found: &Value) -> Vec<Value> {
    found["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect()
}

#[tokio::test]
async fn certificates_are_searched_by_serial_name_and_identifier_over_the_api() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let auditor = app.operator("auditor-api", &["auditor"]).await;
    let verifier = app.operator("verifier-api", &["verifier"]).await;
    let mut serials = Vec::new();
    for _ in 0..3 {
        // A second apart: newest first is then the order they were issued in.
        clock.advance(time::Duration::seconds(1));
        serials.push(app.issue(&clerk, &approver, &p256_csr()).await);
    }
    // An exact serial, as people paste it.
    let colons = serials[0]
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let (status, exact) = app
        .get(&auditor, &format!("/api/v1/certificates?q={colons}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{exact}");
    assert_eq!(exact["exact"], json!(serials[0]));
    assert_eq!(exact["certificates"][0]["serial"], json!(serials[0]));
    // By name, two a page, newest first; the pages together hold each certificate once.
    let (_, first) = app
        .get(&clerk, "/api/v1/certificates?q=li+wei&limit=2")
        .await;
    let page = |v: &Value| -> Vec<String> {
        v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["serial"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        page(&first),
        vec![serials[2].clone(), serials[1].clone()],
        "{first}"
    );
    assert_eq!(first["certificates"][0]["status"], "valid");
    assert_eq!(first["certificates"][0]["subscriber_name"], "Li Wei");
    let next = first["next"].as_str().unwrap();
    let (_, second) = app
        .get(
            &clerk,
            &format!("/api/v1/certificates?q=li+wei&limit=2&before={next}"),
        )
        .await;
    assert_eq!(page(&second), vec![serials[0].clone()]);
    assert!(second.get("next").is_none(), "{second}");
    // By a part of the evidence number, and by e-mail address.
    for q in ["19900307", "person%40example.org"] {
        let (_, found) = app
            .get(&clerk, &format!("/api/v1/certificates?q={q}"))
            .await;
        assert_eq!(page(&found).len(), 3, "{q}: {found}");
    }
    let (_, none) = app.get(&clerk, "/api/v1/certificates?q=nobody").await;
    assert_eq!(page(&none).len(), 0);
    let (status, body) = app
        .get(
            &clerk,
            &format!("/api/v1/certificates?q={}", "x".repeat(129)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_field");
    let (status, _) = app.get(&verifier, "/api/v1/certificates?q=li").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
