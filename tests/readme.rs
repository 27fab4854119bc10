//! The README's walkthrough is a test: its bash block runs as written, against the built binary on a
//! free port, and must end with a verified certificate and an intact audit log.

use std::process::Command;

fn walkthrough() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```bash\n").expect("README has a bash block") + "```bash\n".len();
    let len = readme[start..].find("```").expect("bash block ends");
    readme[start..start + len].to_string()
}

#[test]
fn readme_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("bash")
        .arg("-c")
        .arg(walkthrough())
        .current_dir(dir.path())
        .env("VOUCH", env!("CARGO_BIN_EXE_vouch"))
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
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
