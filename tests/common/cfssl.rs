//! A real CFSSL (Debian `golang-cfssl`) for the upstream CA tests: a test CA made by the OpenSSL
//! CLI, a signing policy whose profiles need an HMAC auth key, a certificate database (SQLite,
//! its tables made with the sqlite3 CLI from CFSSL's own schema) so that `/revoke` works, and
//! `cfssl serve` on 127.0.0.1 at a free port, stopped by PID.

use super::run;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The HMAC key of the test policy, hex.
pub const AUTH_KEY: &str = "0123456789abcdef0123456789abcdef";

/// CFSSL's certificate database schema (certdb/sqlite/migrations/001_CreateCertificates.sql),
/// but for the types of the key columns: CFSSL declares them `bytea`, which SQLite gives NUMERIC
/// affinity, so a 20-byte decimal serial would be stored as a lossy REAL. TEXT keeps it exact.
const CERTDB_SCHEMA: &str = "
CREATE TABLE certificates (
  serial_number            TEXT NOT NULL,
  authority_key_identifier TEXT NOT NULL,
  ca_label                 bytea,
  status                   bytea NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      bytea NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            TEXT NOT NULL,
  authority_key_identifier TEXT NOT NULL,
  body                     bytea NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier) REFERENCES certificates(serial_number, authority_key_identifier)
);";

/// A test CA's files.
pub struct TestCaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Make a self-signed P-256 CA with the OpenSSL CLI in `dir`.
pub fn make_test_ca(dir: &Path) -> TestCaFiles {
    let (cert, key) = (dir.join("cfssl-ca.pem"), dir.join("cfssl-ca-key.pem"));
    let (ok, text) = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/O=City Test/CN=City CFSSL Test CA",
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(ok, "openssl req: {text}");
    TestCaFiles { cert, key }
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `cfssl serve`, killed by PID when stopped or dropped.
pub struct Cfssl {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    pub ca: TestCaFiles,
    pub db: PathBuf,
    dir: PathBuf,
}

impl Cfssl {
    /// A CA, a policy (profile `person` and the default: `usages` and `expiry` as given), a
    /// certificate database, and the server on a free port.
    pub fn start(dir: &Path, usages: &[&str], expiry: &str) -> Cfssl {
        Cfssl::start_with(dir, usages, expiry, false)
    }

    /// As [`Cfssl::start`]; with `client_serials`, the profiles sign under the serial the request
    /// carries (`ClientProvidesSerialNumbers`, as CFSSL 1.2 spells it in a profile: the field has
    /// no JSON tag), so that its database refuses a second certificate for one serial.
    pub fn start_with(dir: &Path, usages: &[&str], expiry: &str, client_serials: bool) -> Cfssl {
        let ca = make_test_ca(dir);
        let profile = serde_json::json!({"auth_key": "vouch", "expiry": expiry, "usages": usages,
            "ClientProvidesSerialNumbers": client_serials});
        let config = serde_json::json!({
            "signing": {"default": profile, "profiles": {"person": profile}},
            "auth_keys": {"vouch": {"type": "standard", "key": AUTH_KEY}},
        });
        std::fs::write(dir.join("cfssl-config.json"), config.to_string()).unwrap();
        let db = dir.join("certdb.sqlite");
        let (ok, text) = run(Command::new("sqlite3").arg(&db).arg(CERTDB_SCHEMA));
        assert!(ok, "sqlite3: {text}");
        let db_config = serde_json::json!({"driver": "sqlite3", "data_source": db});
        std::fs::write(dir.join("cfssl-db.json"), db_config.to_string()).unwrap();
        let port = free_port();
        let mut c = Cfssl {
            child: None,
            port,
            url: format!("http://127.0.0.1:{port}"),
            ca,
            db,
            dir: dir.to_path_buf(),
        };
        c.restart();
        c
    }

    /// Start the server (again) on its port, and wait until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("cfssl.log")).unwrap();
        let child = Command::new("cfssl")
            .args([
                "serve",
                "-address",
                "127.0.0.1",
                "-port",
                &self.port.to_string(),
            ])
            .arg("-ca")
            .arg(&self.ca.cert)
            .arg("-ca-key")
            .arg(&self.ca.key)
            .arg("-config")
            .arg(self.dir.join("cfssl-config.json"))
            .arg("-db-config")
            .arg(self.dir.join("cfssl-db.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cfssl serve (Debian golang-cfssl; scripts/test.sh installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cfssl serve exited ({status}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "cfssl serve did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the server (kill by PID).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("cfssl.log")).unwrap_or_default()
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca.cert).unwrap()
    }

    /// (status, reason) of the certificate with hex serial `serial` in CFSSL's database.
    pub fn certdb_status(&self, serial: &str) -> Option<(String, i64)> {
        let decimal = openssl::bn::BigNum::from_hex_str(serial)
            .unwrap()
            .to_dec_str()
            .unwrap()
            .to_string();
        let query = format!(
            "SELECT CAST(status AS TEXT) || '|' || COALESCE(reason, 0) FROM certificates \
             WHERE serial_number = '{decimal}'"
        );
        let (ok, text) = run(Command::new("sqlite3").arg(&self.db).arg(query));
        assert!(ok, "sqlite3: {text}");
        let line = text.lines().next()?;
        let (status, reason) = line.split_once('|')?;
        Some((status.to_string(), reason.trim().parse().unwrap_or(-1)))
    }

    /// The certificate (PEM) with hex serial `serial` from CFSSL's database, as an operator reads
    /// it to recover a certificate whose answer was lost.
    pub fn certdb_pem(&self, serial: &str) -> String {
        let decimal = openssl::bn::BigNum::from_hex_str(serial)
            .unwrap()
            .to_dec_str()
            .unwrap()
            .to_string();
        let query =
            format!("SELECT CAST(pem AS TEXT) FROM certificates WHERE serial_number = '{decimal}'");
        let (ok, text) = run(Command::new("sqlite3").arg(&self.db).arg(query));
        assert!(ok, "sqlite3: {text}");
        text
    }

    /// How many certificates CFSSL's database holds.
    pub fn certdb_count(&self) -> usize {
        let (ok, text) = run(Command::new("sqlite3")
            .arg(&self.db)
            .arg("SELECT COUNT(*) FROM certificates"));
        assert!(ok, "sqlite3: {text}");
        text.trim().parse().unwrap()
    }
}

impl Drop for Cfssl {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Write `upstream.toml` (or any file holding keys) readable by its owner only, as Vouch asks of
/// a file with keys written in it.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `upstream.toml` text for one CFSSL CA `id` at `url` with `key` (hex), signing `profiles`.
pub fn upstream_toml(id: &str, url: &str, key: &str, profiles: &[&str]) -> String {
    let profiles: Vec<String> = profiles.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "[[ca]]\nid = \"{id}\"\nkind = \"cfssl\"\nurl = \"{url}\"\nauth_key = \"{key}\"\n\
         cfssl_profile = \"person\"\nprofiles = [{}]\n",
        profiles.join(", ")
    )
}
