//! Upstream CAs over CMP: OpenSSL's own CMP server (`openssl cmp -port`, its mock server mode)
//! as the CA, Vouch's CMP adapter as the client. Enrolment with p10cr and with ir (signature
//! protection by the RA's certificate), password-based MAC protection, polling, a rejection the
//! mock is told to send surfacing as a typed, audited error, revocation with rr, lost answers
//! (to a certConf, an ir, an rr releasing a hold) that lose nothing; the issued
//! certificate verified by `openssl verify`, and every request Vouch sent decoded by an
//! independent decoder (Python pyasn1-alt-modules, RFC 9480 `PKIMessage`, tests/cmp/decode.py).
//!
//! The mock binds every interface, so each test runs inside a private network namespace
//! (`unshare --net`, loopback up: see `common::cmp::in_netns`), where the mock, a recording proxy
//! and the in-process Vouch share 127.0.0.1. The suite's PostgreSQL server is reached from there
//! by its Unix socket (`common::cmp::postgres_by_socket`), so these tests run on SQLite and on
//! PostgreSQL like the rest of the integration suite.

mod common;

use common::cmp::{
    in_netns, signature_keys, upstream_toml, MockCmp, Pki, Recorder, CERT_CONF, IR, RR,
};
use common::crl::{openssl_crl, CrlServer};
use common::{run, venv_bin, Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

/// The mock, the proxy in front of it, and a Vouch whose person-signing profile goes to it.
struct Setup {
    app: TestApp,
    recorder: Recorder,
    mock: MockCmp,
    pki: Pki,
    clerk: String,
    approver: String,
    _dir: tempfile::TempDir,
}

/// `keys`: the protection and request keys of the CMP entry, for the PKI made.
async fn setup(
    pbm: Option<(&str, &str)>,
    keys: &dyn Fn(&Pki) -> String,
    mock_options: &[&str],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let mock = MockCmp::start(&pki, pbm, mock_options);
    let recorder = Recorder::start(&mock.url).await;
    let keys = keys(&pki);
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(upstream_toml(&pki, &recorder.url, &keys)),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    Setup {
        app,
        recorder,
        mock,
        pki,
        clerk,
        approver,
        _dir: dir,
    }
}

impl Setup {
    /// Submit a person-signing request for the subscriber's key and approve it.
    async fn approve(&self) -> (StatusCode, Value, String) {
        let sub = self.app.person(&self.clerk, "Li Wei", "2099-12-31").await;
        let (status, req) = self
            .app
            .submit(
                &self.clerk,
                &sub,
                "person-signing",
                &self.pki.subscriber_csr(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let id = req["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .app
            .post_empty(&self.approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        (status, body, id)
    }

    /// Approve and expect the mock's certificate, verified by `openssl verify` against the
    /// test CA; returns its serial.
    async fn issued(&self) -> String {
        let (status, body, _) = self.approve().await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", self.mock.log());
        assert_eq!(body["status"], "issued", "{body}");
        let serial = body["serial"].as_str().unwrap().to_string();
        assert_eq!(serial, self.pki.leaf_serial());
        let (_, cert) = self
            .app
            .get(&self.approver, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["ca"], "city-cmp", "{cert}");
        let leaf = self.pki.path("issued.pem");
        std::fs::write(&leaf, cert["pem"].as_str().unwrap()).unwrap();
        let (ok, text) = run(Command::new("openssl")
            .args(["verify", "-purpose", "smimesign", "-CAfile"])
            .arg(self.pki.path("ca.pem"))
            .arg(&leaf));
        assert!(ok, "openssl verify: {text}");
        serial
    }

    /// Every request Vouch sent so far, decoded by tests/cmp/decode.py.
    fn decoded(&self) -> Vec<Value> {
        decoded(&self.pki, &self.recorder)
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        self.app
            .audit_entries()
            .await
            .into_iter()
            .filter(|e| e["action"] == action)
            .collect()
    }
}

/// Every request `recorder` took so far, decoded by tests/cmp/decode.py.
fn decoded(pki: &Pki, recorder: &Recorder) -> Vec<Value> {
    let mut files = Vec::new();
    for (i, bytes) in recorder.taken().iter().enumerate() {
        let f = pki.path(&format!("request-{i}.der"));
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmp/decode.py");
    let (ok, text) = run(Command::new(venv_bin("python3")).arg(script).args(&files));
    assert!(ok, "decode.py: {text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect()
}

#[test]
fn p10cr_with_signature_protection_then_rr() {
    in_netns("p10cr_with_signature_protection_then_rr", || async {
        let keys = |pki: &Pki| format!("{}\nrequest = \"p10cr\"", signature_keys(pki));
        let s = setup(None, &keys, &[]).await;
        let serial = s.issued().await;

        // Revocation through Vouch, forwarded with rr: the mock accepts only the issuer and
        // serial of its certificate.
        let revoker = s.app.operator("revoker1", &["revoker"]).await;
        let (status, body) = s
            .app
            .post(
                &revoker,
                &format!("/api/v1/certificates/{serial}/revoke"),
                json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.get("upstream_errors").is_none(),
            "{body}\n{}",
            s.mock.log()
        );
        let forwarded = s.audit("certificate.revocation_forwarded").await;
        assert_eq!(forwarded.len(), 1);
        assert_eq!(forwarded[0]["details"]["ca"], "city-cmp");

        let m = s.decoded();
        assert_eq!(bodies(&m), ["genm", "p10cr", "certConf", "rr"], "{m:?}");
        for msg in &m {
            assert_eq!(msg["pvno"], 2);
            assert_eq!(
                msg["protectionAlg"], "1.2.840.10045.4.3.2",
                "ECDSA with SHA-256"
            );
            assert_eq!(msg["protected"], true);
            assert_eq!(msg["extraCerts"], 1, "the RA certificate");
            assert_eq!(msg["sender"], "directoryName");
            assert_eq!(msg["senderNonce"].as_str().unwrap().len(), 32);
        }
        // One transaction for p10cr and certConf, its own for rr; recipNonce chains them.
        assert_eq!(m[1]["transactionID"], m[2]["transactionID"]);
        assert_ne!(m[1]["transactionID"], m[3]["transactionID"]);
        assert!(m[1]["recipNonce"].is_null());
        assert!(m[2]["recipNonce"].is_string());
        assert_ne!(m[1]["senderNonce"], m[2]["senderNonce"]);
        // The CSR went as the subscriber signed it.
        let csr = openssl::x509::X509Req::from_pem(s.pki.subscriber_csr().as_bytes()).unwrap();
        let sent = hex::decode(m[1]["csr"].as_str().unwrap()).unwrap();
        let sent = openssl::x509::X509Req::from_der(&sent).unwrap();
        assert!(sent
            .public_key()
            .unwrap()
            .public_eq(&csr.public_key().unwrap()));
        assert_eq!(m[2]["statusInfo"], false, "accepted: no statusInfo");
        assert_eq!(m[3]["serial"], serial.as_str());
        assert_eq!(m[3]["reason"], 1, "keyCompromise");
        assert_eq!(m[3]["issuer"], true);
        s.app.stop().await;
    });
}

#[test]
fn ir_with_polling_and_implicit_confirm() {
    in_netns("ir_with_polling_and_implicit_confirm", || async {
        let keys = |pki: &Pki| {
            format!(
                "{}\nrequest = \"ir\"\nimplicit_confirm = true\nmax_poll_seconds = 60",
                signature_keys(pki)
            )
        };
        let options = [
            "-accept_raverified",
            "-poll_count",
            "2",
            "-check_after",
            "1",
            "-grant_implicitconf",
        ];
        let s = setup(None, &keys, &options).await;
        s.issued().await;
        let m = s.decoded();
        // Two polls, then the certificate; implicit confirmation granted: no certConf.
        assert_eq!(
            bodies(&m),
            ["genm", "ir", "pollReq", "pollReq"],
            "{m:?}\n{}",
            s.mock.log()
        );
        let ir = &m[1];
        assert_eq!(ir["implicitConfirm"], true);
        assert_eq!(ir["pop"], "raVerified");
        assert_eq!(ir["certReqId"], 0);
        assert_eq!(ir["subject"], true);
        assert_eq!(
            ir["extensions"],
            json!(["2.5.29.15", "2.5.29.17", "2.5.29.37"]),
            "keyUsage, subjectAltName, extendedKeyUsage of the profile"
        );
        // The template certifies the subscriber's key: its SPKI content.
        let csr = openssl::x509::X509Req::from_pem(s.pki.subscriber_csr().as_bytes()).unwrap();
        let spki = csr.public_key().unwrap().public_key_to_der().unwrap();
        assert_eq!(hex::encode(&spki[2..]), ir["publicKey"].as_str().unwrap());
        for poll in &m[2..] {
            assert_eq!(poll["transactionID"], ir["transactionID"]);
            assert_eq!(poll["certReqId"], 0);
            assert!(poll["recipNonce"].is_string());
        }
        assert_ne!(m[2]["recipNonce"], m[3]["recipNonce"]);

        // `vouch upstream check` reaches the CA with the same credentials and prints its chain.
        let (ok, text) = run(Command::new(common::BIN)
            .args(["upstream", "check", "--data-dir"])
            .arg(s.app.data.root()));
        assert!(ok, "{text}");
        assert!(
            text.contains("kind: cmp") && text.contains("status: ok"),
            "{text}"
        );
        assert!(text.contains("City CMP Test CA"), "{text}");
        s.app.stop().await;
    });
}

#[test]
fn pbm_protection_with_certconf() {
    in_netns("pbm_protection_with_certconf", || async {
        let keys = |_: &Pki| {
            "protection = \"pbm\"\npbm_secret = \"correct horse\"\npbm_reference = \"vouch-ra\"\n\
             request = \"cr\""
                .to_string()
        };
        let s = setup(
            Some(("vouch-ra", "correct horse")),
            &keys,
            &["-accept_raverified"],
        )
        .await;
        s.issued().await;
        let m = s.decoded();
        assert_eq!(bodies(&m), ["genm", "cr", "certConf"], "{m:?}");
        for msg in &m {
            assert_eq!(msg["protectionAlg"], "1.2.840.113533.7.66.13", "PBM");
            assert_eq!(msg["senderKID"], hex::encode("vouch-ra"));
            assert_eq!(msg["extraCerts"], 0);
        }
        assert_eq!(m[1]["transactionID"], m[2]["transactionID"]);
        s.app.stop().await;

        // The wrong secret: the CA's answers do not check, and Vouch does not start with it.
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::make(dir.path());
        let mock = MockCmp::start(&pki, Some(("vouch-ra", "another")), &[]);
        let data = dir.path().join("data");
        let (ok, text) = run(Command::new(common::BIN)
            .args(["init", "--data-dir"])
            .arg(&data));
        assert!(ok, "{text}");
        common::cfssl::write_private(
            &data.join("upstream.toml"),
            &upstream_toml(&pki, &mock.url, &keys(&pki)),
        );
        let (ok, text) = run(Command::new(common::BIN)
            .args(["upstream", "check", "--data-dir"])
            .arg(&data));
        assert!(!ok, "{text}");
        assert!(text.contains("status: failed"), "{text}");
    });
}

#[test]
fn a_rejection_is_a_typed_audited_error() {
    in_netns("a_rejection_is_a_typed_audited_error", || async {
        let keys = |pki: &Pki| format!("{}\nrequest = \"p10cr\"", signature_keys(pki));
        let options = [
            "-pkistatus",
            "2",
            "-failure",
            "9",
            "-statusstring",
            "the key is not acceptable",
        ];
        let s = setup(None, &keys, &options).await;
        let (status, body, id) = s.approve().await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"], "ca_refused", "{body}");
        let why = "the CA city-cmp rejected the p10cr: PKIStatus rejection, PKIFailureInfo \
                   badPOP: \"the key is not acceptable\"";
        assert!(body["message"].as_str().unwrap().contains(why), "{body}");
        let (_, req) = s
            .app
            .get(&s.approver, &format!("/api/v1/requests/{id}"))
            .await;
        assert_eq!(req["status"], "failed", "{req}");
        let failed = s.audit("request.failed").await;
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0]["details"]["error"]
                .as_str()
                .unwrap()
                .contains(why),
            "{failed:?}"
        );
        assert_eq!(
            s.app.ra.certificate_count_for_request(&id).await.unwrap(),
            0
        );
        s.app.stop().await;
    });
}

/// The CA's answer is kept in the issuance journal before the certConf: when the answer to the
/// certConf is lost (the CA has it, Vouch gets a 503), the request stays approved with the error,
/// and the next round records the kept certificate without a second ir.
#[test]
fn a_lost_certconf_answer_loses_no_certificate() {
    in_netns("a_lost_certconf_answer_loses_no_certificate", || async {
        let keys = |pki: &Pki| format!("{}\nrequest = \"ir\"", signature_keys(pki));
        let s = setup(None, &keys, &["-accept_raverified"]).await;
        s.recorder.lose_answer_to(CERT_CONF);
        let (status, body, id) = s.approve().await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        let journal = s.app.data.issuance_journal_dir().join(format!("{id}.pem"));
        assert!(journal.exists(), "kept before the certConf");
        let (_, req) = s
            .app
            .get(&s.approver, &format!("/api/v1/requests/{id}"))
            .await;
        assert_eq!(req["status"], "approved", "{req}");
        assert!(
            req.to_string().contains("issuance journal"),
            "the error says the certificate is kept: {req}"
        );
        assert_eq!(s.app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
        let (_, req) = s
            .app
            .get(&s.approver, &format!("/api/v1/requests/{id}"))
            .await;
        assert_eq!(req["status"], "issued", "{req}");
        assert_eq!(req["serial"], s.pki.leaf_serial().as_str(), "{req}");
        assert!(!journal.exists(), "removed once recorded");
        assert_eq!(
            s.app.ra.certificate_count_for_request(&id).await.unwrap(),
            1
        );
        let m = s.decoded();
        assert_eq!(
            bodies(&m),
            ["genm", "ir", "certConf"],
            "no second ir: {m:?}"
        );
        s.app.stop().await;
    });
}

/// When the answer to an ir is lost, the retry is the same transaction to the CA (the same
/// transactionID, fresh nonces), so that a CA that remembers transactions can tell it from a new
/// request; one certificate is recorded.
#[test]
fn a_retry_after_a_lost_ir_answer_is_the_same_transaction() {
    in_netns(
        "a_retry_after_a_lost_ir_answer_is_the_same_transaction",
        || async {
            let keys = |pki: &Pki| format!("{}\nrequest = \"ir\"", signature_keys(pki));
            let s = setup(None, &keys, &["-accept_raverified"]).await;
            s.recorder.lose_answer_to(IR);
            let (status, body, id) = s.approve().await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            assert_eq!(s.app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
            assert_eq!(
                s.app.ra.certificate_count_for_request(&id).await.unwrap(),
                1
            );
            let m = s.decoded();
            assert_eq!(
                bodies(&m),
                ["genm", "ir", "ir", "certConf"],
                "{m:?}\n{}",
                s.mock.log()
            );
            assert_eq!(
                m[1]["transactionID"], m[2]["transactionID"],
                "one transaction"
            );
            assert_eq!(m[2]["transactionID"], m[3]["transactionID"]);
            assert_eq!(
                m[1]["bodySha256"], m[2]["bodySha256"],
                "the same request again: a retransmission the CA can recognise"
            );
            assert_ne!(m[0]["transactionID"], m[1]["transactionID"]);
            assert_ne!(m[1]["senderNonce"], m[2]["senderNonce"], "fresh nonces");
            s.app.stop().await;
        },
    );
}

/// A release of a hold needs the CA (an rr with removeFromCRL): when its answer does not come,
/// the hold stays and the answer is a 503 with `upstream_ca_unavailable` (not a refusal); the
/// same release goes through once the CA answers.
#[test]
fn a_release_while_the_ca_is_unavailable_is_a_503_and_the_hold_stays() {
    in_netns(
        "a_release_while_the_ca_is_unavailable_is_a_503_and_the_hold_stays",
        || async {
            let keys = |pki: &Pki| format!("{}\nrequest = \"p10cr\"", signature_keys(pki));
            let s = setup(None, &keys, &[]).await;
            let serial = s.issued().await;
            let revoker = s.app.operator("revoker1", &["revoker"]).await;
            let path = |what: &str| format!("/api/v1/certificates/{serial}/{what}");
            let (status, body) = s.app.post(&revoker, &path("hold"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            s.recorder.lose_answer_to(RR);
            let (status, body) = s.app.post(&revoker, &path("release"), json!({})).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["error"], "upstream_ca_unavailable", "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("hold stays"),
                "{body}"
            );
            let (_, cert) = s
                .app
                .get(&revoker, &format!("/api/v1/certificates/{serial}"))
                .await;
            assert_eq!(cert["status"], "on-hold", "{cert}");
            let (status, body) = s.app.post(&revoker, &path("release"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}\n{}", s.mock.log());
            assert_eq!(body["status"], "valid");
            let m = s.decoded();
            assert_eq!(
                bodies(&m),
                ["genm", "p10cr", "certConf", "rr", "rr", "rr"],
                "{m:?}"
            );
            s.app.stop().await;
        },
    );
}

/// A CRL the CA made before a release (it still lists the hold until its next CRL), read after
/// the release, or replayed later, does not put the certificate back on hold: the entry is older
/// than the certificate's last status change here.
#[test]
fn a_crl_made_before_a_release_does_not_hold_the_certificate_again() {
    in_netns(
        "a_crl_made_before_a_release_does_not_hold_the_certificate_again",
        || async {
            let crl = CrlServer::start().await;
            let url = crl.url.clone();
            let keys = move |pki: &Pki| {
                format!(
                    "{}\nrequest = \"p10cr\"\ncrl_url = \"{url}\"",
                    signature_keys(pki)
                )
            };
            let s = setup(None, &keys, &[]).await;
            let serial = s.issued().await;
            let revoker = s.app.operator("revoker1", &["revoker"]).await;
            let path = |what: &str| format!("/api/v1/certificates/{serial}/{what}");
            let (status, body) = s.app.post(&revoker, &path("hold"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (_, cert) = s
                .app
                .get(&revoker, &format!("/api/v1/certificates/{serial}"))
                .await;
            let pem = cert["pem"].as_str().unwrap().to_string();
            // The CA's CRL while the certificate is on hold.
            crl.set(Some(openssl_crl(
                &s.pki.path("ca.pem"),
                &s.pki.path("ca.key"),
                &[(&pem, "certificateHold")],
            )));
            let round = s.app.ra.read_upstream_crls().await.unwrap();
            assert_eq!((round.read, round.failed, round.recorded), (1, 0, 0));
            let (status, body) = s.app.post(&revoker, &path("release"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}\n{}", s.mock.log());
            // The same CRL, read after the release: the certificate stays valid.
            let round = s.app.ra.read_upstream_crls().await.unwrap();
            assert_eq!((round.read, round.failed, round.recorded), (1, 0, 0));
            let (_, cert) = s
                .app
                .get(&revoker, &format!("/api/v1/certificates/{serial}"))
                .await;
            assert_eq!(cert["status"], "valid", "{cert}");
            let entries = s.app.audit_entries().await;
            assert!(
                !entries
                    .iter()
                    .any(|e| e["action"] == "certificate.revoked_upstream"),
                "{entries:?}"
            );
            s.app.stop().await;
        },
    );
}

/// `vouch upstream enrol-ra`: the RA's own certificate from the CMP CA, by an ir under the
/// one-time shared secret the CA's operator gave (PBM), the key's signature as proof of
/// possession (checked by OpenSSL's CMP server), confirmed by a certConf, and written where the
/// entry's `ra_certificate_file` and `ra_key_file` point (key 0600). The server then signs its
/// messages with them: `vouch upstream check` against the CA with signature protection passes.
/// A wrong secret writes nothing; existing credentials are replaced only with --force.
#[test]
fn the_ra_certificate_comes_from_the_ca_by_an_ir_of_its_own() {
    in_netns(
        "the_ra_certificate_comes_from_the_ca_by_an_ir_of_its_own",
        || async {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let pki = Pki::make(dir.path());
            // OpenSSL's mock answers every request with one fixed certificate: here the one its
            // CA made for the RA's key (ra.pem), so the key to certify is handed in.
            let mock = MockCmp::start_returning(
                &pki,
                Some(("ra-enrolment-7", "one-time s3cret")),
                "ra.pem",
                &[],
            );
            let recorder = Recorder::start(&mock.url).await;
            // A data directory (profiles, keys) whose server is not asked anything here.
            let app = TestApp::spawn().await;
            let data = app.data.root().to_path_buf();
            let keys = "protection = \"signature\"\nra_certificate_file = \"cmp/ra.pem\"\n\
                        ra_key_file = \"cmp/ra.key\"";
            std::fs::write(
                data.join("upstream.toml"),
                upstream_toml(&pki, &recorder.url, keys),
            )
            .unwrap();
            let secret = dir.path().join("secret");
            let wrong = dir.path().join("wrong");
            for (file, text) in [(&secret, "one-time s3cret\n"), (&wrong, "guessed\n")] {
                std::fs::write(file, text).unwrap();
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let own_key = dir.path().join("own.key");
            std::fs::copy(pki.path("ra.key"), &own_key).unwrap();
            let enrol = |secret: &std::path::Path, extra: &[&str]| {
                let out = Command::new(common::BIN)
                    .args(["upstream", "enrol-ra", "--ca", "city-cmp", "--reference"])
                    .args(["ra-enrolment-7", "--subject", "/O=City Test/CN=Vouch RA"])
                    .arg("--secret-file")
                    .arg(secret)
                    .arg("--key-file")
                    .arg(&own_key)
                    .args(extra)
                    .arg("--data-dir")
                    .arg(&data)
                    .env("VOUCH_LOG", "warn")
                    .output()
                    .unwrap();
                (
                    out.status.code(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                )
            };
            let (cert_file, key_file) = (data.join("cmp/ra.pem"), data.join("cmp/ra.key"));

            // The wrong secret: the CA's answer does not check; nothing is written.
            let (code, text) = enrol(&wrong, &[]);
            assert_ne!(code, Some(0), "{text}");
            assert!(text.contains("MAC"), "{text}");
            assert!(!cert_file.exists() && !key_file.exists());
            // A CA answering with a certificate for another key: rejected in the certConf,
            // nothing put in place, nothing left beside it.
            let wrong_ca = MockCmp::start_returning(
                &pki,
                Some(("ra-enrolment-7", "one-time s3cret")),
                "leaf.pem",
                &[],
            );
            std::fs::write(
                data.join("upstream.toml"),
                upstream_toml(&pki, &wrong_ca.url, keys),
            )
            .unwrap();
            let (code, text) = enrol(&secret, &[]);
            assert_ne!(code, Some(0), "{text}");
            assert!(text.contains("another public key"), "{text}");
            assert!(!cert_file.exists() && !key_file.exists());
            let left: Vec<_> = std::fs::read_dir(data.join("cmp"))
                .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{left:?}");
            drop(wrong_ca);
            std::fs::write(
                data.join("upstream.toml"),
                upstream_toml(&pki, &recorder.url, keys),
            )
            .unwrap();

            let (code, text) = enrol(&secret, &[]);
            assert_eq!(code, Some(0), "{text}\n{}", mock.log());
            assert!(text.contains("issued the RA certificate"), "{text}");
            let written = openssl::x509::X509::from_pem(&std::fs::read(&cert_file).unwrap())
                .unwrap()
                .to_der()
                .unwrap();
            let expected =
                openssl::x509::X509::from_pem(&std::fs::read(pki.path("ra.pem")).unwrap())
                    .unwrap()
                    .to_der()
                    .unwrap();
            assert_eq!(written, expected);
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key_file).unwrap())
                .unwrap();
            let own = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&own_key).unwrap())
                .unwrap();
            assert!(key.public_eq(&own));
            // What was sent, decoded independently: under the PBM with the reference, the
            // key's signature as proof of possession, confirmed.
            let m = decoded(&pki, &recorder);
            let sent: Vec<&str> = bodies(&m);
            assert_eq!(sent[sent.len() - 3..], ["genm", "ir", "certConf"], "{m:?}");
            assert_eq!(m[m.len() - 1]["statusInfo"], false, "accepted: {m:?}");
            let ir = &m[m.len() - 2];
            assert_eq!(ir["pop"], "signature", "{ir}");
            assert_eq!(ir["protectionAlg"], "1.2.840.113533.7.66.13", "PBM");
            assert_eq!(ir["senderKID"], hex::encode("ra-enrolment-7"));
            assert_eq!(ir["subject"], true);

            // Credentials in place: not replaced without --force.
            let (code, text) = enrol(&secret, &[]);
            assert_ne!(code, Some(0), "{text}");
            assert!(text.contains("--force"), "{text}");
            // Renewal: the same with --force replaces them.
            let (code, text) = enrol(&secret, &["--force"]);
            assert_eq!(code, Some(0), "{text}");
            assert!(cert_file.exists() && key_file.exists());
            assert!(!data.join("cmp/ra.pem.old").exists() && !data.join("cmp/ra.key.new").exists());

            // The server's protection with them: the CA, now taking signatures by certificates
            // its CA issued, accepts Vouch's genm and answers it.
            let signing = MockCmp::start(&pki, None, &[]);
            std::fs::write(
                data.join("upstream.toml"),
                upstream_toml(&pki, &signing.url, keys),
            )
            .unwrap();
            let out = Command::new(common::BIN)
                .args(["upstream", "check", "--data-dir"])
                .arg(&data)
                .env("VOUCH_LOG", "warn")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}{}", signing.log());
            assert!(text.contains("status: ok"), "{text}");
            app.stop().await;
        },
    );
}

/// `openssl ocsp -port` over `index.txt` (the CA's `openssl ca` database) on `port`, signing
/// with the CA's key; killed when dropped.
struct Responder(std::process::Child);

impl Responder {
    fn start(pki: &Pki, port: u16) -> Responder {
        let log = pki.path(&format!("ocsp-{port}.log"));
        let _ = std::fs::remove_file(&log);
        let child = Command::new("openssl")
            .current_dir(&pki.dir)
            .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
            .args(["-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem"])
            .arg("-ignore_err")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl ocsp");
        // Ready once it says so: it serves one connection at a time, and a probing connection
        // that sends nothing would hold it.
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("waiting for OCSP client connections")
        {
            assert!(start.elapsed().as_secs() < 20, "openssl ocsp did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Responder(child)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A revocation made at the CA itself shows at once through the CA's OCSP responder
/// (`ocsp_url`), before any CRL: OpenSSL's own responder (`openssl ocsp -port`) over the index
/// `openssl ca` keeps. It says good: the signer is accepted. The CA holds the certificate:
/// `GET /certificates/{serial}` says on hold, audited as read from the responder; the CA lifts
/// the hold: lifted here; the CA revokes it (keyCompromise): the verification API rejects a
/// document signed now. With the responder gone the records stand.
#[test]
fn a_revocation_at_the_ca_is_read_from_its_ocsp_responder() {
    in_netns(
        "a_revocation_at_the_ca_is_read_from_its_ocsp_responder",
        || async {
            use common::signing::{cms_sign, SignOptions, Signer};
            use std::time::Duration;
            let dir = tempfile::tempdir().unwrap();
            let pki = Pki::make(dir.path());
            let mock = MockCmp::start(&pki, None, &[]);
            let port = common::cfssl::free_port();
            let keys = format!(
                "{}\nrequest = \"p10cr\"\nocsp_url = \"http://127.0.0.1:{port}/\"",
                signature_keys(&pki)
            );
            let app = TestApp::spawn_with(Options {
                upstream_toml: Some(upstream_toml(&pki, &mock.url, &keys)),
                upstream_ocsp_reuse: Some(Duration::ZERO),
                ..Options::default()
            })
            .await;
            let (clerk, approver) = app.clerk_and_approver().await;
            let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
            let (status, req) = app
                .submit(&clerk, &sub, "person-signing", &pki.subscriber_csr())
                .await;
            assert_eq!(status, StatusCode::CREATED, "{req}");
            let id = req["id"].as_str().unwrap();
            let (status, body) = app
                .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}\n{}", mock.log());
            let serial = body["serial"].as_str().unwrap().to_string();
            let verifier = app.operator("permits-app", &["verifier"]).await;
            let signer = Signer {
                cert_pem: std::fs::read_to_string(pki.path("leaf.pem")).unwrap(),
                key_pem: std::fs::read_to_string(pki.path("subscriber.key")).unwrap(),
            };
            let verify = || {
                let (app, verifier, signer) = (&app, verifier.clone(), &signer);
                async move {
                    use base64::Engine;
                    let cms = cms_sign(b"permit 2026-0042", &[signer], &SignOptions::default());
                    let body =
                        json!({"cms": base64::engine::general_purpose::STANDARD.encode(cms)});
                    let (status, answer) = app.post(&verifier, "/api/v1/verify", body).await;
                    assert_eq!(status, StatusCode::OK, "{answer}");
                    answer
                }
            };
            let cert = || {
                let (app, clerk, serial) = (&app, clerk.clone(), serial.clone());
                async move {
                    app.get(&clerk, &format!("/api/v1/certificates/{serial}"))
                        .await
                        .1
                }
            };
            // The CA's database: the certificate valid.
            std::fs::write(pki.path("index.txt"), "").unwrap();
            std::fs::write(
                pki.path("ca.cnf"),
                "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ncertificate = ca.pem\n\
                 private_key = ca.key\ndefault_md = sha256\n",
            )
            .unwrap();
            let openssl_ca = |args: &[&str]| {
                let (ok, text) = run(Command::new("openssl")
                    .current_dir(&pki.dir)
                    .args(["ca", "-config", "ca.cnf"])
                    .args(args));
                assert!(ok, "openssl ca {args:?}: {text}");
            };
            openssl_ca(&["-valid", "leaf.pem"]);

            let audited = |action: &'static str| {
                let app = &app;
                async move {
                    app.audit_entries()
                        .await
                        .into_iter()
                        .filter(|e| e["action"] == action)
                        .collect::<Vec<Value>>()
                }
            };
            let restart = |responder: Responder| {
                drop(responder);
                // An answer's thisUpdate is to the second: the next one is later than the last.
                std::thread::sleep(Duration::from_millis(1100));
                Responder::start(&pki, port)
            };
            let responder = Responder::start(&pki, port);
            let answer = verify().await;
            assert_eq!(answer["decision"], "accept", "{answer}");

            // On hold at the CA: `GET /certificates` asks, and says so.
            openssl_ca(&["-revoke", "leaf.pem", "-crl_hold", "holdInstructionReject"]);
            let responder = restart(responder);
            assert_eq!(cert().await["status"], "on-hold");
            let held = audited("certificate.revoked_upstream").await;
            assert_eq!(held.len(), 1, "{held:?}");
            assert_eq!(held[0]["details"]["reason"], "certificateHold");
            assert_eq!(
                held[0]["details"]["seen_at"],
                "the upstream CA's OCSP responder"
            );
            assert_eq!(
                held[0]["details"]["ocsp_url"],
                format!("http://127.0.0.1:{port}/")
            );
            assert!(held[0]["details"]["ocsp_this_update"].is_string());

            // The CA lifts its hold (its index says valid again): lifted here too.
            let index = std::fs::read_to_string(pki.path("index.txt")).unwrap();
            let lifted: String = index
                .lines()
                .map(|l| {
                    let mut f: Vec<&str> = l.split('\t').collect();
                    f[0] = "V";
                    f[2] = "";
                    f.join("\t") + "\n"
                })
                .collect();
            std::fs::write(pki.path("index.txt"), lifted).unwrap();
            let responder = restart(responder);
            assert_eq!(cert().await["status"], "valid");
            assert_eq!(audited("certificate.released_upstream").await.len(), 1);

            // Revoked at the CA (keyCompromise): the verification API rejects.
            openssl_ca(&["-revoke", "leaf.pem", "-crl_reason", "keyCompromise"]);
            let responder = restart(responder);
            let answer = verify().await;
            assert_eq!(answer["decision"], "reject", "{answer}");
            assert!(
                answer["reasons"]
                    .to_string()
                    .contains("certificate_revoked"),
                "{answer}"
            );
            assert_eq!(cert().await["status"], "revoked");
            let recorded = audited("certificate.revoked_upstream").await;
            assert_eq!(recorded.len(), 2, "{recorded:?}");
            assert_eq!(recorded[1]["details"]["reason"], "keyCompromise");

            // The responder gone: the records stand, and nothing fails.
            drop(responder);
            assert_eq!(cert().await["status"], "revoked");
            assert_eq!(verify().await["decision"], "reject");
            app.stop().await;
        },
    );
}

/// CMP over HTTPS with `tls_trust_anchor_file`: the CA's TLS certificate (issued by the test
/// CA, for 127.0.0.1) is trusted through that file only. Issuance goes through; without the key,
/// the system's roots do not know the CA, and `vouch upstream check` says the connection failed.
#[test]
fn cmp_over_https_trusts_the_configured_anchor_only() {
    in_netns(
        "cmp_over_https_trusts_the_configured_anchor_only",
        || async {
            use common::cmp::TlsFront;
            let dir = tempfile::tempdir().unwrap();
            let pki = Pki::make(dir.path());
            pki.tls_server();
            let mock = MockCmp::start(&pki, None, &[]);
            let mock_port: u16 = url::Url::parse(&mock.url).unwrap().port().unwrap();
            let front = TlsFront::start(&pki, mock_port);
            let url = format!("https://127.0.0.1:{}/pkix/", front.port);
            let keys = format!(
                "{}\nrequest = \"p10cr\"\ntls_trust_anchor_file = \"{}\"",
                signature_keys(&pki),
                pki.path("ca.pem").display()
            );
            let app = TestApp::spawn_with(Options {
                upstream_toml: Some(upstream_toml(&pki, &url, &keys)),
                ..Options::default()
            })
            .await;
            let (clerk, approver) = app.clerk_and_approver().await;
            let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
            let (status, req) = app
                .submit(&clerk, &sub, "person-signing", &pki.subscriber_csr())
                .await;
            assert_eq!(status, StatusCode::CREATED, "{req}");
            let id = req["id"].as_str().unwrap();
            let (status, body) = app
                .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}\n{}", mock.log());
            assert_eq!(body["serial"], pki.leaf_serial());

            let check = |toml: String| {
                std::fs::write(app.data.root().join("upstream.toml"), toml).unwrap();
                let out = Command::new(common::BIN)
                    .args(["upstream", "check", "--data-dir"])
                    .arg(app.data.root())
                    .env("VOUCH_LOG", "warn")
                    .output()
                    .unwrap();
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout).to_string(),
                )
            };
            let (code, text) = check(upstream_toml(&pki, &url, &keys));
            assert_eq!(code, Some(0), "{text}");
            assert!(text.contains(&format!("url: {url}")), "{text}");
            // The system's roots instead: the CA's TLS certificate is not trusted.
            let (code, text) = check(upstream_toml(
                &pki,
                &url,
                &format!("{}\nrequest = \"p10cr\"", signature_keys(&pki)),
            ));
            assert_eq!(code, Some(1), "{text}");
            assert!(text.contains("status: failed"), "{text}");
            app.stop().await;
        },
    );
}

/// `implicit_confirm = true` with a CA that does not grant it (the mock without
/// `-grant_implicitconf`): Vouch asks for it, sees it was not granted, and confirms with a
/// certConf all the same. Every message goes out as `application/pkixcmp`.
#[test]
fn implicit_confirm_not_granted_is_confirmed_with_a_certconf() {
    in_netns(
        "implicit_confirm_not_granted_is_confirmed_with_a_certconf",
        || async {
            let keys = |pki: &Pki| {
                format!(
                    "{}\nrequest = \"p10cr\"\nimplicit_confirm = true",
                    signature_keys(pki)
                )
            };
            let s = setup(None, &keys, &[]).await;
            s.issued().await;
            let m = s.decoded();
            assert_eq!(bodies(&m), ["genm", "p10cr", "certConf"], "{m:?}");
            assert_eq!(m[1]["implicitConfirm"], true, "asked for");
            let types = s.recorder.content_types.lock().unwrap().clone();
            assert_eq!(types.len(), 3);
            assert!(
                types.iter().all(|t| t == "application/pkixcmp"),
                "{types:?}"
            );
            s.app.stop().await;
        },
    );
}

/// A CA that keeps asking to wait longer than `max_poll_seconds` allows: Vouch polls once, reads
/// the checkAfter (3 s), does not poll again before it (nor past its limit of 2 s), and leaves
/// the request approved with the reason on it; nothing is recorded as issued.
#[test]
fn a_ca_that_waits_past_max_poll_seconds_leaves_the_request_approved() {
    in_netns(
        "a_ca_that_waits_past_max_poll_seconds_leaves_the_request_approved",
        || async {
            let keys = |pki: &Pki| {
                format!(
                    "{}\nrequest = \"ir\"\nmax_poll_seconds = 2",
                    signature_keys(pki)
                )
            };
            let options = [
                "-accept_raverified",
                "-poll_count",
                "10",
                "-check_after",
                "3",
            ];
            let s = setup(None, &keys, &options).await;
            let (status, body, id) = s.approve().await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            let m = s.decoded();
            assert_eq!(bodies(&m), ["genm", "ir", "pollReq"], "{m:?}");
            let (_, req) = s
                .app
                .get(&s.approver, &format!("/api/v1/requests/{id}"))
                .await;
            assert_eq!(req["status"], "approved", "{req}");
            let why = req.to_string();
            assert!(
                why.contains("max_poll_seconds") && why.contains("after 3 s"),
                "the request shows why: {req}"
            );
            assert_eq!(
                s.app.ra.certificate_count_for_request(&id).await.unwrap(),
                0
            );
            s.app.stop().await;
        },
    );
}

/// A rejection whose PKIFailureInfo says the CA is down or busy (systemUnavail) is not the CA's
/// answer to the request: the request stays approved with the CA's words on it, to be asked
/// again, and is not failed.
#[test]
fn a_ca_that_is_unavailable_leaves_the_request_approved() {
    in_netns(
        "a_ca_that_is_unavailable_leaves_the_request_approved",
        || async {
            let keys = |pki: &Pki| format!("{}\nrequest = \"p10cr\"", signature_keys(pki));
            let options = [
                "-pkistatus",
                "2",
                "-failure",
                "24",
                "-statusstring",
                "down for maintenance",
            ];
            let s = setup(None, &keys, &options).await;
            let (status, body, id) = s.approve().await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            let (_, req) = s
                .app
                .get(&s.approver, &format!("/api/v1/requests/{id}"))
                .await;
            assert_eq!(req["status"], "approved", "{req}");
            let why = req.to_string();
            assert!(
                why.contains("systemUnavail") && why.contains("down for maintenance"),
                "the request shows why: {req}"
            );
            assert!(s.audit("request.failed").await.is_empty());
            assert_eq!(
                s.app.ra.certificate_count_for_request(&id).await.unwrap(),
                0
            );
            s.app.stop().await;
        },
    );
}
