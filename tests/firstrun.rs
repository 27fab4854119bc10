//! The first hour with the `vouch` binary: commands started together on a new data directory,
//! the bootstrap token and a failed bind, what a first start says, environment errors, `--listen`
//! forms, `vouch init` twice, `GET /`, JSON errors with a field path, and the log format.
//!
//! The concurrency test runs on PostgreSQL too when `VOUCH_TEST_POSTGRES` is set (a fresh database
//! per round); the rest checks the data directory's own files and stays on SQLite.

mod common;

use common::{serve_process, PgDatabase, BIN};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run `vouch ARGS --data-dir DATA [--database-url URL]`: (exit code, stdout, stderr).
fn vouch(args: &[&str], data: &Path, db: Option<&str>) -> (i32, String, String) {
    let out = command(args, data, db).output().expect("run vouch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn command(args: &[&str], data: &Path, db: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data);
    if let Some(url) = db {
        cmd.args(["--database-url", url]);
    }
    cmd.env("VOUCH_LOG", "info").env("NO_COLOR", "1");
    cmd
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

/// A `vouch serve` started without waiting: its output is collected as it comes.
struct Background {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vouch");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                stdout.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        Background {
            child,
            stdout,
            stderr,
        }
    }

    /// Wait until the server says it listens (true) or exits (false); at most 60 s.
    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.stderr.lock().unwrap().contains("listening on ") {
                // stdout is written before the log line; give its reader a moment.
                std::thread::sleep(Duration::from_millis(200));
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn output(&self) -> (String, String) {
        (
            self.stdout.lock().unwrap().clone(),
            self.stderr.lock().unwrap().clone(),
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Text that means the migrations or the initialisation ran twice, or an error dressed as a bug.
fn assert_no_init_race(what: &str, text: &str) {
    for bad in [
        "already exists",
        "duplicate column",
        "migrations:",
        "internal:",
        "UNIQUE constraint",
        "panicked",
    ] {
        assert!(!text.contains(bad), "{what} says {bad:?}:\n{text}");
    }
}

/// Operators with the admin role, from `vouch operator list` (id, name, roles[, (disabled)]).
fn admins(data: &Path, db: Option<&str>) -> Vec<String> {
    let (code, out, err) = vouch(&["operator", "list"], data, db);
    assert_eq!(code, 0, "{out}{err}");
    out.lines()
        .filter(|l| {
            l.split('\t')
                .nth(2)
                .is_some_and(|roles| roles.split([',', ' ']).any(|r| r == "admin"))
        })
        .map(str::to_string)
        .collect()
}

/// `serve`, `operator add` and `init` started at the same moment on a new data directory (and, on
/// PostgreSQL, a new database), many times: every round ends with exactly one bootstrap admin
/// (whose token one of serve and init printed), no sign of migrations run twice, and an intact
/// audit chain.
#[tokio::test(flavor = "multi_thread")]
async fn serve_operator_add_and_init_together_make_one_admin() {
    let pg_server = common::postgres_server();
    // A PostgreSQL round also creates and drops a database.
    let rounds = if pg_server.is_some() { 10 } else { 15 };
    for round in 0..rounds {
        let pg = match &pg_server {
            Some(server) => Some(PgDatabase::create(server).await),
            None => None,
        };
        let url = pg.as_ref().map(|p| p.url());
        let db = url.as_deref();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");

        let serve = command(&["serve", "--listen", "127.0.0.1:0"], &data, db);
        let mut add = command(
            &["operator", "add", "--name", "alice", "--role", "clerk"],
            &data,
            db,
        );
        let mut init = command(&["init"], &data, db);
        // Vary who goes first.
        let (add, init, mut server) = match round % 3 {
            0 => {
                let s = Background::start(serve);
                (add.output(), init.output(), s)
            }
            1 => {
                let a = add.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
                let s = Background::start(serve);
                let i = init.output();
                (a.unwrap().wait_with_output(), i, s)
            }
            _ => {
                let i = init.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
                let a = add.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
                let s = Background::start(serve);
                (
                    a.unwrap().wait_with_output(),
                    i.unwrap().wait_with_output(),
                    s,
                )
            }
        };
        let (add, init) = (add.unwrap(), init.unwrap());
        let listening = server.wait_listening();
        let (serve_out, serve_err) = server.output();
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        let (add_text, init_text) = (text(&add), text(&init));
        let all = format!(
            "round {round}\n--- serve:\n{serve_out}{serve_err}\n--- operator add:\n{add_text}\n\
             --- init:\n{init_text}"
        );
        assert!(listening, "serve did not start:\n{all}");
        assert!(init.status.success(), "init failed:\n{all}");
        assert_no_init_race("serve", &format!("{serve_out}{serve_err}"));
        assert_no_init_race("operator add", &add_text);
        assert_no_init_race("init", &init_text);
        // operator add either worked or, started before anything existed, said what to run.
        assert!(
            add.status.success() || add_text.contains("run `vouch init"),
            "operator add:\n{all}"
        );
        let tokens = [serve_out.as_str(), init_text.as_str()]
            .iter()
            .filter(|o| o.contains("bootstrap admin token"))
            .count();
        assert_eq!(tokens, 1, "one bootstrap token, printed once:\n{all}");
        drop(server);

        let admins = admins(&data, db);
        assert_eq!(admins.len(), 1, "exactly one admin: {admins:?}\n{all}");
        let (code, out, err) = vouch(&["audit", "verify"], &data, db);
        assert_eq!(code, 0, "{out}{err}\n{all}");
        assert!(out.contains("audit log intact"), "{out}");
        if let Some(pg) = pg {
            pg.drop_database().await;
        }
    }
}

/// `vouch migrate`, then a clerk, then the first `vouch serve`: the server still makes the first
/// admin (named `admin-2` here, since the clerk took `admin`). Once every admin is disabled, a
/// restart makes none and says how to recover; the recovery command works and is audited.
#[tokio::test]
async fn the_first_admin_exists_whatever_the_order_and_can_be_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (code, out, err) = vouch(&["migrate"], &data, None);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = vouch(
        &["operator", "add", "--name", "admin", "--role", "clerk"],
        &data,
        None,
    );
    assert_eq!(code, 0, "{out}{err}");

    let first = serve_process(&data, &[], &[]);
    let token = first.stdout.lines().last().unwrap_or_default().to_string();
    assert!(token.starts_with("vouch_"), "{}", first.stdout);
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://{}/api/v1/operators", first.addr),
    ]);
    assert_eq!(code, 0);
    assert!(body.contains("\"admin-2\""), "{body}");
    drop(first);
    assert_eq!(admins(&data, None).len(), 1);

    // Every admin disabled (only a database edit gets there: an admin cannot disable itself).
    {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(data.join("vouch.db"))
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE operators SET disabled_at = 1 WHERE roles LIKE '%admin%'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let mut again = Background::start(command(&["serve", "--listen", "127.0.0.1:0"], &data, None));
    assert!(again.wait_listening());
    let (out, err) = again.output();
    assert!(!out.contains("vouch_"), "no new admin made silently: {out}");
    assert!(
        err.contains("every admin operator is disabled")
            && err.contains("operator add")
            && err.contains("--role admin"),
        "{err}"
    );
    drop(again);

    // Recovery on the host.
    let (code, out, err) = vouch(
        &["operator", "add", "--name", "rescue", "--role", "admin"],
        &data,
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let rescue = out.lines().last().unwrap().to_string();
    let served = serve_process(&data, &[], &[]);
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {rescue}"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name": "aud", "roles": ["auditor"]}"#,
        &format!("http://{}/api/v1/operators", served.addr),
    ]);
    let auditor: serde_json::Value = serde_json::from_str(&body).unwrap();
    let auditor = auditor["token"]
        .as_str()
        .expect("auditor token")
        .to_string();
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {auditor}"),
        &format!("http://{}/api/v1/audit?limit=1000", served.addr),
    ]);
    let log: serde_json::Value = serde_json::from_str(&body).unwrap();
    let created: Vec<&serde_json::Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "operator.created")
        .collect();
    let rescue_entry = created
        .iter()
        .find(|e| e["details"]["name"] == "rescue")
        .expect("the recovery is audited");
    assert_eq!(rescue_entry["details"]["via"], "host", "{rescue_entry}");
    assert_eq!(rescue_entry["details"]["roles"][0], "admin");
    assert!(created
        .iter()
        .any(|e| e["details"]["name"] == "admin-2" && e["details"]["via"] == "bootstrap"));
}

/// A port in use: `serve` fails saying so (not as an internal error) and makes no admin, so the
/// next start, on a free port, prints the bootstrap token, with what it made and how to use it.
#[test]
fn a_failed_bind_loses_no_token_and_the_first_start_says_what_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, out, err) = vouch(
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &data,
        None,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("--listen"), "{err}");
    assert!(!err.contains("internal"), "{err}");
    assert!(
        !out.contains("vouch_"),
        "no token before the port is bound: {out}"
    );
    drop(taken);

    let served = serve_process(&data, &[], &[]);
    let out = &served.stdout;
    let token = out.lines().last().unwrap_or_default();
    assert!(token.starts_with("vouch_"), "{out}");
    let url = format!("http://{}", served.addr);
    for expected in [
        format!("serving at {url}"),
        "data directory:".to_string(),
        "database:       sqlite://".to_string(),
        "CN=Vouch Root CA".to_string(),
        "CN=Vouch Issuing CA".to_string(),
        "SHA-256 ".to_string(),
        "profiles:       ".to_string(),
        "person-signing".to_string(),
        format!("curl -H \"Authorization: Bearer $TOKEN\" {url}/api/v1/operators"),
    ] {
        assert!(out.contains(&expected), "{expected:?} in:\n{out}");
    }
    // The fingerprints printed are those of the certificates served.
    let root_pem = std::fs::read(data.join("ca/root.pem")).unwrap();
    let root = openssl::x509::X509::from_pem(&root_pem).unwrap();
    let digest = root
        .digest(openssl::hash::MessageDigest::sha256())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        out.contains(&digest),
        "root fingerprint {digest} in:\n{out}"
    );

    // GET / says what this is and where things are.
    let (code, body) = curl(&[&format!("{url}/")]);
    assert_eq!(code, 0);
    let about: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(about["api"], "/api/v1");
    assert_eq!(about["health"], "/healthz");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"));
    assert!(about["service"].as_str().unwrap().contains("Vouch"));

    // A JSON body of the wrong shape is answered with the field's path.
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"kind": "person", "name": "Li Wei", "identifiers": [{"type": "passport", "number": "X1", "issuer": "PSB", "valid_until": 20350101}]}"#,
        &format!("{url}/api/v1/subscribers"),
    ]);
    let err: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(err["error"], "invalid_request", "{err}");
    assert_eq!(err["field"], "identifiers[0].valid_until", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("identifiers[0].valid_until: ") && !message.contains("line 1"),
        "{message}"
    );
}

/// `vouch init` twice: the second says the directory is initialised, exits 0 and prints no token.
#[test]
fn init_on_an_initialised_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (code, out, err) = vouch(&["init"], &data, None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("initialised "), "{out}");
    assert!(out.contains("SHA-256 "), "{out}");
    assert!(out.lines().last().unwrap().starts_with("vouch_"), "{out}");
    let (code, out, err) = vouch(&["init"], &data, None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("already initialised: "), "{out}");
    assert!(out.contains("database sqlite://"), "{out}");
    assert!(!out.contains("vouch_"), "{out}");
    assert_eq!(admins(&data, None).len(), 1);
}

/// A command on a directory that another command is initialising waits for it instead of
/// migrating alongside it.
#[test]
fn a_command_waits_for_an_initialisation_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (code, out, err) = vouch(&["init"], &data, None);
    assert_eq!(code, 0, "{out}{err}");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(data.join("init.lock"))
        .expect("init.lock exists");
    lock.try_lock().expect("free after init");
    let add = command(
        &["operator", "add", "--name", "bob", "--role", "clerk"],
        &data,
        None,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(lock);
    let out = add.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("waiting for another vouch command to finish initialising"),
        "{err}"
    );
}

/// Errors from the machine (a file where a directory should be, a database that refuses
/// connections) say what is wrong, not `internal:`.
#[test]
fn environment_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let (code, out, err) = vouch(&["init"], &file, None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is a file, not a directory"), "{err}");
    assert!(!err.contains("internal"), "{err}");
    let (code, out, err) = vouch(&["init"], &file.join("d"), None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not a directory"), "{err}");
    assert!(!err.contains("internal"), "{err}");

    // Nothing listens on port 1.
    let (code, out, err) = vouch(
        &["migrate"],
        &dir.path().join("pg"),
        Some("postgres://vouch:secret@127.0.0.1:1/vouch"),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        err.contains("postgres://vouch:***@127.0.0.1:1/vouch"),
        "{err}"
    );
    assert!(
        !err.contains("secret") && !err.contains("internal"),
        "{err}"
    );
}

/// `--listen` takes a port alone (on 127.0.0.1) and host names.
#[test]
fn listen_takes_a_port_alone_and_a_host_name() {
    for form in ["{port}", "localhost:{port}"] {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let listen = form.replace("{port}", &port.to_string());
        let mut served = Background::start(command(
            &["serve", "--listen", &listen],
            &dir.path().join("d"),
            None,
        ));
        assert!(served.wait_listening(), "{:?}", served.output());
        let (_, err) = served.output();
        assert!(
            err.contains(&format!("listening on http://127.0.0.1:{port}")),
            "{listen}: {err}"
        );
        let (code, body) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
        assert_eq!((code, body.as_str()), (0, "ok"));
    }
}

/// Logs carry no colour codes when stderr is not a terminal, and `--log-format json` writes one
/// JSON object a line.
#[test]
fn logs_are_plain_off_a_terminal_and_json_on_request() {
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("d"))
            .env("VOUCH_LOG", "info")
            .env_remove("NO_COLOR");
        if json {
            cmd.args(["--log-format", "json"]);
        }
        let mut served = Background::start(cmd);
        assert!(served.wait_listening(), "{:?}", served.output());
        let (_, err) = served.output();
        assert!(!err.contains('\u{1b}'), "no ANSI escapes: {err:?}");
        if json {
            for line in err.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert!(v["level"].is_string(), "{line}");
            }
        }
    }
}
