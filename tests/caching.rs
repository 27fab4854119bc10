//! HTTP caching of OCSP answers and CRLs (RFC 5019 §6.2, RFC 9110 conditional requests): the
//! headers' values checked against the DER they come with (parsed by OpenSSL and x509-parser),
//! 304 answers, a changed ETag after a revocation, POST and error answers not cacheable, and curl
//! revalidating on its own.

mod common;

use base64::Engine;
use common::*;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspResponse};
use openssl::x509::X509;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use time::OffsetDateTime;

/// Unix seconds of an IMF-fixdate header, e.g. `Thu, 26 Nov 2026 10:00:00 GMT`.
fn http_date(headers: &HeaderMap, name: &str) -> i64 {
    let text = headers[name].to_str().unwrap();
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .unwrap_or_else(|e| panic!("{name}: {text:?} is not an IMF-fixdate: {e}"))
        .assume_utc()
        .unix_timestamp()
}

/// Unix seconds of OpenSSL's printed GeneralizedTime, e.g. `Nov 26 10:00:00 2026 GMT`.
fn openssl_time(text: &str) -> i64 {
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .assume_utc()
        .unix_timestamp()
}

fn max_age(headers: &HeaderMap) -> i64 {
    let cc = headers["cache-control"].to_str().unwrap();
    let mut parts = cc.split(", ");
    let age = parts
        .next()
        .and_then(|p| p.strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age first in {cc:?}"));
    assert_eq!(
        parts.collect::<Vec<_>>(),
        ["public", "no-transform", "must-revalidate"],
        "{cc}"
    );
    age.parse().unwrap()
}

fn sha256_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(openssl::sha::sha256(body)))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The checks every cacheable answer passes: ETag is the body's SHA-256, Last-Modified and
/// Expires are `this_update` and `next_update` as the DER states them, max-age runs to nextUpdate.
fn assert_cacheable(headers: &HeaderMap, body: &[u8], this_update: i64, next_update: i64) {
    assert_eq!(headers["etag"], sha256_etag(body).as_str());
    assert_eq!(http_date(headers, "last-modified"), this_update);
    assert_eq!(http_date(headers, "expires"), next_update);
    // nextUpdate minus the server's clock when it answered: after thisUpdate, before now.
    let age = max_age(headers);
    assert!(age <= next_update - this_update, "max-age {age}");
    assert!(age >= next_update - now() - 1, "max-age {age}");
    assert!(age > 0);
}

async fn get(app: &TestApp, path: &str, conditions: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    for (name, value) in conditions {
        req = req.header(*name, *value);
    }
    req.send().await.expect("GET")
}

struct Subject {
    dir: tempfile::TempDir,
}

impl Subject {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An OCSP request for the certificate, by `openssl ocsp`, with or without a nonce.
    fn request(&self, nonce: bool) -> Vec<u8> {
        let out = self.path("req.der");
        let mut cmd = Command::new("openssl");
        cmd.arg("ocsp");
        if !nonce {
            cmd.arg("-no_nonce");
        }
        let (ok, text) = run(cmd
            .arg("-issuer")
            .arg(self.path("issuing.pem"))
            .arg("-cert")
            .arg(self.path("cert.pem"))
            .arg("-reqout")
            .arg(&out));
        assert!(ok, "{text}");
        std::fs::read(out).unwrap()
    }

    /// The certificate's status in a DER response, with thisUpdate and nextUpdate as OpenSSL
    /// reads them.
    fn status(&self, der: &[u8]) -> (OcspCertStatus, i64, i64) {
        let read = |name: &str| X509::from_pem(&std::fs::read(self.path(name)).unwrap()).unwrap();
        let id = OcspCertId::from_cert(
            MessageDigest::sha1(),
            &read("cert.pem"),
            &read("issuing.pem"),
        )
        .unwrap();
        let basic = OcspResponse::from_der(der).unwrap().basic().unwrap();
        let s = basic.find_status(&id).expect("the certificate is answered");
        let next = s.next_update().expect("nextUpdate").to_string();
        (
            s.status,
            openssl_time(&s.this_update.to_string()),
            openssl_time(&next),
        )
    }
}

async fn issued(app: &TestApp) -> (Subject, String, String) {
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let subject = Subject {
        dir: tempfile::tempdir().unwrap(),
    };
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    std::fs::write(subject.path("cert.pem"), cert["pem"].as_str().unwrap()).unwrap();
    app.save_ca_certs(subject.dir.path()).await;
    (subject, serial, revoker)
}

async fn revoke(app: &TestApp, revoker: &str, serial: &str) {
    let (status, body) = app
        .post(
            revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn ocsp_get_answers_are_cacheable_until_next_update_and_revalidate() {
    let app = TestApp::spawn().await;
    let (subject, serial, revoker) = issued(&app).await;
    let req = subject.request(false);
    let path = format!(
        "/ocsp/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&req)
    );

    let resp = get(&app, &path, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    let (status, this_update, next_update) = subject.status(&body);
    assert_eq!(status, OcspCertStatus::GOOD);
    assert_cacheable(&headers, &body, this_update, next_update);
    assert_eq!(next_update - this_update, 3600);
    let etag = headers["etag"].to_str().unwrap().to_string();
    let last_modified = headers["last-modified"].to_str().unwrap().to_string();

    // Conditional GETs: the ETag, a list holding it, or Last-Modified itself give 304, no body,
    // the same validators.
    for conditions in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", &format!("\"other\", W/{etag}") as &str)],
        vec![("if-none-match", "*")],
        vec![("if-modified-since", last_modified.as_str())],
    ] {
        let resp = get(&app, &path, &conditions).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{conditions:?}");
        assert_eq!(resp.headers()["etag"], etag.as_str());
        assert_eq!(resp.headers()["expires"], headers["expires"]);
        assert_eq!(resp.headers()["last-modified"], last_modified.as_str());
        assert!(max_age(resp.headers()) > 0);
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    // A stale ETag, an older date, or a malformed one: the full answer.
    for conditions in [
        vec![("if-none-match", "\"0123\"")],
        vec![("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        vec![("if-modified-since", "not a date")],
    ] {
        let resp = get(&app, &path, &conditions).await;
        assert_eq!(resp.status(), StatusCode::OK, "{conditions:?}");
        assert_eq!(resp.bytes().await.unwrap(), body);
    }

    // A revocation changes the answer: the old ETag no longer matches, the new one is its own.
    revoke(&app, &revoker, &serial).await;
    let resp = get(&app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    let revoked = resp.bytes().await.unwrap();
    let (status, this_update, next_update) = subject.status(&revoked);
    assert!(matches!(status, OcspCertStatus::REVOKED), "{status:?}");
    assert_ne!(headers["etag"], etag.as_str());
    assert_cacheable(&headers, &revoked, this_update, next_update);
    let new_etag = headers["etag"].to_str().unwrap().to_string();
    let resp = get(&app, &path, &[("if-none-match", &new_etag)]).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    app.stop().await;
}

#[tokio::test]
async fn post_nonce_and_error_answers_are_not_cacheable() {
    let app = TestApp::spawn().await;
    let (subject, _, _) = issued(&app).await;
    let req = subject.request(false);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&req);
    let etag = get(&app, &format!("/ocsp/{b64}"), &[]).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();

    let no_store = |h: &HeaderMap| {
        assert_eq!(h["cache-control"], "no-store");
        for name in ["etag", "expires", "last-modified"] {
            assert!(h.get(name).is_none(), "{name}: {:?}", h.get(name));
        }
    };
    // POST: one URL for every question, so never cacheable, and validators are not honoured.
    let resp = app
        .client
        .post(app.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .header("if-none-match", &etag)
        .body(req.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    no_store(resp.headers());
    let (status, _, _) = subject.status(&resp.bytes().await.unwrap());
    assert_eq!(status, OcspCertStatus::GOOD);

    // A GET with a nonce: signed for this one question, not to be reused.
    let nonced = subject.request(true);
    let path = format!(
        "/ocsp/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&nonced)
    );
    let resp = get(&app, &path, &[("if-none-match", "*")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    no_store(resp.headers());
    assert_eq!(
        subject.status(&resp.bytes().await.unwrap()).0,
        OcspCertStatus::GOOD
    );

    // malformedRequest carries no nextUpdate: nothing to cache by.
    let resp = get(&app, "/ocsp/AAAA", &[("if-none-match", "*")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    no_store(resp.headers());
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        OcspResponse::from_der(&body).unwrap().status(),
        openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
    );
    app.stop().await;
}

/// thisUpdate and nextUpdate of a DER CRL, read by x509-parser.
fn crl_times(der: &[u8]) -> (i64, i64) {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).unwrap();
    (
        crl.last_update().timestamp(),
        crl.next_update().expect("nextUpdate").timestamp(),
    )
}

#[tokio::test]
async fn crls_are_cacheable_until_next_update_and_revalidate() {
    let app = TestApp::spawn().await;
    let (_, serial, revoker) = issued(&app).await;
    let mut etags = Vec::new();
    for (path, validity) in [
        ("/crl/issuing.crl", 24 * 3600),
        ("/crl/issuing-delta.crl", 3600),
    ] {
        let resp = get(&app, path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap();
        let (this_update, next_update) = crl_times(&body);
        assert_eq!(next_update - this_update, validity, "{path}");
        assert_cacheable(&headers, &body, this_update, next_update);
        let etag = headers["etag"].to_str().unwrap().to_string();
        let last_modified = headers["last-modified"].to_str().unwrap();
        for conditions in [
            [("if-none-match", etag.as_str())],
            [("if-modified-since", last_modified)],
        ] {
            let resp = get(&app, path, &conditions).await;
            assert_eq!(
                resp.status(),
                StatusCode::NOT_MODIFIED,
                "{path} {conditions:?}"
            );
            assert_eq!(resp.headers()["etag"], etag.as_str());
            assert!(resp.bytes().await.unwrap().is_empty());
        }
        let resp = get(&app, path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.bytes().await.unwrap(), body);
        etags.push((path, etag, body));
    }

    // A revocation re-signs both: new bodies, new ETags, and the old ones get 200.
    revoke(&app, &revoker, &serial).await;
    for (path, old_etag, old_body) in etags {
        let resp = get(&app, path, &[("if-none-match", &old_etag)]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap();
        assert_ne!(body, old_body, "{path}");
        assert_ne!(headers["etag"], old_etag.as_str(), "{path}");
        let (this_update, next_update) = crl_times(&body);
        assert_cacheable(&headers, &body, this_update, next_update);
    }
    // Unknown CRLs are still 404, with no caching headers.
    let resp = get(&app, "/crl/root-delta.crl", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().get("etag").is_none());
    app.stop().await;
}

#[tokio::test]
async fn ca_certificates_carry_an_etag() {
    let app = TestApp::spawn().await;
    let resp = get(&app, "/ca/issuing.pem", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let body = resp.bytes().await.unwrap();
    assert_eq!(etag, sha256_etag(&body));
    let resp = get(&app, "/ca/issuing.pem", &[("if-none-match", &etag)]).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.bytes().await.unwrap().is_empty());
    let root = get(&app, "/ca/root.pem", &[("if-none-match", &etag)]).await;
    assert_eq!(
        root.status(),
        StatusCode::OK,
        "another certificate, another tag"
    );
    app.stop().await;
}

/// curl (`--etag-save`, `--etag-compare`, `-z`) as a client we did not write: it gets 304 for
/// what it already holds.
fn curl(args: &[&str], dir: &Path) -> String {
    let (ok, out) = run(Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "-o", "body", "-w", "%{http_code}"])
        .args(args));
    assert!(ok, "curl {args:?}: {out}");
    out
}

#[tokio::test]
async fn curl_revalidates_with_etag_and_date() {
    let app = TestApp::spawn().await;
    let (subject, _, _) = issued(&app).await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(subject.request(false));
    let dir = subject.dir.path().to_path_buf();
    for url in [
        app.url(&format!("/ocsp/{b64}")),
        app.url("/crl/issuing.crl"),
    ] {
        let (url, dir) = (url.clone(), dir.clone());
        tokio::task::spawn_blocking(move || {
            assert_eq!(curl(&["--etag-save", "etag.txt", &url], &dir), "200");
            let saved = std::fs::read(dir.join("body")).unwrap();
            assert!(!saved.is_empty());
            let tag = std::fs::read_to_string(dir.join("etag.txt")).unwrap();
            assert_eq!(tag.trim(), sha256_etag(&saved), "{url}");
            assert_eq!(curl(&["--etag-compare", "etag.txt", &url], &dir), "304");
            // -z with the file curl just wrote: If-Modified-Since its mtime, which is after
            // Last-Modified.
            assert_eq!(curl(&["-z", "body", &url], &dir), "304");
            // A date before thisUpdate: the full answer again.
            assert_eq!(
                curl(&["-z", "Mon, 01 Jan 2001 00:00:00 GMT", &url], &dir),
                "200"
            );
        })
        .await
        .unwrap();
    }
    app.stop().await;
}
