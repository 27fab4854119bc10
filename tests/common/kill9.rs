//! `kill -9` of a real `vouch serve` between a remote CA's answer and the database write, for any
//! remote CA: a debug build stops for good before the write when `VOUCH_TEST_FAULT=
//! pause-before-record`, the test kills it by PID once the answer is in the issuance journal, and a
//! restart must record that certificate from the journal without asking the CA again. On SQLite,
//! or on a fresh PostgreSQL database when `VOUCH_TEST_POSTGRES` is set.

use super::cfssl::write_private;
use super::database::count;
use super::served::{call, person_request};
use super::{serve_process, BIN};
use reqwest::StatusCode;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use vouch::store::Database;

/// The files in the issuance journal of the data directory `data`.
pub fn journal_entries(data: &Path) -> Vec<String> {
    match std::fs::read_dir(data.join("issuance-journal")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".pem"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// In a data directory under `dir` with `upstream_toml` (whose CA `ca_id` signs person-signing),
/// a clerk submits a request and an approver approves it; the CA signs, the server is killed
/// (SIGKILL) before its database write, and a restart records the certificate from the journal.
/// `issued_at_ca` counts the certificates the CA issued; it must be 1 before the kill and after
/// the restart, as must the requests and the certificates recorded. The kill waits for the
/// journal entry and for `answered` (for CMP: the CA has had the certConf), so that the server
/// is stopped at the fault point, after the CA's exchange. Returns the serial recorded.
pub async fn kill_9_between_the_answer_and_the_write(
    dir: &Path,
    upstream_toml: &str,
    ca_id: &str,
    issued_at_ca: &dyn Fn() -> usize,
    answered: &dyn Fn() -> bool,
) -> String {
    let data = dir.join("data");
    let pg = match super::postgres_server() {
        Some(server) => Some(super::PgDatabase::create(&server).await),
        None => None,
    };
    let db_env: Vec<(&str, String)> = pg
        .iter()
        .map(|db| ("VOUCH_DATABASE_URL", db.url()))
        .collect();
    let mut init = Command::new(BIN);
    init.args(["init", "--data-dir"]).arg(&data);
    for (k, v) in &db_env {
        init.env(k, v);
    }
    let out = init.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let admin = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    write_private(&data.join("upstream.toml"), upstream_toml);
    let mut env: Vec<(&str, &str)> = db_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("VOUCH_TEST_FAULT", "pause-before-record"));
    let mut served = serve_process(&data, &[], &env);
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let (_clerk, approver, id) = person_request(&client, &base, &admin).await;
    // Approve: the CA signs, the answer is kept, and the server stops before its database write.
    let approving = {
        let (client, base, approver, id) =
            (client.clone(), base.clone(), approver.clone(), id.clone());
        tokio::spawn(async move {
            let path = format!("/api/v1/requests/{id}/approve");
            let _ = client
                .post(format!("{base}{path}"))
                .bearer_auth(approver)
                .send()
                .await;
        })
    };
    let start = Instant::now();
    while journal_entries(&data).is_empty() || !answered() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the CA's answer was never kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(issued_at_ca(), 1);
    // kill -9 (SIGKILL) by PID.
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    approving.abort();
    let database = match &pg {
        Some(db) => Database::Postgres(db.url()),
        None => Database::Sqlite(data.join("vouch.db")),
    };
    assert_eq!(count(&database, "certificates").await, 0);
    let _ = std::fs::remove_file(data.join("serve.lock"));
    // Restart without the fault: the start-up reconciliation records the kept certificate.
    let env: Vec<(&str, &str)> = db_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let served = serve_process(&data, &[], &env);
    let base = format!("http://{}", served.addr);
    let path = format!("/api/v1/requests/{id}");
    let (_, req) = call(&client, &base, &approver, &path, None).await;
    assert_eq!(req["status"], "issued", "{req}");
    let serial = req["serial"].as_str().unwrap().to_string();
    let path = format!("/api/v1/certificates/{serial}");
    let (status, cert) = call(&client, &base, &approver, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(cert["ca"], ca_id);
    assert!(journal_entries(&data).is_empty());
    assert_eq!(count(&database, "requests").await, 1);
    assert_eq!(issued_at_ca(), 1, "the CA was not asked again");
    assert_eq!(count(&database, "certificates").await, 1);
    drop(served);
    if let Some(db) = pg {
        db.drop_database().await;
    }
    serial
}
