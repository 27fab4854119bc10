//! `vouch` as a client of a running server, driven as an operator or a script would: the built
//! binary against a test server, its output read back and its files checked with OpenSSL.

mod common;

use common::{TestApp, BIN};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variables the client reads; removed so that the caller's cannot leak in.
const CLIENT_VARS: [&str; 6] = [
    "VOUCH_URL",
    "VOUCH_TOKEN",
    "VOUCH_TOKEN_FILE",
    "VOUCH_CACERT",
    "VOUCH_DATA_DIR",
    "VOUCH_DATABASE_URL",
];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The value of a `key: value` line.
    fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key}: line in {}", self.stdout))
            .trim()
            .to_string()
    }
}

/// Run `vouch` in `cwd` with only the given client variables set.
fn vouch_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).env("VOUCH_LOG", "warn");
    for v in CLIENT_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run vouch");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// A token written to a file only its owner may read.
fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(format!("{name}.token"));
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// An operator made with `vouch operator add` over the API; returns its token file.
fn operator(app: &TestApp, dir: &Path, admin: &Path, name: &str, role: &str) -> PathBuf {
    let out = vouch_in(
        dir,
        &[
            "operator",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--url",
            &app.base,
            "--token-file",
            admin.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let token = out.stdout.lines().last().unwrap();
    assert!(token.starts_with("vouch_"), "{}", out.stdout);
    token_file(dir, name, token)
}

fn openssl(args: &[&str]) -> (bool, String) {
    common::run(Command::new("openssl").args(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_whole_flow_with_the_client() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin = token_file(d, "admin", &app.admin);
    let clerk = operator(&app, d, &admin, "clerk", "clerk");
    let approver = operator(&app, d, &admin, "approver", "approver");
    let revoker = operator(&app, d, &admin, "revoker", "revoker");
    let auditor = operator(&app, d, &admin, "auditor", "auditor");
    // Every later command finds the server and the clerk's token in the environment.
    let url = app.base.as_str();
    let as_clerk = [
        ("VOUCH_URL", url),
        ("VOUCH_TOKEN_FILE", clerk.to_str().unwrap()),
    ];
    let vouch = |args: &[&str]| vouch_in(d, args, &as_clerk);
    let with = |token: &Path, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--token-file", token.to_str().unwrap()]);
        vouch_in(d, &all, &as_clerk)
    };

    // A subscriber, human output: the id on an `id:` line.
    let out = vouch(&[
        "subscriber",
        "add",
        "--kind",
        "person",
        "--name",
        "Li Wei",
        "--email",
        "li.wei@example.org",
        "--organisation",
        "City Hall",
        "--id",
        "national-id:110101199003070011:Public Security Bureau:2099-12-31",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sub = out.field("id");
    assert!(sub.starts_with("sub_"), "{sub}");
    let out = vouch(&["subscriber", "show", &sub, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown = out.json();
    assert_eq!(shown["organisation"], "City Hall");
    assert_eq!(shown["identifiers"][0]["issuer"], "Public Security Bureau");
    assert_eq!(shown["identifiers"][0]["valid_until"], "2099-12-31");
    let out = vouch(&["subscriber", "search", "li wei", "--json"]);
    assert_eq!(out.json()["subscribers"][0]["id"], sub.as_str());

    // A request; --json prints the API's answer as it came.
    let csr = d.join("csr.pem");
    std::fs::write(&csr, common::p256_csr()).unwrap();
    let out = vouch(&[
        "request",
        "submit",
        "--subscriber",
        &sub,
        "--profile",
        "person-signing",
        "--csr",
        csr.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let req = out.json();
    assert_eq!(req["status"], "pending");
    let req = req["id"].as_str().unwrap().to_string();
    let out = vouch(&["request", "list", "--status", "pending", "--json"]);
    let listed = out.json();
    assert_eq!(listed["requests"].as_array().unwrap().len(), 1);
    assert_eq!(listed["requests"][0]["id"], req.as_str());

    // Four eyes: the clerk cannot approve; the API's code and message, exit 1.
    let out = vouch(&["request", "approve", &req]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "vouch: forbidden: request.approve requires the approver role"
    );
    let out = with(&approver, &["request", "approve", &req]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "issued");
    let serial = out.field("serial");

    // The certificate with its chain, checked by OpenSSL against the root.
    let (root, _) = app.save_ca_certs(d).await;
    let pem = d.join("cert.pem");
    let pem_arg = pem.to_str().unwrap();
    let out = vouch(&["cert", "get", &serial, "--out", pem_arg, "--chain"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        pem_arg,
        pem_arg,
    ]);
    assert!(ok, "{text}");
    let (_, subject) = openssl(&["x509", "-in", pem_arg, "-noout", "-serial", "-subject"]);
    assert!(
        subject.contains(&format!("serial={}", serial.to_uppercase())),
        "{subject}"
    );
    // An existing file is kept unless --force.
    let before = std::fs::read(&pem).unwrap();
    let out = vouch(&["cert", "get", &serial, "--out", pem_arg]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read(&pem).unwrap(), before);
    let out = vouch(&["cert", "get", &serial, "--out", pem_arg, "--force"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        std::fs::read(&pem).unwrap().len() < before.len(),
        "no chain now"
    );

    // OCSP from the certificate's own AIA: good, then revoked.
    let out = vouch(&["ocsp", "check", pem_arg]);
    assert_eq!((out.code, out.stdout.trim()), (0, "good"), "{}", out.stderr);
    let out = vouch(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    assert_eq!(out.code, 1, "only a revoker may revoke");
    assert!(
        out.stderr.starts_with("vouch: forbidden: "),
        "{}",
        out.stderr
    );
    let out = with(
        &revoker,
        &[
            "cert",
            "revoke",
            &serial,
            "--reason",
            "keyCompromise",
            "--comment",
            "laptop stolen",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "revoked");
    let out = vouch(&["ocsp", "check", pem_arg]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("revoked (keyCompromise, "),
        "{}",
        out.stdout
    );
    let out = vouch(&["ocsp", "check", pem_arg, "--json"]);
    let status = out.json();
    assert_eq!(status["status"], "revoked");
    assert_eq!(status["serial"], serial.as_str());
    // The issuer must be the one that signed the certificate.
    let out = vouch(&["ocsp", "check", pem_arg, "--issuer", root.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("did not sign"), "{}", out.stderr);
    let out = vouch(&["cert", "show", &serial, "--json"]);
    assert_eq!(out.json()["revocation_reason"], "keyCompromise");

    // The CRL, DER and PEM, read by OpenSSL.
    let der = d.join("issuing.crl");
    let out = vouch(&["crl", "get", "--out", der.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("entries"), "1");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains(&serial.to_uppercase()), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    let arl = d.join("root.crl.pem");
    let out = vouch(&[
        "crl",
        "get",
        "--ca",
        "root",
        "--pem",
        "--out",
        arl.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (ok, text) = openssl(&[
        "crl",
        "-in",
        arl.to_str().unwrap(),
        "-noout",
        "-CAfile",
        root.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");

    // The audit log's tail is its last entries, in order.
    let out = with(&auditor, &["audit", "tail", "-n", "4", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tail: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let auditor_token = std::fs::read_to_string(&auditor).unwrap();
    let (_, all) = app
        .get(auditor_token.trim(), "/api/v1/audit?limit=1000")
        .await;
    let all = all["entries"].as_array().unwrap();
    assert_eq!(tail.as_slice(), &all[all.len() - 4..]);
    assert!(
        all.iter()
            .any(|e| e["action"] == "certificate.revoked" && e["target"] == serial.as_str()),
        "the revocation is audited"
    );
    app.stop().await;
}

/// The audit entry that recorded the creation of operator `name`.
async fn creation(app: &TestApp, name: &str) -> Value {
    app.audit_entries()
        .await
        .into_iter()
        .find(|e| e["action"] == "operator.created" && e["details"]["name"] == name)
        .unwrap_or_else(|| panic!("no operator.created for {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_use_the_api_when_given_a_url_and_the_data_directory_otherwise() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin = token_file(d, "admin", &app.admin);
    let admin = admin.to_str().unwrap();
    let data = app.data.root().to_str().unwrap().to_string();
    let (_, admins) = app.get(&app.admin, "/api/v1/operators").await;
    let admin_id = admins["operators"][0]["id"].as_str().unwrap().to_string();
    // On PostgreSQL the data directory does not name the database: the host commands need it.
    let db = app.pg.as_ref().map(|p| p.url());
    let host_db: Vec<&str> = match &db {
        Some(url) => vec!["--database-url", url],
        None => vec![],
    };
    let add = |name: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["operator", "add", "--name", name, "--role", "clerk"];
        args.extend(extra);
        let out = vouch_in(d, &args, env);
        assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
    };

    // --url: over the API, so the admin is the actor.
    add("by-flag", &["--url", &app.base, "--token-file", admin], &[]);
    assert_eq!(creation(&app, "by-flag").await["actor"], admin_id.as_str());
    // VOUCH_URL alone: over the API.
    add(
        "by-env",
        &[],
        &[("VOUCH_URL", &app.base), ("VOUCH_TOKEN_FILE", admin)],
    );
    assert_eq!(creation(&app, "by-env").await["actor"], admin_id.as_str());
    // An explicit --data-dir wins over --url: the host command, no token, no actor.
    let mut host = vec!["--data-dir", data.as_str(), "--url", app.base.as_str()];
    host.extend(&host_db);
    add("by-host", &host, &[]);
    assert_eq!(creation(&app, "by-host").await["actor"], Value::Null);
    // VOUCH_DATA_DIR wins over VOUCH_URL, but --url on the command line wins over VOUCH_DATA_DIR.
    add(
        "by-host-env",
        &host_db,
        &[("VOUCH_URL", &app.base), ("VOUCH_DATA_DIR", &data)],
    );
    assert_eq!(creation(&app, "by-host-env").await["actor"], Value::Null);
    add(
        "by-flag-over-env",
        &["--url", &app.base, "--token-file", admin],
        &[("VOUCH_DATA_DIR", "/nonexistent")],
    );
    assert_eq!(
        creation(&app, "by-flag-over-env").await["actor"],
        admin_id.as_str()
    );

    // list: a table over the API, the original tab-separated lines on the host.
    let out = vouch_in(
        d,
        &["operator", "list", "--json"],
        &[("VOUCH_URL", &app.base), ("VOUCH_TOKEN_FILE", admin)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed = out.json();
    let names: Vec<&str> = listed["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"by-host") && names.contains(&"by-flag"),
        "{names:?}"
    );
    let mut list = vec!["operator", "list", "--data-dir", data.as_str()];
    list.extend(&host_db);
    let out = vouch_in(d, &list, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split('\t').nth(1) == Some("by-env")),
        "{}",
        out.stdout
    );
    list.push("--json");
    let out = vouch_in(d, &list, &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--json works over the API"),
        "{}",
        out.stderr
    );

    // disable: over the API; the operator's token stops working at once.
    let out = vouch_in(
        d,
        &[
            "operator",
            "add",
            "--name",
            "leaver",
            "--role",
            "clerk",
            "--url",
            &app.base,
            "--token-file",
            admin,
        ],
        &[],
    );
    let leaver = token_file(d, "leaver", out.stdout.lines().last().unwrap());
    let (_, ops) = app.get(&app.admin, "/api/v1/operators").await;
    let leaver_id = ops["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "leaver")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = [
        ("VOUCH_URL", app.base.as_str()),
        ("VOUCH_TOKEN_FILE", admin),
    ];
    let out = vouch_in(d, &["operator", "disable", &leaver_id], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("disabled operator {leaver_id}"));
    let out = vouch_in(
        d,
        &["request", "list", "--token-file", leaver.to_str().unwrap()],
        &env,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: unauthorized: "),
        "{}",
        out.stderr
    );
    let out = vouch_in(d, &["operator", "disable", &leaver_id], &env);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: already_disabled: "),
        "{}",
        out.stderr
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_others_can_read_is_refused_before_anything_is_sent() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), "admin", &app.admin);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = app.audit_entries().await.len();
    let out = vouch_in(
        dir.path(),
        &[
            "operator",
            "list",
            "--url",
            &app.base,
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("accessible by group or others (mode 0644)")
            && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&app.admin) && !out.stdout.contains(&app.admin));
    // Nothing reached the server: the only new entry is the helper's own auditor.
    assert_eq!(app.audit_entries().await.len(), before + 1);
    app.stop().await;
}

#[test]
fn connection_refused_and_missing_tokens_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = vouch_in(
        dir.path(),
        &["request", "list"],
        &[("VOUCH_URL", &url), ("VOUCH_TOKEN", "vouch_secret_value")],
    );
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        format!("vouch: no Vouch server at {url}: connection refused; is `vouch serve` running?")
    );
    assert!(!out.stderr.contains("vouch_secret_value"));
    let out = vouch_in(dir.path(), &["request", "list", "--url", &url], &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no token"), "{}", out.stderr);
    let out = vouch_in(
        dir.path(),
        &["crl", "get", "--ca", "root", "--delta", "--out", "x.crl"],
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--delta goes with --ca issuing"),
        "{}",
        out.stderr
    );
    let out = vouch_in(
        dir.path(),
        &["crl", "get", "--ca", "aa", "--delta", "--out", "x.crl"],
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--delta goes with --ca issuing"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_api_code_and_message() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("VOUCH_URL", app.base.as_str()),
        ("VOUCH_TOKEN", app.admin.as_str()),
    ];
    let out = vouch_in(
        dir.path(),
        &["request", "show", "req_00000000000000000000000000000000"],
        &env,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: not_found: "),
        "{}",
        out.stderr
    );
    let out = vouch_in(dir.path(), &["request", "list", "--status", "lost"], &env);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: invalid_field: "),
        "{}",
        out.stderr
    );
    // A bad identifier spec is caught before anything is sent.
    let out = vouch_in(
        dir.path(),
        &[
            "subscriber",
            "add",
            "--kind",
            "person",
            "--name",
            "A",
            "--id",
            "passport:123",
        ],
        &env,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("TYPE:NUMBER:ISSUER:VALID_UNTIL"),
        "{}",
        out.stderr
    );
    app.stop().await;
}

#[test]
fn talks_https_to_a_server_with_a_private_ca_given_cacert() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_tls(dir.path());
    let served = common::serve_process(
        &dir.path().join("d"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let admin = served.stdout.lines().last().unwrap().to_string();
    let url = format!("https://{}", served.addr);
    let env = [("VOUCH_URL", url.as_str()), ("VOUCH_TOKEN", admin.as_str())];
    let out = vouch_in(dir.path(), &["operator", "list"], &env);
    assert_eq!(out.code, 2, "an unknown CA is refused: {}", out.stdout);
    assert!(out.stderr.contains("--cacert"), "{}", out.stderr);
    let out = vouch_in(
        dir.path(),
        &["operator", "list", "--cacert", cert.to_str().unwrap()],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.contains(" admin ")),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_reject_and_more_evidence_from_the_client() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = app.base.as_str();
    let as_ = |token: &str, args: &[&str]| {
        vouch_in(d, args, &[("VOUCH_URL", url), ("VOUCH_TOKEN", token)])
    };

    // Hold, seen by OCSP as revoked (certificateHold), then release: good again.
    let serial = app.issue(&clerk, &approver, &common::p256_csr()).await;
    let pem = d.join("held.pem");
    let out = as_(
        &clerk,
        &["cert", "get", &serial, "--out", pem.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = as_(
        &revoker,
        &["cert", "hold", &serial, "--comment", "under review"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "on-hold");
    let out = as_(&clerk, &["ocsp", "check", pem.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("revoked (certificateHold, "),
        "{}",
        out.stdout
    );
    let out = as_(&revoker, &["cert", "release", &serial]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "valid");
    let out = as_(&clerk, &["ocsp", "check", pem.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.trim()), (0, "good"), "{}", out.stderr);
    let out = as_(&revoker, &["cert", "release", &serial]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: invalid_status: "),
        "{}",
        out.stderr
    );

    // A rejection is final, with its reason.
    let req = app.pending(&clerk).await;
    let out = as_(
        &approver,
        &[
            "request",
            "reject",
            &req,
            "--reason",
            "photo does not match",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "rejected");
    assert_eq!(out.field("reject_reason"), "photo does not match");
    let out = as_(&approver, &["request", "approve", &req]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: not_pending: "),
        "{}",
        out.stderr
    );

    // One more identity document, with an escaped colon in its number.
    let sub = app.person(&clerk, "Wang Fang", "2099-12-31").await;
    let out = as_(
        &clerk,
        &[
            "subscriber",
            "add-id",
            &sub,
            "--id",
            "passport:E\\:1234567:Exit and Entry Administration:2040-06-30",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = out.json()["identifiers"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1]["number"], "E:1234567");
    assert_eq!(ids[1]["issuer"], "Exit and Entry Administration");
    app.stop().await;
}

/// Run `vouch` in `cwd` with only the given client variables set, without blocking the runtime
/// that serves the test app.
async fn vouch_async(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).current_dir(cwd).env("VOUCH_LOG", "warn");
    for v in CLIENT_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().await.expect("run vouch");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `vouch` with VOUCH_URL set to the app and the given operator's token.
async fn as_op(app: &TestApp, cwd: &Path, token: &str, args: &[&str]) -> Out {
    vouch_async(
        cwd,
        args,
        &[("VOUCH_URL", app.base.as_str()), ("VOUCH_TOKEN", token)],
    )
    .await
}

/// What OpenSSL reads in an AC file: its ASN.1 dump (the role attribute, the validity as
/// GeneralizedTime, the targeting extension) and the role and application URIs in the DER it
/// wrote out (asn1parse does not print the content of the IMPLICIT [6] URIs).
fn asn1parse(file: &Path, der: bool) -> (String, Vec<String>) {
    let out = file.with_extension("asn1.der");
    let mut args = vec![
        "asn1parse",
        "-i",
        "-in",
        file.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
    ];
    if der {
        args.extend(["-inform", "DER"]);
    }
    let (ok, text) = openssl(&args);
    assert!(ok, "openssl asn1parse: {text}");
    assert!(
        text.contains(":role") && text.contains(":X509v3 AC Targeting"),
        "{text}"
    );
    assert_eq!(text.matches("GENERALIZEDTIME").count(), 2, "{text}");
    let bytes = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    let uris = bytes
        .match_indices("urn:vouch:")
        .map(|(i, _)| {
            bytes[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || matches!(c, ':' | '-'))
                .collect()
        })
        .collect();
    (text, uris)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_certificates_granted_shown_listed_and_revoked_with_the_client() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let aa = app.operator("erin", &["aa"]).await;
    let revoker = app.operator("carol", &["revoker"]).await;
    let auditor = app.operator("dave", &["auditor"]).await;
    let holder = app.issue(&clerk, &approver, &common::p256_csr()).await;
    let other = app.issue(&clerk, &approver, &common::p256_csr()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Granted at once: the AC's fields as `key: value` lines, its PEM in the --out file, which
    // OpenSSL reads: the role and application URIs, the validity as GeneralizedTime.
    let pem = d.join("li-wei-approver.ac.pem");
    let out = as_op(
        &app,
        d,
        &aa,
        &[
            "attribute",
            "grant",
            "--holder",
            &holder,
            "--role",
            "approver",
            "--target",
            "permits",
            "--group",
            "planning-bureau",
            "--not-after",
            "+30d",
            "--out",
            pem.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let serial = out.field("serial");
    assert_eq!(out.field("status"), "valid");
    assert_eq!(out.field("holder_serial"), holder);
    assert_eq!(out.field("roles"), "approver");
    assert_eq!(out.field("groups"), "planning-bureau");
    assert_eq!(out.field("targets"), "permits");
    assert_eq!(out.field("role_uris"), "urn:vouch:role:approver");
    assert_eq!(out.field("target_uris"), "urn:vouch:app:permits");
    assert_eq!(out.field("profile"), "application-role");
    assert_eq!(out.field("revocation"), "crl");
    assert_eq!(out.field("file"), pem.to_str().unwrap());
    // +30d is 30 days from now, to the second, give or take the test's own run time.
    let not_after = time::OffsetDateTime::parse(
        &out.field("not_after"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expected = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    assert!(
        (expected - not_after).abs() < time::Duration::minutes(2),
        "{not_after}"
    );
    let text = std::fs::read_to_string(&pem).unwrap();
    assert!(
        text.starts_with("-----BEGIN ATTRIBUTE CERTIFICATE-----\n"),
        "{text}"
    );
    let (dump, uris) = asn1parse(&pem, false);
    assert_eq!(uris, ["urn:vouch:role:approver", "urn:vouch:app:permits"]);
    assert!(dump.contains(":planning-bureau"), "{dump}");

    // show: the same AC (an auditor may read it); --out writes it again, DER with --der, and an
    // existing file is kept unless --force.
    let out = as_op(&app, d, &auditor, &["attribute", "show", &serial, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown = out.json();
    assert_eq!(shown["pem"].as_str().unwrap(), text);
    let copy = d.join("copy.ac.pem");
    let copy_arg = copy.to_str().unwrap();
    let out = as_op(
        &app,
        d,
        &auditor,
        &["attribute", "show", &serial, "--out", copy_arg],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "valid");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), text);
    let out = as_op(
        &app,
        d,
        &auditor,
        &["attribute", "show", &serial, "--out", copy_arg, "--der"],
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), text);
    let out = as_op(
        &app,
        d,
        &auditor,
        &[
            "attribute",
            "show",
            &serial,
            "--out",
            copy_arg,
            "--der",
            "--force",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let der = std::fs::read(&copy).unwrap();
    assert_eq!(der[0], 0x30, "DER: a SEQUENCE");
    let (_, uris) = asn1parse(&copy, true);
    assert_eq!(uris, ["urn:vouch:role:approver", "urn:vouch:app:permits"]);
    // --out - writes the PEM alone to stdout.
    let out = as_op(&app, d, &aa, &["attribute", "show", &serial, "--out", "-"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, text.as_str()));

    // A second AC, for another holder, a reviewer in office automation.
    let out = as_op(
        &app,
        d,
        &aa,
        &[
            "attribute",
            "grant",
            "--holder",
            &other,
            "--role",
            "reviewer",
            "--role",
            "signer",
            "--target",
            "office-automation",
            "--not-after",
            "+12h",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let second = out.json();
    assert_eq!(second["roles"], serde_json::json!(["reviewer", "signer"]));
    let second = second["serial"].as_str().unwrap().to_string();

    // list by holder and by role: each finds its own AC.
    let out = as_op(
        &app,
        d,
        &revoker,
        &["attribute", "list", "--holder", &holder, "--json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed = out.json()["attribute_certificates"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["serial"], serial.as_str());
    let out = as_op(&app, d, &aa, &["attribute", "list", "--role", "reviewer"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert!(
        rows[0].starts_with("SERIAL") && rows[0].contains("HOLDER_SERIAL"),
        "{}",
        out.stdout
    );
    assert!(
        rows[1].starts_with(&second) && rows[1].contains("reviewer, signer"),
        "{}",
        out.stdout
    );
    let out = as_op(
        &app,
        d,
        &aa,
        &[
            "attribute",
            "list",
            "--role",
            "approver",
            "--target",
            "permits",
        ],
    )
    .await;
    assert!(
        out.stdout.contains(&serial) && !out.stdout.contains(&second),
        "{}",
        out.stdout
    );

    // Revoked on its own by a revoker (an aa operator may not); the AC CRL lists it.
    let revoke = [
        "attribute",
        "revoke",
        &serial,
        "--reason",
        "privilegeWithdrawn",
    ];
    let out = as_op(&app, d, &aa, &revoke).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: forbidden: "),
        "{}",
        out.stderr
    );
    let mut with_comment = revoke.to_vec();
    with_comment.extend(["--comment", "moved to another bureau"]);
    let out = as_op(&app, d, &revoker, &with_comment).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "revoked");
    assert_eq!(out.field("revocation_reason"), "privilegeWithdrawn");
    let out = as_op(&app, d, &revoker, &revoke).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: already_revoked: "),
        "{}",
        out.stderr
    );
    let out = as_op(&app, d, &auditor, &["attribute", "show", &serial]).await;
    assert_eq!(out.field("status"), "revoked");
    let crl = d.join("aa.crl");
    let out = vouch_async(
        d,
        &[
            "crl",
            "get",
            "--ca",
            "aa",
            "--out",
            crl.to_str().unwrap(),
            "--url",
            &app.base,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("crl"), "aa.crl");
    assert_eq!(out.field("entries"), "1");
    let (ok, listed) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{listed}");
    assert!(listed.contains(&serial.to_uppercase()), "{listed}");

    // The AA certificate, public; with --chain the root follows, and OpenSSL verifies the AC
    // CRL with them.
    let aa_pem = d.join("aa-chain.pem");
    let out = vouch_async(
        d,
        &[
            "attribute",
            "aa-cert",
            "--chain",
            "--out",
            aa_pem.to_str().unwrap(),
            "--url",
            &app.base,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("certificates"), "2");
    let (ok, verified) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-CAfile",
        aa_pem.to_str().unwrap(),
    ]);
    assert!(ok && verified.contains("verify OK"), "{verified}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_eyes_grant_waits_for_a_second_aa_operator() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let erin = app.operator("erin", &["aa"]).await;
    let frank = app.operator("frank", &["aa"]).await;
    let auditor = app.operator("dave", &["auditor"]).await;
    let holder = app.issue(&clerk, &approver, &common::p256_csr()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem = d.join("pending.ac.pem");
    let grant = [
        "attribute",
        "grant",
        "--holder",
        &holder,
        "--role",
        "signer",
        "--target",
        "permits",
        "--not-after",
        "+7d",
        "--profile",
        "application-role-approved",
    ];

    // 202: the grant's id and status; --out is not written, and the note says why.
    let mut with_out = grant.to_vec();
    with_out.extend(["--out", pem.to_str().unwrap()]);
    let out = as_op(&app, d, &erin, &with_out).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = out.field("id");
    assert!(id.starts_with("grant_"), "{id}");
    assert_eq!(out.field("status"), "pending");
    assert_eq!(out.field("approvals"), "0 of 1");
    assert!(
        out.stderr.contains("the grant awaits approval"),
        "{}",
        out.stderr
    );
    assert!(!pem.exists());
    let out = as_op(&app, d, &auditor, &["attribute", "grants"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains(" pending ") && l.contains("0 of 1")),
        "{}",
        out.stdout
    );

    // The granter's own approval is refused: exit 1 with the server's code and message.
    let out = as_op(&app, d, &erin, &["attribute", "approve", &id]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "vouch: self_approval: the granter cannot approve their own grant; another aa operator must"
    );
    // A second aa operator's approval issues the AC.
    let out = as_op(&app, d, &frank, &["attribute", "approve", &id]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "granted");
    assert!(
        out.field("approvals").starts_with("1 of 1 ("),
        "{}",
        out.stdout
    );
    let serial = out.field("serial");
    let out = as_op(
        &app,
        d,
        &auditor,
        &["attribute", "grant-status", &id, "--json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["serial"], serial.as_str());
    let out = as_op(
        &app,
        d,
        &erin,
        &["attribute", "show", &serial, "--out", pem.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("grant_id"), id);
    assert_eq!(out.field("profile"), "application-role-approved");
    let (_, uris) = asn1parse(&pem, false);
    assert_eq!(uris, ["urn:vouch:role:signer", "urn:vouch:app:permits"]);
    let out = as_op(&app, d, &frank, &["attribute", "approve", &id]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: not_pending: "),
        "{}",
        out.stderr
    );

    // Another grant, rejected with a reason: final.
    let out = as_op(&app, d, &erin, &grant).await;
    let id = out.field("id");
    let out = as_op(
        &app,
        d,
        &frank,
        &["attribute", "reject", &id, "--reason", "not in the bureau"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.field("status"), "rejected");
    assert_eq!(out.field("reason"), "not in the bureau");
    let out = as_op(
        &app,
        d,
        &auditor,
        &["attribute", "grants", "--status", "all", "--json"],
    )
    .await;
    let all = out.json()["grants"].as_array().unwrap().clone();
    // (Oldest first, but both were made within the same second.)
    let mut states: Vec<&str> = all.iter().map(|g| g["status"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, ["granted", "rejected"], "{all:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attribute_input_is_refused_by_the_client_or_with_the_servers_message() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let aa = app.operator("erin", &["aa"]).await;
    let holder = app.issue(&clerk, &approver, &common::p256_csr()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = app.audit_entries().await.len();
    fn grant<'a>(holder: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "attribute",
            "grant",
            "--holder",
            holder,
            "--target",
            "permits",
        ];
        args.extend(more);
        args
    }

    // Caught by the command line, before anything is sent (exit 2): no --role, a relative
    // time in a unit it does not know, a time that is not RFC 3339, a list without a filter,
    // --der without --out, an --out file that exists.
    let out = as_op(&app, d, &aa, &grant(&holder, &["--not-after", "+30d"])).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("required arguments were not provided")
            && out.stderr.contains("--role"),
        "{}",
        out.stderr
    );
    let out = as_op(
        &app,
        d,
        &aa,
        &grant(&holder, &["--role", "approver", "--not-after", "+1w"]),
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("+30d, +12h"), "{}", out.stderr);
    let out = as_op(
        &app,
        d,
        &aa,
        &grant(
            &holder,
            &["--role", "approver", "--not-after", "next month"],
        ),
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not an RFC 3339 time"),
        "{}",
        out.stderr
    );
    let out = as_op(&app, d, &aa, &["attribute", "list"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--holder"), "{}", out.stderr);
    let out = as_op(&app, d, &aa, &["attribute", "show", "01", "--der"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--out"), "{}", out.stderr);
    // An --out file that exists is refused before the AC is issued, not after.
    let taken = d.join("taken.ac.pem");
    std::fs::write(&taken, "mine").unwrap();
    let out = as_op(
        &app,
        d,
        &aa,
        &grant(
            &holder,
            &[
                "--role",
                "approver",
                "--not-after",
                "+30d",
                "--out",
                taken.to_str().unwrap(),
            ],
        ),
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
    // Only the helper's own auditor reached the server.
    assert_eq!(app.audit_entries().await.len(), before + 1);

    // Refused by the server (exit 1, its code and message): an unknown holder, a role the
    // profile does not allow, a validity that ended, an unknown AC, an unknown grant status.
    let valid = ["--role", "approver", "--not-after", "+30d"];
    let out = as_op(&app, d, &aa, &grant("0badc0de", &valid)).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "vouch: not_found: holder certificate not found"
    );
    let out = as_op(
        &app,
        d,
        &aa,
        &grant(&holder, &["--role", "mayor", "--not-after", "+30d"]),
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: role_not_allowed: ") && out.stderr.contains("\"mayor\""),
        "{}",
        out.stderr
    );
    let out = as_op(
        &app,
        d,
        &aa,
        &grant(
            &holder,
            &["--role", "approver", "--not-after", "2020-01-01T00:00:00Z"],
        ),
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "vouch: invalid_field: not_after must be in the future and after not_before"
    );
    let out = as_op(
        &app,
        d,
        &aa,
        &["attribute", "show", "00000000000000000000000000000001"],
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "vouch: not_found: attribute certificate not found"
    );
    let out = as_op(&app, d, &aa, &["attribute", "grants", "--status", "lost"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("vouch: invalid_field: "),
        "{}",
        out.stderr
    );
    app.stop().await;
}
