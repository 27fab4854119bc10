//! Several `vouch serve` processes on one PostgreSQL database (127.0.0.1:5432 unless
//! `VOUCH_TEST_PG_SERVER` or `VOUCH_TEST_POSTGRES` names another server): issuance at most once under concurrent approvals
//! split across instances, one audit chain under concurrent revocations, OCSP and CRL on one
//! instance reflecting a revocation made on the other, readiness, and the service running under a
//! database role that cannot change audit rows. These tests need PostgreSQL and fail, rather than
//! skip, when it is not reachable.

mod common;

use common::cfssl::{upstream_toml, write_private, AUTH_KEY};
use common::scripted_ca::{Mode, ScriptedCa};
use common::{csr_for, ec_key, p256_csr, serve_process, PgDatabase, Served, BIN};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `VOUCH_TEST_PG_SERVER`, else `VOUCH_TEST_POSTGRES`, else the local server.
fn server() -> String {
    std::env::var("VOUCH_TEST_PG_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(common::postgres_server)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// `vouch <args> --data-dir <data>` with the database URL in the environment.
fn vouch(args: &[&str], data: &Path, url: &str) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("VOUCH_DATABASE_URL", url)
        .output()
        .expect("run vouch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A deployment: one database, data directory `a` initialised against it, and `b` holding a copy
/// of a's CA and profiles (as the operations guide says to deploy a second instance).
struct Cluster {
    db: PgDatabase,
    dir: tempfile::TempDir,
    admin: String,
}

impl Cluster {
    async fn new() -> Cluster {
        let db = PgDatabase::create(&server()).await;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let (code, out, err) = vouch(&["init"], &a, &db.url());
        assert_eq!(code, 0, "{out}{err}");
        let admin = out.lines().last().unwrap().trim().to_string();
        assert!(admin.starts_with("vouch_"), "{out}");
        let b = dir.path().join("b");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&a)
            .arg(&b)
            .status()
            .unwrap();
        assert!(status.success());
        let _ = std::fs::remove_file(b.join("serve.lock"));
        Cluster { db, dir, admin }
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn serve(&self, name: &str) -> Served {
        self.serve_as(name, &self.db.url())
    }

    fn serve_as(&self, name: &str, url: &str) -> Served {
        serve_process(&self.data(name), &[], &[("VOUCH_DATABASE_URL", url)])
    }

    async fn finish(self) {
        self.db.drop_database().await;
    }
}

struct Api {
    client: reqwest::Client,
}

impl Api {
    fn new() -> Api {
        Api {
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        node: &Served,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("http://{}{path}", node.addr);
        let req = match body {
            Some(b) => self.client.post(url).json(&b),
            None if path.ends_with("/approve") => self.client.post(url),
            None => self.client.get(url),
        };
        let resp = req.bearer_auth(token).send().await.expect("request");
        common::split(resp).await
    }

    async fn operator(&self, node: &Served, admin: &str, name: &str, roles: &[&str]) -> String {
        let (status, out) = self
            .call(
                node,
                admin,
                "/api/v1/operators",
                Some(json!({"name": name, "roles": roles})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out["token"].as_str().unwrap().to_string()
    }

    /// A vetted person and a pending request for `csr`; returns the request id.
    async fn pending(&self, node: &Served, clerk: &str, csr: &str) -> String {
        let (status, sub) = self
            .call(
                node,
                clerk,
                "/api/v1/subscribers",
                Some(json!({"kind": "person", "name": "Li Lei", "identifiers": [
                    {"type": "national-id", "number": "110101199003070011", "issuer": "PSB",
                     "valid_until": "2099-12-31"}]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sub}");
        let (status, req) = self
            .call(
                node,
                clerk,
                "/api/v1/requests",
                Some(json!({"subscriber_id": sub["id"], "profile": "person-signing", "csr": csr})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        req["id"].as_str().unwrap().to_string()
    }

    async fn ocsp_status(&self, node: &Served, issuer: &Path, serial: &str) -> String {
        let (_, text) = common::run(
            Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-issuer"])
                .arg(issuer)
                .args(["-serial", &format!("0x{serial}")])
                .args(["-url", &format!("http://{}/ocsp", node.addr)])
                .arg("-noverify"),
        );
        text
    }
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

#[tokio::test]
async fn fifty_approvals_split_across_two_instances_issue_once() {
    let cluster = Cluster::new().await;
    let (a, b) = (cluster.serve("a"), cluster.serve("b"));
    let api = Api::new();
    let clerk = api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let mut approvers = Vec::new();
    for i in 0..10 {
        approvers.push(
            api.operator(&b, &cluster.admin, &format!("approver{i}"), &["approver"])
                .await,
        );
    }
    let id = api.pending(&a, &clerk, &p256_csr()).await;
    let api = std::sync::Arc::new(api);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (api, node) = (api.clone(), if i % 2 == 0 { a.clone() } else { b.clone() });
            let (token, id) = (approvers[i % approvers.len()].clone(), id.clone());
            tokio::spawn(async move {
                api.call(
                    &node,
                    &token,
                    &format!("/api/v1/requests/{id}/approve"),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut issued = 0;
    for call in calls {
        let (status, out) = call.await.unwrap();
        match status {
            StatusCode::OK => {
                assert_eq!(out["status"], "issued", "{out}");
                issued += 1;
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {out}"),
        }
    }
    assert!(issued >= 1);
    let url = cluster.db.url();
    let certs = count(
        &url,
        &format!("SELECT COUNT(*) FROM certificates WHERE request_id = '{id}'"),
    )
    .await;
    let intents = count(
        &url,
        &format!("SELECT COUNT(*) FROM issuance_intents WHERE request_id = '{id}'"),
    )
    .await;
    assert_eq!((certs, intents), (1, 1));
    // Every approver saw the same certificate.
    let (_, r) = api
        .call(&b, &clerk, &format!("/api/v1/requests/{id}"), None)
        .await;
    assert_eq!(r["status"], "issued", "{r}");
    drop((a, b));
    cluster.finish().await;
}

#[tokio::test]
async fn concurrent_revocations_on_both_instances_keep_one_audit_chain_and_ocsp_follows() {
    let cluster = Cluster::new().await;
    let (a, b) = (cluster.serve("a"), cluster.serve("b"));
    let api = Api::new();
    let clerk = api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let approver = api
        .operator(&b, &cluster.admin, "approver", &["approver"])
        .await;
    let revoker = api
        .operator(&a, &cluster.admin, "revoker", &["revoker"])
        .await;
    let mut serials = Vec::new();
    for i in 0..12 {
        let csr = csr_for(
            &ec_key(Nid::X9_62_PRIME256V1),
            MessageDigest::sha256(),
            &format!("c{i}"),
        );
        let node = if i % 2 == 0 { &a } else { &b };
        let id = api.pending(node, &clerk, &csr).await;
        let (status, out) = api
            .call(
                node,
                &approver,
                &format!("/api/v1/requests/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        serials.push(out["serial"].as_str().unwrap().to_string());
    }
    let issuer = cluster.dir.path().join("issuing.pem");
    std::fs::copy(cluster.data("a").join("ca/issuing.pem"), &issuer).unwrap();

    // OCSP on B says good (and B keeps that answer), then A revokes: B must follow within 5 s.
    let watched = serials.pop().unwrap();
    let text = api.ocsp_status(&b, &issuer, &watched).await;
    assert!(text.contains(": good"), "{text}");
    let (status, out) = api
        .call(
            &a,
            &revoker,
            &format!("/api/v1/certificates/{watched}/revoke"),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let start = Instant::now();
    loop {
        let text = api.ocsp_status(&b, &issuer, &watched).await;
        if text.contains(": revoked") {
            assert!(text.contains("keyCompromise"), "{text}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B still answers {text} 5 s after the revocation on A"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // B's CRL lists it too.
    let crl = reqwest::get(format!("http://{}/crl/issuing.crl", b.addr))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let crl = openssl::x509::X509Crl::from_der(&crl).unwrap();
    let listed: Vec<String> = crl
        .get_revoked()
        .map(|r| {
            r.iter()
                .map(|e| {
                    e.serial_number()
                        .to_bn()
                        .unwrap()
                        .to_hex_str()
                        .unwrap()
                        .to_lowercase()
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(listed.contains(&watched), "{listed:?}");

    // Revocations on both instances at once: one chain.
    let api = std::sync::Arc::new(api);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let calls: Vec<_> = serials
        .iter()
        .enumerate()
        .map(|(i, serial)| {
            let (api, node) = (api.clone(), if i % 2 == 0 { a.clone() } else { b.clone() });
            let (token, serial) = (revoker.clone(), serial.clone());
            tokio::spawn(async move {
                api.call(
                    &node,
                    &token,
                    &format!("/api/v1/certificates/{serial}/revoke"),
                    Some(json!({"reason": "superseded"})),
                )
                .await
            })
        })
        .collect();
    for call in calls {
        let (status, out) = call.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    drop((a, b));
    let (code, out, err) = vouch(&["audit", "verify"], &cluster.data("a"), &cluster.db.url());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit log intact"), "{out}");
    let revoked = count(
        &cluster.db.url(),
        "SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.revoked'",
    )
    .await;
    assert_eq!(revoked, 12);
    cluster.finish().await;
}

#[tokio::test]
async fn an_instance_with_another_ca_is_refused() {
    let cluster = Cluster::new().await;
    let stranger = cluster.data("stranger");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&stranger)
        .env("VOUCH_DATABASE_URL", cluster.db.url())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to the issuing CA"), "{err}");
    // And the database is untouched by the attempt: one bootstrap admin, one CA binding.
    let bound = count(
        &cluster.db.url(),
        "SELECT COUNT(*) FROM audit_log WHERE action = 'ca.bound'",
    )
    .await;
    assert_eq!(bound, 1);
    cluster.finish().await;
}

/// The grants docs/OPERATIONS.md gives the application role.
fn app_role_grants(role: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
        .unwrap();
    let start = text
        .find("-- grants: begin")
        .expect("docs/OPERATIONS.md has the grants block");
    let end = text.find("-- grants: end").unwrap();
    text[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|s| s.trim().replace("vouch_app", role))
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn the_service_runs_under_a_role_that_cannot_change_audit_rows() {
    let cluster = Cluster::new().await;
    let role = format!("{}_app", cluster.db.name);
    let mut owner = sqlx::PgConnection::connect(&cluster.db.url())
        .await
        .unwrap();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&mut owner)
        .await
        .unwrap();
    for stmt in app_role_grants(&role) {
        sqlx::query(&stmt)
            .execute(&mut owner)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    // Every table the migrations make is in the documented grants (a new table left out would
    // fail only on the path that writes it, under this role only): SELECT and INSERT on each,
    // but the migrations' own table, which is read only.
    let ungranted: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' \
         AND NOT (has_table_privilege($1, oid, 'SELECT') \
         AND (relname = '_sqlx_migrations' OR has_table_privilege($1, oid, 'INSERT'))) \
         ORDER BY 1",
    )
    .bind(&role)
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(
        ungranted.is_empty(),
        "tables missing from docs/OPERATIONS.md's grants: {ungranted:?}"
    );
    let app_url = format!(
        "{}/{}",
        server().replacen("postgres@", &format!("{role}@"), 1),
        cluster.db.name
    );
    let a = cluster.serve_as("a", &app_url);
    let api = Api::new();
    let (status, ready) = api.call(&a, "", "/readyz", None).await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    // A full flow under the restricted role: operators, vetting, four-eyes issuance, revocation.
    let clerk = api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let approver = api
        .operator(&a, &cluster.admin, "approver", &["approver", "revoker"])
        .await;
    let id = api.pending(&a, &clerk, &p256_csr()).await;
    let (status, out) = api
        .call(
            &a,
            &approver,
            &format!("/api/v1/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    let (status, out) = api
        .call(
            &a,
            &approver,
            &format!("/api/v1/certificates/{serial}/revoke"),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, _) = api.call(&a, "", "/crl/issuing.crl", None).await;
    assert_eq!(status, StatusCode::OK);
    // A four-eyes operator reset, asked for by one admin and approved by another (two admins
    // the first one made: neither created the other).
    let admin2 = api.operator(&a, &cluster.admin, "admin2", &["admin"]).await;
    let admin3 = api.operator(&a, &cluster.admin, "admin3", &["admin"]).await;
    let (_, ops) = api.call(&a, &admin2, "/api/v1/operators", None).await;
    let approver_id = ops["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "approver")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, out) = api
        .call(
            &a,
            &admin2,
            &format!("/api/v1/operators/{approver_id}/reset-totp"),
            Some(json!({"reason": "new phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    let reset = out["id"].as_str().unwrap().to_string();
    let (status, out) = api
        .call(
            &a,
            &admin3,
            &format!("/api/v1/operator-resets/{reset}/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // The role itself cannot edit or delete audit rows, even with the triggers gone, nor the
    // status history the revocation appended to.
    let mut app = sqlx::PgConnection::connect(&app_url).await.unwrap();
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM status_history WHERE serial = $1")
        .bind(&serial)
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    for stmt in [
        "UPDATE audit_log SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        "UPDATE status_history SET status = 'valid'",
        "DELETE FROM status_history",
    ] {
        let err = sqlx::query(stmt).execute(&mut app).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{stmt}: {err}"
        );
    }
    let (code, out, err) = vouch(&["audit", "verify"], &cluster.data("a"), &app_url);
    assert_eq!(code, 0, "{out}{err}");
    drop(a);
    drop(app);
    sqlx::query(&format!("DROP OWNED BY {role}"))
        .execute(&mut owner)
        .await
        .unwrap();
    drop(owner);
    cluster.finish().await;
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", server()))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&mut admin)
        .await;
}

#[tokio::test]
async fn readiness_follows_the_database_and_migrate_is_idempotent() {
    let cluster = Cluster::new().await;
    let (code, out, err) = vouch(&["migrate"], &cluster.data("a"), &cluster.db.url());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("up to date"), "{out}");
    // TLS to the database when the URL asks for it (the server here has ssl = on).
    let tls_url = format!("{}?sslmode=require&password=not-printed", cluster.db.url());
    let (code, out, err) = vouch(&["migrate"], &cluster.data("a"), &tls_url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("password=***") && !out.contains("not-printed"),
        "{out}"
    );
    let a = cluster.serve("a");
    let api = Api::new();
    let (status, _) = api.call(&a, "", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    // Cut every connection (a database restart, a network cut): the instance reconnects by itself.
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", server()))
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&cluster.db.name)
        .execute(&mut admin)
        .await
        .unwrap();
    let start = Instant::now();
    let mut created = None;
    for n in 0..50 {
        let (status, out) = api
            .call(
                &a,
                &cluster.admin,
                "/api/v1/operators",
                Some(json!({"name": format!("after-cut-{n}"), "roles": ["clerk"]})),
            )
            .await;
        if status == StatusCode::CREATED {
            created = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(created.is_some(), "no write succeeded after the cut");
    assert!(start.elapsed() < Duration::from_secs(5));
    let (status, _) = api.call(&a, "", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    // Take the database away: liveness stays, readiness goes.
    cluster.db.drop_database().await;
    let (status, out) = api.call(&a, "", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
    assert_eq!(out["error"], "not_ready");
    let (status, _) = api.call(&a, "", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn audit_verify_on_postgres_names_an_edited_entry() {
    let cluster = Cluster::new().await;
    let (code, out, err) = vouch(&["audit", "verify"], &cluster.data("a"), &cluster.db.url());
    assert_eq!(code, 0, "{out}{err}");
    // Someone with the owner's rights switches the append-only trigger off and edits a row.
    let mut owner = sqlx::PgConnection::connect(&cluster.db.url())
        .await
        .unwrap();
    let refused = sqlx::query("UPDATE audit_log SET details = '{}' WHERE seq = 1")
        .execute(&mut owner)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    for stmt in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
        "UPDATE audit_log SET details = '{\"name\":\"mallory\"}' WHERE seq = 1",
    ] {
        sqlx::query(stmt).execute(&mut owner).await.unwrap();
    }
    drop(owner);
    let (code, out, _) = vouch(&["audit", "verify"], &cluster.data("a"), &cluster.db.url());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 1"), "{out}");
    cluster.finish().await;
}

#[tokio::test]
async fn a_broken_chain_is_acknowledged_under_the_application_role() {
    let cluster = Cluster::new().await;
    let role = format!("{}_app", cluster.db.name);
    let mut owner = sqlx::PgConnection::connect(&cluster.db.url())
        .await
        .unwrap();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&mut owner)
        .await
        .unwrap();
    for stmt in app_role_grants(&role) {
        sqlx::query(&stmt).execute(&mut owner).await.unwrap();
    }
    let app_url = format!(
        "{}/{}",
        server().replacen("postgres@", &format!("{role}@"), 1),
        cluster.db.name
    );
    let a = cluster.serve_as("a", &app_url);
    let b = cluster.serve_as("b", &app_url);
    let api = Api::new();
    api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let (status, _) = api.call(&a, "", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    // The owner cuts the newest entry off the end.
    for stmt in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete",
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
        "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_delete",
    ] {
        sqlx::query(stmt).execute(&mut owner).await.unwrap();
    }
    // Both instances report it.
    for node in [&a, &b] {
        let (status, out) = api.call(node, "", "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        assert_eq!(out["error"], "audit_chain_broken", "{out}");
    }
    // The application role can acknowledge (insert-only marks, one audit entry).
    let (code, out, err) = vouch(
        &[
            "audit",
            "acknowledge",
            "--reason",
            "checked against the backup",
        ],
        &cluster.data("a"),
        &app_url,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acknowledged break at entry"), "{out}");
    for node in [&a, &b] {
        let (status, out) = api.call(node, "", "/readyz", None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let (code, out, err) = vouch(&["audit", "verify"], &cluster.data("a"), &app_url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acknowledged break at entry"), "{out}");
    drop(a);
    drop(b);
    sqlx::query(&format!("DROP OWNED BY {role}"))
        .execute(&mut owner)
        .await
        .unwrap();
    drop(owner);
    cluster.finish().await;
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", server()))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&mut admin)
        .await;
}

/// Block key `n` and record an audit entry for it, in one write job.
async fn block_key(store: &vouch::store::Store, n: usize) -> vouch::error::Result<()> {
    store
        .write(vouch::store::job!(|c, log| {
            let key = format!("{n:064}");
            vouch::store::certificates::block_key(c, &key, "test", None, 0).await?;
            vouch::audit::record(log, time::OffsetDateTime::now_utc(), key_event(n));
            Ok(())
        }))
        .await
}

fn key_event(n: usize) -> vouch::audit::Event {
    vouch::audit::Event::new(
        None,
        vouch::audit::Action::KeyBlocked,
        Some(&n.to_string()),
        json!({}),
    )
}

/// Jobs queued behind a busy writer run in one batch; every third inserts key 0 again, a unique
/// violation, which it turns into a domain error (`caught`) or lets through as a database error.
/// Either way it alone fails: on PostgreSQL a failed statement spoils the whole transaction unless
/// it is rolled back to the job's savepoint.
async fn a_failed_statement_leaves_its_batch_intact(caught: bool) {
    use vouch::store::{job, Database, Store};
    let db = PgDatabase::create(&server()).await;
    let store = Store::connect(&Database::Postgres(db.url())).await.unwrap();
    block_key(&store, 0).await.unwrap();
    // Keep the writer busy while the jobs queue, so they run together in one batch (a lone
    // failing job would pass without a savepoint too: PostgreSQL turns COMMIT into ROLLBACK).
    let sleeper = {
        let s = store.clone();
        tokio::spawn(async move {
            s.write(job!(|c, _| {
                sqlx::query("SELECT 1 FROM pg_sleep(0.5)")
                    .execute(c)
                    .await?;
                Ok(())
            }))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let jobs: Vec<_> = (1..40)
        .map(|n| {
            let s = store.clone();
            tokio::spawn(async move {
                if n % 3 != 0 {
                    return block_key(&s, n).await;
                }
                s.write(job!(|c, log| {
                    vouch::audit::record(log, time::OffsetDateTime::now_utc(), key_event(n));
                    match sqlx::query(
                        "INSERT INTO blocked_keys (key_sha256, reason, blocked_at) \
                         VALUES ($1, 'x', 0)",
                    )
                    .bind(format!("{:064}", 0))
                    .execute(&mut *c)
                    .await
                    {
                        Err(e) if caught && vouch::store::is_unique_violation(&e) => {
                            Err(vouch::error::Error::conflict("duplicate", "already there"))
                        }
                        other => other.map(|_| ()).map_err(Into::into),
                    }
                }))
                .await
            })
        })
        .collect();
    for (i, j) in jobs.into_iter().enumerate() {
        let n = i + 1;
        let r = j.await.unwrap();
        if n % 3 != 0 {
            r.unwrap_or_else(|e| panic!("job {n} failed with its batch-mate: {e}"));
        } else if caught {
            assert_eq!(r.unwrap_err().code(), "duplicate");
        } else {
            assert!(r.is_err(), "job {n} violated a unique constraint");
        }
    }
    sleeper.await.unwrap().unwrap();
    {
        let mut c = store.read().await.unwrap();
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blocked_keys")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(keys, 1 + 26);
        assert!(matches!(
            vouch::audit::verify(&mut c).await.unwrap(),
            vouch::audit::Verdict::Intact { entries: 27, .. }
        ));
    }
    store.close().await;
    drop(store);
    db.drop_database().await;
}

#[tokio::test]
async fn a_job_that_refuses_after_a_failed_statement_leaves_its_batch_intact() {
    a_failed_statement_leaves_its_batch_intact(true).await;
}

#[tokio::test]
async fn a_job_with_a_database_error_leaves_its_batch_intact() {
    a_failed_statement_leaves_its_batch_intact(false).await;
}

/// The serials an AC CRL (DER) lists, lower-case hex.
fn crl_serials(der: &[u8]) -> Vec<String> {
    let crl = openssl::x509::X509Crl::from_der(der).unwrap();
    crl.get_revoked()
        .map(|r| {
            r.iter()
                .map(|e| {
                    let hex = e.serial_number().to_bn().unwrap().to_hex_str().unwrap();
                    hex.to_lowercase()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_ac_revoked_on_one_instance_is_on_the_others_ac_crl_within_5_s() {
    let cluster = Cluster::new().await;
    let (a, b) = (cluster.serve("a"), cluster.serve("b"));
    let api = Api::new();
    let admin = &cluster.admin;
    let clerk = api.operator(&a, admin, "clerk", &["clerk"]).await;
    let approver = api.operator(&b, admin, "approver", &["approver"]).await;
    let aa = api.operator(&a, admin, "erin", &["aa"]).await;
    let revoker = api.operator(&a, admin, "revoker", &["revoker"]).await;
    let id = api.pending(&a, &clerk, &p256_csr()).await;
    let path = format!("/api/v1/requests/{id}/approve");
    let (status, out) = api.call(&b, &approver, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let holder = out["serial"].as_str().unwrap().to_string();
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let not_after = not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let grant = json!({"holder_serial": holder, "roles": ["approver"], "targets": ["permits"],
                       "not_after": not_after});
    let (status, ac) = api
        .call(&a, &aa, "/api/v1/attribute-certificates", Some(grant))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ac}");
    let serial = ac["serial"].as_str().unwrap().to_string();
    // Both instances serve the same AA (each gave its certificate its own address, as neither was
    // told a public URL; the key is one); B signs (and keeps) an AC CRL without the AC.
    let fetch = |node: &Served, path: &str| {
        let url = format!("http://{}{path}", node.addr);
        async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() }
    };
    let key = |pem: &[u8]| {
        let cert = openssl::x509::X509::from_pem(pem).unwrap();
        cert.public_key().unwrap().public_key_to_der().unwrap()
    };
    let (aa_a, aa_b) = (fetch(&a, "/ca/aa.pem").await, fetch(&b, "/ca/aa.pem").await);
    assert_eq!(key(&aa_a), key(&aa_b));
    assert!(crl_serials(&fetch(&b, "/crl/aa.crl").await).is_empty());
    let path = format!("/api/v1/attribute-certificates/{serial}/revoke");
    let body = json!({"reason": "privilegeWithdrawn"});
    let (status, out) = api.call(&a, &revoker, &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let start = Instant::now();
    while !crl_serials(&fetch(&b, "/crl/aa.crl").await).contains(&serial) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B's AC CRL still lacks the AC 5 s after its revocation on A"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.finish().await;
}

#[tokio::test]
async fn every_instance_signs_with_the_deployments_attribute_authority() {
    let cluster = Cluster::new().await;
    // A copy of the CA without the AA's files (say, taken before there were any): the instance
    // does not make an AA of its own, and says what to copy.
    let bare = cluster.data("bare");
    let status = Command::new("cp")
        .arg("-a")
        .arg(cluster.data("b"))
        .arg(&bare)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(bare.join("ca/aa.key")).unwrap();
    std::fs::remove_file(bare.join("ca/aa.pem")).unwrap();
    let node = cluster.serve("bare");
    let resp = reqwest::get(format!("http://{}/ca/aa.pem", node.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let ready: Value = reqwest::get(format!("http://{}/readyz", node.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ready["warnings"].to_string().contains("copy ca/aa.key"),
        "{ready}"
    );
    assert!(!bare.join("ca/aa.key").exists());
    drop(node);

    // An AA of another deployment's making is refused at start.
    let other = cluster.dir.path().join("other");
    let (code, out, err) = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&other)
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).to_string(),
                String::from_utf8_lossy(&o.stderr).to_string(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    for file in ["aa.key", "aa.pem"] {
        std::fs::copy(other.join("ca").join(file), bare.join("ca").join(file)).unwrap();
    }
    let (code, out, err) = vouch(
        &["serve", "--listen", "127.0.0.1:0"],
        &bare,
        &cluster.db.url(),
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("aa_mismatch") || err.contains("attribute authority"),
        "{err}"
    );
    cluster.finish().await;
}

/// Every table the migrations create has a grant in docs/OPERATIONS.md, and every table the code
/// UPDATEs (or upserts) has UPDATE: a new table, or a new UPDATE, without its grant would fail
/// only on a deployment that follows the documented least privilege.
#[test]
fn the_documented_grants_cover_every_table_and_every_update() {
    use std::collections::{BTreeMap, BTreeSet};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for stmt in app_role_grants("vouch_app") {
        let Some(rest) = stmt.strip_prefix("GRANT ") else {
            continue;
        };
        let (privileges, rest) = rest.split_once(" ON ").unwrap();
        let (objects, _) = rest.rsplit_once(" TO ").unwrap();
        if objects.starts_with("SCHEMA") || objects.starts_with("SEQUENCE") {
            continue;
        }
        for table in objects.split(',') {
            let set = granted.entry(table.trim().to_string()).or_default();
            set.extend(privileges.split(',').map(|p| p.trim().to_string()));
        }
    }
    let words = |text: &str, before: &str, after: &str| -> Vec<String> {
        text.match_indices(before)
            .filter_map(|(i, _)| {
                let rest = &text[i + before.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest[name.len()..]
                    .starts_with(after)
                    .then_some(name)
                    .filter(|n| !n.is_empty())
            })
            .collect()
    };
    let mut tables = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("migrations/postgres")).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        tables.extend(words(&sql, "CREATE TABLE ", " ("));
        tables.extend(words(&sql, "CREATE TABLE IF NOT EXISTS ", " ("));
    }
    assert!(
        tables.contains("certificates") && tables.len() > 10,
        "{tables:?}"
    );
    for t in &tables {
        let privileges = granted.get(t);
        assert!(
            privileges.is_some_and(|p| p.contains("SELECT")),
            "docs/OPERATIONS.md grants nothing on {t}"
        );
    }
    let mut sources = vec![root.join("src")];
    let mut updated = BTreeSet::new();
    while let Some(dir) = sources.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                updated.extend(words(&code, "UPDATE ", " SET"));
                // INSERT ... ON CONFLICT ... DO UPDATE needs UPDATE as well.
                for (i, _) in code.match_indices("DO UPDATE") {
                    let before = &code[..i];
                    if let Some(at) = before.rfind("INSERT INTO ") {
                        updated.extend(words(&before[at..], "INSERT INTO ", " ("));
                    }
                }
            }
        }
    }
    // Set once by `vouch init` (the owner), before the service ever runs under its role.
    updated.remove("instance_meta");
    assert!(updated.contains("certificates"), "{updated:?}");
    for t in &updated {
        assert!(
            granted.get(t).is_some_and(|p| p.contains("UPDATE")),
            "the code updates {t}, and docs/OPERATIONS.md does not grant UPDATE on it"
        );
    }
}

/// Both instances' data directories name the scripted CFSSL at `ca` for person-signing, with
/// `extra` keys in its entry.
fn remote_ca_for_both(cluster: &Cluster, ca: &ScriptedCa, extra: &str) {
    let toml = upstream_toml("city-cfssl", &ca.url, AUTH_KEY, &["person-signing"]) + extra;
    for node in ["a", "b"] {
        write_private(&cluster.data(node).join("upstream.toml"), &toml);
    }
}

/// Retries every second, of intents of any age.
const FAST_RETRIES: [&str; 4] = ["--retry-interval-secs", "1", "--retry-min-age-secs", "0"];

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn journal_entries(data: &Path) -> usize {
    std::fs::read_dir(data.join("issuance-journal"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pem")
            })
            .count()
        })
        .unwrap_or(0)
}

// Multi-threaded: the scripted CA answers while the test waits for a server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_retrying_one_request_ask_a_remote_ca_once() {
    let cluster = Cluster::new().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(ca_dir.path())).await;
    // A CA that picks its own serials signs a second certificate for a second request.
    ca.pick_own_serials();
    remote_ca_for_both(&cluster, &ca, "");
    let url = cluster.db.url();
    let env = [("VOUCH_DATABASE_URL", url.as_str())];
    let a = serve_process(&cluster.data("a"), &FAST_RETRIES, &env);
    let b = serve_process(&cluster.data("b"), &FAST_RETRIES, &env);
    let api = Api::new();
    let clerk = api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let approver = api
        .operator(&a, &cluster.admin, "approver", &["approver"])
        .await;
    let id = api.pending(&a, &clerk, &p256_csr()).await;
    // Approved while the CA is down: the intent is due for a retry at once, on both instances.
    ca.set(Mode::Down);
    let (_, out) = api
        .call(
            &a,
            &approver,
            &format!("/api/v1/requests/{id}/approve"),
            None,
        )
        .await;
    let (_, req) = api
        .call(&b, &approver, &format!("/api/v1/requests/{id}"), None)
        .await;
    assert_eq!(req["status"], "approved", "{out} {req}");
    // The CA comes back, slow: the first instance to retry is still waiting for its answer when
    // the other's next round (every second) finds the same intent due.
    let calls = ca.sign_calls();
    ca.set(Mode::SlowSign(Duration::from_secs(3)));
    wait_for(
        "the request to be issued",
        Duration::from_secs(60),
        async || {
            let (_, req) = api
                .call(&b, &approver, &format!("/api/v1/requests/{id}"), None)
                .await;
            req["status"] == "issued"
        },
    )
    .await;
    // Time for a second attempt, had one started, to come back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ca.sign_calls() - calls, 1, "the CA was asked once");
    assert_eq!(ca.issued(), 1);
    assert_eq!(count(&url, "SELECT count(*) FROM certificates").await, 1);
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM audit_log WHERE action = 'certificate.quarantined'"
        )
        .await,
        0
    );
    drop((a, b));
    cluster.finish().await;
}

// Multi-threaded: the scripted CA answers while the test waits for a server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_certificate_for_one_request_is_quarantined_and_revoked_at_the_ca() {
    let cluster = Cluster::new().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ScriptedCa::start(&common::cfssl::make_test_ca(ca_dir.path())).await;
    ca.pick_own_serials();
    // Calls time out after a second: an attempt owns its intent for two.
    remote_ca_for_both(&cluster, &ca, "timeout_secs = 1\n");
    let url = cluster.db.url();
    let env = [("VOUCH_DATABASE_URL", url.as_str())];
    let paused = [
        ("VOUCH_DATABASE_URL", url.as_str()),
        ("VOUCH_TEST_FAULT", "pause-before-record"),
    ];
    let mut a = serve_process(&cluster.data("a"), &FAST_RETRIES, &paused);
    let api = std::sync::Arc::new(Api::new());
    let clerk = api.operator(&a, &cluster.admin, "clerk", &["clerk"]).await;
    let approver = api
        .operator(&a, &cluster.admin, "approver", &["approver"])
        .await;
    let id = api.pending(&a, &clerk, &p256_csr()).await;
    // Instance a gets the CA's certificate, keeps it in its journal, and stops before recording
    // it (for longer than its claim on the intent).
    let approving = {
        let (api, addr, token, id) = (api.clone(), a.addr.clone(), approver.clone(), id.clone());
        tokio::spawn(async move {
            let _ = api
                .client
                .post(format!("http://{addr}/api/v1/requests/{id}/approve"))
                .bearer_auth(token)
                .send()
                .await;
        })
    };
    wait_for("a's journal entry", Duration::from_secs(30), async || {
        journal_entries(&cluster.data("a")) == 1
    })
    .await;
    let first = ca.serials();
    assert_eq!(first.len(), 1);
    let first = first[0].clone();
    // Instance b finds the intent due once a's claim ran out, asks the CA again, and records the
    // second certificate.
    let b = serve_process(&cluster.data("b"), &FAST_RETRIES, &env);
    wait_for(
        "b to record the request",
        Duration::from_secs(60),
        async || {
            let (_, req) = api
                .call(&b, &approver, &format!("/api/v1/requests/{id}"), None)
                .await;
            req["status"] == "issued"
        },
    )
    .await;
    let (_, req) = api
        .call(&b, &approver, &format!("/api/v1/requests/{id}"), None)
        .await;
    let recorded = req["serial"].as_str().unwrap().to_string();
    assert_ne!(recorded, first);
    assert_eq!(ca.issued(), 2);
    // a dies and comes back: its journal holds a certificate for a request recorded with another.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    approving.abort();
    let _ = std::fs::remove_file(cluster.data("a").join("serve.lock"));
    let a = serve_process(&cluster.data("a"), &FAST_RETRIES, &env);
    let quarantined = "SELECT count(*) FROM audit_log WHERE action = 'certificate.quarantined'";
    wait_for("the quarantine", Duration::from_secs(30), async || {
        count(&url, quarantined).await == 1
    })
    .await;
    assert_eq!(ca.revocation(&first).as_deref(), Some("superseded"));
    assert_eq!(
        ca.revocation(&recorded),
        None,
        "the recorded certificate stays good"
    );
    assert_eq!(journal_entries(&cluster.data("a")), 0);
    assert_eq!(count(&url, "SELECT count(*) FROM certificates").await, 1);
    let (status, _) = api
        .call(
            &a,
            &approver,
            &format!("/api/v1/certificates/{first}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "never delivered");
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'certificate.quarantined' AND target = $1",
    )
    .bind(&id)
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let details: Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(details["serial"], first.as_str(), "{details}");
    assert_eq!(details["recorded_serial"], recorded.as_str(), "{details}");
    assert_eq!(details["upstream_revocation"]["revoked"], true, "{details}");
    let (code, out, err) = vouch(&["audit", "verify"], &cluster.data("a"), &url);
    assert_eq!(code, 0, "{out}{err}");
    drop((a, b));
    cluster.finish().await;
}
