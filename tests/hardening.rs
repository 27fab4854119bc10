//! Error shapes on every route, the Bearer scheme, failed-login limits, and a broken audit chain
//! keeping the server unready until an admin acknowledges it. Runs on PostgreSQL too when
//! `VOUCH_TEST_POSTGRES` is set.

mod common;

use common::{postgres_server, split, PgDatabase, TestApp, BIN};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use vouch::app;
use vouch::ca::local::CaOptions;
use vouch::clock::{ManualClock, SharedClock, SystemClock};
use vouch::datadir::DataDir;
use vouch::ra::logins::{LOGIN_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW};
use vouch::store::Database;

fn assert_json_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn every_error_is_json_and_ocsp_answers_in_ocsp() {
    let app = TestApp::spawn().await;
    let big = vec![b'a'; 70 * 1024];
    // Over the 64 KiB body limit, on routes that read raw bytes.
    let resp = app
        .client
        .post(app.url("/api/v1/revocations/by-key"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let resp = app
        .client
        .post(app.url("/api/v1/certificates/01/hold"))
        .bearer_auth(&app.admin)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // The self-revocation limit is the documented 32 KiB, and going over it is a size error.
    let resp = app
        .client
        .post(app.url("/api/v1/revocations/by-key"))
        .body(vec![b'a'; 40 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_json_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // A path parameter that is not UTF-8.
    let (status, body) = app.get(&app.admin, "/api/v1/requests/%FF%FE").await;
    assert_json_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // A wrong method on a PKI endpoint.
    let resp = app.client.delete(app.url("/ocsp")).send().await.unwrap();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{resp:?}"
    );
    // OCSP over the limit: an OCSP answer, malformedRequest (RFC 6960 4.2.1), as OpenSSL reads it.
    let resp = app
        .client
        .post(app.url("/ocsp"))
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/ocsp-response"
    );
    let der = resp.bytes().await.unwrap();
    let parsed = openssl::ocsp::OcspResponse::from_der(&der).unwrap();
    assert_eq!(
        parsed.status(),
        openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    for value in [
        format!("BEARER {}", app.admin),
        format!("bearer {}", app.admin),
        format!("Bearer   {}", app.admin),
    ] {
        let resp = app
            .client
            .get(app.url("/api/v1/operators"))
            .header(header::AUTHORIZATION, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{value}");
    }
    let resp = app
        .client
        .get(app.url("/api/v1/operators"))
        .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let (status, body) = split(resp).await;
    assert_json_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    app.stop().await;
}

async fn get_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/operators"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_logins_are_limited_per_source_and_audited_once_per_window() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(common::Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    let guess = "vouch_guessed-token-that-must-never-be-logged";
    for _ in 0..LOGIN_FAILURES_ALLOWED {
        assert_eq!(
            get_with(&app, guess).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Over the limit: refused without looking at the token, even a good one.
    for token in [guess, app.admin.as_str()] {
        let resp = get_with(&app, token).await;
        let retry: u64 = resp.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (status, body) = split(resp).await;
        assert_json_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    // The window closes; the next failure flushes the last window's count as one row.
    clock.advance(LOGIN_FAILURE_WINDOW + time::Duration::seconds(1));
    assert_eq!(get_with(&app, &app.admin).await.status(), StatusCode::OK);
    assert_eq!(
        get_with(&app, "garbage").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let audit = app.audit_entries().await;
    let failed: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0]["details"]["failures"], 1);
    assert_eq!(failed[0]["details"]["source"], "127.0.0.1");
    assert_eq!(failed[0]["details"]["reason"], "unknown token");
    let summary = &failed[1]["details"];
    assert_eq!(summary["failures"], LOGIN_FAILURES_ALLOWED - 1, "{summary}");
    assert_eq!(summary["refused"], 2, "{summary}");
    assert_eq!(summary["source"], "127.0.0.1");
    assert!(summary["since"].is_string() && summary["until"].is_string());
    assert_eq!(failed[2]["details"]["reason"], "malformed token");
    let text = Value::Array(audit).to_string();
    assert!(!text.contains("guessed-token"), "a token reached the log");
    app.stop().await;
}

/// A data directory (on PostgreSQL when the suite runs there) and a server over it that can be
/// stopped and started again.
struct Deployment {
    data: DataDir,
    pg: Option<PgDatabase>,
    admin: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

struct Running {
    ra: vouch::ra::Ra,
    server: app::Server,
    base: String,
}

impl Deployment {
    async fn new() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let pg = match postgres_server() {
            Some(server) => Some(PgDatabase::create(&server).await),
            None => None,
        };
        let mut data = DataDir::new(dir.path().join("data"));
        if let Some(db) = &pg {
            data = data.with_database(Database::Postgres(db.url()));
        }
        let clock: SharedClock = Arc::new(SystemClock);
        let admin = app::init(&data, &CaOptions::default(), &clock)
            .await
            .unwrap()
            .unwrap()
            .to_string();
        Deployment {
            data,
            pg,
            admin,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn start(&self) -> Running {
        let (ra, server) = app::start(
            &self.data,
            Arc::new(SystemClock),
            Default::default(),
            "127.0.0.1:0".parse().unwrap(),
            None,
            Default::default(),
        )
        .await
        .unwrap();
        Running {
            base: format!("http://{}", server.addr),
            ra,
            server,
        }
    }

    /// `/readyz`, asked again while the answer is that the database did not answer in time (a
    /// machine busy with other tests): the answers these tests look at are the others.
    async fn readyz(&self, run: &Running) -> (StatusCode, Value) {
        for _ in 0..20 {
            let resp = self
                .client
                .get(format!("{}/readyz", run.base))
                .send()
                .await
                .unwrap();
            let (status, body) = split(resp).await;
            let timed_out = body["error"] == "not_ready"
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("did not answer"));
            if !timed_out {
                return (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("the database never answered /readyz in time");
    }

    async fn add_operators(&self, run: &Running, prefix: &str, n: usize) {
        let jobs: Vec<_> = (0..n)
            .map(|i| {
                let req = self
                    .client
                    .post(format!("{}/api/v1/operators", run.base))
                    .bearer_auth(&self.admin)
                    .json(&json!({"name": format!("{prefix}{i}"), "roles": ["clerk"]}));
                tokio::spawn(async move { req.send().await.unwrap().status() })
            })
            .collect();
        for j in jobs {
            assert_eq!(j.await.unwrap(), StatusCode::CREATED);
        }
    }

    /// `vouch <args> --data-dir <data>`: (exit code, stdout).
    /// Run the CLI on this deployment. Awaited, not blocking: the test's server runs on the same
    /// runtime and must keep serving (and finish its writes) while the command runs.
    async fn vouch(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(self.data.root());
        if let Some(db) = &self.pg {
            cmd.env("VOUCH_DATABASE_URL", db.url());
        }
        let out = cmd.output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Run statements as someone with the database owner's rights, past the append-only guards.
    async fn tamper(&self, sql: &str) {
        use sqlx::{ConnectOptions, Connection};
        match &self.pg {
            Some(db) => {
                let mut c = sqlx::PgConnection::connect(&db.url()).await.unwrap();
                for stmt in [
                    "ALTER TABLE audit_log DISABLE TRIGGER USER",
                    sql,
                    "ALTER TABLE audit_log ENABLE TRIGGER USER",
                ] {
                    sqlx::query(stmt).execute(&mut c).await.unwrap();
                }
            }
            None => {
                let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.data.database())
                    .connect()
                    .await
                    .unwrap();
                for stmt in [
                    "DROP TRIGGER IF EXISTS audit_log_no_update",
                    "DROP TRIGGER IF EXISTS audit_log_no_delete",
                    sql,
                ] {
                    sqlx::query(stmt).execute(&mut c).await.unwrap();
                }
            }
        }
    }

    async fn last_seq(&self, run: &Running) -> i64 {
        let mut c = run.ra.store().read().await.unwrap();
        vouch::store::audit::head(&mut c).await.unwrap().unwrap().0
    }

    async fn finish(self) {
        if let Some(db) = &self.pg {
            db.drop_database().await;
        }
    }
}

impl Running {
    async fn stop(self) {
        self.server.shutdown().await;
        self.ra.store().close().await;
    }
}

#[tokio::test]
async fn entries_cut_off_the_end_keep_the_server_unready_until_acknowledged() {
    let dep = Deployment::new().await;
    let run = dep.start().await;
    dep.add_operators(&run, "a", 4).await;
    assert_eq!(dep.readyz(&run).await.0, StatusCode::OK);
    let head = dep.last_seq(&run).await;
    run.stop().await;
    // The last two entries are deleted while the server is down.
    dep.tamper(&format!("DELETE FROM audit_log WHERE seq > {}", head - 2))
        .await;
    let run = dep.start().await;
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "audit_chain_broken", "{body}");
    assert_eq!(body["entry"], head - 1, "{body}");
    assert!(
        body["problem"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    // The server still works, and newer entries pushing the break out of the checked window do
    // not make it ready.
    dep.add_operators(&run, "b", (vouch::audit::health::WINDOW + 10) as usize)
        .await;
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["entry"], head - 1, "{body}");
    let (code, out) = dep.vouch(&["audit", "verify"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("entry {} is missing", head - 1)),
        "{out}"
    );
    // The acknowledgement needs a reason.
    let (code, out) = dep.vouch(&["audit", "acknowledge", "--reason", " "]).await;
    assert_ne!(code, 0, "{out}");
    let (code, out) = dep
        .vouch(&[
            "audit",
            "acknowledge",
            "--reason",
            "restored from backup; ticket 42",
        ])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("acknowledged break at entry {}", head - 1)),
        "{out}"
    );
    // The running server is ready again without a restart.
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // verify passes and still names the acknowledged break.
    let (code, out) = dep.vouch(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("acknowledged break at entry {}", head - 1)),
        "{out}"
    );
    // A second acknowledgement has nothing to do.
    let (code, out) = dep
        .vouch(&["audit", "acknowledge", "--reason", "again"])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to acknowledge"), "{out}");
    // Both the detection and the acknowledgement are in the chain.
    let entries = {
        let mut c = run.ra.store().read().await.unwrap();
        vouch::audit::page(&mut c, 0, 100_000).await.unwrap()
    };
    let broken = entries
        .iter()
        .find(|e| e.action == "audit.chain_broken")
        .expect("detection audited");
    assert_eq!(broken.details["seq"], head - 1);
    let ack = entries
        .iter()
        .find(|e| e.action == "audit.acknowledged")
        .expect("acknowledgement audited");
    assert_eq!(ack.details["reason"], "restored from backup; ticket 42");
    assert_eq!(ack.details["breaks"][0]["seq"], head - 1);
    // A restart stays ready.
    run.stop().await;
    let run = dep.start().await;
    assert_eq!(dep.readyz(&run).await.0, StatusCode::OK);
    run.stop().await;
    dep.finish().await;
}

#[tokio::test]
async fn an_edited_entry_is_noticed_by_a_running_server() {
    let dep = Deployment::new().await;
    let run = dep.start().await;
    dep.add_operators(&run, "a", 3).await;
    assert_eq!(dep.readyz(&run).await.0, StatusCode::OK);
    let head = dep.last_seq(&run).await;
    dep.tamper(&format!(
        "UPDATE audit_log SET details = '{{\"name\":\"mallory\"}}' WHERE seq = {}",
        head - 1
    ))
    .await;
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["entry"], head - 1, "{body}");
    assert!(
        body["problem"].as_str().unwrap().contains("modified"),
        "{body}"
    );
    let (code, out) = dep
        .vouch(&["audit", "acknowledge", "--reason", "investigated"])
        .await;
    assert_eq!(code, 0, "{out}");
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, out) = dep.vouch(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("was modified"), "{out}");
    run.stop().await;
    dep.finish().await;
}

#[tokio::test]
async fn a_lost_head_record_is_repaired_by_the_acknowledgement() {
    let dep = Deployment::new().await;
    let run = dep.start().await;
    dep.add_operators(&run, "a", 2).await;
    run.stop().await;
    dep.tamper("DELETE FROM audit_head").await;
    let run = dep.start().await;
    let (status, body) = dep.readyz(&run).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("head"),
        "{body}"
    );
    let (code, out) = dep
        .vouch(&["audit", "acknowledge", "--reason", "head lost"])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("set to the last entry"), "{out}");
    assert_eq!(dep.readyz(&run).await.0, StatusCode::OK);
    // Appends work again, and the chain checks out.
    dep.add_operators(&run, "b", 2).await;
    let (code, out) = dep.vouch(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{out}");
    run.stop().await;
    dep.finish().await;
}
