//! Upstream CAs: CFSSL as a remote signer (a real `cfssl serve`, Debian golang-cfssl), routing by
//! profile, revocations forwarded upstream, failures (CA down, wrong auth key, a certificate that
//! does not match the order) and `upstream.toml` / `vouch upstream check`.

mod common;

use common::cfssl::{upstream_toml, write_private, Cfssl, AUTH_KEY};
use common::{p256_csr, run, Options, TestApp, BIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The usages of Vouch's person-signing profile, in CFSSL's words ("committment" is how CFSSL
/// 1.2 spells contentCommitment in its policy).
const SIGNING_USAGES: &[&str] = &[
    "digital signature",
    "content committment",
    "email protection",
];

async fn app_with(toml: String) -> TestApp {
    TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        ..Options::default()
    })
    .await
}

/// A P-256 CSR whose subject has attributes Vouch never approves (C, ST, L, O, OU). Vouch ignores
/// a CSR's subject; CFSSL copies into the certificate what the request leaves unset, so such a
/// CSR is refused at submission when CFSSL would sign it.
fn busy_csr() -> String {
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    for (k, v) in [
        ("C", "NL"),
        ("ST", "Noord-Holland"),
        ("L", "Amsterdam"),
        ("O", "Elsewhere"),
        ("OU", "Nobody approved this"),
        ("CN", "someone else"),
    ] {
        name.append_entry_by_text(k, v).unwrap();
    }
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

/// Register a person and submit `profile` with a fresh key; returns the request id.
async fn submitted(app: &TestApp, clerk: &str, profile: &str) -> String {
    let sub = app.person(clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app.submit(clerk, &sub, profile, &p256_csr()).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    req["id"].as_str().unwrap().to_string()
}

async fn approve(app: &TestApp, approver: &str, id: &str) -> (StatusCode, Value) {
    app.post_empty(approver, &format!("/api/v1/requests/{id}/approve"))
        .await
}

fn pem_certs_der(pem: &str) -> Vec<Vec<u8>> {
    openssl::x509::X509::stack_from_pem(pem.as_bytes())
        .unwrap()
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect()
}

/// An unauthenticated GET of one of the server's public documents (CA certificates, CRLs).
async fn public(app: &TestApp, path: &str) -> Vec<u8> {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

fn audit_actions(entries: &[Value], action: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// An app whose person-signing profile goes to the CA `id` at `url` with `key`, a clerk and an
/// approver, and a person-signing request submitted: (app, clerk, approver, request id).
async fn submitted_to(id: &str, url: &str, key: &str) -> (TestApp, String, String, String) {
    let app = app_with(upstream_toml(id, url, key, &["person-signing"])).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let request = submitted(&app, &clerk, "person-signing").await;
    (app, clerk, approver, request)
}

#[tokio::test]
async fn enrols_through_cfssl_routes_by_profile_and_forwards_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start(dir.path(), SIGNING_USAGES, "8760h");
    // The normal flow: a clerk submits, a second operator approves; CFSSL signs.
    let (app, clerk, approver, id) = submitted_to("city-cfssl", &cfssl.url, AUTH_KEY).await;
    // A CSR whose subject CFSSL would copy in is refused at submission, naming what to change.
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, refused) = app
        .submit(&clerk, &sub, "person-signing", &busy_csr())
        .await;
    assert!(status.is_client_error(), "{status} {refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("copies a CSR's subject") && message.contains("C, ST, L, O, OU"),
        "{refused}"
    );
    let (status, body) = approve(&app, &approver, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cfssl.log());
    assert_eq!(body["status"], "issued", "{body}");
    let serial = body["serial"].as_str().unwrap().to_string();
    let (status, cert) = app
        .get(&approver, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(cert["ca"], "city-cfssl");
    assert_eq!(
        pem_certs_der(cert["chain_pem"].as_str().unwrap()),
        pem_certs_der(&cfssl.ca_pem()),
        "chain_pem is the CFSSL CA's chain"
    );
    // The certificate is CFSSL's: its serial is the one recorded, OpenSSL verifies it against
    // the test CA, and CFSSL's own database holds it as good.
    let pem = cert["pem"].as_str().unwrap();
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let cert_serial = hex::encode(x.serial_number().to_bn().unwrap().to_vec());
    // Stored and shown with no leading zero digit, like every serial.
    assert_eq!(cert_serial.trim_start_matches('0'), serial);
    std::fs::write(dir.path().join("leaf.pem"), pem).unwrap();
    let (ok, text) = run(Command::new("openssl")
        .args(["verify", "-purpose", "smimesign", "-CAfile"])
        .arg(&cfssl.ca.cert)
        .arg(dir.path().join("leaf.pem")));
    assert!(ok, "openssl verify: {text}");
    assert_eq!(cfssl.certdb_status(&serial), Some(("good".into(), 0)));
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["serial"], serial.as_str());
    let entries = app.audit_entries().await;
    let issued = audit_actions(&entries, "certificate.issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["target"], serial.as_str());
    assert_eq!(issued[0]["details"]["ca"], "city-cfssl");
    let intent = &audit_actions(&entries, "issuance.intent")[0];
    assert_eq!(intent["details"]["ca"], "city-cfssl");
    assert_eq!(
        issued[0]["details"]["reserved_serial"], intent["details"]["serial"],
        "the intent keeps its reserved serial"
    );

    // A profile no CA claims goes to the embedded CA.
    let other = submitted(&app, &clerk, "person-auth").await;
    let (status, body) = approve(&app, &approver, &other).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let embedded_serial = body["serial"].as_str().unwrap().to_string();
    let (_, embedded) = app
        .get(
            &approver,
            &format!("/api/v1/certificates/{embedded_serial}"),
        )
        .await;
    assert_eq!(embedded["ca"], "issuing");
    let issuing = String::from_utf8(public(&app, "/ca/issuing.pem").await).unwrap();
    assert_eq!(
        pem_certs_der(embedded["chain_pem"].as_str().unwrap())[0],
        pem_certs_der(&issuing)[0]
    );
    assert_eq!(
        cfssl.certdb_count(),
        1,
        "CFSSL signed only the person-signing one"
    );

    // Revocation through Vouch: revoked here at once, and forwarded to CFSSL.
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let (status, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    assert!(body.get("upstream_errors").is_none(), "{body}");
    assert_eq!(
        cfssl.certdb_status(&serial),
        Some(("revoked".into(), 1)),
        "CFSSL's database has it revoked for keyCompromise"
    );
    let entries = app.audit_entries().await;
    let forwarded = audit_actions(&entries, "certificate.revocation_forwarded");
    assert_eq!(forwarded.len(), 1, "{entries:?}");
    assert_eq!(forwarded[0]["target"], serial.as_str());
    assert_eq!(forwarded[0]["details"]["ca"], "city-cfssl");
    // Vouch's own CRL keeps to the embedded CA's certificates.
    let crl = openssl::x509::X509Crl::from_der(&public(&app, "/crl/issuing.crl").await).unwrap();
    assert!(crl.get_revoked().is_none_or(|r| r.is_empty()));
    app.stop().await;
}

#[tokio::test]
async fn cfssl_down_leaves_the_request_approved_with_a_visible_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfssl = Cfssl::start(dir.path(), SIGNING_USAGES, "8760h");
    let (app, _, approver, id) = submitted_to("city-cfssl", &cfssl.url, AUTH_KEY).await;
    cfssl.stop();
    let (status, body) = approve(&app, &approver, &id).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "upstream_ca_error", "{body}");
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    assert!(req.get("serial").is_none_or(|s| s.is_null()), "{req}");
    let why = req.to_string();
    assert!(
        why.contains("the CA city-cfssl is unreachable") && why.contains(&cfssl.url),
        "the request shows why: {req}"
    );
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 0);
    assert_eq!(cfssl.certdb_count(), 0);

    // CFSSL back: reconciliation completes the same intent, once.
    cfssl.restart();
    let done = app.ra.reconcile(time::Duration::ZERO).await.unwrap();
    assert_eq!(done, 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 1);
    assert_eq!(cfssl.certdb_count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_auth_key_is_refused_by_the_ca_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start(dir.path(), SIGNING_USAGES, "8760h");
    let (app, _, approver, id) =
        submitted_to("city-cfssl", &cfssl.url, "00112233445566778899aabbccddeeff").await;
    let (status, body) = approve(&app, &approver, &id).await;
    assert_eq!(body["error"], "ca_refused", "{body}");
    assert!(status.is_client_error(), "{status}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("city-cfssl") && message.contains("invalid token"),
        "{body}"
    );
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "failed", "{req}");
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 0);
    assert_eq!(cfssl.certdb_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_certificate_that_does_not_match_the_order_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::cfssl::make_test_ca(dir.path());
    let fake = common::fake_cfssl::FakeCfssl::start(&ca).await;
    let (app, _, approver, id) = submitted_to("fake-ca", &fake.url, AUTH_KEY).await;
    let (status, body) = approve(&app, &approver, &id).await;
    assert_eq!(body["error"], "ca_certificate_mismatch", "{body}");
    assert!(status.is_client_error(), "{status}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("fake-ca") && message.contains("another public key"),
        "{body}"
    );
    assert_eq!(fake.signed(), 1, "the CA was asked once");
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "failed", "{req}");
    assert!(req.to_string().contains("another public key"), "{req}");
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 0);
    let entries = app.audit_entries().await;
    let quarantined = audit_actions(&entries, "certificate.quarantined");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["target"], id.as_str());
    assert_eq!(quarantined[0]["details"]["ca"], "fake-ca");
    assert!(quarantined[0]["details"]["certificate"].as_str().is_some());
    // It is valid at the CA for a key nobody approved: revoked there (superseded, 4), and the
    // outcome is in the quarantine's entry.
    let revoked = fake.revoked();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["serial"], "2125315823", "0x7eadbeef in decimal");
    assert_eq!(revoked[0]["reason"], "superseded", "{revoked:?}");
    let upstream = &quarantined[0]["details"]["upstream_revocation"];
    assert_eq!(upstream["serial"], "7eadbeef");
    assert_eq!(upstream["revoked"], true, "{upstream}");
    assert!(audit_actions(&entries, "certificate.issued").is_empty());
    // Reconciliation does not ask again: the request is failed for good.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(fake.signed(), 1);
    app.stop().await;
}

/// `vouch init` a data directory, write `upstream.toml`, run `vouch upstream check`.
fn check(data: &Path, toml: &str) -> (Option<i32>, String) {
    write_private(&data.join("upstream.toml"), toml);
    let out = Command::new(BIN)
        .args(["upstream", "check", "--data-dir"])
        .arg(data)
        .env("VOUCH_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn init(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let (ok, text) = run(Command::new(BIN).args(["init", "--data-dir"]).arg(&data));
    assert!(ok, "vouch init: {text}");
    data
}

#[tokio::test]
async fn upstream_check_prints_each_ca_and_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start(dir.path(), SIGNING_USAGES, "8760h");
    let data = init(dir.path());
    let down = format!("http://127.0.0.1:{}", common::cfssl::free_port());
    let toml = format!(
        "{}\n{}",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        upstream_toml("province-cfssl", &down, AUTH_KEY, &["person-auth"])
    );
    let (code, text) = check(&data, &toml);
    assert_eq!(code, Some(1), "one CA is down: {text}");
    let first = text.split("ca province-cfssl").next().unwrap();
    assert!(first.contains("ca city-cfssl"), "{text}");
    assert!(first.contains("  kind: cfssl"), "{text}");
    assert!(first.contains(&format!("  url: {}", cfssl.url)), "{text}");
    assert!(first.contains("  status: ok"), "{text}");
    assert!(
        first.contains("subject: O=City Test, CN=City CFSSL Test CA"),
        "{text}"
    );
    assert!(
        first.contains("issuer: O=City Test, CN=City CFSSL Test CA"),
        "{text}"
    );
    assert!(first.contains("notAfter: 20"), "{text}");
    let second = text.split("ca province-cfssl").nth(1).unwrap();
    assert!(
        second.contains("status: failed") && second.contains("unreachable"),
        "{text}"
    );
    // A wrong auth_key: /info answers all the same, the check asks authsign for nothing and
    // says the key is refused (CFSSL's "invalid token"); nothing is signed.
    let wrong = upstream_toml(
        "city-cfssl",
        &cfssl.url,
        "00112233445566778899aabbccddeeff",
        &["person-signing"],
    );
    let (code, text) = check(&data, &wrong);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("status: failed: the CA city-cfssl does not accept the auth_key")
            && text.contains("invalid token"),
        "{text}"
    );
    assert!(
        !text.contains("00112233445566778899"),
        "the key is never printed: {text}"
    );
    assert_eq!(cfssl.certdb_count(), 0, "the checks signed nothing");
    assert!(!text.contains(AUTH_KEY), "the key is never printed");
    // Only the reachable one: success.
    let toml = upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]);
    let (code, text) = check(&data, &toml);
    assert_eq!(code, Some(0), "{text}");
    // A server that cannot reach a configured CA does not start, and says which.
    write_private(
        &data.join("upstream.toml"),
        &upstream_toml("province-cfssl", &down, AUTH_KEY, &["person-auth"]),
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("upstream.toml") && err.contains("province-cfssl"),
        "{err}"
    );
}

#[tokio::test]
async fn upstream_toml_is_checked_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path());
    let good = upstream_toml(
        "city-cfssl",
        "http://127.0.0.1:9",
        AUTH_KEY,
        &["person-signing"],
    );
    let file = data.join("upstream.toml").display().to_string();
    let cases: Vec<(String, &[&str])> = vec![
        (
            good.replace("cfssl_profile", "cfssl_profil"),
            &[
                "[[ca]] #1 (id \"city-cfssl\")",
                "unknown field `cfssl_profil`",
            ],
        ),
        (
            good.replace(AUTH_KEY, "xyz"),
            &["[[ca]] #1 (id \"city-cfssl\")", "`auth_key`", "not hex"],
        ),
        (
            good.replace("auth_key =", "auth_key_file = \"k\"\nauth_key ="),
            &["not both"],
        ),
        (
            good.replace("person-signing", "no-such-profile"),
            &[
                "`profiles`",
                "\"no-such-profile\" is not a certificate profile",
            ],
        ),
        (
            format!("{good}\n{}", good.replace("city-cfssl", "other-ca")),
            &[
                "[[ca]] #2 (id \"other-ca\")",
                "\"person-signing\" is claimed by the CA \"city-cfssl\"",
            ],
        ),
        (
            format!("{good}\n{}", good.replace("person-signing", "person-auth")),
            &[
                "[[ca]] #2",
                "`id` \"city-cfssl\" is used by an earlier entry",
            ],
        ),
        (
            good.replace("kind = \"cfssl\"", "kind = \"cmp\""),
            &["`auth_key` is not a key of a kind = \"cmp\" entry"],
        ),
        (
            "[[ca]]\nid = \"city-cmp\"\nkind = \"cmp\"\nurl = \"http://127.0.0.1:9\"\n\
             protection = \"pbm\"\npbm_secret = \"s\"\nprofiles = [\"person-signing\"]\n"
                .to_string(),
            &[
                "[[ca]] #1 (id \"city-cmp\")",
                "missing field `trust_anchor_file`",
            ],
        ),
    ];
    for (toml, wants) in cases {
        let (code, text) = check(&data, &toml);
        assert_eq!(code, Some(2), "{toml}\n{text}");
        assert!(text.contains(&file), "names the file: {text}");
        for want in wants {
            assert!(text.contains(want), "{want:?} in {text}");
        }
        assert!(!text.contains(AUTH_KEY), "the key is never printed: {text}");
    }
    // A key written in a file others can read is refused (a key file must be private too).
    std::fs::write(data.join("upstream.toml"), &good).unwrap();
    std::fs::set_permissions(
        data.join("upstream.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["upstream", "check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("`auth_key` is written in a file group or others can read"),
        "{text}"
    );
    // Without the file, the embedded CA signs everything.
    std::fs::remove_file(data.join("upstream.toml")).unwrap();
    let out = Command::new(BIN)
        .args(["upstream", "check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("the embedded CA signs every profile"));
}

/// A remote CA's certificates name the remote CA's own CRL distribution point and OCSP
/// responder (here CFSSL's signing profile gives them), not Vouch's: Vouch asks for none of its
/// publication URLs in a remote order, accepts the CA's, and delivers the certificate; Vouch's
/// own OCSP responder does not answer for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_remote_certificate_names_the_remote_cas_cdp_and_aia() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfssl = Cfssl::start(dir.path(), SIGNING_USAGES, "8760h");
    // The CA's profile names its CRL and OCSP locations (CFSSL's `crl_url` and `ocsp_url`).
    let (crl_url, ocsp_url) = (
        "http://ca.city.example/city.crl",
        "http://ca.city.example/ocsp",
    );
    let config_file = dir.path().join("cfssl-config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_file).unwrap()).unwrap();
    for path in [&["default"][..], &["profiles", "person"][..]] {
        let profile = path
            .iter()
            .fold(&mut config["signing"], |v, key| &mut v[*key]);
        profile["crl_url"] = json!(crl_url);
        profile["ocsp_url"] = json!(ocsp_url);
    }
    std::fs::write(&config_file, config.to_string()).unwrap();
    cfssl.stop();
    cfssl.restart();
    let (app, _clerk, approver, id) = submitted_to("city-cfssl", &cfssl.url, AUTH_KEY).await;
    let (status, body) = approve(&app, &approver, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cfssl.log());
    assert_eq!(body["status"], "issued", "{body}");
    let serial = body["serial"].as_str().unwrap();
    let (_, cert) = app
        .get(&approver, &format!("/api/v1/certificates/{serial}"))
        .await;
    // Read by OpenSSL's own printer.
    let leaf = dir.path().join("remote-leaf.pem");
    std::fs::write(&leaf, cert["pem"].as_str().unwrap()).unwrap();
    let (ok, text) = run(Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "crlDistributionPoints,authorityInfoAccess",
            "-in",
        ])
        .arg(&leaf));
    assert!(ok, "{text}");
    assert!(text.contains(&format!("URI:{crl_url}")), "{text}");
    assert!(text.contains(&format!("OCSP - URI:{ocsp_url}")), "{text}");
    // None of Vouch's own: its CRL and OCSP speak for the embedded CA only.
    let vouch = app.url("");
    assert!(!text.contains(vouch.trim_end_matches('/')), "{text}");
    // Vouch's OCSP responder, asked by OpenSSL about that serial under either issuer, knows it
    // not: its answers cover the embedded CA's certificates only.
    let issuing = dir.path().join("vouch-issuing.pem");
    std::fs::write(&issuing, public(&app, "/ca/issuing.pem").await).unwrap();
    for issuer in [&issuing, &cfssl.ca.cert] {
        let (ok, text) = run(Command::new("openssl")
            .args(["ocsp", "-noverify", "-issuer"])
            .arg(issuer)
            .args(["-serial", &format!("0x{serial}"), "-url", &app.url("/ocsp")]));
        assert!(ok, "{text}");
        assert!(text.contains(": unknown"), "{text}");
    }
    app.stop().await;
}

/// Several remote CAs at once: person-signing goes to one CFSSL, person-auth to another (its own
/// CA key and database), each certificate recorded with its CA, delivered with that CA's chain,
/// verified by OpenSSL against that CA alone, and held in that CA's database only.
#[tokio::test]
async fn two_remote_cas_each_sign_their_profiles() {
    let (city_dir, province_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let city = Cfssl::start(city_dir.path(), SIGNING_USAGES, "8760h");
    let province = Cfssl::start(
        province_dir.path(),
        &["digital signature", "client auth"],
        "8760h",
    );
    let toml = format!(
        "{}{}",
        upstream_toml("city-cfssl", &city.url, AUTH_KEY, &["person-signing"]),
        upstream_toml("province-cfssl", &province.url, AUTH_KEY, &["person-auth"])
    );
    let app = app_with(toml).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    for (profile, ca, other, id) in [
        ("person-signing", &city, &province, "city-cfssl"),
        ("person-auth", &province, &city, "province-cfssl"),
    ] {
        let request = submitted(&app, &clerk, profile).await;
        let (status, body) = approve(&app, &approver, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", ca.log());
        let serial = body["serial"].as_str().unwrap().to_string();
        let (_, cert) = app
            .get(&approver, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["ca"], id, "{cert}");
        assert_eq!(
            pem_certs_der(cert["chain_pem"].as_str().unwrap()),
            pem_certs_der(&ca.ca_pem())
        );
        let leaf = city_dir.path().join(format!("{profile}.pem"));
        std::fs::write(&leaf, cert["pem"].as_str().unwrap()).unwrap();
        let verify = |anchor: &Path| {
            run(Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(anchor)
                .arg(&leaf))
            .0
        };
        assert!(verify(&ca.ca.cert), "{profile} verifies against {id}");
        assert!(!verify(&other.ca.cert), "{profile} is not the other CA's");
        assert_eq!(ca.certdb_status(&serial), Some(("good".into(), 0)));
        assert_eq!(other.certdb_status(&serial), None);
    }
    app.stop().await;
}
