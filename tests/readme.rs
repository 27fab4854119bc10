//! The README's walkthrough is a test: its bash block runs as written, against the built binary on a
//! free port, and must end with a verified certificate and an intact audit log.

mod common;

use std::process::Command;

fn walkthrough() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```bash\n").expect("README has a bash block") + "```bash\n".len();
    let len = readme[start..].find("```").expect("bash block ends");
    readme[start..start + len].to_string()
}

/// On SQLite by default; with `VOUCH_TEST_POSTGRES` set, the same walkthrough runs with
/// `VOUCH_DATABASE_URL` pointing at a fresh PostgreSQL database (every `vouch` command in it honours
/// the variable).
#[tokio::test]
async fn readme_walkthrough_runs() {
    let pg = match common::postgres_server() {
        Some(server) => Some(common::PgDatabase::create(&server).await),
        None => None,
    };
    let url = pg.as_ref().map(|db| db.url()).unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("bash");
    if !url.is_empty() {
        cmd.env("VOUCH_DATABASE_URL", &url);
    }
    let out = cmd
        .arg("-c")
        .arg(walkthrough())
        .current_dir(dir.path())
        .env("VOUCH", env!("CARGO_BIN_EXE_vouch"))
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    if let Some(db) = &pg {
        db.drop_database().await;
        assert!(
            !dir.path().join("walkthrough-data/vouch.db").exists(),
            "the walkthrough used PostgreSQL, not a SQLite file"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walkthrough failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("\"error\":\"self_approval\""), "{stdout}");
    assert!(stdout.contains("li-wei.pem: OK"), "{stdout}");
    assert!(stdout.contains("subject=CN = Li Wei"), "{stdout}");
    assert!(stdout.contains("email:li.wei@example.org"), "{stdout}");
    assert!(stdout.contains("\"status\":\"revoked\""), "{stdout}");
    let combined = format!("{stdout}{stderr}");
    assert!(combined.contains("certificate revoked"), "{combined}");
    assert!(
        stdout.contains("li-wei.pem: revoked") && stdout.contains("Reason: keyCompromise"),
        "{stdout}"
    );
    assert!(stdout.contains("audit log intact"), "{stdout}");
}
