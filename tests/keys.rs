//! A key has one identity whatever its encoding: the block list, key-compromise propagation and
//! stored fingerprints compare the canonical SubjectPublicKeyInfo, and certificates carry it.
//! Keys in other encodings are made with the `openssl` command line (compressed and hybrid EC
//! points) or by hand (RSA without NULL parameters, needless long-form lengths).

mod common;

use common::*;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use vouch::store::Database;

/// Run SQL against the test app's database, as an attacker or an older release would have left it.
async fn exec(app: &TestApp, statements: &[&str]) {
    use sqlx::Connection;
    match app.data.database_target() {
        Database::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap();
            }
        }
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=rw", path.display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap();
            }
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A P-256 key and CSRs for it with the point uncompressed, compressed and hybrid, by OpenSSL.
fn ec_csrs(dir: &Path) -> (String, String, String) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
    );
    let csr = |form: &str| {
        openssl(
            dir,
            &[
                "ec",
                "-in",
                "k.pem",
                "-conv_form",
                form,
                "-out",
                &format!("k-{form}.pem"),
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("k-{form}.pem"),
                "-subj",
                "/CN=x",
            ],
        )
    };
    (csr("uncompressed"), csr("compressed"), csr("hybrid"))
}

fn tlv(tag: u8, content: &[u8], long: bool) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    if long {
        // Needless extra length octets: BER, not DER.
        out.extend_from_slice(&[0x84, 0, 0, (n >> 8) as u8, n as u8]);
    } else if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn positive(bytes: Vec<u8>) -> Vec<u8> {
    if bytes[0] & 0x80 != 0 {
        [vec![0], bytes].concat()
    } else {
        bytes
    }
}

/// A PKCS#10 request for an RSA key whose SubjectPublicKeyInfo omits the NULL parameters (as
/// some encoders do) and, with `long`, writes its lengths in long form; signed with the key.
fn rsa_csr_without_null(key: &PKey<Private>, long: bool) -> String {
    let rsa = key.rsa().unwrap();
    let ints = [
        tlv(0x02, &positive(rsa.n().to_vec()), false),
        tlv(0x02, &positive(rsa.e().to_vec()), false),
    ]
    .concat();
    let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let bits = [vec![0u8], tlv(0x30, &ints, long)].concat();
    let spki = tlv(
        0x30,
        &[
            tlv(0x30, &tlv(0x06, &rsa_oid, false), false),
            tlv(0x03, &bits, long),
        ]
        .concat(),
        long,
    );
    let cn = tlv(
        0x30,
        &[
            tlv(0x06, &[0x55, 0x04, 0x03], false),
            tlv(0x0c, b"x", false),
        ]
        .concat(),
        false,
    );
    let name = tlv(0x30, &tlv(0x31, &cn, false), false);
    let info = tlv(
        0x30,
        &[tlv(0x02, &[0], false), name, spki, vec![0xa0, 0x00]].concat(),
        false,
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(&info).unwrap();
    let signature = signer.sign_to_vec().unwrap();
    let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    let alg = tlv(
        0x30,
        &[tlv(0x06, &sha256_rsa, false), vec![0x05, 0x00]].concat(),
        false,
    );
    let sig = tlv(0x03, &[vec![0u8], signature].concat(), false);
    let der = tlv(0x30, &[info, alg, sig].concat(), false);
    vouch::x509::pem_encode("CERTIFICATE REQUEST", &der)
}

async fn revoke(app: &TestApp, revoker: &str, serial: &str, reason: &str) {
    let (status, body) = app
        .post(
            revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({ "reason": reason }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_compromised_ec_key_is_refused_in_every_point_form() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (uncompressed, compressed, hybrid) = ec_csrs(dir.path());

    // The hybrid form is refused outright (RFC 5480), before any other rule.
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app.submit(&clerk, &sub, "person-signing", &hybrid).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_ec_point")),
        "{body}"
    );

    // A request with the compressed point shows the same key as the uncompressed one.
    let (status, a) = app
        .submit(&clerk, &sub, "person-signing", &uncompressed)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let (status, b) = app
        .submit(&clerk, &sub, "person-signing", &compressed)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(a["key_sha256"], b["key_sha256"]);

    // Issued from the compressed form, the certificate carries the uncompressed point.
    let path = format!("/api/v1/requests/{}/approve", b["id"].as_str().unwrap());
    let (status, issued) = app.post_empty(&approver, &path).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let serial = issued["serial"].as_str().unwrap();
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    std::fs::write(dir.path().join("cert.pem"), cert["pem"].as_str().unwrap()).unwrap();
    let text = openssl(dir.path(), &["x509", "-in", "cert.pem", "-noout", "-text"]);
    let public = text.split("pub:").nth(1).unwrap().trim_start();
    assert!(public.starts_with("04:"), "{text}");

    // Its key is compromised: the other request, pending with the same key, cannot be approved,
    // and no encoding of the key can be submitted again.
    revoke(&app, &revoker, serial, "keyCompromise").await;
    let path = format!("/api/v1/requests/{}/approve", a["id"].as_str().unwrap());
    let (status, body) = app.post_empty(&approver, &path).await;
    assert_eq!(body["error"], "blocked_key", "{status} {body}");
    for csr in [&uncompressed, &compressed] {
        let (status, body) = app.submit(&clerk, &sub, "person-signing", csr).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_key")),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_rsa_key_without_null_parameters_is_issued_canonically_and_blocked_as_one_key() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let key = rsa_key(2048);
    let canonical_spki = key.public_key_to_der().unwrap();
    let odd = rsa_csr_without_null(&key, true);
    // OpenSSL itself reads the request and its signature.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("odd.csr"), &odd).unwrap();
    openssl(dir.path(), &["req", "-in", "odd.csr", "-noout", "-verify"]);

    // Such a request used to be approved and then stay `approved` for ever, the CA refusing the
    // key's encoding at every retry. It is issued now, with the canonical SubjectPublicKeyInfo.
    let serial = app.issue(&clerk, &approver, &odd).await;
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let x509 = openssl::x509::X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(
        x509.public_key().unwrap().public_key_to_der().unwrap(),
        canonical_spki
    );
    assert_eq!(
        cert["key_sha256"].as_str().unwrap(),
        hex::encode(openssl::sha::sha256(&canonical_spki))
    );

    // A sibling certificate of the same key, requested the ordinary way.
    let sibling = app
        .issue(
            &clerk,
            &approver,
            &csr_for(&key, MessageDigest::sha256(), "y"),
        )
        .await;
    revoke(&app, &revoker, &serial, "keyCompromise").await;
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{sibling}"))
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["revocation_reason"].as_str()
        ),
        (Some("revoked"), Some("keyCompromise"))
    );
    let sub = app.person(&clerk, "Zhang San", "2099-12-31").await;
    for csr in [odd, rsa_csr_without_null(&key, false)] {
        let (status, body) = app.submit(&clerk, &sub, "person-signing", &csr).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_key")),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn blocking_by_public_key_pem_covers_every_encoding() {
    let app = TestApp::spawn().await;
    let (clerk, _) = app.clerk_and_approver().await;
    let dir = tempfile::tempdir().unwrap();
    let (uncompressed, _, _) = ec_csrs(dir.path());
    // The admin has the key in compressed form only.
    let pem = openssl(
        dir.path(),
        &["ec", "-in", "k.pem", "-pubout", "-conv_form", "compressed"],
    );
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/blocked-keys",
            json!({"public_key_pem": pem, "reason": "reported stolen"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, body) = app
        .submit(&clerk, &sub, "person-signing", &uncompressed)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_key")),
        "{body}"
    );
    app.stop().await;
}

/// A database written before keys were compared by value holds a sibling certificate under the
/// fingerprint of the bytes its request sent. At the next start the fingerprints are re-keyed,
/// and the sibling of a key already revoked for keyCompromise is revoked too.
#[tokio::test]
async fn stored_fingerprints_are_rekeyed_and_hidden_siblings_revoked() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (uncompressed, compressed, _) = ec_csrs(dir.path());
    let first = app.issue(&clerk, &approver, &uncompressed).await;
    let sibling = app.issue(&clerk, &approver, &compressed).await;

    // What an older release stored for the sibling: the SHA-256 of the compressed SPKI.
    let req = openssl::x509::X509Req::from_pem(compressed.as_bytes()).unwrap();
    // The request's own SubjectPublicKeyInfo bytes (OpenSSL keeps the compressed form).
    let spki_as_sent = req.public_key().unwrap().public_key_to_der().unwrap();
    let legacy = hex::encode(openssl::sha::sha256(&spki_as_sent));
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{first}"))
        .await;
    assert_ne!(shown["key_sha256"].as_str().unwrap(), legacy);
    exec(
        &app,
        &[
            &format!("UPDATE certificates SET key_sha256 = '{legacy}' WHERE serial = '{sibling}'"),
            &format!(
                "UPDATE requests SET key_sha256 = '{legacy}' WHERE id = \
                 (SELECT request_id FROM certificates WHERE serial = '{sibling}')"
            ),
            "DELETE FROM instance_meta WHERE key = 'key_identity'",
        ],
    )
    .await;

    // The hole as it was: revoking the first certificate for keyCompromise misses the sibling.
    revoke(&app, &revoker, &first, "keyCompromise").await;
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{sibling}"))
        .await;
    assert_eq!(shown["status"], "valid");

    // The next start re-keys (init runs what serve runs on an existing data directory).
    let clock: vouch::clock::SharedClock = std::sync::Arc::new(vouch::clock::SystemClock);
    vouch::app::init(&app.data, &Default::default(), &clock)
        .await
        .unwrap();
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{sibling}"))
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["revocation_reason"].as_str()
        ),
        (Some("revoked"), Some("keyCompromise")),
        "{shown}"
    );
    assert_ne!(shown["key_sha256"].as_str().unwrap(), legacy);
    let audit = app.audit_entries().await;
    let rekeyed = audit
        .iter()
        .rev()
        .find(|e| e["action"] == "keys.rekeyed")
        .unwrap();
    assert_eq!(rekeyed["details"]["certificates"], 1, "{rekeyed}");
    assert_eq!(rekeyed["details"]["revoked"], json!([sibling]));
    // Once done, it is not done again.
    let again = vouch::ra::keys::rekey(app.ra.store(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(again, Default::default());
    app.stop().await;
}
