//! The OCSP responder, driven by `openssl ocsp` at the URL the certificate itself names, and
//! checked with pkilint `lint_ocsp_response` and Python `cryptography`.

mod common;

use base64::Engine;
use common::*;
use openssl::hash::MessageDigest;
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

async fn setup(app: &TestApp, clerk: &str, serial: &str) -> (Files, String) {
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let (_, cert) = app
        .get(clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    std::fs::write(files.path("cert.pem"), cert["pem"].as_str().unwrap()).unwrap();
    app.save_ca_certs(files.dir.path()).await;
    // The OCSP URL from the certificate's AIA, as a relying party finds it.
    let (ok, url) = run(Command::new("openssl")
        .args(["x509", "-noout", "-ocsp_uri", "-in"])
        .arg(files.path("cert.pem")));
    assert!(ok, "{url}");
    let url = url.trim().to_string();
    assert_eq!(url, app.url("/ocsp"));
    (files, url)
}

/// `openssl ocsp` against `url`; returns its output (which includes the status line).
async fn ask(files: &Files, url: &str) -> String {
    let (cert, issuing, root, url) = (
        files.path("cert.pem"),
        files.path("issuing.pem"),
        files.path("root.pem"),
        url.to_string(),
    );
    let resp = files.path("resp.der");
    tokio::task::spawn_blocking(move || {
        let (ok, text) = run(Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&cert)
            .arg("-CAfile")
            .arg(&root)
            .args(["-url", &url, "-respout"])
            .arg(&resp));
        assert!(ok, "{text}");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(!text.contains("WARNING: no nonce"), "nonce echoed: {text}");
        text
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn good_then_revoked_then_hold_and_release() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let (files, url) = setup(&app, &clerk, &serial).await;

    let text = ask(&files, &url).await;
    assert!(text.contains("cert.pem: good"), "{text}");
    // Independent checks of a real response.
    let (_, lint) = run(Command::new(venv_bin("lint_ocsp_response"))
        .arg("lint")
        .arg(files.path("resp.der")));
    assert!(
        !lint.contains("(ERROR)") && !lint.contains("(FATAL)") && !lint.contains("Traceback"),
        "{lint}"
    );
    let script = r#"
import sys
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.hazmat.primitives.asymmetric import ec
resp = ocsp.load_der_ocsp_response(open(sys.argv[1], "rb").read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
responder = resp.certificates[0]
responder.verify_directly_issued_by(issuing)
eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
responder.public_key().verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
print("ok", resp.certificate_status)
"#;
    let (ok, out) = run(Command::new(venv_bin("python"))
        .arg("-c")
        .arg(script)
        .arg(files.path("resp.der"))
        .arg(files.path("issuing.pem")));
    assert!(ok && out.contains("GOOD"), "{out}");

    let (status, _) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = ask(&files, &url).await;
    assert!(
        text.contains("cert.pem: revoked") && text.contains("Reason: keyCompromise"),
        "{text}"
    );

    let other = app.issue(&clerk, &approver, &p256_csr()).await;
    let (files, url) = setup(&app, &clerk, &other).await;
    let (status, _) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{other}/hold"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = ask(&files, &url).await;
    assert!(
        text.contains("cert.pem: revoked") && text.contains("Reason: certificateHold"),
        "{text}"
    );
    let (status, _) = app
        .post_empty(&revoker, &format!("/api/v1/certificates/{other}/release"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = ask(&files, &url).await;
    assert!(text.contains("cert.pem: good"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn never_good_for_a_serial_the_ca_did_not_issue() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let (files, url) = setup(&app, &clerk, &serial).await;
    let (issuing, url2) = (files.path("issuing.pem"), url.clone());
    let text = tokio::task::spawn_blocking(move || {
        run(Command::new("openssl")
            .args(["ocsp", "-noverify", "-issuer"])
            .arg(&issuing)
            .args(["-serial", "0x1234abcd", "-url", &url2]))
        .1
    })
    .await
    .unwrap();
    assert!(text.contains("0x1234abcd: unknown"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn get_requests_and_malformed_requests() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let (files, _) = setup(&app, &clerk, &serial).await;
    // Make a request with openssl, send it by GET in both base64 alphabets.
    let (ok, text) = run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(files.path("issuing.pem"))
        .arg("-cert")
        .arg(files.path("cert.pem"))
        .arg("-reqout")
        .arg(files.path("req.der")));
    assert!(ok, "{text}");
    let req = std::fs::read(files.path("req.der")).unwrap();
    for encoded in [
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&req),
        base64::engine::general_purpose::STANDARD
            .encode(&req)
            .replace('/', "%2F")
            .replace('+', "%2B"),
    ] {
        let resp = app
            .client
            .get(app.url(&format!("/ocsp/{encoded}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
        let der = resp.bytes().await.unwrap();
        let parsed = openssl::ocsp::OcspResponse::from_der(&der).unwrap();
        assert_eq!(
            parsed.status(),
            openssl::ocsp::OcspResponseStatus::SUCCESSFUL
        );
    }
    // Without a nonce the signed response is served again, until the status changes.
    let url = app.url(&format!(
        "/ocsp/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&req)
    ));
    let first = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let again = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, again, "a cached response");
    let status_of = |der: &[u8]| {
        let cert =
            openssl::x509::X509::from_pem(&std::fs::read(files.path("cert.pem")).unwrap()).unwrap();
        let issuer =
            openssl::x509::X509::from_pem(&std::fs::read(files.path("issuing.pem")).unwrap())
                .unwrap();
        let id =
            openssl::ocsp::OcspCertId::from_cert(MessageDigest::sha1(), &cert, &issuer).unwrap();
        let basic = openssl::ocsp::OcspResponse::from_der(der)
            .unwrap()
            .basic()
            .unwrap();
        basic.find_status(&id).unwrap().status
    };
    assert_eq!(status_of(&first), openssl::ocsp::OcspCertStatus::GOOD);
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let (status, _) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(status_of(&after), openssl::ocsp::OcspCertStatus::REVOKED);

    for garbage in [&b""[..], b"\x30\x03\x02\x01\x01", b"not der at all"] {
        let resp = app
            .client
            .post(app.url("/ocsp"))
            .body(garbage.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let parsed = openssl::ocsp::OcspResponse::from_der(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(
            parsed.status(),
            openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
        );
    }
    app.stop().await;
}
