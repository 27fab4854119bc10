//! Shared test harness: a real server on 127.0.0.1:0 over a fresh temporary data directory,
//! driven over HTTP. With `VOUCH_TEST_POSTGRES` set to a server URL (e.g.
//! `postgres://postgres@127.0.0.1:5432`), every test app gets a fresh PostgreSQL database of its
//! own, dropped when the app stops; otherwise SQLite in the data directory.
#![allow(dead_code)]

pub mod ac_tools;
pub mod bc_cmp;
pub mod cfssl;
pub mod cmp;
pub mod crl;
pub mod database;
pub mod fake_cfssl;
pub mod kill9;
pub mod relying;
pub mod scripted_ca;
pub mod served;
pub mod signing;
pub mod test_ca;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use vouch::app::{self, Server};
use vouch::ca::local::{CaOptions, LocalCa};
use vouch::ca::PublishingCa;
use vouch::clock::{SharedClock, SystemClock};
use vouch::datadir::DataDir;
use vouch::ra::{Ra, RaConfig};
use vouch::store::{Database, Store};
use vouch::x509::profile::Profiles;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub data: DataDir,
    pub ra: Ra,
    /// The fresh PostgreSQL database, when the suite runs on PostgreSQL.
    pub pg: Option<PgDatabase>,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

/// The PostgreSQL server the suite runs against, if any (`VOUCH_TEST_POSTGRES`).
pub fn postgres_server() -> Option<String> {
    std::env::var("VOUCH_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_string())
}

/// A database created for one test on the suite's PostgreSQL server.
pub struct PgDatabase {
    pub server: String,
    pub name: String,
}

impl PgDatabase {
    /// Create a fresh, empty database; fails loudly if the server is unreachable. Names start with
    /// `VOUCH_TEST_DB_PREFIX` (default `vouch_test_`), so a test run can drop whatever it left.
    pub async fn create(server: &str) -> PgDatabase {
        use sqlx::Connection;
        let prefix = std::env::var("VOUCH_TEST_DB_PREFIX").unwrap_or_else(|_| "vouch_test_".into());
        let name = format!("{prefix}{}", hex::encode(rand_bytes()));
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server} is not reachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        PgDatabase {
            server: server.to_string(),
            name,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    pub async fn drop_database(&self) {
        use sqlx::Connection;
        if let Ok(mut admin) =
            sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await
        {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

fn rand_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

pub type WrapCa = Box<dyn FnOnce(LocalCa) -> Arc<dyn PublishingCa>>;

pub struct Options {
    pub clock: SharedClock,
    /// Wrap the embedded CA (e.g. to inject failures).
    pub wrap_ca: Option<WrapCa>,
    /// Extra profile files (name, TOML) to install before start.
    pub extra_profiles: Vec<(String, String)>,
    /// TSA certificates (PEM) to trust for signature timestamps (`<data-dir>/tsa/`).
    pub tsa_anchors: Vec<String>,
    /// Roots (PEM) of other CAs whose signers the verification API accepts (`<data-dir>/anchors/`).
    pub trust_anchors: Vec<String>,
    /// The text of `<data-dir>/upstream.toml` (remote CAs), read as `vouch serve` reads it.
    pub upstream_toml: Option<String>,
    /// How long a remote CA's OCSP answer stands (`--upstream-ocsp-reuse-secs`); default 300 s.
    pub upstream_ocsp_reuse: Option<std::time::Duration>,
    /// When failed CA calls are retried (short periods for the fault tests).
    pub retry: vouch::ra::RetrySchedule,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            wrap_ca: None,
            extra_profiles: Vec::new(),
            tsa_anchors: Vec::new(),
            trust_anchors: Vec::new(),
            upstream_toml: None,
            upstream_ocsp_reuse: None,
            retry: Default::default(),
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> TestApp {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = match postgres_server() {
            Some(server) => Some(PgDatabase::create(&server).await),
            None => None,
        };
        let mut data = DataDir::new(dir.path().join("data"));
        if let Some(db) = &pg {
            data = data.with_database(Database::Postgres(db.url()));
        }
        let token = app::init(&data, &CaOptions::default(), &opts.clock)
            .await
            .expect("init")
            .expect("bootstrap token");
        for (name, text) in &opts.extra_profiles {
            std::fs::write(data.profiles_dir().join(name), text).expect("write profile");
        }
        for (i, pem) in opts.tsa_anchors.iter().enumerate() {
            std::fs::create_dir_all(data.tsa_dir()).expect("tsa dir");
            std::fs::write(data.tsa_dir().join(format!("tsa-{i}.pem")), pem).expect("write TSA");
        }
        for (i, pem) in opts.trust_anchors.iter().enumerate() {
            std::fs::create_dir_all(data.anchors_dir()).expect("anchors dir");
            std::fs::write(data.anchors_dir().join(format!("root-{i}.pem")), pem)
                .expect("write anchor");
        }
        if let Some(text) = &opts.upstream_toml {
            cfssl::write_private(&data.upstream_file(), text);
        }
        let store = Store::connect(&data.database_target())
            .await
            .expect("store");
        let local = LocalCa::load(&data.ca_dir()).expect("ca");
        let listener = app::bind("127.0.0.1:0".parse().unwrap(), None).expect("bind");
        let attribute_authority = app::attribute_authority(
            &store,
            &local,
            &data.ca_dir(),
            Some(&listener.url()),
            false,
            opts.clock.now(),
        )
        .await
        .expect("attribute authority");
        // The embedded CA also does the root's duties (ARL, issuing CA certificate), as in
        // `app::open`; a wrapped CA stands for a remote one, which has its own.
        let (ca, embedded): (Arc<dyn PublishingCa>, _) = match opts.wrap_ca {
            Some(wrap) => (wrap(local), None),
            None => {
                let local = Arc::new(local);
                (local.clone(), Some(local))
            }
        };
        let profiles = Profiles::load_dir(&data.profiles_dir()).expect("profiles");
        let upstreams = vouch::ca::upstreams::load(&data.upstream_file(), data.root(), &profiles)
            .await
            .expect("upstream CAs");
        let config = RaConfig {
            upstreams,
            public_url: Some(listener.url()),
            embedded_ca: embedded,
            attribute_authority,
            tsa_anchors: data.tsa_anchors().expect("TSA anchors"),
            trust_anchors: data.trust_anchors().expect("trust anchors"),
            retry: opts.retry,
            issuance_journal: Some(data.issuance_journal_dir()),
            upstream_ocsp_reuse: opts
                .upstream_ocsp_reuse
                .unwrap_or(vouch::ra::upstream_ocsp::DEFAULT_OCSP_REUSE),
            ..Default::default()
        };
        let ra = Ra::new(store, ca, profiles, opts.clock, config);
        let server = app::serve_on(listener, ra.clone(), Default::default())
            .await
            .expect("serve");
        TestApp {
            base: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
            admin: token.to_string(),
            data,
            ra,
            pg,
            server: Some(server),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.ra.store().close().await;
        if let Some(db) = &self.pg {
            db.drop_database().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        split(resp).await
    }

    pub async fn post_empty(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("POST");
        split(resp).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        split(resp).await
    }

    /// Create an operator through the admin API; returns its token.
    pub async fn operator(&self, name: &str, roles: &[&str]) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                "/api/v1/operators",
                json!({"name": name, "roles": roles}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// `vouch upstream queue --json` on the app's data directory and database.
    pub fn upstream_queue(&self) -> Value {
        serde_json::from_str(&self.upstream_queue_text(&["--json"])).unwrap()
    }

    /// What `vouch upstream queue ARGS` prints on the app's data directory and database.
    pub fn upstream_queue_text(&self, args: &[&str]) -> String {
        let out = self.upstream_queue_run(args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `vouch upstream queue ARGS` on the app's data directory and database, as it ended.
    pub fn upstream_queue_run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(["upstream", "queue", "--data-dir"])
            .arg(self.data.root())
            .args(args)
            .env("VOUCH_LOG", "warn");
        if let Some(db) = &self.pg {
            cmd.env("VOUCH_DATABASE_URL", db.url());
        }
        cmd.output().unwrap()
    }

    /// The whole audit log as an auditor reads it over the API (an auditor is created per call).
    pub async fn audit_entries(&self) -> Vec<Value> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let auditor = self.operator(&format!("auditor-{n}"), &["auditor"]).await;
        let (status, body) = self.get(&auditor, "/api/v1/audit?limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"].as_array().expect("entries").clone()
    }

    /// Download the public CA certificates into `dir` as `root.pem` and `issuing.pem`; returns
    /// (root, issuing) paths.
    pub async fn save_ca_certs(&self, dir: &Path) -> (PathBuf, PathBuf) {
        for id in ["root", "issuing"] {
            let resp = self
                .client
                .get(self.url(&format!("/ca/{id}.pem")))
                .send()
                .await
                .expect("GET CA");
            assert_eq!(resp.status(), StatusCode::OK);
            std::fs::write(dir.join(format!("{id}.pem")), resp.text().await.unwrap()).unwrap();
        }
        (dir.join("root.pem"), dir.join("issuing.pem"))
    }

    /// A clerk and an approver, the usual cast.
    pub async fn clerk_and_approver(&self) -> (String, String) {
        (
            self.operator("clerk1", &["clerk"]).await,
            self.operator("approver1", &["approver"]).await,
        )
    }

    pub async fn person(&self, clerk: &str, name: &str, valid_until: &str) -> String {
        let (status, body) = self
            .post(
                clerk,
                "/api/v1/subscribers",
                json!({"kind": "person", "name": name, "email": "person@example.org",
                       "identifiers": [{"type": "national-id", "number": "110101199003070011",
                                         "issuer": "Public Security Bureau", "valid_until": valid_until}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn submit(
        &self,
        clerk: &str,
        subscriber: &str,
        profile: &str,
        csr: &str,
    ) -> (StatusCode, Value) {
        self.post(
            clerk,
            "/api/v1/requests",
            json!({"subscriber_id": subscriber, "profile": profile, "csr": csr}),
        )
        .await
    }

    /// Register a person and submit a person-signing request with a fresh P-256 key; returns the
    /// pending request's id.
    pub async fn pending(&self, clerk: &str) -> String {
        let sub = self.person(clerk, "Li Wei", "2099-12-31").await;
        let (status, req) = self
            .submit(clerk, &sub, "person-signing", &p256_csr())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        req["id"].as_str().unwrap().to_string()
    }

    /// Register a person, submit a request and approve it; returns the issued serial.
    pub async fn issue(&self, clerk: &str, approver: &str, csr: &str) -> String {
        let sub = self.person(clerk, "Li Wei", "2099-12-31").await;
        let (status, req) = self.submit(clerk, &sub, "person-signing", csr).await;
        assert_eq!(status, StatusCode::CREATED, "{req}");
        let (status, body) = self
            .post_empty(
                approver,
                &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "issued");
        body["serial"].as_str().unwrap().to_string()
    }
}

pub async fn split(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub fn ec_key(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}

pub fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn csr_for(key: &PKey<Private>, md: MessageDigest, cn: &str) -> String {
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(key).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.sign(key, md).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

pub fn p256_csr() -> String {
    csr_for(
        &ec_key(Nid::X9_62_PRIME256V1),
        MessageDigest::sha256(),
        "ignored by the RA",
    )
}

/// Today plus `days`, as YYYY-MM-DD.
pub fn date_from_today(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A tool from the Python venv made by scripts/test.sh (or $VOUCH_TEST_VENV); fails, not skips,
/// when it is missing.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("VOUCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let bin = venv.join("bin").join(tool);
    assert!(
        bin.exists(),
        "{} not found: run scripts/test.sh (it creates the venv with pkilint and cryptography)",
        bin.display()
    );
    bin
}

/// Run a command; (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Server logs go to the test's captured output (shown when a test fails).
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The `vouch` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vouch");

/// A `vouch serve` child process, killed by PID when dropped.
pub struct Served {
    pub child: Child,
    pub addr: String,
    pub stdout: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve_process(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .envs(env.iter().copied())
        .env("VOUCH_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vouch serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server announced its address");
    let addr = url.split("://").nth(1).unwrap().to_string();
    // Everything printed on stdout before the server announced itself (stdout is line-buffered, so
    // it is in the pipe by now).
    let out = child.stdout.take().unwrap();
    let (otx, orx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = otx.send(line);
        }
    });
    let mut stdout = String::new();
    while let Ok(line) = orx.recv_timeout(Duration::from_millis(300)) {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    Served {
        child,
        addr,
        stdout,
    }
}

/// A self-signed P-256 TLS certificate for `localhost` and 127.0.0.1, made by the OpenSSL CLI in
/// `dir`; returns (certificate, key) PEM files.
pub fn self_signed_tls(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.pem"), dir.join("tls.key"));
    let (ok, text) = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(ok, "{text}");
    (cert, key)
}
