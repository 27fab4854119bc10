//! The console in a real browser: Debian's headless Chromium, driven by Node's playwright-core
//! (both installed by scripts/test.sh; playwright-core into ./.e2e), runs tests/console/e2e.mjs in
//! English and in Chinese against a running server: a clerk registers a subscriber (whose name is
//! a script, shown as text) and uploads a CSR; an approver enrols TOTP and approves; a copied
//! cookie dies at logout; a wrong code and a form without its CSRF token are refused; an `aa`
//! operator grants the holder a role and cannot approve it, a second one approves and the AC page
//! shows it; a revoker revokes; an auditor sees the chain intact. Here the certificate it downloaded passes `openssl
//! verify` and `openssl ocsp` says revoked. Screenshots of the pages go to
//! target/console-screenshots (docs/screenshots keeps a copy).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium_in_english_and_chinese() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join(".e2e");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && e2e.join("node_modules/playwright-core").exists(),
        "needs /usr/bin/chromium and playwright-core in ./.e2e: scripts/test.sh installs both"
    );
    // Node resolves playwright-core from the script's directory.
    std::fs::copy(root.join("tests/console/e2e.mjs"), e2e.join("e2e.mjs")).unwrap();
    let shots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn().await;
    let files = tempfile::tempdir().unwrap();
    let (ca_root, issuing) = app.save_ca_certs(files.path()).await;
    for (suffix, lang) in [("1", "en"), ("2", "zh-CN")] {
        for (role, name) in
            ["clerk", "approver", "revoker", "auditor", "aa"].map(|r| (r, format!("{r}{suffix}")))
        {
            let (status, body) = app
                .post(
                    &app.admin,
                    "/api/v1/operators",
                    json!({"name": name, "roles": [role], "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        // A second attribute-authority operator approves the first one's grant.
        let (status, body) = app
            .post(
                &app.admin,
                "/api/v1/operators",
                json!({"name": format!("aasecond{suffix}"), "roles": ["aa"], "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let csr = files.path().join(format!("{lang}.csr"));
        std::fs::write(&csr, p256_csr()).unwrap();
        let out = files.path().join(format!("{lang}.json"));
        let cfg = files.path().join(format!("{lang}-cfg.json"));
        std::fs::write(
            &cfg,
            json!({"base": app.url(""), "password": PASSWORD, "csr_file": csr, "lang": lang,
                   "shots": shots, "suffix": suffix, "out": out})
            .to_string(),
        )
        .unwrap();
        let node = tokio::task::spawn_blocking(move || run_node(&root.join(".e2e"), &cfg))
            .await
            .unwrap();
        assert!(
            node.status.success(),
            "{lang}: {}\n{}",
            String::from_utf8_lossy(&node.stdout),
            String::from_utf8_lossy(&node.stderr)
        );
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let pem = result["pem"].as_str().unwrap();
        let leaf = pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        let cert = files.path().join(format!("{lang}.pem"));
        std::fs::write(&cert, leaf).unwrap();
        let (ok, text) = common::run(
            Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(&ca_root)
                .arg("-untrusted")
                .arg(&issuing)
                .arg(&cert),
        );
        assert!(ok && text.contains(": OK"), "{lang}: {text}");
        let (ok, text) = common::run(
            Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-issuer"])
                .arg(&issuing)
                .arg("-cert")
                .arg(&cert)
                .args(["-url", &app.url("/ocsp"), "-CAfile"])
                .arg(&ca_root),
        );
        assert!(ok && text.contains(": revoked"), "{lang}: {text}");
        for page in [
            "login",
            "subscribers",
            "subscriber",
            "request",
            "queue",
            "certificate",
            "audit",
            "attribute-certificates",
            "attribute-grants",
            "attribute-certificate",
        ] {
            assert!(
                shots.join(format!("{page}-{lang}.png")).exists(),
                "{page}-{lang}.png"
            );
        }
    }
    app.stop().await;
}

/// How long one run of the browser script may take before it and its Chromium are killed.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Node in a process group of its own (Chromium included), killed by that group's id when it
/// overruns [`NODE_TIMEOUT`] or when this test panics, so no browser outlives the test.
fn run_node(dir: &Path, cfg: &Path) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let (out, err) = (dir.join("node.stdout"), dir.join("node.stderr"));
    let mut child = Command::new("node")
        .arg("e2e.mjs")
        .arg(cfg)
        .current_dir(dir)
        .process_group(0)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("node");
    let group = Group(child.id());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("node status") {
            break status;
        }
        if started.elapsed() > NODE_TIMEOUT {
            drop(group);
            let _ = child.wait();
            panic!(
                "node ran past {NODE_TIMEOUT:?}; killed:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // Chromium children that node left behind go with the group.
    drop(group);
    std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}
