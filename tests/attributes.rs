//! RFC 5755 attribute certificates end to end: the attribute authority's certificate, grants (at
//! once and with four eyes), every refusal as a clear 4xx, the AC read by Bouncy Castle and by
//! Python asn1crypto + cryptography, an AC that Bouncy Castle made read by Vouch's checker, the AC
//! CRL read by OpenSSL, and an identity certificate's revocation, hold and release carried over to
//! its ACs. Runs on SQLite, and on PostgreSQL when the suite does.

mod common;

use base64::Engine;
use common::ac_tools::{bc_check, bc_make, py_check};
use common::{p256_csr, run, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use vouch::x509::ac::{self, AcProblem, Expectation};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn in_days(days: i64) -> String {
    rfc3339(OffsetDateTime::now_utc() + Duration::days(days))
}

struct Cast {
    aa: String,
    aa2: String,
    revoker: String,
    holder: String,
}

/// An `aa` operator, a second one, a revoker, and a person-signing certificate to hold roles.
async fn cast(app: &TestApp) -> Cast {
    let (clerk, approver) = app.clerk_and_approver().await;
    Cast {
        aa: app.operator("aa1", &["aa"]).await,
        aa2: app.operator("aa2", &["aa"]).await,
        revoker: app.operator("revoker1", &["revoker"]).await,
        holder: app.issue(&clerk, &approver, &p256_csr()).await,
    }
}

async fn grant(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post(token, "/api/v1/attribute-certificates", body)
        .await
}

fn approver_grant(holder: &str) -> Value {
    json!({"holder_serial": holder, "roles": ["approver"], "groups": ["planning-bureau"],
           "targets": ["permits"], "not_after": in_days(30)})
}

async fn text(app: &TestApp, path: &str) -> String {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

async fn holder_pem(app: &TestApp, token: &str, serial: &str) -> String {
    let (status, body) = app
        .get(token, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["pem"].as_str().unwrap().to_string()
}

fn der_of(body: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(body["der"].as_str().unwrap())
        .unwrap()
}

fn openssl(args: &[&str]) -> String {
    let (ok, out) = run(Command::new("openssl").args(args));
    assert!(ok, "openssl {args:?}: {out}");
    out
}

#[tokio::test]
async fn a_granted_role_reads_the_same_in_bouncy_castle_asn1crypto_and_vouch() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (status, body) = grant(&app, &c.aa, approver_grant(&c.holder)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "valid");
    assert_eq!(body["holder_serial"], c.holder.as_str());
    assert_eq!(body["roles"], json!(["approver"]));
    assert_eq!(body["groups"], json!(["planning-bureau"]));
    assert_eq!(body["targets"], json!(["permits"]));
    assert_eq!(body["profile"], "application-role");
    assert!(body["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN ATTRIBUTE CERTIFICATE-----\n"));
    let der = der_of(&body);
    let serial = body["serial"].as_str().unwrap().to_string();

    // The AA certificate: issued by the root, not a CA, digitalSignature only, both critical;
    // aa-chain.pem is the AA then the root.
    let dir = tempfile::tempdir().unwrap();
    let aa_pem = text(&app, "/ca/aa.pem").await;
    let chain = text(&app, "/ca/aa-chain.pem").await;
    let root = text(&app, "/ca/root.pem").await;
    assert_eq!(chain, format!("{aa_pem}{root}"));
    let (aa_path, root_path) = (dir.path().join("aa.pem"), dir.path().join("root.pem"));
    std::fs::write(&aa_path, &aa_pem).unwrap();
    std::fs::write(&root_path, &root).unwrap();
    let verified = openssl(&[
        "verify",
        "-CAfile",
        root_path.to_str().unwrap(),
        aa_path.to_str().unwrap(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    let shown = openssl(&["x509", "-in", aa_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        shown.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
        "{shown}"
    );
    assert!(
        shown.contains("X509v3 Key Usage: critical\n                Digital Signature, CRL Sign\n"),
        "{shown}"
    );
    assert!(shown.contains("Vouch Attribute Authority"), "{shown}");
    // pkilint finds nothing wrong with the AA certificate (it has no linter for ACs themselves).
    let (_, lint) = run(Command::new(common::venv_bin("lint_pkix_cert"))
        .arg("lint")
        .arg(&aa_path));
    assert!(
        !lint.contains("(ERROR)") && !lint.contains("(FATAL)") && !lint.contains("Traceback"),
        "{lint}"
    );

    // OpenSSL reads the DER strictly, and it round-trips byte for byte.
    let ac_path = dir.path().join("ac.der");
    std::fs::write(&ac_path, &der).unwrap();
    let parsed = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        ac_path.to_str().unwrap(),
    ]);
    assert!(parsed.contains("GENERALIZEDTIME"), "{parsed}");
    assert!(
        parsed.contains(":X509v3 AC Targeting") || parsed.contains(":2.5.29.55"),
        "{parsed}"
    );
    let again = dir.path().join("again.der");
    openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        ac_path.to_str().unwrap(),
        "-out",
        again.to_str().unwrap(),
        "-noout",
    ]);
    assert_eq!(std::fs::read(&again).unwrap(), der);

    let holder = holder_pem(&app, &c.aa, &c.holder).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let base = app.base.clone();
    let (bc, bc_before, py) = {
        let (der, aa_pem, holder) = (der.clone(), aa_pem.clone(), holder.clone());
        tokio::task::spawn_blocking(move || {
            (
                bc_check(&der, &aa_pem, &holder, now + 60),
                bc_check(&der, &aa_pem, &holder, now - 3600),
                py_check(&der, &aa_pem),
            )
        })
        .await
        .unwrap()
    };
    // Bouncy Castle: signature under the AA certificate, the holder, validity, role and target.
    assert_eq!(bc["version"], "2");
    assert_eq!(bc["serial"], serial);
    assert_eq!(bc["signature"], "valid", "{bc:?}");
    assert_eq!(bc["holder_match"], "true", "{bc:?}");
    assert_eq!(bc["valid_at"], "true");
    assert_eq!(bc_before["valid_at"], "false");
    assert_eq!(bc["roles"], "urn:vouch:role:approver");
    assert_eq!(bc["groups"], "planning-bureau");
    assert_eq!(bc["targets"], "urn:vouch:app:permits");
    assert_eq!(bc["target_info_critical"], "true");
    assert_eq!(bc["no_rev_avail"], "false");
    assert_eq!(bc["crl_urls"], format!("{base}/crl/aa.crl"));
    assert_eq!(bc["critical_extensions"], "2.5.29.55");
    // asn1crypto parses every field; cryptography verifies the signature with the AA key.
    assert_eq!(py["signature_valid"], true, "{py}");
    assert_eq!(py["version"], 1);
    assert_eq!(py["serial"], serial.as_str());
    assert_eq!(
        py["holder"]["base_certificate_id"]["serial"],
        c.holder.as_str()
    );
    assert_eq!(py["issuer"]["form"], "v2_form");
    assert_eq!(py["signature_algorithms_match"], true);
    assert_eq!(py["roles"], json!(["urn:vouch:role:approver"]));
    assert_eq!(py["groups"], json!(["planning-bureau"]));
    assert_eq!(py["targets"], json!(["urn:vouch:app:permits"]));
    assert_eq!(py["crl_urls"], json!([format!("{base}/crl/aa.crl")]));
    assert_eq!(
        py["authority_key_identifier"],
        py["aa_subject_key_identifier"]
    );
    assert!(py["not_after_text"].as_str().unwrap().ends_with('Z'));

    // Vouch's own checker agrees, and says why where it must not.
    let holder_der = openssl::x509::X509::from_pem(holder.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let aa_der = openssl::x509::X509::from_pem(aa_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let at = OffsetDateTime::now_utc() + Duration::minutes(1);
    let expect = |target| Expectation {
        at,
        target_uri: target,
        revoked_at: None,
    };
    let good = ac::check(
        &der,
        &holder_der,
        &aa_der,
        expect(Some("urn:vouch:app:permits")),
    );
    assert!(good.is_good(), "{:?}", good.problems);
    let elsewhere = ac::check(
        &der,
        &holder_der,
        &aa_der,
        expect(Some("urn:vouch:app:payroll")),
    );
    assert_eq!(elsewhere.problems, vec![AcProblem::TargetMismatch]);
    let wrong_holder = ac::check(&der, &aa_der, &aa_der, expect(None));
    assert_eq!(wrong_holder.problems, vec![AcProblem::HolderMismatch]);

    // Read back by serial and by holder, role and target.
    let (status, one) = app
        .get(&c.aa, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["der"], body["der"]);
    for query in [
        format!("holder_serial={}", c.holder),
        "role=approver".to_string(),
        "role=approver&target=permits".to_string(),
    ] {
        let (status, list) = app
            .get(&c.aa, &format!("/api/v1/attribute-certificates?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(
            list["attribute_certificates"][0]["serial"],
            serial.as_str(),
            "{query}"
        );
    }
    let (_, none) = app
        .get(
            &c.aa,
            "/api/v1/attribute-certificates?role=approver&target=office-automation",
        )
        .await;
    assert_eq!(none["attribute_certificates"], json!([]));
    let auditor = app.operator("auditor1", &["auditor"]).await;
    let (status, _) = app
        .get(
            &auditor,
            &format!("/api/v1/attribute-certificates/{serial}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let entries = app.audit_entries().await;
    assert!(entries
        .iter()
        .any(|e| e["action"] == "attribute.issued" && e["target"] == serial.as_str()));
    assert!(entries.iter().any(|e| e["action"] == "ca.aa_issued"));
    app.stop().await;
}

#[tokio::test]
async fn an_ac_bouncy_castle_made_is_read_by_vouchs_checker() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let aa_key = std::fs::read_to_string(app.data.ca_dir().join("aa.key")).unwrap();
    let aa_pem = text(&app, "/ca/aa.pem").await;
    let holder = holder_pem(&app, &c.aa, &c.holder).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let der = {
        let (aa_key, aa_pem, holder) = (aa_key.clone(), aa_pem.clone(), holder.clone());
        tokio::task::spawn_blocking(move || {
            bc_make(
                &aa_key,
                &aa_pem,
                &holder,
                "urn:vouch:role:approver",
                "urn:vouch:app:permits",
                now - 60,
                now + 3600,
                "1a2b3c",
            )
        })
        .await
        .unwrap()
    };
    let holder_der = openssl::x509::X509::from_pem(holder.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let aa_der = openssl::x509::X509::from_pem(aa_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let at = OffsetDateTime::now_utc();
    let expect = Expectation {
        at,
        target_uri: Some("urn:vouch:app:permits"),
        revoked_at: None,
    };
    let r = ac::check(&der, &holder_der, &aa_der, expect);
    assert!(r.is_good(), "{:?}", r.problems);
    let read = r.ac.unwrap();
    assert_eq!(read.serial_hex(), "1a2b3c");
    assert_eq!(read.role_uris, vec!["urn:vouch:role:approver"]);
    assert!(read.no_rev_avail);
    assert_eq!(
        ac::AttributeNames::default().role_of(&read.role_uris[0]),
        Some("approver")
    );
    // Tampered: the last signature octet, then a byte of the role inside the signed part.
    let mut sig = der.clone();
    *sig.last_mut().unwrap() ^= 0x01;
    assert!(ac::check(&sig, &holder_der, &aa_der, expect)
        .problems
        .contains(&AcProblem::Signature));
    let mut role = der.clone();
    let at_role = role.windows(8).position(|w| w == b"approver").unwrap();
    role[at_role] = b'A';
    assert_eq!(
        ac::check(&role, &holder_der, &aa_der, expect).problems,
        vec![AcProblem::Signature]
    );
    // Too late and too early.
    let late = Expectation {
        at: at + Duration::hours(2),
        ..expect
    };
    assert_eq!(
        ac::check(&der, &holder_der, &aa_der, late).problems,
        vec![AcProblem::Expired]
    );
    let early = Expectation {
        at: at - Duration::hours(1),
        ..expect
    };
    assert_eq!(
        ac::check(&der, &holder_der, &aa_der, early).problems,
        vec![AcProblem::NotYetValid]
    );
    app.stop().await;
}

#[tokio::test]
async fn every_bad_grant_is_a_clear_4xx() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let clerk = app.operator("clerk2", &["clerk"]).await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut b = approver_grant(&c.holder);
        edit(&mut b);
        b
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            with(&|b| b["holder_serial"] = json!("1234abcd")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            with(&|b| b["holder_serial"] = json!("not hex")),
            StatusCode::BAD_REQUEST,
            "invalid_serial",
        ),
        (
            with(&|b| b["roles"] = json!([])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["targets"] = json!([])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["roles"] = json!(["superuser"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "role_not_allowed",
        ),
        (
            with(&|b| b["targets"] = json!(["payroll"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_not_allowed",
        ),
        (
            with(&|b| b["roles"] = json!(["Approver"])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["groups"] = json!(["a\u{0}b"])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["not_after"] = json!(in_days(400))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lifetime_too_long",
        ),
        (
            with(&|b| b["not_after"] = json!(in_days(800))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lifetime_too_long",
        ),
        (
            with(&|b| b["not_after"] = json!("next week")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["not_after"] = json!(in_days(-1))),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["not_before"] = json!(in_days(-2))),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            with(&|b| b["profile"] = json!("person-signing")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_profile",
        ),
        (
            with(&|b| b["profile"] = json!("short-lived-role")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lifetime_too_long",
        ),
        (
            with(&|b| b["colour"] = json!("red")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = grant(&app, &c.aa, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str().unwrap_or("")),
            (status, code),
            "{body} -> {answer}"
        );
        assert!(
            !answer["message"].as_str().unwrap_or("").is_empty(),
            "{answer}"
        );
    }
    // A clerk may not grant; nor may a revoker.
    for token in [&clerk, &c.revoker] {
        let (got, answer) = grant(&app, token, approver_grant(&c.holder)).await;
        assert_eq!(got, StatusCode::FORBIDDEN, "{answer}");
    }
    // Nothing was issued, and the refusals were audited.
    let (_, list) = app
        .get(
            &c.aa,
            &format!("/api/v1/attribute-certificates?holder_serial={}", c.holder),
        )
        .await;
    assert_eq!(list["attribute_certificates"], json!([]));
    let entries = app.audit_entries().await;
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "attribute.refused")
            .count()
            >= 10
    );
    app.stop().await;
}

#[tokio::test]
async fn a_four_eyes_grant_needs_another_aa_operator() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let mut body = approver_grant(&c.holder);
    body["profile"] = json!("application-role-approved");
    let (status, pending) = grant(&app, &c.aa, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["status"], "pending");
    let id = pending["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("grant_"));
    // The granter cannot approve their own grant.
    let (status, refused) = app
        .post_empty(&c.aa, &format!("/api/v1/attribute-grants/{id}/approve"))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval"))
    );
    let (_, listed) = app.get(&c.aa2, "/api/v1/attribute-grants").await;
    assert_eq!(listed["grants"][0]["id"], id.as_str());
    // Another aa operator approves: the AC is issued.
    let (status, granted) = app
        .post_empty(&c.aa2, &format!("/api/v1/attribute-grants/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["status"], "granted");
    let serial = granted["serial"].as_str().unwrap();
    let (status, acv) = app
        .get(&c.aa, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{acv}");
    assert_eq!(acv["grant_id"], id.as_str());
    // Once decided, it stays decided.
    let (status, again) = app
        .post_empty(&c.aa2, &format!("/api/v1/attribute-grants/{id}/approve"))
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_pending"))
    );

    // A second grant is rejected, with its reason kept.
    let (_, second) = grant(&app, &c.aa, body.clone()).await;
    let id2 = second["id"].as_str().unwrap();
    let (status, rejected) = app
        .post(
            &c.aa2,
            &format!("/api/v1/attribute-grants/{id2}/reject"),
            json!({"reason": "not in the bureau"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "not in the bureau");

    // A third waits while the holder is revoked: its approval fails, audited, and no AC exists.
    let (_, third) = grant(&app, &c.aa, body).await;
    let id3 = third["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &c.revoker,
            &format!("/api/v1/certificates/{}/revoke", c.holder),
            json!({"reason": "affiliationChanged"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, failed) = app
        .post_empty(&c.aa2, &format!("/api/v1/attribute-grants/{id3}/approve"))
        .await;
    assert_eq!(
        (status, failed["error"].as_str()),
        (StatusCode::CONFLICT, Some("holder_not_valid")),
        "{failed}"
    );
    let (_, shown) = app
        .get(&c.aa, &format!("/api/v1/attribute-grants/{id3}"))
        .await;
    assert_eq!(shown["status"], "failed", "{shown}");
    let entries = app.audit_entries().await;
    for action in [
        "attribute.grant_requested",
        "attribute.grant_approved",
        "attribute.grant_rejected",
        "attribute.grant_failed",
    ] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
    app.stop().await;
}

async fn ac_crl_text(app: &TestApp, dir: &std::path::Path) -> String {
    let der = app
        .client
        .get(app.url("/crl/aa.crl"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = dir.join("aa.crl");
    std::fs::write(&path, &der).unwrap();
    let aa = dir.join("aa.pem");
    std::fs::write(&aa, text(app, "/ca/aa.pem").await).unwrap();
    // OpenSSL reads it and checks its signature with the AA certificate.
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-CAfile",
        aa.to_str().unwrap(),
        "-noout",
        "-text",
    ])
}

async fn status_of(app: &TestApp, token: &str, serial: &str) -> String {
    let (_, b) = app
        .get(token, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    b["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn acs_follow_their_holder_and_the_ac_crl_says_so() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = grant(&app, &c.aa, approver_grant(&c.holder)).await;
    let mut other = approver_grant(&c.holder);
    other["roles"] = json!(["reviewer"]);
    other["targets"] = json!(["office-automation"]);
    let (_, second) = grant(&app, &c.aa, other).await;
    let mut short = approver_grant(&c.holder);
    short["profile"] = json!("short-lived-role");
    short["not_after"] = json!(rfc3339(OffsetDateTime::now_utc() + Duration::hours(8)));
    let (status, third) = grant(&app, &c.aa, short).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(third["revocation"], "no-rev-avail");
    let serials: Vec<String> = [&first, &second, &third]
        .iter()
        .map(|b| b["serial"].as_str().unwrap().to_string())
        .collect();
    let upper = |s: &str| s.to_uppercase();

    let crl = ac_crl_text(&app, dir.path()).await;
    assert!(
        crl.contains("verify OK") || !crl.contains("verify failure"),
        "{crl}"
    );
    assert!(crl.contains("Only Attribute Certificates"), "{crl}");
    assert!(crl.contains("No Revoked Certificates"), "{crl}");
    let number = |text: &str| -> u64 {
        let at = text.find("X509v3 CRL Number:").unwrap();
        text[at..].lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let n0 = number(&crl);

    // Hold the holder: its ACs are held with it, in the same transaction.
    let (status, _) = app
        .post(
            &c.revoker,
            &format!("/api/v1/certificates/{}/hold", c.holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for s in &serials {
        assert_eq!(status_of(&app, &c.aa, s).await, "on-hold");
    }
    let crl = ac_crl_text(&app, dir.path()).await;
    assert!(number(&crl) > n0);
    assert!(
        crl.contains(&upper(&serials[0])) && crl.contains(&upper(&serials[1])),
        "{crl}"
    );
    assert!(
        !crl.contains(&upper(&serials[2])),
        "a noRevAvail AC is not listed: {crl}"
    );
    assert!(crl.contains("Certificate Hold"), "{crl}");
    // No grant while the holder is on hold.
    let (status, body) = grant(&app, &c.aa, approver_grant(&c.holder)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("holder_not_valid"))
    );

    // Release: they are valid again, and off the CRL.
    let (status, _) = app
        .post(
            &c.revoker,
            &format!("/api/v1/certificates/{}/release", c.holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for s in &serials {
        assert_eq!(status_of(&app, &c.aa, s).await, "valid");
    }
    assert!(ac_crl_text(&app, dir.path())
        .await
        .contains("No Revoked Certificates"));

    // One AC revoked on its own; then the holder revoked: the others follow, the first stays.
    let (status, revoked) = app
        .post(
            &c.revoker,
            &format!("/api/v1/attribute-certificates/{}/revoke", serials[0]),
            json!({"reason": "privilegeWithdrawn"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revocation_reason"], "privilegeWithdrawn");
    let (status, again) = app
        .post(
            &c.revoker,
            &format!("/api/v1/attribute-certificates/{}/revoke", serials[0]),
            json!({"reason": "privilegeWithdrawn"}),
        )
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_revoked"))
    );
    let (status, _) = app
        .post(
            &c.aa,
            &format!("/api/v1/attribute-certificates/{}/revoke", serials[1]),
            json!({"reason": "privilegeWithdrawn"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "revoking takes the revoker role"
    );
    let revoke_holder = |reason: &'static str| {
        let (app, revoker, holder) = (&app, c.revoker.clone(), c.holder.clone());
        async move {
            let path = format!("/api/v1/certificates/{holder}/revoke");
            let (status, _) = app.post(&revoker, &path, json!({ "reason": reason })).await;
            assert_eq!(status, StatusCode::OK, "{reason}");
        }
    };
    let reason_of = |serial: String| {
        let (app, aa) = (&app, c.aa.clone());
        async move {
            let path = format!("/api/v1/attribute-certificates/{serial}");
            let (_, view) = app.get(&aa, &path).await;
            view["revocation_reason"].as_str().unwrap().to_string()
        }
    };
    revoke_holder("superseded").await;
    for s in &serials {
        assert_eq!(status_of(&app, &c.aa, s).await, "revoked");
    }
    assert_eq!(reason_of(serials[1].clone()).await, "superseded");
    // The holder's key turns out compromised: its ACs take the reason with it.
    revoke_holder("keyCompromise").await;
    for s in &serials {
        assert_eq!(reason_of(s.clone()).await, "keyCompromise", "{s}");
    }
    let crl = ac_crl_text(&app, dir.path()).await;
    // Every listed AC now says keyCompromise (the noRevAvail one is not listed).
    assert_eq!(crl.matches("Key Compromise").count(), 2, "{crl}");
    assert!(
        !crl.contains("Superseded") && !crl.contains("Privilege Withdrawn"),
        "{crl}"
    );
    let entries = app.audit_entries().await;
    for action in [
        "attribute.held",
        "attribute.released",
        "attribute.revoked",
        "attribute.revocation_updated",
    ] {
        assert!(
            entries.iter().filter(|e| e["action"] == action).count() >= 2,
            "{action}"
        );
    }
    let with_holder = entries
        .iter()
        .filter(|e| {
            e["action"] == "attribute.revoked" && e["details"]["with_holder"] == c.holder.as_str()
        })
        .count();
    assert_eq!(with_holder, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_grant_left_pending_expires_and_can_no_longer_be_approved() {
    let clock = vouch::clock::ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: std::sync::Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    let mut body = approver_grant(&c.holder);
    body["profile"] = json!("application-role-approved");
    let (status, pending) = grant(&app, &c.aa, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let id = pending["id"].as_str().unwrap().to_string();
    let (_, untouched) = grant(&app, &c.aa, body).await;
    let untouched = untouched["id"].as_str().unwrap().to_string();
    // The profile's grant_expiry_hours is 168.
    clock.advance(Duration::hours(169));
    let (status, refused) = app
        .post_empty(&c.aa2, &format!("/api/v1/attribute-grants/{id}/approve"))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::CONFLICT, Some("grant_expired")),
        "{refused}"
    );
    let (_, shown) = app
        .get(&c.aa, &format!("/api/v1/attribute-grants/{id}"))
        .await;
    assert_eq!(shown["status"], "expired");
    assert_eq!(shown["approvals"], json!([]));
    // The upkeep's sweep expires the other one, once.
    assert_eq!(app.ra.expire_grants().await.unwrap(), 1);
    assert_eq!(app.ra.expire_grants().await.unwrap(), 0);
    let (_, shown) = app
        .get(&c.aa, &format!("/api/v1/attribute-grants/{untouched}"))
        .await;
    assert_eq!(shown["status"], "expired");
    let entries = app.audit_entries().await;
    assert!(entries
        .iter()
        .any(|e| e["action"] == "attribute.grant_expired" && e["target"] == id.as_str()));
    app.stop().await;
}

/// Runs a `vouch` command, failing the test with its output if it fails.
fn vouch_ok(args: &[&str], env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(common::BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (ok, out) = run(&mut cmd);
    assert!(ok, "vouch {args:?}: {out}");
    out
}

#[tokio::test]
async fn an_offline_root_issues_the_attribute_authority_in_a_ceremony() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("root.key");
    let pg = match common::postgres_server() {
        Some(server) => Some(common::PgDatabase::create(&server).await),
        None => None,
    };
    let mut env = vec![("VOUCH_DATA_DIR", data.display().to_string())];
    if let Some(pg) = &pg {
        env.push(("VOUCH_DATABASE_URL", pg.url()));
    }
    let base = "http://ra.example.gov:8080";
    // init makes the AA while the root key is still in the directory, then moves the key out.
    let out = vouch_ok(
        &[
            "init",
            "--public-url",
            base,
            "--root-key-out",
            key.to_str().unwrap(),
        ],
        &env,
    );
    let admin = out.lines().last().unwrap().trim().to_string();
    let aa_cert = |dir: &std::path::Path| {
        openssl::x509::X509::from_pem(&std::fs::read(dir.join("ca/aa.pem")).unwrap()).unwrap()
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.join("ca/aa.key")), 0o600);
    let made = aa_cert(&data);
    let text = String::from_utf8(made.to_text().unwrap()).unwrap();
    assert!(text.contains(&format!("URI:{base}/crl/root.crl")), "{text}");

    // A deployment from before attribute authorities (no AA files, no binding in the database)
    // with the root offline: the server runs, says what to do, and grants answer aa_unavailable.
    std::fs::remove_file(data.join("ca/aa.pem")).unwrap();
    std::fs::remove_file(data.join("ca/aa.key")).unwrap();
    let unbind = "DELETE FROM instance_meta WHERE key = 'attribute_authority_key_sha256'";
    match &pg {
        Some(pg) => {
            use sqlx::Connection;
            let mut db = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
            sqlx::query(unbind).execute(&mut db).await.unwrap();
        }
        None => {
            use sqlx::ConnectOptions;
            let mut db = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(data.join("vouch.db"))
                .connect()
                .await
                .unwrap();
            sqlx::query(unbind).execute(&mut db).await.unwrap();
        }
    }
    let env_pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let served = common::serve_process(&data, &[], &env_pairs);
    let url = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let ready: Value = client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let warnings = ready["warnings"].to_string();
    assert!(warnings.contains("vouch ca issue-aa"), "{ready}");
    let resp = client.get(format!("{url}/ca/aa.pem")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, op) = common::split(
        client
            .post(format!("{url}/api/v1/operators"))
            .bearer_auth(&admin)
            .json(&json!({"name": "erin", "roles": ["aa"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{op}");
    let (status, refused) = common::split(
        client
            .post(format!("{url}/api/v1/attribute-certificates"))
            .bearer_auth(op["token"].as_str().unwrap())
            .json(
                &json!({"holder_serial": "1234", "roles": ["approver"], "targets": ["permits"],
                          "not_after": in_days(10)}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::CONFLICT, Some("aa_unavailable")),
        "{refused}"
    );
    drop(served);

    // The ceremony, with the server stopped; the next start serves the AA.
    let out = vouch_ok(
        &[
            "ca",
            "issue-aa",
            "--root-key",
            key.to_str().unwrap(),
            "--public-url",
            base,
        ],
        &env,
    );
    assert!(
        out.contains("issued the attribute authority certificate"),
        "{out}"
    );
    assert_eq!(mode(data.join("ca/aa.key")), 0o600);
    let served = common::serve_process(&data, &[], &env_pairs);
    let url = format!("http://{}", served.addr);
    let pem = client
        .get(format!("{url}/ca/aa.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        pem.as_bytes(),
        std::fs::read(data.join("ca/aa.pem")).unwrap()
    );
    let root = std::fs::read(data.join("ca/root.pem")).unwrap();
    let root = openssl::x509::X509::from_pem(&root).unwrap();
    assert!(aa_cert(&data).verify(&root.public_key().unwrap()).unwrap());
    let ready: Value = client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !ready["warnings"].to_string().contains("issue-aa"),
        "{ready}"
    );
    drop(served);
    if let Some(pg) = pg {
        pg.drop_database().await;
    }
}

#[tokio::test]
async fn an_approved_grant_starts_at_its_approval_and_one_that_ran_out_fails() {
    let clock = vouch::clock::ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: std::sync::Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    let start = clock_now(&app);
    let body = json!({"holder_serial": c.holder, "roles": ["approver"], "targets": ["permits"],
                      "profile": "application-role-approved",
                      "not_after": rfc3339(start + Duration::hours(3))});
    let (_, first) = grant(&app, &c.aa, body.clone()).await;
    let (_, second) = grant(&app, &c.aa, body).await;
    let (first, second) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    // Approved an hour later: the AC says the role is held from the approval, not from the grant.
    clock.advance(Duration::hours(1));
    let (status, granted) = app
        .post_empty(&c.aa2, &format!("/api/v1/attribute-grants/{first}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let serial = granted["serial"].as_str().unwrap();
    let (_, acv) = app
        .get(&c.aa, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    let not_before = OffsetDateTime::parse(acv["not_before"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(
        not_before,
        (start + Duration::hours(1)).replace_nanosecond(0).unwrap()
    );

    // Approved after its not_after: nothing is issued, the grant fails with the reason.
    clock.advance(Duration::hours(3));
    let (status, refused) = app
        .post_empty(
            &c.aa2,
            &format!("/api/v1/attribute-grants/{second}/approve"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (_, shown) = app
        .get(&c.aa, &format!("/api/v1/attribute-grants/{second}"))
        .await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["reason"].as_str().unwrap().contains("not_after"),
        "{shown}"
    );
    assert!(shown.get("serial").is_none(), "{shown}");
    app.stop().await;
}

fn clock_now(app: &TestApp) -> OffsetDateTime {
    app.ra.now()
}
