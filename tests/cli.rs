//! The `vouch` binary as an operator uses it: serve, init, operator add, audit verify, TLS.

mod common;

use common::{serve_process, Served, BIN};
use std::path::Path;
use std::process::Command;

fn serve(data: &Path, extra: &[&str]) -> Served {
    serve_process(data, extra, &[])
}

fn run(args: &[&str], data: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run vouch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
    )
}

#[test]
fn serve_prints_the_bootstrap_token_once_and_operator_add_prints_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let first = serve(&data, &[]);
    let admin = first.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        admin.starts_with("vouch_"),
        "bootstrap token on stdout: {:?}",
        first.stdout
    );
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {admin}"),
        &format!("http://{}/api/v1/operators", first.addr),
    ]);
    assert_eq!(code, 0);
    assert!(body.contains("\"admin\""), "{body}");

    // Operator creation from the CLI while the server runs; the token is alone on the last line.
    let (code, out, _) = run(
        &[
            "operator", "add", "--name", "alice", "--role", "clerk", "--role", "approver",
        ],
        &data,
    );
    assert_eq!(code, 0, "{out}");
    let token = out.lines().last().unwrap().to_string();
    assert!(token.starts_with("vouch_") && !token.contains(' '));
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://{}/api/v1/requests", first.addr),
    ]);
    assert!(body.contains("\"requests\""), "{body}");
    // The token is not stored anywhere in the data directory.
    let db = std::fs::read(data.join("vouch.db")).unwrap();
    let wal = std::fs::read(data.join("vouch.db-wal")).unwrap_or_default();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes())
            && !wal.windows(token.len()).any(|w| w == token.as_bytes())
    );
    drop(first);

    let second = serve(&data, &[]);
    assert!(
        !second.stdout.contains("vouch_"),
        "no token on a later start: {:?}",
        second.stdout
    );
    // A second server on the same data directory is refused while the first runs.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is using"));
    let (code, out, err) = run(
        &["operator", "add", "--name", "bob", "--role", "wizard"],
        &data,
    );
    assert_ne!(code, 0);
    assert!(err.contains("unknown role"), "{out}{err}");
}

#[test]
fn plain_http_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-http"));
    assert!(
        !dir.path().join("d").exists(),
        "nothing is created when the configuration is refused"
    );
}

#[test]
fn serves_https_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_tls(dir.path());
    let served = serve(
        &dir.path().join("d"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (code, body) = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://{}/healthz", served.addr),
    ]);
    assert_eq!((code, body.as_str()), (0, "ok"));
    let (code, _) = curl(&[&format!("http://{}/healthz", served.addr)]);
    assert_ne!(code, 0, "plain HTTP is not served on the TLS port");
}

async fn tamper(db: &Path, sql: &str) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    // An attacker with file access can drop the append-only triggers; the chain still tells.
    for stmt in [
        "DROP TRIGGER IF EXISTS audit_log_no_update",
        "DROP TRIGGER IF EXISTS audit_log_no_delete",
        sql,
    ] {
        sqlx::query(stmt).execute(&mut conn).await.unwrap();
    }
}

fn populated_data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (code, _, err) = run(&["init"], &data);
    assert_eq!(code, 0, "{err}");
    for name in ["a1", "a2", "a3", "a4"] {
        let (code, _, err) = run(
            &["operator", "add", "--name", name, "--role", "clerk"],
            &data,
        );
        assert_eq!(code, 0, "{err}");
    }
    (dir, data)
}

#[tokio::test]
async fn audit_verify_names_an_edited_entry() {
    let (_dir, data) = populated_data_dir();
    let (code, out, _) = run(&["audit", "verify"], &data);
    assert_eq!(code, 0, "{out}");
    // ca.bound, ca.aa_issued, the bootstrap admin and four operators.
    assert!(out.contains("intact: 7 entries"), "{out}");
    tamper(
        &data.join("vouch.db"),
        "UPDATE audit_log SET details = '{\"name\":\"mallory\"}' WHERE seq = 3",
    )
    .await;
    let (code, out, _) = run(&["audit", "verify"], &data);
    assert_eq!(code, 1);
    assert!(out.contains("entry 3"), "{out}");
}

#[tokio::test]
async fn audit_verify_names_a_deleted_entry() {
    let (_dir, data) = populated_data_dir();
    tamper(
        &data.join("vouch.db"),
        "DELETE FROM audit_log WHERE seq = 2",
    )
    .await;
    let (code, out, _) = run(&["audit", "verify"], &data);
    assert_eq!(code, 1);
    assert!(out.contains("entry 2 is missing"), "{out}");
}

#[tokio::test]
async fn audit_verify_notices_entries_cut_off_the_end() {
    let (_dir, data) = populated_data_dir();
    tamper(
        &data.join("vouch.db"),
        "DELETE FROM audit_log WHERE seq = 7",
    )
    .await;
    let (code, out, _) = run(&["audit", "verify"], &data);
    assert_eq!(code, 1);
    assert!(out.contains("entries 7 to 7 are missing"), "{out}");
}

#[tokio::test]
async fn the_application_cannot_edit_audit_rows() {
    use sqlx::ConnectOptions;
    let (_dir, data) = populated_data_dir();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("vouch.db"))
        .connect()
        .await
        .unwrap();
    let err = sqlx::query("UPDATE audit_log SET action = 'x' WHERE seq = 1")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("DELETE FROM audit_log WHERE seq = 1")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    // `vouch … | head`: the reader closes the pipe before the command has printed.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (code, _, err) = run(&["init"], &data);
    assert_eq!(code, 0, "{err}");
    let mut child = Command::new(BIN)
        .args([
            "operator",
            "add",
            "--name",
            "clerk1",
            "--role",
            "clerk",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vouch");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
