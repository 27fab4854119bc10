//! The failure rules of issuance and revocation through a remote CA, each with its fault injected:
//! the database write fails after the CA signed (a trigger makes the INSERT fail, as Boulder
//! does), the CA's answer is lost before it was kept, `kill -9` of a real `vouch serve` between
//! the CA's answer and the write, a slow CA, and a revocation forward the CA does not
//! acknowledge. Real `cfssl serve` (Debian golang-cfssl) where the fault can be made from
//! outside; a scripted stand-in where the CA itself must misbehave. Each test ends by counting:
//! requests, certificates the CA issued (its own database), certificates Vouch recorded.

mod common;

use common::cfssl::{upstream_toml, Cfssl, AUTH_KEY};
use common::database::{count, fail_certificate_inserts, heal_certificate_inserts, sql};
use common::kill9::{journal_entries, kill_9_between_the_answer_and_the_write};
use common::scripted_ca::{Mode, ScriptedCa};
use common::{p256_csr, Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use vouch::store::Database;

const SIGNING_USAGES: &[&str] = &[
    "digital signature",
    "content committment",
    "email protection",
];

/// Short retry periods, so that the background task acts within the test.
fn fast_retries() -> vouch::ra::RetrySchedule {
    vouch::ra::RetrySchedule {
        interval: Duration::from_millis(200),
        backoff: time::Duration::seconds(1),
        backoff_max: time::Duration::seconds(2),
        min_age: time::Duration::ZERO,
    }
}

/// An app with `upstream.toml` text `toml` retrying on `retry`, and a person-signing request
/// submitted: (app, approver, request id). Tests that drive reconciliation themselves keep the
/// default schedule, whose first round is 30 s away.
async fn submitted_to(toml: String, retry: vouch::ra::RetrySchedule) -> (TestApp, String, String) {
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        retry,
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    (app, approver, id)
}

/// Poll `check` until it holds (the background task acts on its own time); panics after 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request approved through a real CFSSL (client serials) while the database fails every
/// INSERT into `certificates`: CFSSL signed, Vouch recorded nothing, the request is still
/// `approved` and the CA's answer is in the journal. (dir, CFSSL, app, approver, request id,
/// database), the fault still in place.
async fn signed_but_not_recorded() -> (tempfile::TempDir, Cfssl, TestApp, String, String, Database)
{
    signed_but_not_recorded_with(false).await
}

/// The serial reserved for the app's one request (its `issuance.intent` audit entry), as an
/// operator reads it.
async fn reserved_serial(app: &TestApp) -> String {
    app.audit_entries()
        .await
        .into_iter()
        .find(|e| e["action"] == "issuance.intent")
        .expect("issuance.intent audited")["details"]["serial"]
        .as_str()
        .unwrap()
        .to_string()
}

/// How long the approval's claim on an intent lasts on PostgreSQL with `certdb_url` and
/// `timeout_secs = 3` (twice the lookup and the call), and a second.
const CLAIM_WITH_CERTDB: Duration = Duration::from_secs(13);

/// As [`signed_but_not_recorded`]; with `certdb`, Vouch is given CFSSL's certificate database
/// (`certdb_url`).
async fn signed_but_not_recorded_with(
    certdb: bool,
) -> (tempfile::TempDir, Cfssl, TestApp, String, String, Database) {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    // Calls time out after 3 s: on PostgreSQL an attempt owns its intent for 6 s; with the
    // lookup first, for 12 s (CLAIM_WITH_CERTDB).
    let mut toml = upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]);
    match certdb {
        true => {
            toml += &format!(
                "timeout_secs = 3\ncertdb_url = \"sqlite:{}\"\n",
                cfssl.db.display()
            )
        }
        false => toml += "timeout_secs = 3\n",
    }
    let (app, approver, id) = submitted_to(toml, Default::default()).await;
    let db = app.data.database_target();
    fail_certificate_inserts(&db).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert!(!status.is_success(), "{body}");
    assert_eq!(cfssl.certdb_count(), 1, "{}", cfssl.log());
    assert_eq!(count(&db, "certificates").await, 0);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    assert_eq!(journal_entries(app.data.root()), [format!("{id}.pem")]);
    (dir, cfssl, app, approver, id, db)
}

#[tokio::test]
async fn a_failed_database_write_after_the_ca_signed_is_recorded_from_the_journal() {
    let (_dir, cfssl, app, approver, id, db) = signed_but_not_recorded().await;
    // Reconciliation while the database still fails: the CA is not asked again.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(cfssl.certdb_count(), 1);

    heal_certificate_inserts(&db).await;
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    let serial = req["serial"].as_str().unwrap();
    // The certificate CFSSL holds is the one recorded, under the serial Vouch reserved.
    assert_eq!(cfssl.certdb_status(serial), Some(("good".into(), 0)));
    let entries = app.audit_entries().await;
    let intent = entries
        .iter()
        .find(|e| e["action"] == "issuance.intent")
        .unwrap();
    assert_eq!(intent["details"]["serial"], serial, "the reserved serial");
    assert!(journal_entries(app.data.root()).is_empty());
    // Counts: one request, one certificate issued by the CA, one recorded.
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(cfssl.certdb_count(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_answer_lost_before_the_journal_is_refused_as_a_duplicate_then_recovered() {
    let (_dir, cfssl, app, approver, id, db) = signed_but_not_recorded().await;
    // The answer is lost (as if the process died before keeping it).
    std::fs::remove_file(app.data.issuance_journal_dir().join(format!("{id}.pem"))).unwrap();
    heal_certificate_inserts(&db).await;
    // On PostgreSQL the approval's claim on the intent stands until it runs out (another
    // instance could hold the answer); on SQLite there is none.
    if matches!(db, Database::Postgres(_)) {
        tokio::time::sleep(Duration::from_secs(7)).await;
    }
    // The retry asks CFSSL for the same serial, and CFSSL refuses a second certificate.
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(cfssl.certdb_count(), 1, "no second certificate");
    assert_eq!(count(&db, "certificates").await, 0);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    let issuance = &req["issuance"];
    assert_eq!(issuance["ca"], "city-cfssl", "{req}");
    assert_eq!(issuance["failed_attempts"], 1, "{req}");
    let error = issuance["last_error"].as_str().unwrap();
    assert!(
        error.contains("already holds a certificate") && error.contains("issuance journal"),
        "{req}"
    );
    assert!(issuance["next_attempt_at"].as_str().is_some(), "{req}");
    let listed = app.upstream_queue();
    assert_eq!(
        listed["issuances"][0]["request_id"],
        id.as_str(),
        "{listed}"
    );
    assert_eq!(listed["issuances"][0]["last_error"], error);
    // The operator recovers it from CFSSL's database into the journal, as OPERATIONS.md says.
    let reserved = reserved_serial(&app).await;
    let pem = cfssl.certdb_pem(&reserved);
    std::fs::write(
        app.data.issuance_journal_dir().join(format!("{id}.pem")),
        pem,
    )
    .unwrap();
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    assert_eq!(req["serial"], reserved.as_str());
    assert_eq!(app.upstream_queue()["issuances"], json!([]));
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(cfssl.certdb_count(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// As above, with `certdb_url`: the retry finds the certificate CFSSL signed under the reserved
/// serial in CFSSL's own database (read-only), checks it against the order and records it; no
/// operator step, no second certificate.
#[tokio::test]
async fn with_certdb_url_an_answer_lost_before_the_journal_is_found_in_cfssls_database() {
    let (_dir, cfssl, app, approver, id, db) = signed_but_not_recorded_with(true).await;
    std::fs::remove_file(app.data.issuance_journal_dir().join(format!("{id}.pem"))).unwrap();
    heal_certificate_inserts(&db).await;
    if matches!(db, Database::Postgres(_)) {
        tokio::time::sleep(CLAIM_WITH_CERTDB).await;
    }
    let before = std::fs::read(&cfssl.db).unwrap();
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 1);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "issued", "{req}");
    let reserved = reserved_serial(&app).await;
    assert_eq!(req["serial"], reserved.as_str());
    let (_, cert) = app
        .get(&approver, &format!("/api/v1/certificates/{reserved}"))
        .await;
    assert_eq!(
        cert["pem"].as_str().unwrap().trim(),
        cfssl.certdb_pem(&reserved).trim(),
        "the certificate CFSSL signed"
    );
    assert_eq!(
        std::fs::read(&cfssl.db).unwrap(),
        before,
        "read, never written"
    );
    assert!(journal_entries(app.data.root()).is_empty());
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(cfssl.certdb_count(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

/// With `certdb_url`, a certificate CFSSL holds under the reserved serial that an admin has
/// revoked there meanwhile is not recorded as issued: the request fails, saying why (its serial
/// is spent at the CA), and nothing is signed again.
#[tokio::test]
async fn with_certdb_url_a_certificate_revoked_at_cfssl_is_not_delivered() {
    let (_dir, cfssl, app, approver, id, db) = signed_but_not_recorded_with(true).await;
    std::fs::remove_file(app.data.issuance_journal_dir().join(format!("{id}.pem"))).unwrap();
    heal_certificate_inserts(&db).await;
    if matches!(db, Database::Postgres(_)) {
        tokio::time::sleep(CLAIM_WITH_CERTDB).await;
    }
    let (ok, text) = common::run(
        std::process::Command::new("sqlite3")
            .arg(&cfssl.db)
            .arg("UPDATE certificates SET status = 'revoked', reason = 4"),
    );
    assert!(ok, "sqlite3: {text}");
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "failed", "{req}");
    let failed = app
        .audit_entries()
        .await
        .into_iter()
        .find(|e| e["action"] == "request.failed")
        .expect("request.failed audited");
    let error = failed["details"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("its status there is \"revoked\"") && error.contains("submit a new one"),
        "{failed}"
    );
    assert_eq!(cfssl.certdb_count(), 1, "not signed again");
    assert_eq!(count(&db, "certificates").await, 0);
    app.stop().await;
}

/// The lookup against CFSSL's PostgreSQL certificate database, as CFSSL 1.2 writes it (`cfssl
/// sign -db-config`, its `bytea` schema): found by the serial in decimal, not found under
/// another; and a database that cannot be reached is an error that names the cause, not a "none".
#[tokio::test]
async fn cfssls_postgresql_certificate_database_is_read_by_serial() {
    use vouch::ca::cfssl::certdb::{parse, CertDb};
    let server = std::env::var("VOUCH_TEST_PG_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(common::postgres_server)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let pg = common::PgDatabase::create(&server).await;
    let (ok, text) = common::run(
        std::process::Command::new("psql")
            .arg(pg.url())
            .args(["-qc", CFSSL_PG_SCHEMA]),
    );
    assert!(ok, "psql: {text}");
    let dir = tempfile::tempdir().unwrap();
    let ca = common::cfssl::make_test_ca(dir.path());
    let csr = dir.path().join("leaf.csr");
    std::fs::write(&csr, p256_csr()).unwrap();
    let db_config = dir.path().join("db.json");
    let source = format!("{}?sslmode=disable", pg.url());
    std::fs::write(
        &db_config,
        json!({"driver": "postgres", "data_source": source}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new("cfssl")
        .args(["sign", "-ca"])
        .arg(&ca.cert)
        .arg("-ca-key")
        .arg(&ca.key)
        .arg("-db-config")
        .arg(&db_config)
        .arg(&csr)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pem = signed["cert"].as_str().unwrap();
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let decimal = x
        .serial_number()
        .to_bn()
        .unwrap()
        .to_dec_str()
        .unwrap()
        .to_string();
    let url = parse(&pg.url(), Path::new("/")).unwrap();
    let db = CertDb::new(&url, Duration::from_secs(5));
    let found = db.by_serial(&decimal).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(String::from_utf8_lossy(&found[0].pem).trim(), pem.trim());
    assert_eq!(found[0].status, "good");
    assert!(db.by_serial("12345").await.unwrap().is_empty());
    pg.drop_database().await;
    let gone = CertDb::new(&url, Duration::from_secs(5));
    let err = gone.by_serial(&decimal).await.unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

/// `vouch upstream check` reads the certificate database once: a `certdb_url` that cannot be
/// read fails the check, naming it; CFSSL's own database passes.
#[tokio::test]
async fn upstream_check_reads_the_certificate_database() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let app = TestApp::spawn().await;
    let check = |certdb: &Path| {
        let toml = upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"])
            + &format!("certdb_url = \"sqlite:{}\"\n", certdb.display());
        common::cfssl::write_private(&app.data.root().join("upstream.toml"), &toml);
        let out = std::process::Command::new(common::BIN)
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
    let (code, text) = check(&dir.path().join("missing.db"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("status: failed") && text.contains("(certdb_url) could not be read"),
        "{text}"
    );
    assert!(!dir.path().join("missing.db").exists(), "never created");
    let (code, text) = check(&cfssl.db);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "certificate database: sqlite:{}",
            cfssl.db.display()
        )),
        "{text}"
    );
    app.stop().await;
}

/// CFSSL 1.2's PostgreSQL schema (its certdb/pg migration), which it does not create itself.
const CFSSL_PG_SCHEMA: &str = "CREATE TABLE certificates (serial_number bytea NOT NULL, \
    authority_key_identifier bytea NOT NULL, ca_label bytea, status bytea NOT NULL, reason int, \
    expiry timestamptz, revoked_at timestamptz, pem bytea NOT NULL, \
    PRIMARY KEY(serial_number, authority_key_identifier))";

#[tokio::test]
async fn kill_9_between_the_cas_answer_and_the_write_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let toml = upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]);
    let issued = || cfssl.certdb_count();
    let serial =
        kill_9_between_the_answer_and_the_write(dir.path(), &toml, "city-cfssl", &issued, &|| true)
            .await;
    assert_eq!(cfssl.certdb_status(&serial), Some(("good".into(), 0)));
}

#[tokio::test]
async fn a_slow_ca_times_out_and_the_retry_task_issues_once_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    ca.set(Mode::Slow(Duration::from_secs(3)));
    let toml = format!(
        "{}timeout_secs = 1\n",
        upstream_toml("slow-ca", &ca.url, AUTH_KEY, &["person-signing"])
    );
    let (app, approver, id) = submitted_to(toml, fast_retries()).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "upstream_ca_error", "{body}");
    let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(req["status"], "approved", "{req}");
    assert!(
        req.get("serial").is_none_or(|s| s.is_null()),
        "nothing marked issued: {req}"
    );
    assert_eq!(req["issuance"]["ca"], "slow-ca");
    assert!(
        req["issuance"]["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{req}"
    );
    assert!(
        req["issuance"]["next_attempt_at"].as_str().is_some(),
        "{req}"
    );
    let listed = app.upstream_queue();
    assert_eq!(listed["issuances"][0]["ca"], "slow-ca", "{listed}");
    // The background task keeps trying while the CA stays slow, and counts the attempts.
    let api = (&app, approver.clone(), id.clone());
    eventually("a second failed attempt", || async {
        let (_, req) = api
            .0
            .get(&api.1, &format!("/api/v1/requests/{}", api.2))
            .await;
        req["issuance"]["failed_attempts"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(app.ra.certificate_count_for_request(&id).await.unwrap(), 0);
    assert_eq!(ca.issued(), 0);
    // The CA answers again: the retry task issues, once.
    ca.set(Mode::Up);
    eventually("issued by the retry task", || async {
        let (_, req) = api
            .0
            .get(&api.1, &format!("/api/v1/requests/{}", api.2))
            .await;
        req["status"] == "issued"
    })
    .await;
    assert_eq!(app.upstream_queue()["issuances"], json!([]));
    let db = app.data.database_target();
    assert_eq!(count(&db, "requests").await, 1);
    assert_eq!(ca.issued(), 1);
    assert_eq!(count(&db, "certificates").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_revocation_the_ca_does_not_acknowledge_is_queued_and_retried_until_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfssl = Cfssl::start_with(dir.path(), SIGNING_USAGES, "8760h", true);
    let toml = upstream_toml("city-cfssl", &cfssl.url, AUTH_KEY, &["person-signing"]);
    let (app, approver, id) = submitted_to(toml, fast_retries()).await;
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let serial = body["serial"].as_str().unwrap().to_string();
    cfssl.stop();
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let (status, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    // Revoked here at once; the CA was not told, and the forward is queued.
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    let errors = body["upstream_errors"].to_string();
    assert!(
        errors.contains("city-cfssl") && errors.contains("stays queued"),
        "{body}"
    );
    let (_, cert) = app
        .get(&revoker, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(cert["status"], "revoked");
    assert_eq!(cert["upstream_forward"]["ca"], "city-cfssl", "{cert}");
    assert_eq!(cert["upstream_forward"]["reason"], "keyCompromise");
    assert!(
        cert["upstream_forward"]["failed_attempts"]
            .as_i64()
            .unwrap()
            >= 1
    );
    assert!(cert["upstream_forward"]["last_error"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    let listed = app.upstream_queue();
    assert_eq!(
        listed["revocation_forwards"][0]["serial"],
        serial.as_str(),
        "{listed}"
    );
    assert_eq!(cfssl.certdb_status(&serial), Some(("good".into(), 0)));
    // The CA is back: the retry task forwards it, and the queue empties.
    cfssl.restart();
    let api = (&app, revoker.clone(), serial.clone());
    eventually("the forward acknowledged", || async {
        let (_, cert) = api
            .0
            .get(&api.1, &format!("/api/v1/certificates/{}", api.2))
            .await;
        cert.get("upstream_forward").is_none()
    })
    .await;
    assert_eq!(cfssl.certdb_status(&serial), Some(("revoked".into(), 1)));
    assert_eq!(app.upstream_queue()["revocation_forwards"], json!([]));
    let entries = app.audit_entries().await;
    let of = |action: &str| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["target"] == serial.as_str())
            .cloned()
            .collect()
    };
    let failed = of("certificate.revocation_forward_failed");
    assert!(!failed.is_empty());
    assert!(
        failed[0]["details"]["next_attempt_at"].as_str().is_some(),
        "{failed:?}"
    );
    let forwarded = of("certificate.revocation_forwarded");
    assert_eq!(forwarded.len(), 1, "{entries:?}");
    assert_eq!(
        forwarded[0]["details"]["failed_attempts"].as_i64(),
        Some(failed.len() as i64)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_revocation_no_forward_was_queued_for_is_found_and_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    let toml = upstream_toml("city-ca", &ca.url, AUTH_KEY, &["person-signing"]);
    let app = TestApp::spawn_with(Options {
        upstream_toml: Some(toml),
        ..Options::default()
    })
    .await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    let (status, body) = app
        .post_empty(
            &approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let serial = body["serial"].as_str().unwrap().to_string();
    // Revoked in the database by a path that does not forward (the start-up re-keying does this
    // for blocked keys; so does a process that stops between the revocation and its forward).
    let db = app.data.database_target();
    sql(
        &db,
        &format!(
            "UPDATE certificates SET status = 'revoked', revocation_reason = 'keyCompromise', \
             revoked_at = 1700000000, status_version = status_version + 1 WHERE serial = '{serial}'"
        ),
    )
    .await;
    assert_eq!(ca.revoke_calls(), 0);
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 1);
    assert_eq!(ca.revocation(&serial).as_deref(), Some("keyCompromise"));
    let entries = app.audit_entries().await;
    for action in [
        "certificate.revocation_forward_queued",
        "certificate.revocation_forwarded",
    ] {
        assert_eq!(
            entries
                .iter()
                .filter(|e| e["action"] == action && e["target"] == serial.as_str())
                .count(),
            1,
            "{action}: {entries:?}"
        );
    }
    // Acknowledged: the next round has nothing to do.
    assert_eq!(app.ra.retry_forwards().await.unwrap(), 0);
    assert_eq!(ca.revoke_calls(), 1);
    app.stop().await;
}

/// A CA that is down is asked once per reconciliation round, not once per waiting request: a
/// down or slow CA would otherwise hold the round, and the upkeep after it, for a timeout per
/// request. Its other requests wait for the next round, and all are issued once it is back.
#[tokio::test]
async fn a_ca_that_is_down_is_asked_once_per_round() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(dir.path())).await;
    ca.set(Mode::Down);
    // Rounds driven here (the background task's first round is an hour away); no back-off.
    let retry = vouch::ra::RetrySchedule {
        interval: Duration::from_secs(3600),
        backoff: time::Duration::ZERO,
        backoff_max: time::Duration::ZERO,
        min_age: time::Duration::ZERO,
    };
    let toml = upstream_toml("down-ca", &ca.url, AUTH_KEY, &["person-signing"]);
    let (app, approver, first) = submitted_to(toml, retry).await;
    let clerk = app.operator("clerk2", &["clerk"]).await;
    let sub = app.person(&clerk, "Wang Fang", "2099-12-31").await;
    let (status, req) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let second = req["id"].as_str().unwrap().to_string();
    for id in [&first, &second] {
        let (status, body) = app
            .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
            .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }
    assert_eq!(ca.sign_calls(), 2, "each approval asked once");
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(
        ca.sign_calls(),
        3,
        "one round, one call to the CA that is down"
    );
    ca.set(Mode::Up);
    assert_eq!(app.ra.reconcile(time::Duration::ZERO).await.unwrap(), 2);
    assert_eq!(ca.issued(), 2);
    for id in [&first, &second] {
        let (_, req) = app.get(&approver, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(req["status"], "issued", "{req}");
    }
    app.stop().await;
}
