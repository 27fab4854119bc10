//! The verification API against documents made by `openssl cms -sign` and timestamped by an
//! `openssl ts` TSA: every signer checked (signature, chain, status at the signing time, key
//! usage, profile, role through an attribute certificate), decisions with stable reasons, receipts
//! that `openssl cms -verify` accepts, and only unusable input refused with a 4xx.

mod common;

use base64::Engine;
use common::signing::{
    add_timestamp, cms_sign, cms_verify_content_with_openssl, csr_pem, foreign_signer,
    p256_key_pem, rsa_key_pem, SignOptions, Signer, Tsa,
};
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use vouch::clock::ManualClock;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct Cast {
    clerk: String,
    approver: String,
    verifier: String,
    revoker: String,
    aa: String,
}

async fn cast(app: &TestApp) -> Cast {
    let (clerk, approver) = app.clerk_and_approver().await;
    Cast {
        clerk,
        approver,
        verifier: app.operator("permits-app", &["verifier"]).await,
        revoker: app.operator("revoker1", &["revoker"]).await,
        aa: app.operator("aa1", &["aa"]).await,
    }
}

/// A signer whose certificate Vouch issued under `profile`, with a key from `key_pem`; returns
/// the signer and its serial.
async fn vouch_signer(app: &TestApp, c: &Cast, key_pem: &str, profile: &str) -> (Signer, String) {
    let csr = csr_pem(key_pem, "ignored");
    let sub = app.person(&c.clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app.submit(&c.clerk, &sub, profile, &csr).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, out) = app
        .post_empty(&c.approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    let (_, cert) = app
        .get(&c.clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let signer = Signer {
        cert_pem: cert["pem"].as_str().unwrap().to_string(),
        key_pem: key_pem.to_string(),
    };
    (signer, serial)
}

async fn verify(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post(token, "/api/v1/verify", body).await
}

async fn root_pem(app: &TestApp) -> String {
    let resp = app
        .client
        .get(app.url("/ca/root.pem"))
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

const FORM: &[u8] = b"{\"form\": \"building permit 2026-0042\", \"decision\": \"approve\"}";

fn sign(signers: &[&Signer], opts: SignOptions) -> Vec<u8> {
    cms_sign(FORM, signers, &opts)
}

#[tokio::test]
async fn openssl_signed_submissions_are_accepted_with_a_receipt_openssl_verifies() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (p256, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let (rsa, _) = vouch_signer(&app, &c, &rsa_key_pem(2048), "person-signing").await;
    let root = root_pem(&app).await;

    let variants: Vec<(&str, Vec<u8>, bool)> = vec![
        ("attached", sign(&[&p256], SignOptions::default()), false),
        (
            "detached",
            sign(
                &[&p256],
                SignOptions {
                    detached: true,
                    ..Default::default()
                },
            ),
            true,
        ),
        (
            "keyid",
            sign(
                &[&p256],
                SignOptions {
                    keyid: true,
                    ..Default::default()
                },
            ),
            false,
        ),
        (
            "noattr",
            sign(
                &[&p256],
                SignOptions {
                    noattr: true,
                    ..Default::default()
                },
            ),
            false,
        ),
        ("rsa", sign(&[&rsa], SignOptions::default()), false),
        (
            "sha384",
            sign(
                &[&p256],
                SignOptions {
                    md: Some("sha384"),
                    ..Default::default()
                },
            ),
            false,
        ),
        (
            "without certificates",
            sign(
                &[&p256],
                SignOptions {
                    certs: false,
                    ..Default::default()
                },
            ),
            false,
        ),
        (
            "two signers",
            sign(&[&p256, &rsa], SignOptions::default()),
            false,
        ),
    ];
    for (what, cms, detached) in variants {
        let mut body = json!({"cms": b64(&cms)});
        if detached {
            body["content"] = json!(b64(FORM));
        }
        let (status, answer) = verify(&app, &c.verifier, body).await;
        assert_eq!(status, StatusCode::OK, "{what}: {answer}");
        assert_eq!(answer["decision"], "accept", "{what}: {answer}");
        assert_eq!(answer["reasons"], json!([]), "{what}");
        assert_eq!(answer["time_source"], "now");
        assert_eq!(answer["content_sha256"], vouch::x509::sha256_hex(FORM));
        assert_eq!(answer["signer"]["certificate_status"], "good", "{what}");
        assert_eq!(answer["signer"]["profile"], "person-signing");
        let signers = answer["signers"].as_array().unwrap().len();
        assert_eq!(signers, if what == "two signers" { 2 } else { 1 }, "{what}");
        // The receipt: OpenSSL verifies it against the root, and it signs this very answer.
        let receipt = base64::engine::general_purpose::STANDARD
            .decode(answer["receipt"].as_str().unwrap())
            .unwrap();
        let signed = cms_verify_content_with_openssl(&receipt, None, &root, &[])
            .unwrap_or_else(|e| panic!("{what}: openssl cms -verify refused the receipt: {e}"));
        let mut unsigned = answer.clone();
        unsigned.as_object_mut().unwrap().remove("receipt");
        assert_eq!(
            serde_json::from_slice::<Value>(&signed).unwrap(),
            unsigned,
            "{what}"
        );
        assert_eq!(
            signed,
            serde_json::to_vec(&unsigned).unwrap(),
            "{what}: the receipt signs the canonical JSON"
        );
        // Vouch's own check agrees.
        let checked = vouch::verify::receipt::verify_receipt(&receipt, root.as_bytes()).unwrap();
        assert_eq!(checked, unsigned);
    }
    // Every verification is audited, without the content.
    let entries = app.audit_entries().await;
    let decided: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "verification.decided")
        .collect();
    assert_eq!(decided.len(), 8);
    assert!(decided
        .iter()
        .all(|e| !e.to_string().contains("building permit")));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "receipt.signer_issued"));
    app.stop().await;
}

#[tokio::test]
async fn what_does_not_hold_is_a_reject_with_its_reason() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let (auth, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-auth").await;
    let (foreign, _) = foreign_signer("Somebody Else");
    let reasons = |v: &Value| v["reasons"].clone();

    // Tampered content (detached, with and without signed attributes).
    for noattr in [false, true] {
        let cms = sign(
            &[&signer],
            SignOptions {
                detached: true,
                noattr,
                ..Default::default()
            },
        );
        let (status, answer) = verify(
            &app,
            &c.verifier,
            json!({"cms": b64(&cms), "content": b64(b"{\"form\": \"something else\"}")}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["decision"], "reject");
        let want = if noattr {
            "signature_invalid"
        } else {
            "content_digest_mismatch"
        };
        assert_eq!(reasons(&answer), json!([want]), "noattr {noattr}");
    }
    // A signer Vouch did not certify.
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&sign(&[&foreign], SignOptions::default()))}),
    )
    .await;
    assert_eq!(reasons(&answer), json!(["unknown_ca"]), "{answer}");
    assert_eq!(answer["signer"]["certificate_status"], "unknown");
    // Two signers, one foreign: reject, and both are reported.
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&sign(&[&signer, &foreign], SignOptions::default()))}),
    )
    .await;
    assert_eq!(answer["decision"], "reject");
    // (OpenSSL writes the SignerInfos as a DER SET OF, in the order of their encodings.)
    let mut each: Vec<String> = answer["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reasons"].to_string())
        .collect();
    each.sort();
    assert_eq!(each, vec!["[\"unknown_ca\"]", "[]"], "{answer}");
    // nonRepudiation required: person-auth certificates have digitalSignature only.
    let policy = json!({"key_usage": ["nonRepudiation"]});
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&sign(&[&auth], SignOptions::default())), "policy": policy}),
    )
    .await;
    assert_eq!(reasons(&answer), json!(["non_repudiation_missing"]));
    // The issuing profile must be one the application accepts.
    let policy = json!({"profiles": ["person-signing"]});
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&sign(&[&auth], SignOptions::default())), "policy": policy}),
    )
    .await;
    assert_eq!(reasons(&answer), json!(["profile_not_allowed"]));
    // A timestamp required but absent; a signingTime required but absent.
    let cms = b64(&sign(&[&signer], SignOptions::default()));
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": {"require_timestamp": true}}),
    )
    .await;
    assert_eq!(reasons(&answer), json!(["timestamp_required"]));
    let noattr = b64(&sign(
        &[&signer],
        SignOptions {
            noattr: true,
            ..Default::default()
        },
    ));
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": noattr, "policy": {"time": "signing-time"}}),
    )
    .await;
    assert_eq!(reasons(&answer), json!(["signing_time_missing"]));
    // Only a verifier may verify.
    let (status, _) = verify(&app, &c.clerk, json!({"cms": cms})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_status_that_counts_is_the_one_at_the_signing_time() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    // Signed now (openssl writes the machine's time as signingTime).
    let (later, later_serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let (compromised, compromised_serial) =
        vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let (held, held_serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let doc = |s: &Signer| b64(&sign(&[s], SignOptions::default()));
    let (later_doc, compromised_doc, held_doc) = (doc(&later), doc(&compromised), doc(&held));
    let at_signing = json!({"time": "signing-time"});
    let revoke = |serial: String, body: Value| {
        let (app, token) = (&app, c.revoker.clone());
        async move {
            let path = format!("/api/v1/certificates/{serial}/revoke");
            let (status, out) = app.post(&token, &path, body).await;
            assert_eq!(status, StatusCode::OK, "{out}");
        }
    };

    // Held from an hour before the signing until an hour after it.
    clock.advance(Duration::hours(-1));
    let (status, _) = app
        .post(
            &c.revoker,
            &format!("/api/v1/certificates/{held_serial}/hold"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(Duration::hours(2));
    let (status, _) = app
        .post(
            &c.revoker,
            &format!("/api/v1/certificates/{held_serial}/release"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Revoked an hour after the signing: the signature made before still counts; judged now,
    // it does not.
    revoke(later_serial.clone(), json!({"reason": "superseded"})).await;
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": later_doc, "policy": at_signing}),
    )
    .await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["time_source"], "signing-time");
    assert_eq!(answer["signer"]["certificate_status"], "good");
    assert_eq!(answer["signer"]["revocation"]["reason"], "superseded");
    let (_, answer) = verify(&app, &c.verifier, json!({"cms": later_doc})).await;
    assert_eq!(
        answer["reasons"],
        json!(["certificate_revoked"]),
        "{answer}"
    );
    // keyCompromise revoked later, but with an invalidity date before the signing: rejected.
    let before = (OffsetDateTime::now_utc() - Duration::hours(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    revoke(
        compromised_serial,
        json!({"reason": "keyCompromise", "invalidity_date": before}),
    )
    .await;
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": compromised_doc, "policy": at_signing}),
    )
    .await;
    assert_eq!(
        answer["reasons"],
        json!(["certificate_revoked"]),
        "{answer}"
    );
    assert_eq!(answer["signer"]["certificate_status"], "revoked");
    // On hold at the signing time: rejected, though released since.
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": held_doc.clone(), "policy": at_signing}),
    )
    .await;
    assert_eq!(
        answer["reasons"],
        json!(["certificate_on_hold"]),
        "{answer}"
    );
    let (_, answer) = verify(&app, &c.verifier, json!({"cms": held_doc})).await;
    assert_eq!(answer["decision"], "accept", "released: good now {answer}");
    // Judged three years on, the certificate (730 days) has expired.
    clock.advance(Duration::days(3 * 365));
    let (_, answer) = verify(&app, &c.verifier, json!({"cms": doc(&held)})).await;
    assert_eq!(
        answer["reasons"],
        json!(["certificate_expired"]),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_role_needs_a_valid_attribute_certificate_for_the_application() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let (other, other_serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let cms = b64(&sign(&[&signer], SignOptions::default()));
    let policy = |role: &str, app_name: &str| json!({"role": role, "application": app_name});
    let grant = |holder: String, role: &'static str, target: &'static str| {
        let (app, aa) = (&app, c.aa.clone());
        async move {
            let body = json!({"holder_serial": holder, "roles": [role], "targets": [target],
                              "not_after": in_days(30)});
            let (status, out) = app.post(&aa, "/api/v1/attribute-certificates", body).await;
            assert_eq!(status, StatusCode::CREATED, "{out}");
            out
        }
    };

    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": policy("approver", "permits")}),
    )
    .await;
    assert_eq!(answer["reasons"], json!(["role_missing"]), "{answer}");
    // A role in another application does not count.
    grant(serial.clone(), "approver", "office-automation").await;
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": policy("approver", "permits")}),
    )
    .await;
    assert_eq!(answer["reasons"], json!(["ac_target_mismatch"]), "{answer}");
    // The role in this application: accepted, and reported.
    let ac = grant(serial.clone(), "approver", "permits").await;
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": policy("approver", "permits")}),
    )
    .await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["signer"]["roles"], json!(["approver"]));
    assert_eq!(answer["role"], "approver");
    assert_eq!(answer["application"], "permits");
    // Revoked: no longer.
    let path = format!(
        "/api/v1/attribute-certificates/{}/revoke",
        ac["serial"].as_str().unwrap()
    );
    let (status, _) = app
        .post(&c.revoker, &path, json!({"reason": "privilegeWithdrawn"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": policy("approver", "permits")}),
    )
    .await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    assert!(
        answer["reasons"].to_string().contains("ac_revoked"),
        "{answer}"
    );
    // Another holder's AC, sent by the caller: not the signer's.
    let theirs = grant(other_serial, "approver", "permits").await;
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": {"role": "approver", "application": "permits",
               "attribute_certificates": [theirs["der"]]}}),
    )
    .await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    assert!(answer["reasons"].to_string().contains("ac_"), "{answer}");
    // A role without an application is not a policy.
    let (status, out) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": {"role": "approver"}}),
    )
    .await;
    assert_eq!(
        (status, out["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_policy"))
    );
    let _ = other;
    app.stop().await;
}

#[tokio::test]
async fn a_timestamp_from_a_trusted_tsa_sets_the_signing_time() {
    let tsa = Tsa::new("City TSA");
    let untrusted = Tsa::new("Somebody's TSA");
    let app = TestApp::spawn_with(common::Options {
        tsa_anchors: vec![tsa.root_pem()],
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    let (signer, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let cms = sign(&[&signer], SignOptions::default());
    let stamped = add_timestamp(&cms, &tsa, 0);
    let policy = json!({"require_timestamp": true});
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&stamped), "policy": policy}),
    )
    .await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["time_source"], "timestamp");
    let foreign = add_timestamp(&cms, &untrusted, 0);
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&foreign), "policy": policy}),
    )
    .await;
    assert_eq!(
        answer["reasons"],
        json!(["timestamp_untrusted"]),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn unusable_input_is_a_4xx_and_never_a_500() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let detached = sign(
        &[&signer],
        SignOptions {
            detached: true,
            ..Default::default()
        },
    );
    let cases = [
        (json!({"cms": "not base64!"}), "invalid_field"),
        (json!({"cms": b64(b"garbage")}), "bad_cms"),
        (json!({"cms": b64(&detached)}), "content_required"),
        (
            json!({"cms": b64(&detached), "policy": {"time": "tomorrow"}}),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let (status, out) = verify(&app, &c.verifier, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {out}");
        assert_eq!(out["error"], code, "{body} -> {out}");
    }
    let huge = json!({"cms": "A".repeat(2 * 1024 * 1024)});
    let (status, _) = verify(&app, &c.verifier, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Every single-byte change of a valid submission is answered, never with a 500.
    let cms = sign(&[&signer], SignOptions::default());
    let mut accepted = 0;
    for i in (0..cms.len()).step_by(3) {
        let mut m = cms.clone();
        m[i] ^= 0x5a;
        let (status, out) = verify(&app, &c.verifier, json!({"cms": b64(&m)})).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "byte {i}: {status} {out}"
        );
        if out["decision"] == "accept" {
            accepted += 1;
        }
    }
    // Changes outside the signed bytes (the certificates set, unsigned parts) may still verify;
    // most changes must not.
    assert!(
        accepted * 4 < cms.len() / 3,
        "{accepted} mutations accepted"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receipt_is_checked_offline_by_vouch_receipt_verify() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let cms = sign(&[&signer], SignOptions::default());
    let (_, answer) = verify(&app, &c.verifier, json!({"cms": b64(&cms)})).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, root_pem(&app).await).unwrap();
    let run = |file: std::path::PathBuf| {
        let root = root.clone();
        async move {
            let out = tokio::process::Command::new(common::BIN)
                .args(["receipt", "verify"])
                .arg(&file)
                .arg("--root")
                .arg(&root)
                .output()
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.code(), text)
        }
    };
    // The base64 of the answer's `receipt`, as an application keeps it.
    let kept = dir.path().join("receipt.b64");
    std::fs::write(&kept, answer["receipt"].as_str().unwrap()).unwrap();
    let (code, out) = run(kept).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("receipt: valid") && out.contains("decision: accept"),
        "{out}"
    );
    // A changed byte in the signed answer.
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(answer["receipt"].as_str().unwrap())
        .unwrap();
    let at = der.windows(6).position(|w| w == b"accept").unwrap();
    der[at] = b'A';
    let tampered = dir.path().join("tampered.der");
    std::fs::write(&tampered, &der).unwrap();
    let (code, out) = run(tampered).await;
    assert_eq!(code, Some(1), "{out}");
    // A document the subscriber signed chains to the same root (given the issuing CA too), but
    // is no receipt.
    let issuing = app
        .client
        .get(app.url("/ca/issuing.pem"))
        .send()
        .await
        .unwrap();
    let both = root_pem(&app).await + &issuing.text().await.unwrap();
    std::fs::write(&root, both).unwrap();
    let not_a_receipt = dir.path().join("subscriber.der");
    std::fs::write(&not_a_receipt, &cms).unwrap();
    let (code, out) = run(not_a_receipt).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not for receipts"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_attribute_certificate_gives_no_role() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    let (signer, serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let not_after = (app.ra.now() + Duration::hours(12))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let grant = json!({"holder_serial": serial, "roles": ["approver"], "targets": ["permits"],
                       "profile": "short-lived-role", "not_after": not_after});
    let (status, ac) = app
        .post(&c.aa, "/api/v1/attribute-certificates", grant)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ac}");
    let body = json!({"cms": b64(&sign(&[&signer], SignOptions::default())),
                      "policy": {"role": "approver", "application": "permits"}});
    let (_, answer) = verify(&app, &c.verifier, body.clone()).await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    // A day later (the signing time being now), the AC has run out.
    clock.advance(Duration::days(1));
    let (_, answer) = verify(&app, &c.verifier, body).await;
    assert_eq!(answer["reasons"], json!(["ac_expired"]), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_receipt_with_a_second_certificate_for_its_signer_is_refused() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, _) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let dir = tempfile::tempdir().unwrap();
    // A subscriber signs a fake answer, and adds a certificate of their own making that carries
    // the receipt purpose under the same issuer and serial as theirs.
    let cert = openssl::x509::X509::from_pem(signer.cert_pem.as_bytes()).unwrap();
    let forger = openssl::pkey::PKey::private_key_from_pem(p256_key_pem().as_bytes()).unwrap();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(cert.serial_number()).unwrap();
    b.set_issuer_name(cert.issuer_name()).unwrap();
    b.set_subject_name(cert.subject_name()).unwrap();
    b.set_pubkey(&forger).unwrap();
    b.set_not_before(cert.not_before()).unwrap();
    b.set_not_after(cert.not_after()).unwrap();
    let eku = openssl::x509::extension::ExtendedKeyUsage::new()
        .other("2.25.176954097262662576915638773024967759201")
        .email_protection()
        .build()
        .unwrap();
    b.append_extension(eku).unwrap();
    b.sign(&forger, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let forged = b.build();
    let answer = br#"{"decision":"accept","reasons":[]}"#;
    let key = openssl::pkey::PKey::private_key_from_pem(signer.key_pem.as_bytes()).unwrap();
    let mut extra = openssl::stack::Stack::new().unwrap();
    extra.push(forged).unwrap();
    let fake = openssl::cms::CmsContentInfo::sign(
        Some(&cert),
        Some(&key),
        Some(&extra),
        Some(answer),
        openssl::cms::CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let issuing = app
        .client
        .get(app.url("/ca/issuing.pem"))
        .send()
        .await
        .unwrap();
    let roots = root_pem(&app).await + &issuing.text().await.unwrap();
    let refused = vouch::verify::receipt::verify_receipt(&fake, roots.as_bytes()).unwrap_err();
    assert!(refused.to_string().contains("several"), "{refused}");
    let _ = dir;
    app.stop().await;
}

/// The same AC with its ECDSA signature in its other valid form, (r, n - s).
fn malleate(ac_der: &[u8]) -> Vec<u8> {
    use vouch::x509::der::{tlv, Reader};
    let mut outer = Reader::new(ac_der);
    let mut r = Reader::new(outer.read(0x30, "ac").unwrap());
    let (tbs, alg) = (
        r.any().unwrap().whole.to_vec(),
        r.any().unwrap().whole.to_vec(),
    );
    let bits = r.read(0x03, "signature").unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_der(&bits[1..]).unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let mut order = openssl::bn::BigNum::new().unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    group.order(&mut order, &mut ctx).unwrap();
    let mut s = openssl::bn::BigNum::new().unwrap();
    s.checked_sub(&order, sig.s()).unwrap();
    let other =
        openssl::ecdsa::EcdsaSig::from_private_components(sig.r().to_owned().unwrap(), s).unwrap();
    let mut bits = vec![0];
    bits.extend(other.to_der().unwrap());
    tlv(0x30, &[tbs, alg, tlv(0x03, &bits)].concat())
}

#[tokio::test]
async fn a_revoked_attribute_certificate_in_another_encoding_is_still_revoked() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (signer, serial) = vouch_signer(&app, &c, &p256_key_pem(), "person-signing").await;
    let body = json!({"holder_serial": serial, "roles": ["approver"], "targets": ["permits"],
                      "not_after": in_days(30)});
    let (_, ac) = app
        .post(&c.aa, "/api/v1/attribute-certificates", body)
        .await;
    let der = base64::engine::general_purpose::STANDARD
        .decode(ac["der"].as_str().unwrap())
        .unwrap();
    let other = malleate(&der);
    assert_ne!(other, der);
    let path = format!(
        "/api/v1/attribute-certificates/{}/revoke",
        ac["serial"].as_str().unwrap()
    );
    let (status, _) = app
        .post(&c.revoker, &path, json!({"reason": "privilegeWithdrawn"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cms = b64(&sign(&[&signer], SignOptions::default()));
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": cms, "policy": {"role": "approver", "application": "permits",
               "attribute_certificates": [b64(&other)]}}),
    )
    .await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    assert!(
        answer["reasons"].to_string().contains("ac_revoked"),
        "{answer}"
    );
    app.stop().await;
}

/// A CRL of `ca` (DER) listing `revoked` (PEM certificates it issued), by `openssl ca -gencrl`.
fn foreign_crl(ca: &common::signing::ForeignCa, revoked: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    let cnf = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = {db}\ncrlnumber = {num}\ncertificate = {root}\n\
         private_key = {key}\ndefault_md = sha256\ndefault_crl_days = 7\n",
        db = d.join("index.txt").display(),
        num = d.join("crlnumber").display(),
        root = ca.dir().join("root.pem").display(),
        key = ca.dir().join("root.key").display(),
    );
    std::fs::write(d.join("ca.cnf"), cnf).unwrap();
    let openssl = |args: &[&str]| {
        let (ok, out) = common::run(
            std::process::Command::new("openssl")
                .current_dir(d)
                .args(args),
        );
        assert!(ok, "openssl {args:?}: {out}");
    };
    for (i, pem) in revoked.iter().enumerate() {
        let file = format!("r{i}.pem");
        std::fs::write(d.join(&file), pem).unwrap();
        openssl(&["ca", "-config", "ca.cnf", "-revoke", &file]);
    }
    openssl(&["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"]);
    openssl(&[
        "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
    ]);
    std::fs::read(d.join("crl.der")).unwrap()
}

#[tokio::test]
async fn a_signer_of_a_configured_foreign_ca_is_checked_on_its_crl() {
    use axum::routing::get;
    // The foreign CA publishes its CRL on a small server of its own.
    let crl: Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
    let served = crl.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new().route(
        "/foreign.crl",
        get(move || {
            let served = served.clone();
            async move {
                let body = served.lock().unwrap().clone();
                if body.is_empty() {
                    (axum::http::StatusCode::NOT_FOUND, Vec::new())
                } else {
                    (axum::http::StatusCode::OK, body)
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let ca = common::signing::ForeignCa::new("Province CA");
    let extensions = format!(
        "{}crlDistributionPoints=URI:http://127.0.0.1:{port}/foreign.crl\n",
        common::signing::SIGNER_EXTENSIONS
    );
    let signer = ca.issue_with("Wang Fang", &p256_key_pem(), &extensions);
    let other = ca.issue_with("Zhao Lei", &p256_key_pem(), &extensions);
    let app = TestApp::spawn_with(common::Options {
        trust_anchors: vec![ca.root_pem.clone()],
        ..Default::default()
    })
    .await;
    let c = cast(&app).await;
    let body = json!({"cms": b64(&sign(&[&signer], SignOptions::default()))});

    // No CRL where the certificate says: its status cannot be told.
    let (_, answer) = verify(&app, &c.verifier, body.clone()).await;
    assert_eq!(
        answer["reasons"],
        json!(["revocation_unavailable"]),
        "{answer}"
    );
    // A CRL that lists someone else: good.
    *crl.lock().unwrap() = foreign_crl(&ca, &[&other.cert_pem]);
    let (_, answer) = verify(&app, &c.verifier, body.clone()).await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["signer"]["certificate_status"], "good");
    assert_eq!(answer["signer"]["profile"], Value::Null);
    // The other signer is revoked (its CRL is the same one, kept meanwhile).
    let other_body = json!({"cms": b64(&sign(&[&other], SignOptions::default()))});
    let (_, answer) = verify(&app, &c.verifier, other_body).await;
    assert_eq!(
        answer["reasons"],
        json!(["certificate_revoked"]),
        "{answer}"
    );
    // A signer of a CA nobody configured is still unknown.
    let (stranger, _) = common::signing::foreign_signer("Stranger");
    let (_, answer) = verify(
        &app,
        &c.verifier,
        json!({"cms": b64(&sign(&[&stranger], SignOptions::default()))}),
    )
    .await;
    assert_eq!(answer["reasons"], json!(["unknown_ca"]), "{answer}");
    app.stop().await;
}
