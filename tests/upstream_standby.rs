//! A remote CA that is down when `vouch serve` starts. Reached once before, it no longer stops the
//! service: its chain is kept in the data directory, `/readyz` names it, requests for its profiles
//! are approved and wait with the reason shown, and once the CA answers again they are issued, one
//! certificate each. Never reached, it still stops the start, saying why. Real `vouch serve`
//! processes and a Bouncy Castle CMP CA (tests/cmp/BcCmpCa.java) that is stopped and started
//! again on its port; on SQLite and PostgreSQL.

mod common;

use common::bc_cmp::BcCmpCa;
use common::cfssl::write_private;
use common::cmp::{signature_keys, upstream_toml, Pki};
use common::{serve_process, BIN};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// An HTTP call to the server at `base` (see `common::served::call`).
async fn call(base: &str, token: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    common::served::call(&reqwest::Client::new(), base, token, path, body).await
}

/// `vouch init` on `data` (on PostgreSQL when the run has one); returns the admin token and the
/// environment every command on it needs.
async fn init(
    data: &Path,
) -> (
    String,
    Vec<(&'static str, String)>,
    Option<common::PgDatabase>,
) {
    let pg = match common::postgres_server() {
        Some(server) => Some(common::PgDatabase::create(&server).await),
        None => None,
    };
    let env: Vec<(&str, String)> = pg
        .iter()
        .map(|db| ("VOUCH_DATABASE_URL", db.url()))
        .collect();
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(data)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let admin = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    (admin, env, pg)
}

#[tokio::test]
async fn a_ca_down_at_start_is_waited_for_and_then_issues() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let ca = BcCmpCa::start(&pki);
    let port = ca.port();
    let data = dir.path().join("data");
    let (admin, env, _pg) = init(&data).await;
    let keys = format!("{}\nrequest = \"ir\"", signature_keys(&pki));
    write_private(
        &data.join("upstream.toml"),
        &upstream_toml(&pki, &ca.url, &keys),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // First start: the CA answers and its chain is kept.
    let served = serve_process(&data, &[], &env);
    let kept = data.join("upstream-chains/city-cmp.pem");
    let chain = std::fs::read_to_string(&kept).expect("the CA chain is kept");
    let ca_pem = std::fs::read_to_string(pki.path("ca.pem")).unwrap();
    let x = |pem: &str| openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(x(&chain).to_der().unwrap(), x(&ca_pem).to_der().unwrap());
    drop(served);
    drop(ca);

    // Second start with the CA down: the service starts, and says which CA it waits for.
    let served = serve_process(
        &data,
        &[
            "--retry-interval-secs",
            "1",
            "--retry-min-age-secs",
            "0",
            "--retry-backoff-secs",
            "1",
            "--retry-backoff-max-secs",
            "2",
        ],
        &env,
    );
    let base = format!("http://{}", served.addr);
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        ready["upstream_cas_unreached"][0]["ca"], "city-cmp",
        "{ready}"
    );
    assert!(
        ready["warnings"].to_string().contains("city-cmp"),
        "{ready}"
    );

    let client = reqwest::Client::new();
    let (_clerk, approver, id) = common::served::person_request(&client, &base, &admin).await;
    let _ = call(
        &base,
        &approver,
        &format!("/api/v1/requests/{id}/approve"),
        None,
    )
    .await;
    let (_, req) = call(&base, &approver, &format!("/api/v1/requests/{id}"), None).await;
    assert_eq!(req["status"], "approved", "{req}");
    assert!(
        req["issuance"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("city-cmp")),
        "the request says what it waits for: {req}"
    );

    // The CA comes back on its port: the waiting request is issued, once.
    let ca = BcCmpCa::start_on(&pki, port);
    let start = Instant::now();
    let req = loop {
        let (_, req) = call(&base, &approver, &format!("/api/v1/requests/{id}"), None).await;
        if req["status"] == "issued" {
            break req;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not issued after the CA came back: {req}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(ca.issued(), [req["serial"].as_str().unwrap()]);
    let ready: Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready.get("upstream_cas_unreached").is_none(), "{ready}");
    drop(served);
}

#[tokio::test]
async fn a_ca_never_reached_stops_the_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let data = dir.path().join("data");
    let (_, env, _pg) = init(&data).await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let keys = format!("{}\nrequest = \"ir\"", signature_keys(&pki));
    let url = format!("http://127.0.0.1:{port}/pkix");
    write_private(
        &data.join("upstream.toml"),
        &upstream_toml(&pki, &url, &keys),
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the CA city-cmp cannot be used"), "{err}");
}
