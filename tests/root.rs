//! The root CA's publications: the issuing CA certificate names the root's ARL and certificate,
//! the ARL is signed by the root, re-issuing keeps issued certificates valid, and the offline root
//! (its key out of the data directory) is run by ceremony commands. Checked with OpenSSL (the CLI
//! and the crate), not with Vouch's own parser.

mod common;

use common::{p256_csr, relying, run, PgDatabase, TestApp, BIN};
use openssl::x509::{X509Crl, X509};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

async fn fetch(app_base: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let resp = reqwest::get(format!("{app_base}{path}"))
        .await
        .expect("GET");
    let status = resp.status();
    (status, resp.bytes().await.unwrap().to_vec())
}

fn crl_text(der: &[u8], dir: &Path) -> String {
    let file = dir.join("some.crl");
    std::fs::write(&file, der).unwrap();
    let (ok, text) = run(Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&file));
    assert!(ok, "{text}");
    text
}

/// The URIs of a certificate's CDP and AIA caIssuers, as OpenSSL reads them.
fn publication(cert: &X509) -> (Vec<String>, Vec<String>) {
    let cdp = cert
        .crl_distribution_points()
        .map(|points| {
            points
                .iter()
                .filter_map(|p| p.distpoint())
                .filter_map(|d| d.fullname())
                .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_string)))
                .collect()
        })
        .unwrap_or_default();
    let ca_issuers = cert
        .authority_info()
        .map(|aia| {
            aia.iter()
                .filter(|d| d.method().nid() == openssl::nid::Nid::AD_CA_ISSUERS)
                .filter_map(|d| d.location().uri().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (cdp, ca_issuers)
}

#[tokio::test]
async fn the_issuing_ca_names_the_roots_arl_and_certificate() {
    let app = TestApp::spawn().await;
    let tmp = tempfile::tempdir().unwrap();
    let (status, issuing) = fetch(&app.base, "/ca/issuing.pem").await;
    assert_eq!(status, StatusCode::OK);
    let issuing = X509::from_pem(&issuing).unwrap();
    let (status, root_pem) = fetch(&app.base, "/ca/root.pem").await;
    assert_eq!(status, StatusCode::OK);
    let root = X509::from_pem(&root_pem).unwrap();
    let (cdp, ca_issuers) = publication(&issuing);
    assert_eq!(cdp, vec![app.url("/crl/root.crl")]);
    assert_eq!(
        ca_issuers,
        vec![app.url("/ca/root.cer"), app.url("/ca/root.pem")]
    );
    assert!(issuing.verify(&root.public_key().unwrap()).unwrap());

    // caIssuers in DER, as Windows fetches it, and PEM: the same certificate.
    let (status, cer) = fetch(&app.base, "/ca/root.cer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cer, root.to_der().unwrap());
    let (status, issuing_cer) = fetch(&app.base, "/ca/issuing.cer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issuing_cer, issuing.to_der().unwrap());

    // The ARL: signed by the root, issued by it, with a number, the root's AKI, 90 days.
    let (status, arl) = fetch(&app.base, "/crl/root.crl").await;
    assert_eq!(status, StatusCode::OK);
    let crl = X509Crl::from_der(&arl).unwrap();
    assert!(crl.verify(&root.public_key().unwrap()).unwrap());
    assert_eq!(
        crl.issuer_name().to_der().unwrap(),
        root.subject_name().to_der().unwrap()
    );
    assert!(crl.get_revoked().is_none_or(|r| r.is_empty()));
    let text = crl_text(&arl, tmp.path());
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    let aki = root
        .subject_key_id()
        .unwrap()
        .as_slice()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(text.contains(&aki), "AKI {aki} missing:\n{text}");
    let this = crl.last_update();
    let next = crl.next_update().unwrap();
    assert_eq!(this.diff(next).unwrap().days, 90);
    // Cacheable as the other CRLs: validators, and 304 for a client that has it.
    let resp = reqwest::get(app.url("/crl/root.crl")).await.unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let expires = resp.headers()["expires"].to_str().unwrap().to_string();
    let next_text = crl_text(&arl, tmp.path())
        .lines()
        .find_map(|l| l.trim().strip_prefix("Next Update: ").map(str::to_string))
        .unwrap();
    // "Mar  3 01:31:18 2027 GMT" against "Wed, 03 Mar 2027 01:31:18 GMT"
    let parts: Vec<&str> = next_text.split_whitespace().collect();
    assert!(
        expires.contains(&format!(
            "{:0>2} {} {} {}",
            parts[1], parts[0], parts[3], parts[2]
        )),
        "Expires {expires} vs nextUpdate {next_text}"
    );
    let again = app
        .client
        .get(app.url("/crl/root.crl"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Certificates issued chain to the root through it, with OpenSSL checking the whole chain's
    // status: the issuing CRL for the leaf, the ARL for the issuing CA.
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let leaf = leaf_pem(&app, &serial).await;
    let (_, issuing_crl) = fetch(&app.base, "/crl/issuing.crl").await;
    let (ok, out) = openssl_verify_all(tmp.path(), &root, &issuing, &leaf, &[&arl, &issuing_crl]);
    assert!(ok, "{out}");

    let audit = app.audit_entries().await;
    assert!(
        audit.iter().any(|e| e["action"] == "ca.issuing_reissued"),
        "the first start gives the issuing CA certificate its URLs, audited"
    );
    assert!(audit.iter().any(|e| e["action"] == "ca.arl_signed"));
    app.stop().await;
}

async fn leaf_pem(app: &TestApp, serial: &str) -> X509 {
    let (status, body) = app
        .get(&app.admin, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    X509::from_pem(body["pem"].as_str().unwrap().as_bytes()).unwrap()
}

/// `openssl verify -crl_check_all` of `leaf` under `root` through `issuing`, with `crls` (DER).
fn openssl_verify_all(
    dir: &Path,
    root: &X509,
    issuing: &X509,
    leaf: &X509,
    crls: &[&[u8]],
) -> (bool, String) {
    let write = |name: &str, pem: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let root_f = write("v-root.pem", root.to_pem().unwrap());
    let issuing_f = write("v-issuing.pem", issuing.to_pem().unwrap());
    let leaf_f = write("v-leaf.pem", leaf.to_pem().unwrap());
    let mut crl_pem = Vec::new();
    for der in crls {
        crl_pem.extend(X509Crl::from_der(der).unwrap().to_pem().unwrap());
    }
    let crl_f = write("v-crls.pem", crl_pem);
    run(Command::new("openssl")
        .args(["verify", "-crl_check_all", "-CAfile"])
        .arg(&root_f)
        .arg("-untrusted")
        .arg(&issuing_f)
        .arg("-CRLfile")
        .arg(&crl_f)
        .arg(&leaf_f))
}

#[tokio::test]
async fn certificates_issued_before_a_reissue_stay_valid_under_the_new_one() {
    let app = TestApp::spawn().await;
    let tmp = tempfile::tempdir().unwrap();
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let leaf = leaf_pem(&app, &serial).await;
    let (_, root) = fetch(&app.base, "/ca/root.pem").await;
    let root = X509::from_pem(&root).unwrap();
    let (_, before) = fetch(&app.base, "/ca/issuing.pem").await;
    let before = X509::from_pem(&before).unwrap();

    // Another public URL: the ceremony re-issues the issuing CA certificate for it.
    let (ok, out) = run_ca(ca_cmd(&app).args([
        "reissue-issuing",
        "--public-url",
        "http://ra.example.org:8080/",
    ]))
    .await;
    assert!(ok, "{out}");
    let after =
        X509::from_pem(&std::fs::read(app.data.ca_dir().join("issuing.pem")).unwrap()).unwrap();
    assert_ne!(
        before.serial_number().to_bn().unwrap(),
        after.serial_number().to_bn().unwrap()
    );
    assert_eq!(
        publication(&after).0,
        vec!["http://ra.example.org:8080/crl/root.crl".to_string()]
    );
    assert_eq!(
        after.subject_name().to_der().unwrap(),
        before.subject_name().to_der().unwrap()
    );
    assert_eq!(
        after.subject_key_id().unwrap().as_slice(),
        before.subject_key_id().unwrap().as_slice()
    );
    // The leaf issued under the old certificate verifies under the new one.
    let (_, arl) = fetch(&app.base, "/crl/root.crl").await;
    let (_, issuing_crl) = fetch(&app.base, "/crl/issuing.crl").await;
    let (ok, out) = openssl_verify_all(tmp.path(), &root, &after, &leaf, &[&arl, &issuing_crl]);
    assert!(ok, "{out}");
    // The old certificate is kept beside it.
    let kept = app.data.ca_dir().join(format!(
        "issuing-{}.pem",
        hex::encode(before.serial_number().to_bn().unwrap().to_vec())
    ));
    assert!(kept.exists(), "{} kept", kept.display());
    app.stop().await;
}

/// Run a command without blocking the runtime: the test app's server runs on it and must finish
/// its own writes while the command waits for the database.
async fn run_ca(cmd: &mut tokio::process::Command) -> (bool, String) {
    let out = cmd.output().await.expect("run vouch");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `vouch ca ...` on the test app's data directory and database.
fn ca_cmd(app: &TestApp) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("ca").env("VOUCH_DATA_DIR", app.data.root());
    if let Some(pg) = &app.pg {
        cmd.env("VOUCH_DATABASE_URL", pg.url());
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `vouch serve` on a fixed port (the public URL must be known at `init`), killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(base: &str) -> Value {
    for _ in 0..200 {
        if let Ok(resp) = reqwest::get(format!("{base}/readyz")).await {
            if resp.status() == StatusCode::OK {
                return resp.json().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

/// Poll the published ARL until `done` says it is the one expected (servers re-read it when the
/// status version moves, about once a second).
async fn arl_until(base: &str, tmp: &Path, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        let (status, der) = fetch(base, "/crl/root.crl").await;
        if status == StatusCode::OK {
            text = crl_text(&der, tmp);
            if done(&text) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the expected ARL was not published; last one:\n{text}");
}

#[tokio::test]
async fn offline_root_ceremony_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("offline").join("root.key");
    std::fs::create_dir(key.parent().unwrap()).unwrap();
    let pg = match common::postgres_server() {
        Some(server) => Some(PgDatabase::create(&server).await),
        None => None,
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).env("VOUCH_DATA_DIR", &data);
        if let Some(pg) = &pg {
            c.env("VOUCH_DATABASE_URL", pg.url());
        }
        c
    };

    // The root key needs a public URL to leave: the issuing CA must name the ARL first.
    let (ok, out) = run(&mut cmd(&["init", "--root-key-out", key.to_str().unwrap()]));
    assert!(!ok && out.contains("--public-url"), "{out}");
    let (ok, out) = run(&mut cmd(&[
        "init",
        "--public-url",
        &base,
        "--root-key-out",
        key.to_str().unwrap(),
    ]));
    assert!(ok, "{out}");
    assert!(out.contains("root key moved to"), "{out}");
    let admin = out.lines().last().unwrap().trim().to_string();
    assert!(!data.join("ca").join("root.key").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let issuing =
        X509::from_pem(&std::fs::read(data.join("ca").join("issuing.pem")).unwrap()).unwrap();
    assert_eq!(
        publication(&issuing).0,
        vec![format!("{base}/crl/root.crl")]
    );

    // The server runs without the root key and publishes the ARL signed before it left.
    let log = tmp.path().join("serve.log");
    let start = || {
        Serve(
            cmd(&[
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &base,
            ])
            .env("VOUCH_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        )
    };
    let server = start();
    let ready = wait_ready(&base).await;
    assert_eq!(ready["root_ca"]["root_key"], "offline", "{ready}");
    assert_eq!(ready["warnings"], serde_json::json!([]), "{ready}");
    let first = arl_until(&base, tmp.path(), |t| t.contains("CRL Number")).await;
    assert!(first.contains("No Revoked Certificates"), "{first}");

    // Without the key, nothing that needs it can run; with a wrong or exposed key, neither.
    let (ok, out) = run(&mut cmd(&["ca", "sign-arl"]));
    assert!(!ok && out.contains("--root-key"), "{out}");
    let exposed = tmp.path().join("exposed.key");
    std::fs::copy(&key, &exposed).unwrap();
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = run(&mut cmd(&[
        "ca",
        "sign-arl",
        "--root-key",
        exposed.to_str().unwrap(),
    ]));
    assert!(!ok && out.contains("chmod 600"), "{out}");
    let (ok, out) = run(&mut cmd(&[
        "ca",
        "sign-arl",
        "--root-key",
        data.join("ca").join("issuing.key").to_str().unwrap(),
    ]));
    assert!(!ok && out.contains("is not the key"), "{out}");

    // The ceremony: the next ARL, short enough to be within the warning margin.
    let (ok, out) = run(&mut cmd(&[
        "ca",
        "sign-arl",
        "--root-key",
        key.to_str().unwrap(),
        "--validity-days",
        "5",
    ]));
    assert!(ok, "{out}");
    let number = |t: &str| {
        t.lines()
            .skip_while(|l| !l.contains("CRL Number"))
            .nth(1)
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    };
    let first_number: u64 = number(&first).parse().unwrap();
    let second = arl_until(&base, tmp.path(), |t| {
        number(t).parse::<u64>().unwrap_or(0) > first_number
    })
    .await;
    assert!(second.contains("No Revoked Certificates"), "{second}");
    // Relying parties checking the whole chain accept a certificate of this deployment, the
    // issuing CA's status coming from the ARL the ceremony signed.
    let certs = tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (root_pem, issuing_pem, leaf_pem) = issue_over_http(&base, &admin, &certs).await;
    let chain = [leaf_pem.as_path(), issuing_pem.as_path()];
    relying::assert_all_valid(&relying::every_validator(&root_pem, &chain, &certs).await);
    let ready = wait_ready(&base).await;
    assert_eq!(ready["root_ca"]["arl"]["state"], "expiring", "{ready}");
    let warnings = ready["warnings"].to_string();
    assert!(warnings.contains("vouch ca sign-arl"), "{ready}");
    // The log says so too, from the start.
    drop(server);
    let server = start();
    wait_ready(&base).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("WARN") && logged.contains("sign the next one with `vouch ca sign-arl"),
        "{logged}"
    );

    // A compromise: the issuing CA is revoked; the ARL lists it and nothing more is issued.
    let (ok, out) = run(&mut cmd(&[
        "ca",
        "revoke-issuing",
        "--root-key",
        key.to_str().unwrap(),
        "--reason",
        "keyCompromise",
    ]));
    assert!(ok, "{out}");
    let issuing_serial = format!("{:X}", issuing.serial_number().to_bn().unwrap());
    let revoked = arl_until(&base, tmp.path(), |t| t.contains(&issuing_serial)).await;
    assert!(revoked.contains("Key Compromise"), "{revoked}");
    relying::assert_all_revoked(
        &relying::every_validator(&root_pem, &chain, &certs).await,
        "keyCompromise",
    );
    let ready = wait_ready(&base).await;
    assert_eq!(
        ready["root_ca"]["issuing_revoked"], "keyCompromise",
        "{ready}"
    );
    let (ok, out) = run(&mut cmd(&["ca", "status"]));
    assert!(!ok && out.contains("REVOKED"), "{out}");
    drop(server);
    if let Some(pg) = &pg {
        pg.drop_database().await;
    }
}

/// Operators, a vetted person and an issued certificate on a served deployment; returns the root,
/// issuing CA and leaf certificate files (PEM) in `dir`.
async fn issue_over_http(base: &str, admin: &str, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let client = reqwest::Client::new();
    let post = |token: &str, path: &str, body: Option<Value>| {
        let mut req = client.post(format!("{base}{path}")).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let path = path.to_string();
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    let token = |v: Value| v["token"].as_str().unwrap().to_string();
    let clerk = token(
        post(
            admin,
            "/api/v1/operators",
            Some(serde_json::json!({"name": "clerk1", "roles": ["clerk"]})),
        )
        .await,
    );
    let approver = token(
        post(
            admin,
            "/api/v1/operators",
            Some(serde_json::json!({"name": "approver1", "roles": ["approver"]})),
        )
        .await,
    );
    let sub = post(
        &clerk,
        "/api/v1/subscribers",
        Some(
            serde_json::json!({"kind": "person", "name": "Li Wei", "email": "li@example.org",
            "identifiers": [{"type": "national-id", "number": "110101199003070011",
                             "issuer": "Public Security Bureau", "valid_until": "2099-12-31"}]}),
        ),
    )
    .await;
    let req = post(
        &clerk,
        "/api/v1/requests",
        Some(
            serde_json::json!({"subscriber_id": sub["id"], "profile": "person-signing",
                                "csr": p256_csr()}),
        ),
    )
    .await;
    let issued = post(
        &approver,
        &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(issued["status"], "issued", "{issued}");
    let cert: Value = client
        .get(format!(
            "{base}/api/v1/certificates/{}",
            issued["serial"].as_str().unwrap()
        ))
        .bearer_auth(&clerk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = [
        ("root.pem", fetch(base, "/ca/root.pem").await.1),
        ("issuing.pem", fetch(base, "/ca/issuing.pem").await.1),
        (
            "leaf.pem",
            cert["pem"].as_str().unwrap().as_bytes().to_vec(),
        ),
    ]
    .map(|(name, pem)| {
        std::fs::write(dir.join(name), pem).unwrap();
        dir.join(name)
    });
    let [root, issuing, leaf] = files;
    (root, issuing, leaf)
}

#[tokio::test]
async fn nothing_is_issued_once_the_issuing_ca_is_revoked() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let holder = app.issue(&clerk, &approver, &p256_csr()).await;
    let pending = app.pending(&clerk).await;
    let aa = app.operator("aa1", &["aa"]).await;
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let grant = serde_json::json!({"holder_serial": holder, "roles": ["approver"],
        "targets": ["permits"],
        "not_after": not_after.format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, ac) = app
        .post(&aa, "/api/v1/attribute-certificates", grant.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ac}");
    let (ok, out) = run_ca(ca_cmd(&app).args(["revoke-issuing", "--reason", "cACompromise"])).await;
    assert!(ok, "{out}");
    // The holder's attribute certificate ended with the issuing CA; no new one is granted.
    let path = format!(
        "/api/v1/attribute-certificates/{}",
        ac["serial"].as_str().unwrap()
    );
    let (_, after) = app.get(&aa, &path).await;
    assert_eq!(after["status"], "revoked", "{after}");
    assert_eq!(after["revocation_reason"], "cACompromise", "{after}");
    let (status, body) = app.post(&aa, "/api/v1/attribute-certificates", grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("holder_not_valid")),
        "{body}"
    );
    // A request approved now ends, with the reason, instead of waiting for ever.
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/requests/{pending}/approve"))
        .await;
    assert!(
        body.to_string().contains("issuing CA has been revoked"),
        "{status} {body}"
    );
    let (_, view) = app
        .get(&clerk, &format!("/api/v1/requests/{pending}"))
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    // A new request is refused at submission.
    let sub = app.person(&clerk, "Zhang San", "2099-12-31").await;
    let (status, body) = app
        .submit(&clerk, &sub, "person-signing", &p256_csr())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "ca_refused", "{body}");
    // The issuing CA is not re-issued once revoked.
    let (ok, out) =
        run_ca(ca_cmd(&app).args(["reissue-issuing", "--public-url", "http://ra.example.org/"]))
            .await;
    assert!(!ok && out.contains("revoked"), "{out}");
    app.stop().await;
}

#[test]
fn a_directory_made_without_a_public_url_gets_its_issuing_ca_reissued_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ok, out) = run(Command::new(BIN).args(["init", "--data-dir"]).arg(&data));
    assert!(ok, "{out}");
    let read = |p: PathBuf| X509::from_pem(&std::fs::read(p).unwrap()).unwrap();
    let before = read(data.join("ca").join("issuing.pem"));
    assert!(publication(&before).0.is_empty());
    let served = common::serve_process(&data, &[], &[]);
    let after = read(data.join("ca").join("issuing.pem"));
    assert_eq!(
        publication(&after).0,
        vec![format!("http://{}/crl/root.crl", served.addr)]
    );
    let (ok, out) = run(Command::new(BIN)
        .args(["ca", "status", "--data-dir"])
        .arg(&data)
        .args(["--public-url", &format!("http://{}", served.addr)]));
    assert!(ok, "{out}");
    assert!(out.contains("root key: online"), "{out}");
}

#[tokio::test]
async fn a_reissue_on_a_database_bound_by_the_old_certificate_moves_the_binding_to_the_key() {
    let app = TestApp::spawn().await;
    // A database from before re-issuing existed: bound by the issuing CA certificate's hash only.
    app.ra
        .store()
        .write(vouch::store::job!(|c, _| {
            sqlx::query("DELETE FROM instance_meta WHERE key = 'issuing_ca_key_sha256'")
                .execute(&mut *c)
                .await?;
            Ok(())
        }))
        .await
        .unwrap();
    let (ok, out) =
        run_ca(ca_cmd(&app).args(["reissue-issuing", "--public-url", "http://ra.example.org/"]))
            .await;
    assert!(ok, "{out}");

    // The next start finds the new certificate and the same key: no ca_mismatch.
    let reopened = vouch::app::open(
        &app.data,
        std::sync::Arc::new(vouch::clock::SystemClock),
        Default::default(),
    )
    .await;
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    reopened.unwrap().store().close().await;
    app.stop().await;
}
