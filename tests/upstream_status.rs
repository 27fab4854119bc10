//! The status of certificates a remote CA issued, read from that CA's CRL (`crl_url` in
//! `upstream.toml`). A real `cfssl serve` (Debian golang-cfssl) signs; a certificate is then
//! revoked directly at CFSSL (its `/revoke`, not through Vouch), and CFSSL's own `cfssl gencrl`
//! makes the CA's CRL from its certificate database, served where `crl_url` points. Vouch reads it
//! (`Ra::read_upstream_crls`, what the background task does every
//! `--upstream-crl-interval-secs`): `GET /certificates/{serial}` then says revoked, the
//! verification API rejects a document signed after the revocation, and nothing is forwarded
//! back to the CA. A CRL that cannot be read, or is signed by another key under the CA's name,
//! changes nothing (audited once as `upstream.crl_unreadable`), and never undoes what a good one
//! recorded. A later CRL made by `openssl ca` gives the entries' reasons, which are recorded
//! (keyCompromise also blocks the key).

mod common;

use base64::Engine;
use common::cfssl::{upstream_toml, Cfssl, AUTH_KEY};
use common::crl::{openssl_crl, openssl_crl_dated, openssl_crl_with, CrlServer};
use common::database::count;
use common::signing::{cms_sign, csr_pem, p256_key_pem, SignOptions, Signer};
use common::{run, Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const SIGNING_USAGES: &[&str] = &[
    "digital signature",
    "content committment",
    "email protection",
];

/// `cfssl gencrl` over the revoked serials of CFSSL's certificate database `db`, signed with the
/// CA `cert` / `key`: its output (base64 DER), as an operator's cron job would publish it.
fn gencrl(dir: &Path, db: &Path, cert: &Path, key: &Path) -> Vec<u8> {
    let (ok, serials) = run(Command::new("sqlite3")
        .arg(db)
        .arg("SELECT serial_number FROM certificates WHERE CAST(status AS TEXT) = 'revoked'"));
    assert!(ok, "sqlite3: {serials}");
    let list = dir.join("revoked-serials.txt");
    std::fs::write(&list, serials.trim()).unwrap();
    // The CRL's validity in seconds, read from a file as cfssl gencrl reads each argument.
    let expiry = dir.join("crl-expiry.txt");
    std::fs::write(&expiry, "86400").unwrap();
    let out = Command::new("cfssl")
        .arg("gencrl")
        .arg(&list)
        .arg(cert)
        .arg(key)
        .arg(&expiry)
        .output()
        .unwrap();
    assert!(out.status.success(), "cfssl gencrl: {out:?}");
    out.stdout
}

fn of_action(entries: &[Value], action: &str, target: &str) -> usize {
    entries
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .count()
}

async fn verify_doc(app: &TestApp, verifier: &str, signer: &Signer) -> Value {
    let cms = cms_sign(b"permit 2026-0042", &[signer], &SignOptions::default());
    let body = json!({"cms": base64::engine::general_purpose::STANDARD.encode(cms)});
    let (status, answer) = app.post(verifier, "/api/v1/verify", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test]
async fn a_revocation_made_at_cfssl_is_read_from_its_crl_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    // Rounds driven here: the background task's first round is an hour away.
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let verifier = app.operator("permits-app", &["verifier"]).await;
    let mut signers = Vec::new();
    for name in ["Li Wei", "Wang Fang"] {
        let key = p256_key_pem();
        let sub = app.person(&clerk, name, "2099-12-31").await;
        let (status, req) = app
            .submit(&clerk, &sub, "person-signing", &csr_pem(&key, "ignored"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let id = req["id"].as_str().unwrap();
        let (status, out) = app
            .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let serial = out["serial"].as_str().unwrap().to_string();
        let (_, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["ca"], "city-cfssl");
        let signer = Signer {
            cert_pem: cert["pem"].as_str().unwrap().to_string(),
            key_pem: key,
        };
        signers.push((serial, signer));
    }
    let (revoked, kept) = (&signers[0], &signers[1]);
    let status_of = |serial: String| {
        let (app, clerk) = (&app, clerk.clone());
        async move {
            let (status, cert) = app
                .get(&clerk, &format!("/api/v1/certificates/{serial}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{cert}");
            cert
        }
    };
    assert_eq!(
        verify_doc(&app, &verifier, &revoked.1).await["decision"],
        "accept"
    );

    // No CRL to read yet: nothing changes, audited once however often it is read.
    for _ in 0..2 {
        let round = app.ra.read_upstream_crls().await.unwrap();
        assert_eq!((round.read, round.failed, round.recorded), (0, 1, 0));
    }
    let unreadable = |entries: &[Value]| {
        entries
            .iter()
            .filter(|e| e["action"] == "upstream.crl_unreadable")
            .count()
    };
    assert_eq!(unreadable(&app.audit_entries().await), 1);

    // Revoked at CFSSL itself, by its own API (not through Vouch).
    let decimal = openssl::bn::BigNum::from_hex_str(&revoked.0)
        .unwrap()
        .to_dec_str()
        .unwrap()
        .to_string();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/cfssl/revoke", cfssl.url))
        .json(&json!({"serial": decimal, "authority_key_id": "", "reason": "keyCompromise"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(cfssl.certdb_status(&revoked.0).unwrap().0, "revoked");

    // A CRL under the CA's name but signed by another key: not used.
    let other_dir = tempfile::tempdir().unwrap();
    let other = common::cfssl::make_test_ca(other_dir.path());
    crl.set(Some(gencrl(dir.path(), &cfssl.db, &other.cert, &other.key)));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (0, 1, 0));
    assert_eq!(status_of(revoked.0.clone()).await["status"], "valid");
    assert_eq!(unreadable(&app.audit_entries().await), 2);

    // The CA's own CRL: recorded as revoked, with the CRL's time.
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    crl.set(Some(gencrl(
        dir.path(),
        &cfssl.db,
        &cfssl.ca.cert,
        &cfssl.ca.key,
    )));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (1, 0, 1));
    let cert = status_of(revoked.0.clone()).await;
    assert_eq!(cert["status"], "revoked", "{cert}");
    let revoked_at = time::OffsetDateTime::parse(
        cert["revoked_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!(revoked_at >= before - 2, "the CRL's revocationDate: {cert}");
    assert!(
        cert.get("upstream_forward").is_none(),
        "nothing to tell the CA: {cert}"
    );
    assert_eq!(status_of(kept.0.clone()).await["status"], "valid");
    let answer = verify_doc(&app, &verifier, &revoked.1).await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    assert_eq!(
        answer["reasons"],
        json!(["certificate_revoked"]),
        "{answer}"
    );
    assert_eq!(
        verify_doc(&app, &verifier, &kept.1).await["decision"],
        "accept"
    );
    let entries = app.audit_entries().await;
    let seen: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "certificate.revoked_upstream")
        .collect();
    assert_eq!(seen.len(), 1, "{entries:?}");
    assert_eq!(seen[0]["target"], revoked.0.as_str());
    assert_eq!(seen[0]["details"]["ca"], "city-cfssl");
    assert_eq!(seen[0]["details"]["crl_url"], crl.url.as_str());
    assert!(seen[0]["actor"].is_null(), "{:?}", seen[0]);
    // Nothing is forwarded back to the CA that told us.
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 0);
    assert!(!entries
        .iter()
        .any(|e| e["action"] == "certificate.revocation_forwarded"));

    // The same CRL again: nothing new. Then unreachable: the record stands.
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.recorded), (1, 0));
    crl.set(None);
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!(round.failed, 1);
    assert_eq!(status_of(revoked.0.clone()).await["status"], "revoked");
    // Audited: no CRL, the wrong key, no CRL again (not each round of one failure).
    assert_eq!(unreadable(&app.audit_entries().await), 3);

    // A later CRL (PEM, by `openssl ca` with the CA's key) gives reasons: the entry's reason is
    // recorded; what was revoked stays as recorded; keyCompromise blocks the key.
    // Dated a few seconds on (within the allowance for a CA's clock): the CRL read above may
    // have been made in this same second, and a CRL no later than a certificate's last change
    // here is not used for it.
    crl.set(Some(openssl_crl_dated(
        &cfssl.ca.cert,
        &cfssl.ca.key,
        &[
            (&revoked.1.cert_pem, "keyCompromise"),
            (&kept.1.cert_pem, "compromise:20260101000000Z"),
        ],
        "",
        Some(time::OffsetDateTime::now_utc() + time::Duration::seconds(5)),
    )));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (1, 0, 2));
    let cert = status_of(kept.0.clone()).await;
    assert_eq!(cert["status"], "revoked", "{cert}");
    assert_eq!(cert["revocation_reason"], "keyCompromise", "{cert}");
    assert_eq!(cert["invalidity_date"], "2026-01-01T00:00:00Z", "{cert}");
    // The certificate revoked before (no reason in cfssl gencrl's CRL) is raised to
    // keyCompromise, as a revocation here may be.
    let cert = status_of(revoked.0.clone()).await;
    assert_eq!(cert["status"], "revoked", "{cert}");
    assert_eq!(cert["revocation_reason"], "keyCompromise", "{cert}");
    let entries = app.audit_entries().await;
    assert_eq!(
        of_action(&entries, "certificate.revocation_updated", &revoked.0),
        1,
        "{entries:?}"
    );
    // A key the CA says is compromised is blocked here too.
    let sub = app.person(&clerk, "Zhang San", "2099-12-31").await;
    let (status, body) = app
        .submit(
            &clerk,
            &sub,
            "person-signing",
            &csr_pem(&kept.1.key_pem, "ignored"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "blocked_key", "{body}");

    let db = app.data.database_target();
    assert_eq!(
        count(&db, "requests").await,
        2,
        "the blocked key's request was refused"
    );
    assert_eq!(cfssl.certdb_count(), 2);
    assert_eq!(count(&db, "certificates").await, 2);
    app.stop().await;
}

/// The background task reads the CRLs on its own: its first round (here after 200 ms) reads the
/// CA's CRL, which is not there yet, and audits that.
#[tokio::test]
async fn the_background_task_reads_the_crls() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_millis(200),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let start = std::time::Instant::now();
    loop {
        let entries = app.audit_entries().await;
        if let Some(e) = entries
            .iter()
            .find(|e| e["action"] == "upstream.crl_unreadable")
        {
            assert_eq!(e["details"]["ca"], "city-cfssl", "{e}");
            assert!(
                e["details"]["error"].as_str().unwrap().contains("404"),
                "{e}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the background task never read the CRL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

/// A CRL whose thisUpdate is ahead of this host's clock (beyond a few minutes) is not used: used,
/// it would lock out every CRL until then. Once its time has come it is used; past its nextUpdate
/// it is still used (nothing newer), and audited once as `upstream.crl_stale`.
#[tokio::test]
async fn a_crl_from_the_future_is_not_used_and_a_stale_one_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    // This host's clock a day behind the CA's.
    let clock =
        vouch::clock::ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        clock: Arc::new(clock.clone()),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    // `openssl ca -gencrl`: thisUpdate now, nextUpdate in 7 days.
    crl.set(Some(openssl_crl(&cfssl.ca.cert, &cfssl.ca.key, &[])));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed), (0, 1));
    let entries = app.audit_entries().await;
    let unreadable: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "upstream.crl_unreadable")
        .collect();
    assert_eq!(unreadable.len(), 1, "{entries:?}");
    let error = unreadable[0]["details"]["error"].as_str().unwrap();
    assert!(error.contains("in the future"), "{error}");

    clock.advance(time::Duration::days(1));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed), (1, 0));
    let stale = |entries: &[Value]| {
        entries
            .iter()
            .filter(|e| e["action"] == "upstream.crl_stale")
            .count()
    };
    assert_eq!(stale(&app.audit_entries().await), 0);

    // Eight days on, no newer CRL: still used, audited once as stale.
    clock.advance(time::Duration::days(8));
    for _ in 0..2 {
        let round = app.ra.read_upstream_crls().await.unwrap();
        assert_eq!((round.read, round.failed), (1, 0));
    }
    let entries = app.audit_entries().await;
    assert_eq!(stale(&entries), 1, "{entries:?}");
    app.stop().await;
}

/// A CRL that may speak for other CAs' certificates (indirectCRL in its issuingDistributionPoint)
/// or carries a critical extension Vouch does not know is not used, though the CA signed it: a
/// serial it lists may be another CA's.
#[tokio::test]
async fn an_indirect_crl_or_one_with_an_unknown_critical_extension_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(
            &clerk,
            &sub,
            "person-signing",
            &csr_pem(&p256_key_pem(), "x"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, out) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let pem = cert["pem"].as_str().unwrap().to_string();
    let revoked = [(pem.as_str(), "keyCompromise")];
    let cases = [
        (
            "issuingDistributionPoint = critical, @idp\n[idp]\nfullname = URI:http://ca.example/c.crl\nindirectCRL = TRUE",
            "indirect",
        ),
        (
            "issuingDistributionPoint = critical, @idp\n[idp]\nfullname = URI:http://ca.example/c.crl\nonlyCA = TRUE",
            "CA or attribute certificates only",
        ),
        ("1.2.3.4 = critical, ASN1:NULL", "unknown critical"),
    ];
    for (ext, why) in cases {
        crl.set(Some(openssl_crl_with(
            &cfssl.ca.cert,
            &cfssl.ca.key,
            &revoked,
            ext,
        )));
        let round = app.ra.read_upstream_crls().await.unwrap();
        assert_eq!(
            (round.read, round.failed, round.recorded),
            (0, 1, 0),
            "{why}"
        );
        let entries = app.audit_entries().await;
        let last = entries
            .iter()
            .rev()
            .find(|e| e["action"] == "upstream.crl_unreadable")
            .unwrap();
        let error = last["details"]["error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
    }
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(cert["status"], "valid", "{cert}");
    // An entry with reason removeFromCRL revokes nothing.
    crl.set(Some(openssl_crl(
        &cfssl.ca.cert,
        &cfssl.ca.key,
        &[(pem.as_str(), "removeFromCRL")],
    )));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (1, 0, 0));
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(cert["status"], "valid", "{cert}");
    // The same entry in a plain CRL of the CA is used.
    crl.set(Some(openssl_crl(&cfssl.ca.cert, &cfssl.ca.key, &revoked)));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (1, 0, 1));
    app.stop().await;
}

/// A remote CA's CRL speaks only for that CA's certificates: a serial it lists that is a
/// certificate of the embedded CA (another CA's, with the same serial) is not revoked.
#[tokio::test]
async fn a_crl_does_not_revoke_another_cas_certificate_with_the_same_serial() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    // person-auth is signed by the embedded CA.
    let (status, req) = app
        .submit(&clerk, &sub, "person-auth", &csr_pem(&p256_key_pem(), "x"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, out) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_ne!(cert["ca"], "city-cfssl", "{cert}");
    let pem = cert["pem"].as_str().unwrap().to_string();
    // The remote CA's own CRL, listing that serial.
    crl.set(Some(openssl_crl(
        &cfssl.ca.cert,
        &cfssl.ca.key,
        &[(pem.as_str(), "keyCompromise")],
    )));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed, round.recorded), (1, 0, 0));
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(cert["status"], "valid", "{cert}");
    app.stop().await;
}

#[tokio::test]
async fn a_crl_listing_a_revocation_whose_forward_is_pending_acknowledges_the_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    // No retry round during the test: forwards stay as the test leaves them.
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let mut certs = Vec::new();
    for name in ["one", "two"] {
        let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
        let (status, req) = app
            .submit(
                &clerk,
                &sub,
                "person-signing",
                &csr_pem(&p256_key_pem(), name),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let id = req["id"].as_str().unwrap();
        let (status, out) = app
            .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let serial = out["serial"].as_str().unwrap().to_string();
        let (_, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        certs.push((serial, cert["pem"].as_str().unwrap().to_string()));
    }
    // Both revoked here while the CA cannot be reached: their forwards stay queued.
    cfssl.stop();
    for ((serial, _), reason) in certs.iter().zip(["superseded", "keyCompromise"]) {
        let (status, body) = app
            .post(
                &revoker,
                &format!("/api/v1/certificates/{serial}/revoke"),
                json!({"reason": reason}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, cert) = app
            .get(&revoker, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(cert["upstream_forward"]["reason"], reason, "{cert}");
    }
    // The CA's operator revokes both by hand (superseded); its CRL, made after the revocations
    // here (a CRL from before them says nothing of them), lists them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    crl.set(Some(openssl_crl(
        &cfssl.ca.cert,
        &cfssl.ca.key,
        &[
            (certs[0].1.as_str(), "superseded"),
            (certs[1].1.as_str(), "superseded"),
        ],
    )));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed), (1, 0));
    // The superseded forward is done: the CA has it.
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{}", certs[0].0))
        .await;
    assert!(cert.get("upstream_forward").is_none(), "{cert}");
    let entries = app.audit_entries().await;
    let acknowledged: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "certificate.revocation_forwarded")
        .collect();
    assert_eq!(acknowledged.len(), 1, "{acknowledged:?}");
    assert_eq!(acknowledged[0]["target"], certs[0].0.as_str());
    assert_eq!(
        acknowledged[0]["details"]["acknowledged_by"],
        "the upstream CA's CRL"
    );
    // The keyCompromise forward goes on: the CA does not say the key is compromised.
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{}", certs[1].0))
        .await;
    assert_eq!(
        cert["upstream_forward"]["reason"], "keyCompromise",
        "{cert}"
    );
    // Once the CA is back, the retry task still forwards it.
    cfssl.restart();
    app.ra.retry_forwards().await.unwrap();
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{}", certs[1].0))
        .await;
    assert!(cert.get("upstream_forward").is_none(), "{cert}");
    assert_eq!(
        cfssl.certdb_status(&certs[1].0).map(|s| s.0),
        Some("revoked".into())
    );
    app.stop().await;
}

/// A hold the CA's CRL set here is lifted here when a newer CRL of the CA no longer lists the
/// certificate (the CA released it): `certificate.released_upstream`, valid again, documents
/// signed afterwards accepted. A hold set here is lifted only here, whatever the CA's CRL says,
/// and the older CRL replayed afterwards does not put the released hold back.
#[tokio::test]
async fn a_hold_lifted_at_the_ca_is_released_here_a_hold_set_here_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let crl = CrlServer::start().await;
    let toml = format!(
        "{}crl_url = \"{}\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
        crl.url
    );
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let verifier = app.operator("permits-app", &["verifier"]).await;
    let mut signers = Vec::new();
    for name in ["Li Wei", "Wang Fang"] {
        let key = p256_key_pem();
        let sub = app.person(&clerk, name, "2099-12-31").await;
        let (status, req) = app
            .submit(&clerk, &sub, "person-signing", &csr_pem(&key, "ignored"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let id = req["id"].as_str().unwrap();
        let (status, out) = app
            .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let serial = out["serial"].as_str().unwrap().to_string();
        let (_, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        let signer = Signer {
            cert_pem: cert["pem"].as_str().unwrap().to_string(),
            key_pem: key,
        };
        signers.push((serial, signer));
    }
    let (at_ca, here) = (&signers[0], &signers[1]);
    let status_of = |serial: String| {
        let (app, clerk) = (&app, clerk.clone());
        async move {
            let (_, cert) = app
                .get(&clerk, &format!("/api/v1/certificates/{serial}"))
                .await;
            cert["status"].as_str().unwrap().to_string()
        }
    };
    // The first signer holds a role: its attribute certificate follows the holder's hold.
    let aa = app.operator("aa1", &["aa"]).await;
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, ac) = app
        .post(
            &aa,
            "/api/v1/attribute-certificates",
            json!({"holder_serial": at_ca.0, "roles": ["approver"], "targets": ["permits"],
                   "not_after": not_after}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ac}");
    let ac_path = format!(
        "/api/v1/attribute-certificates/{}",
        ac["serial"].as_str().unwrap()
    );
    let ac_status = || {
        let (app, aa, path) = (&app, aa.clone(), ac_path.clone());
        async move {
            app.get(&aa, &path).await.1["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // The second is put on hold here while the CA is down (its forward waits).
    cfssl.stop();
    let (status, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{}/hold", here.0),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The CA's CRL lists both on hold: the first is held here from it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let held = openssl_crl(
        &cfssl.ca.cert,
        &cfssl.ca.key,
        &[
            (at_ca.1.cert_pem.as_str(), "certificateHold"),
            (here.1.cert_pem.as_str(), "certificateHold"),
        ],
    );
    crl.set(Some(held.clone()));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!(
        (round.read, round.failed, round.recorded, round.released),
        (1, 0, 1, 0)
    );
    assert_eq!(status_of(at_ca.0.clone()).await, "on-hold");
    assert_eq!(ac_status().await, "on-hold");
    let answer = verify_doc(&app, &verifier, &at_ca.1).await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    // Read again: the same CRL lifts nothing.
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.recorded, round.released), (0, 0));

    // The CA lifts its hold of the first, and (by hand) the second: its newer CRL lists none.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    crl.set(Some(openssl_crl(&cfssl.ca.cert, &cfssl.ca.key, &[])));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!(
        (round.read, round.failed, round.recorded, round.released),
        (1, 0, 0, 1)
    );
    assert_eq!(status_of(at_ca.0.clone()).await, "valid");
    assert_eq!(ac_status().await, "valid");
    assert_eq!(status_of(here.0.clone()).await, "on-hold");
    let entries = app.audit_entries().await;
    assert_eq!(
        of_action(&entries, "certificate.released_upstream", &at_ca.0),
        1,
        "{entries:?}"
    );
    assert_eq!(
        of_action(&entries, "certificate.released_upstream", &here.0),
        0
    );
    let released = entries
        .iter()
        .find(|e| e["action"] == "certificate.released_upstream")
        .unwrap();
    assert!(released["actor"].is_null(), "{released}");
    assert_eq!(released["details"]["ca"], "city-cfssl");
    let answer = verify_doc(&app, &verifier, &at_ca.1).await;
    assert_eq!(answer["decision"], "accept", "{answer}");
    assert_eq!(answer["signer"]["certificate_status"], "good", "{answer}");

    // The older CRL, replayed, is not used: the released certificate stays valid.
    crl.set(Some(held));
    let round = app.ra.read_upstream_crls().await.unwrap();
    assert_eq!((round.read, round.failed), (0, 1));
    assert_eq!(status_of(at_ca.0.clone()).await, "valid");
    app.stop().await;
}

/// CFSSL's own OCSP responder (`cfssl ocsprefresh` signs a response per certificate of its
/// database with the CA key, `cfssl ocspdump` exports them, `cfssl ocspserve` answers from
/// them) as the `ocsp_url` of a CFSSL entry: good while the certificate is, then, once revoked at
/// CFSSL by its own API and the responses refreshed, `GET /certificates/{serial}` and the
/// verification API say revoked, audited as read from the OCSP responder, with no CRL read.
#[tokio::test]
async fn cfssls_own_ocsp_responder_reports_a_revocation_made_at_cfssl() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let port = common::cfssl::free_port();
    let toml = format!(
        "{}ocsp_url = \"http://127.0.0.1:{port}/\"\n",
        upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]),
    );
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        upstream_ocsp_reuse: Some(Duration::ZERO),
        retry: vouch::ra::RetrySchedule {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let verifier = app.operator("permits-app", &["verifier"]).await;
    let key = p256_key_pem();
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &csr_pem(&key, "ignored"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, out) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    // The certificate from CFSSL's database: asking Vouch for it now would ask the responder,
    // which is not up yet (and a responder that fails is not asked again for 30 s).
    let signer = Signer {
        cert_pem: cfssl.certdb_pem(&serial),
        key_pem: key,
    };

    // CFSSL's responses, signed with its CA key, served by `cfssl ocspserve` on 127.0.0.1.
    let responses = dir.path().join("ocsp-responses");
    let serve = |responses: &Path| {
        let cfssl_cmd = |args: &[&str]| {
            let out = Command::new("cfssl")
                .args(args)
                .arg("-db-config")
                .arg(dir.path().join("cfssl-db.json"))
                .args(["-ca", cfssl.ca.cert.to_str().unwrap()])
                .args(["-responder", cfssl.ca.cert.to_str().unwrap()])
                .args(["-responder-key", cfssl.ca.key.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "cfssl {args:?}: {out:?}");
        };
        cfssl_cmd(&["ocsprefresh"]);
        let out = Command::new("cfssl")
            .arg("ocspdump")
            .arg("-db-config")
            .arg(dir.path().join("cfssl-db.json"))
            .output()
            .unwrap();
        assert!(out.status.success(), "cfssl ocspdump: {out:?}");
        std::fs::write(responses, &out.stdout).unwrap();
        let child = Command::new("cfssl")
            .args([
                "ocspserve",
                "-address",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .arg("-responses")
            .arg(responses)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed().as_secs() < 20,
                "cfssl ocspserve did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        KillOnDrop(child)
    };
    let responder = serve(&responses);
    let answer = verify_doc(&app, &verifier, &signer).await;
    assert_eq!(answer["decision"], "accept", "{answer}");

    // Revoked at CFSSL itself; the responses refreshed and served again.
    let decimal = openssl::bn::BigNum::from_hex_str(&serial)
        .unwrap()
        .to_dec_str()
        .unwrap()
        .to_string();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/cfssl/revoke", cfssl.url))
        .json(&json!({"serial": decimal, "authority_key_id": "", "reason": "superseded"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    drop(responder);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _responder = serve(&responses);
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(cert["status"], "revoked", "{cert}");
    assert_eq!(cert["revocation_reason"], "superseded", "{cert}");
    let answer = verify_doc(&app, &verifier, &signer).await;
    assert_eq!(answer["decision"], "reject", "{answer}");
    let entries = app.audit_entries().await;
    let recorded: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "certificate.revoked_upstream")
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        recorded[0]["details"]["seen_at"],
        "the upstream CA's OCSP responder"
    );
    // Nothing to forward back to the CA: it told Vouch.
    assert!(cert.get("upstream_forward").is_none(), "{cert}");
    app.stop().await;
}

/// A child process killed by PID when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
