//! Revocation, hold/release, key-compromise propagation and the CRL, checked with `openssl verify
//! -crl_check`, pkilint `lint_crl` and Python `cryptography`.

mod common;

use common::*;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vouch::clock::ManualClock;

/// Download the CRL and the CA certificates into `dir`; returns the CRL's path (PEM).
async fn fetch_crl(app: &TestApp, dir: &Path) -> PathBuf {
    let resp = app
        .client
        .get(app.url("/crl/issuing.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let der = resp.bytes().await.unwrap();
    let crl = openssl::x509::X509Crl::from_der(&der).expect("a DER CRL");
    let path = dir.join("crl.pem");
    std::fs::write(&path, crl.to_pem().unwrap()).unwrap();
    app.save_ca_certs(dir).await;
    path
}

/// Download the delta CRL into `dir` (PEM); returns its path.
async fn fetch_delta_crl(app: &TestApp, dir: &Path, name: &str) -> PathBuf {
    let resp = app
        .client
        .get(app.url("/crl/issuing-delta.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let crl = openssl::x509::X509Crl::from_der(&resp.bytes().await.unwrap()).expect("DER");
    let path = dir.join(name);
    std::fs::write(&path, crl.to_pem().unwrap()).unwrap();
    path
}

fn assert_lint_clean(crl: &Path) {
    let (_, lint) = run(Command::new(venv_bin("lint_crl"))
        .args(["lint", "-t", "CRL", "-p", "PKIX"])
        .arg(crl));
    assert!(
        !lint.contains("(ERROR)") && !lint.contains("(FATAL)") && !lint.contains("Traceback"),
        "{lint}"
    );
}

async fn cert_file(app: &TestApp, token: &str, serial: &str, dir: &Path) -> PathBuf {
    let (_, cert) = app
        .get(token, &format!("/api/v1/certificates/{serial}"))
        .await;
    let path = dir.join(format!("{serial}.pem"));
    std::fs::write(&path, cert["pem"].as_str().unwrap()).unwrap();
    path
}

/// `openssl crl -text` of a PEM CRL.
fn crl_text(crl: &Path) -> String {
    run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(crl))
    .1
}

/// `openssl verify -crl_check -use_deltas` with a full CRL and a delta CRL.
fn verify_with_delta(dir: &Path, full: &Path, delta: &Path, cert: &Path) -> (bool, String) {
    run(Command::new("openssl")
        .args(["verify", "-crl_check", "-use_deltas", "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("issuing.pem"))
        .arg("-CRLfile")
        .arg(full)
        .arg("-CRLfile")
        .arg(delta)
        .arg(cert))
}

/// Python cryptography's reading of a delta CRL (see DELTA_SCRIPT).
fn python_view_of_delta(dir: &Path, delta: &Path, full: &Path, serial: &str) -> (bool, String) {
    run(Command::new(venv_bin("python"))
        .arg("-c")
        .arg(DELTA_SCRIPT)
        .arg(delta)
        .arg(full)
        .arg(dir.join("issuing.pem"))
        .arg(serial))
}

fn verify_with_crl(dir: &Path, cert: &Path, crl: &Path) -> (bool, String) {
    run(Command::new("openssl")
        .arg("verify")
        .arg("-crl_check")
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("issuing.pem"))
        .arg("-CRLfile")
        .arg(crl)
        .arg(cert))
}

#[tokio::test]
async fn revoke_shows_in_the_crl_with_its_reason() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let kept = app.issue(&clerk, &approver, &p256_csr()).await;
    let cert = cert_file(&app, &clerk, &serial, dir.path()).await;
    let kept_cert = cert_file(&app, &clerk, &kept, dir.path()).await;

    let crl = fetch_crl(&app, dir.path()).await;
    let (ok, text) = verify_with_crl(dir.path(), &cert, &crl);
    assert!(ok, "good before revocation: {text}");

    // Only revokers revoke; reasons are RFC 5280 names.
    let path = format!("/api/v1/certificates/{serial}/revoke");
    let (status, _) = app
        .post(&clerk, &path, json!({"reason": "superseded"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(&revoker, &path, json!({"reason": "removeFromCRL"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reason"))
    );
    let body = json!({"reason": "affiliationChanged", "invalidity_date": "2026-01-02T03:04:05Z", "comment": "left the bureau"});
    let (status, out) = app.post(&revoker, &path, body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "revoked");
    let (status, body) = app
        .post(&revoker, &path, json!({"reason": "superseded"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_revoked"))
    );
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["revocation_reason"].as_str()
        ),
        (Some("revoked"), Some("affiliationChanged"))
    );
    assert_eq!(shown["invalidity_date"], "2026-01-02T03:04:05Z");

    let crl = fetch_crl(&app, dir.path()).await;
    let (ok, text) = verify_with_crl(dir.path(), &cert, &crl);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify_with_crl(dir.path(), &kept_cert, &crl);
    assert!(ok, "{text}");
    let text = crl_text(&crl);
    assert!(text.contains(&serial.to_uppercase()), "{text}");
    assert!(
        text.contains("Affiliation Changed") && text.contains("Invalidity Date"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("X509v3 Authority Key Identifier"),
        "{text}"
    );

    // Independent checks: pkilint and Python cryptography.
    assert_lint_clean(&crl);
    let script = r#"
import sys
from cryptography import x509
crl = x509.load_pem_x509_crl(open(sys.argv[1], "rb").read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
assert crl.is_signature_valid(issuing.public_key())
entry = crl.get_revoked_certificate_by_serial_number(int(sys.argv[3], 16))
assert entry is not None
reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
assert reason == x509.ReasonFlags.affiliation_changed, reason
print("ok", crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
"#;
    let (ok, text) = run(Command::new(venv_bin("python"))
        .arg("-c")
        .arg(script)
        .arg(&crl)
        .arg(dir.path().join("issuing.pem"))
        .arg(&serial));
    assert!(ok && text.starts_with("ok"), "{text}");
    let number: u64 = text.trim().split(' ').nth(1).unwrap().parse().unwrap();
    assert!(number >= 2, "CRL numbers grow: {number}");
    app.stop().await;
}

#[tokio::test]
async fn hold_then_release_is_good_again_and_leaves_the_crl() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let cert = cert_file(&app, &clerk, &serial, dir.path()).await;

    let (status, out) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{serial}/hold"))
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("on-hold")),
        "{out}"
    );
    let crl = fetch_crl(&app, dir.path()).await;
    let (ok, text) = verify_with_crl(dir.path(), &cert, &crl);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let text = crl_text(&crl);
    assert!(text.contains("Certificate Hold"), "{text}");

    let (status, out) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/release"),
            json!({"comment": "found"}),
        )
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("valid")),
        "{out}"
    );
    let (status, _) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{serial}/release"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let crl = fetch_crl(&app, dir.path()).await;
    let (ok, text) = verify_with_crl(dir.path(), &cert, &crl);
    assert!(ok, "good again after release: {text}");
    app.stop().await;
}

/// Python cryptography's view of a delta CRL: signature, base number, and the reason of `serial`.
const DELTA_SCRIPT: &str = r#"
import sys
from cryptography import x509
delta = x509.load_pem_x509_crl(open(sys.argv[1], "rb").read())
full = x509.load_pem_x509_crl(open(sys.argv[2], "rb").read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
assert delta.is_signature_valid(issuing.public_key())
indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
assert indicator.critical
number = delta.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
assert indicator.value.crl_number < number, (indicator.value.crl_number, number)
freshest = full.extensions.get_extension_for_class(x509.FreshestCRL).value
print("freshest", freshest[0].full_name[0].value)
entry = delta.get_revoked_certificate_by_serial_number(int(sys.argv[4], 16))
print("reason", entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name)
"#;

#[tokio::test]
async fn delta_crl_lists_holds_and_removals_since_its_base() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let cert = cert_file(&app, &clerk, &serial, dir.path()).await;
    // The full CRL before anything happened: the base of the deltas that follow.
    let base = fetch_crl(&app, dir.path()).await;
    let base = {
        let kept = dir.path().join("base.pem");
        std::fs::rename(&base, &kept).unwrap();
        kept
    };
    let text = crl_text(&base);
    assert!(
        text.contains("X509v3 Freshest CRL") && text.contains(&app.url("/crl/issuing-delta.crl")),
        "{text}"
    );

    let (status, _) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{serial}/hold"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let delta = fetch_delta_crl(&app, dir.path(), "delta-hold.pem").await;
    // A full CRL that lists the hold, for the removeFromCRL check below.
    let held_full = {
        let path = fetch_crl(&app, dir.path()).await;
        let kept = dir.path().join("held-full.pem");
        std::fs::rename(&path, &kept).unwrap();
        kept
    };
    assert!(crl_text(&held_full).contains("Certificate Hold"));
    let text = crl_text(&delta);
    assert!(
        text.contains("Delta CRL Indicator: critical") && text.contains("Certificate Hold"),
        "{text}"
    );
    // OpenSSL combines the old full CRL with the delta: the certificate is on hold now.
    let (ok, text) = verify_with_delta(dir.path(), &base, &delta, &cert);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    assert_lint_clean(&delta);
    let (ok, text) = python_view_of_delta(dir.path(), &delta, &base, &serial);
    assert!(ok, "{text}");
    assert!(text.contains("reason certificate_hold"), "{text}");
    assert!(
        text.contains(&format!("freshest {}", app.url("/crl/issuing-delta.crl"))),
        "{text}"
    );

    let (status, _) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{serial}/release"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let delta = fetch_delta_crl(&app, dir.path(), "delta-release.pem").await;
    let text = crl_text(&delta);
    assert!(text.contains("Remove From CRL"), "{text}");
    assert_lint_clean(&delta);
    let (ok, text) = python_view_of_delta(dir.path(), &delta, &base, &serial);
    assert!(ok && text.contains("reason remove_from_crl"), "{text}");
    let (ok, text) = verify_with_delta(dir.path(), &base, &delta, &cert);
    assert!(ok, "good again after release: {text}");
    // A relying party that holds a full CRL listing the hold drops it through removeFromCRL.
    let (ok, text) = verify_with_delta(dir.path(), &held_full, &delta, &cert);
    assert!(
        ok,
        "the delta's removeFromCRL clears the held entry: {text}"
    );
    let (ok, text) = verify_with_crl(dir.path(), &cert, &held_full);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    // The current full CRL no longer lists it either.
    let full = fetch_crl(&app, dir.path()).await;
    assert_lint_clean(&full);
    let (ok, text) = verify_with_crl(dir.path(), &cert, &full);
    assert!(ok, "{text}");
    app.stop().await;
}

#[tokio::test]
async fn key_compromise_revokes_every_certificate_with_the_key_and_blocks_it() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let csr = csr_for(&key, MessageDigest::sha256(), "x");
    let first = app.issue(&clerk, &approver, &csr).await;
    let second = app.issue(&clerk, &approver, &csr).await;
    let other = app.issue(&clerk, &approver, &p256_csr()).await;

    let (status, out) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{first}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["also_revoked"], json!([second]));
    for (serial, expected) in [(&first, "revoked"), (&second, "revoked"), (&other, "valid")] {
        let (_, shown) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(shown["status"], expected, "{serial}");
    }
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{second}"))
        .await;
    assert_eq!(shown["revocation_reason"], "keyCompromise");
    // The key is blocked for new requests.
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app.submit(&clerk, &sub, "person-signing", &csr).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_key"))
    );
    let actions: Vec<String> = app
        .audit_entries()
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "certificate.revoked")
            .count(),
        2
    );
    assert!(actions.iter().any(|a| a == "key.blocked"));
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_certificate_can_be_escalated_to_key_compromise() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let csr = csr_for(&ec_key(Nid::X9_62_PRIME256V1), MessageDigest::sha256(), "x");
    let first = app.issue(&clerk, &approver, &csr).await;
    let second = app.issue(&clerk, &approver, &csr).await;
    let path = format!("/api/v1/certificates/{first}/revoke");
    let (status, _) = app
        .post(&revoker, &path, json!({"reason": "superseded"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = app
        .get(&clerk, &format!("/api/v1/certificates/{first}"))
        .await;
    let (status, out) = app
        .post(&revoker, &path, json!({"reason": "keyCompromise"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["also_revoked"], json!([second]));
    let (_, after) = app
        .get(&clerk, &format!("/api/v1/certificates/{first}"))
        .await;
    assert_eq!(after["revocation_reason"], "keyCompromise");
    assert_eq!(
        after["revoked_at"], before["revoked_at"],
        "the revocation time stays"
    );
    let (status, body) = app
        .post(&revoker, &path, json!({"reason": "keyCompromise"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_revoked"))
    );
    app.stop().await;
}

#[tokio::test]
async fn expired_certificates_can_be_revoked() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    clock.advance(time::Duration::days(800));
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(shown["status"], "expired");
    let (status, out) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "cessationOfOperation"}),
        )
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{out}"
    );
    let (status, body) = app
        .post(
            &revoker,
            "/api/v1/certificates/00ff/revoke",
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    app.stop().await;
}

#[tokio::test]
async fn certificates_name_urls_this_server_answers() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let x = openssl::x509::X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
    let text = String::from_utf8(x.to_text().unwrap()).unwrap();
    let crl_url = format!("{}/crl/issuing.crl", app.base);
    let ca_url = format!("{}/ca/issuing.cer", app.base);
    assert!(text.contains(&format!("URI:{crl_url}")), "{text}");
    assert!(
        text.contains(&format!("CA Issuers - URI:{ca_url}")),
        "{text}"
    );
    let crl = app.client.get(&crl_url).send().await.unwrap();
    assert_eq!(crl.status(), StatusCode::OK);
    assert!(openssl::x509::X509Crl::from_der(&crl.bytes().await.unwrap()).is_ok());
    let ca = app
        .client
        .get(&ca_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // DER, as RFC 5280 asks of an HTTP caIssuers URI.
    let issuing = openssl::x509::X509::from_der(&ca).unwrap();
    assert!(x.verify(&issuing.public_key().unwrap()).unwrap());
    app.stop().await;
}

const DUAL_REVOCATION: &str = r#"
name = "person-signing-guarded"
subscriber_kind = "person"
validity_days = 365
key_types = ["ec-p256"]
request_expiry_hours = 24
key_usage = ["digitalSignature", "nonRepudiation"]
subject = ["common_name"]
revocation_approval = true
"#;

#[tokio::test]
async fn profiles_can_require_a_second_revoker() {
    let app = TestApp::spawn_with(Options {
        extra_profiles: vec![("guarded.toml".into(), DUAL_REVOCATION.into())],
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let (r1, r2) = (
        app.operator("revoker1", &["revoker"]).await,
        app.operator("revoker2", &["revoker"]).await,
    );
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let mut serials = Vec::new();
    for _ in 0..2 {
        let (_, req) = app
            .submit(&clerk, &sub, "person-signing-guarded", &p256_csr())
            .await;
        let (_, done) = app
            .post_empty(
                &approver,
                &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
            )
            .await;
        serials.push(done["serial"].as_str().unwrap().to_string());
    }

    let path = format!("/api/v1/certificates/{}/revoke", serials[0]);
    let (status, out) = app
        .post(&r1, &path, json!({"reason": "privilegeWithdrawn"}))
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending-approval")),
        "{out}"
    );
    let id = out["id"].as_str().unwrap().to_string();
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{}", serials[0]))
        .await;
    assert_eq!(
        shown["status"], "valid",
        "nothing is revoked before the second revoker"
    );
    let (status, body) = app.post(&r2, &path, json!({"reason": "superseded"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("revocation_pending"))
    );

    let (status, body) = app
        .post_empty(&r1, &format!("/api/v1/revocations/{id}/approve"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval"))
    );
    let (status, out) = app
        .post_empty(&r2, &format!("/api/v1/revocations/{id}/approve"))
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{out}"
    );
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{}", serials[0]))
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["revocation_reason"].as_str()
        ),
        (Some("revoked"), Some("privilegeWithdrawn"))
    );
    let (status, _) = app
        .post_empty(&r2, &format!("/api/v1/revocations/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, view) = app.get(&r1, &format!("/api/v1/revocations/{id}")).await;
    assert_eq!(view["status"], "approved");

    // A rejected revocation request leaves the certificate valid.
    let path = format!("/api/v1/certificates/{}/revoke", serials[1]);
    let (_, out) = app.post(&r1, &path, json!({"reason": "superseded"})).await;
    let id = out["id"].as_str().unwrap().to_string();
    let (status, view) = app
        .post(
            &r2,
            &format!("/api/v1/revocations/{id}/reject"),
            json!({"reason": "wrong person"}),
        )
        .await;
    assert_eq!(
        (status, view["status"].as_str()),
        (StatusCode::OK, Some("rejected")),
        "{view}"
    );
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{}", serials[1]))
        .await;
    assert_eq!(shown["status"], "valid");
    app.stop().await;
}

/// `openssl req` key + CSR in `dir`; returns the CSR PEM.
fn openssl_key_and_csr(dir: &Path, name: &str) -> String {
    let (ok, text) = run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=x",
            "-keyout",
        ])
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.csr"))));
    assert!(ok, "{text}");
    std::fs::read_to_string(dir.join(format!("{name}.csr"))).unwrap()
}

/// `openssl cms -sign` over a statement, with `signer`'s certificate and key; returns the DER.
fn sign_statement(
    dir: &Path,
    signer: &str,
    statement: &serde_json::Value,
    outform: &str,
) -> Vec<u8> {
    std::fs::write(dir.join("statement.json"), statement.to_string()).unwrap();
    let out = dir.join("statement.cms");
    let (ok, text) = run(Command::new("openssl")
        .args(["cms", "-sign", "-nodetach", "-outform", outform, "-in"])
        .arg(dir.join("statement.json"))
        .arg("-signer")
        .arg(dir.join(format!("{signer}.pem")))
        .arg("-inkey")
        .arg(dir.join(format!("{signer}.key")))
        .arg("-out")
        .arg(&out));
    assert!(ok, "{text}");
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn subscribers_revoke_with_proof_of_key_possession() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut serials = Vec::new();
    for name in ["alice", "mallory"] {
        let serial = app
            .issue(&clerk, &approver, &openssl_key_and_csr(d, name))
            .await;
        let (_, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        std::fs::write(d.join(format!("{name}.pem")), cert["pem"].as_str().unwrap()).unwrap();
        serials.push(serial);
    }
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let post = |body: Vec<u8>| {
        let req = app
            .client
            .post(app.url("/api/v1/revocations/by-key"))
            .body(body);
        async move { split(req.send().await.unwrap()).await }
    };

    // Signed by another certificate's key: refused.
    let forged = sign_statement(
        d,
        "mallory",
        &json!({"serial": serials[0], "reason": "keyCompromise", "time": now}),
        "DER",
    );
    let (status, body) = post(forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_key_holder")),
        "{body}"
    );

    // An old statement: refused.
    let old = sign_statement(
        d,
        "alice",
        &json!({"serial": serials[0], "reason": "superseded", "time": "2020-01-01T00:00:00Z"}),
        "DER",
    );
    let (status, body) = post(old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stale_statement"))
    );

    // Signed by the certificate's own key (PEM here): revoked; and only once.
    let good = sign_statement(
        d,
        "alice",
        &json!({"serial": serials[0], "reason": "keyCompromise", "time": now}),
        "PEM",
    );
    let (status, out) = post(good.clone()).await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{out}"
    );
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{}", serials[0]))
        .await;
    assert_eq!(shown["revocation_reason"], "keyCompromise");
    let (status, body) = post(good).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("replayed"))
    );
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{}", serials[1]))
        .await;
    assert_eq!(
        shown["status"], "valid",
        "mallory's certificate is untouched"
    );

    let (status, body) = post(b"garbage".to_vec()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_cms"))
    );
    app.stop().await;
}
