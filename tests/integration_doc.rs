//! The integration guide's example clients are tests: docs/INTEGRATION.md shows
//! docs/examples/verify.sh and docs/examples/verify_client.py as they are, and both run against a
//! live server: a document signed by a certificate Vouch issued is accepted (with a role once an
//! attribute certificate grants it), the receipt each keeps checks out, and after the certificate
//! is revoked for key compromise the same documents are rejected with `certificate_revoked`.
//! Errors (a bad token, a detached signature without its content) end with status 2.

mod common;

use common::signing::{cms_sign, csr_pem, p256_key_pem, SignOptions, Signer};
use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

const GUIDE: &str = include_str!("../docs/INTEGRATION.md");
const SCRIPT: &str = include_str!("../docs/examples/verify.sh");
const CLIENT: &str = include_str!("../docs/examples/verify_client.py");

const DOCUMENT: &[u8] = b"{\"form\": \"building permit 2026-0042\", \"decision\": \"approve\"}\n";

/// The fenced block (````fence`) that follows `marker` in the guide.
fn guide_block(marker: &str, fence: &str) -> String {
    let at = GUIDE
        .find(marker)
        .unwrap_or_else(|| panic!("the guide has no {marker:?}"));
    let open = format!("```{fence}\n");
    let start = at
        + GUIDE[at..]
            .find(&open)
            .unwrap_or_else(|| panic!("no ```{fence} block after {marker:?}"))
        + open.len();
    let len = GUIDE[start..].find("\n```\n").expect("the block ends") + 1;
    GUIDE[start..start + len].to_string()
}

#[test]
fn the_guide_shows_the_examples_as_they_are() {
    assert_eq!(
        guide_block("<!-- docs/examples/verify.sh -->", "bash"),
        SCRIPT,
        "docs/INTEGRATION.md and docs/examples/verify.sh differ: copy the script into the guide"
    );
    assert_eq!(
        guide_block("<!-- docs/examples/verify_client.py -->", "python"),
        CLIENT,
        "docs/INTEGRATION.md and docs/examples/verify_client.py differ: copy the client into the guide"
    );
}

/// Every reason and error code of the verification is explained in the guide: the snake_case
/// string literals of its sources (but JSON keys and the answer's field names), in backquotes.
#[test]
fn the_guide_lists_every_reason_code() {
    let sources = [
        include_str!("../src/verify/mod.rs"),
        include_str!("../src/verify/cms.rs"),
        include_str!("../src/verify/signer.rs"),
        include_str!("../src/verify/timestamp.rs"),
        include_str!("../src/verify/roles.rs"),
        include_str!("../src/x509/ac/check.rs"),
    ];
    let mut codes: Vec<&str> = Vec::new();
    for src in sources {
        for (i, _) in src.match_indices('"') {
            let rest = &src[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let word = &rest[..end];
            let reasonish = word.contains('_')
                && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !rest[end..].starts_with("\":") // a JSON key in json!()
                && !["not_after", "signed_at", "time_source"].contains(&word);
            if reasonish && !codes.contains(&word) {
                codes.push(word);
            }
        }
    }
    assert!(codes.len() > 30, "{codes:?}");
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|c| !GUIDE.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/INTEGRATION.md: {missing:?}"
    );
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run a command without blocking the runtime that serves the app.
async fn finish(cmd: &mut tokio::process::Command) -> Finished {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(name)
}

/// The files the clients are given, in a directory of their own.
struct Files {
    dir: tempfile::TempDir,
    url: String,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// verify.sh on DOCUMENT, with ROLE and APPLICATION when given.
    async fn shell(&self, token_file: &str, role: Option<(&str, &str)>) -> Finished {
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg(example("verify.sh"))
            .current_dir(self.dir.path())
            .env("VOUCH_URL", &self.url)
            .env("VOUCH_TOKEN_FILE", self.path(token_file))
            .env("SIGNER_CERT", self.path("signer.pem"))
            .env("SIGNER_KEY", self.path("signer.key"))
            .env("ROOT_PEM", self.path("root.pem"))
            .env("DOCUMENT", self.path("permit.json"))
            .env_remove("ROLE")
            .env_remove("APPLICATION")
            .env_remove("SIGNED_OUT")
            .env_remove("RECEIPT_OUT");
        if let Some((role, application)) = role {
            cmd.env("ROLE", role).env("APPLICATION", application);
        }
        finish(&mut cmd).await
    }

    /// verify_client.py with `args`.
    async fn python(&self, args: &[&str]) -> Finished {
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(example("verify_client.py"))
            .args(args)
            .current_dir(self.dir.path())
            .env("VOUCH_URL", &self.url)
            .env("VOUCH_TOKEN_FILE", self.path("verifier.token"))
            .env("ROOT_PEM", self.path("root.pem"));
        finish(&mut cmd).await
    }

    /// The receipt a client kept, as Vouch's own check reads it.
    fn receipt(&self, name: &str) -> serde_json::Value {
        let der = std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let root = std::fs::read(self.path("root.pem")).unwrap();
        vouch::verify::receipt::verify_receipt(&der, &root).expect("the kept receipt verifies")
    }
}

#[tokio::test]
async fn the_example_clients_accept_then_reject_once_the_certificate_is_revoked() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let verifier = app.operator("permits-app", &["verifier"]).await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let aa = app.operator("aa1", &["aa"]).await;

    // A signer with a certificate Vouch issued (as tests/verify.rs makes them).
    let key_pem = p256_key_pem();
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (status, req) = app
        .submit(
            &clerk,
            &sub,
            "person-signing",
            &csr_pem(&key_pem, "ignored"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (status, out) = app
        .post_empty(&approver, &format!("/api/v1/requests/{id}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let serial = out["serial"].as_str().unwrap().to_string();
    let (_, cert) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    let signer = Signer {
        cert_pem: cert["pem"].as_str().unwrap().to_string(),
        key_pem,
    };

    let files = Files {
        dir: tempfile::tempdir().unwrap(),
        url: app.base.clone(),
    };
    app.save_ca_certs(files.dir.path()).await;
    let write = |name: &str, bytes: &[u8]| std::fs::write(files.path(name), bytes).unwrap();
    write("verifier.token", format!("{verifier}\n").as_bytes());
    write("clerk.token", format!("{clerk}\n").as_bytes());
    write("wrong.token", b"vouch_not-a-token\n");
    write("signer.pem", signer.cert_pem.as_bytes());
    write("signer.key", signer.key_pem.as_bytes());
    write("permit.json", DOCUMENT);
    // What signers send the Python client: attached, and detached with the content apart.
    write(
        "attached.p7m",
        &cms_sign(DOCUMENT, &[&signer], &SignOptions::default()),
    );
    let detached = SignOptions {
        detached: true,
        ..Default::default()
    };
    write("detached.p7s", &cms_sign(DOCUMENT, &[&signer], &detached));
    let attached = ["attached.p7m"];
    let with_content = ["--content", "permit.json", "detached.p7s"];

    // The shell client signs, posts, keeps the receipt and checks it: accept.
    let run = files.shell("verifier.token", None).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("decision: accept\n"), "{run}");
    assert!(run.stdout.contains("reasons: -\n"), "{run}");
    let receipt = files.receipt("permit.json.receipt.der");
    assert_eq!(receipt["decision"], "accept");
    assert_eq!(receipt["signer"]["serial"], serial.as_str());
    assert_eq!(receipt["content_sha256"], vouch::x509::sha256_hex(DOCUMENT));
    // The signed document it kept is the attached CMS it sent.
    assert!(std::fs::read(files.path("permit.json.p7m"))
        .unwrap()
        .windows(DOCUMENT.len())
        .any(|w| w == DOCUMENT));

    // The Python client, attached and detached: accept.
    for args in [&attached[..], &with_content[..]] {
        let run = files.python(args).await;
        assert_eq!(run.code, Some(0), "{args:?}: {run}");
        assert!(run.stdout.contains("decision: accept\n"), "{args:?}: {run}");
        assert!(
            run.stdout.contains(&format!(
                "serial {serial}, profile person-signing, status good"
            )),
            "{args:?}: {run}"
        );
    }
    assert_eq!(
        files.receipt("detached.p7s.receipt.der")["decision"],
        "accept"
    );

    // A role: rejected until an attribute certificate grants it in the application.
    let role = Some(("approver", "permits"));
    let run = files.shell("verifier.token", role).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("reasons: role_missing\n"), "{run}");
    let not_after = (OffsetDateTime::now_utc() + Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, out) = app
        .post(
            &aa,
            "/api/v1/attribute-certificates",
            json!({"holder_serial": serial, "roles": ["approver"], "targets": ["permits"],
                   "not_after": not_after}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let run = files.shell("verifier.token", role).await;
    assert_eq!(run.code, Some(0), "{run}");
    let by_role = ["--role", "approver", "--application", "permits"];
    let run = files.python(&[&by_role[..], &attached[..]].concat()).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        files.receipt("attached.p7m.receipt.der")["role"],
        "approver"
    );

    // What is not a decision is status 2, with Vouch's error: a token that is not one, an
    // operator who is not a verifier, a detached signature without its content.
    let run = files.shell("wrong.token", None).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("HTTP 401"), "{run}");
    let run = files.shell("clerk.token", None).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("forbidden"), "{run}");
    let run = files.python(&["detached.p7s"]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("HTTP 400 content_required"), "{run}");

    // The key is compromised: the certificate is revoked, and every client now rejects.
    let (status, out) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let run = files.shell("verifier.token", None).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("decision: reject\n"), "{run}");
    assert!(
        run.stdout.contains("reasons: certificate_revoked\n"),
        "{run}"
    );
    assert_eq!(
        files.receipt("permit.json.receipt.der")["reasons"],
        json!(["certificate_revoked"])
    );
    for args in [&attached[..], &with_content[..]] {
        let run = files.python(args).await;
        assert_eq!(run.code, Some(1), "{args:?}: {run}");
        assert!(run.stdout.contains("decision: reject\n"), "{args:?}: {run}");
        assert!(
            run.stdout.contains("reasons: certificate_revoked\n"),
            "{args:?}: {run}"
        );
        assert!(run.stdout.contains("status revoked"), "{args:?}: {run}");
    }
    let run = files.shell("verifier.token", role).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("certificate_revoked"), "{run}");
    app.stop().await;
}
