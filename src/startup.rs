//! Start-up: migrations and initialisation run one at a time per data directory and per
//! database, and a first start says what it made.
//!
//! `vouch serve` holds `DIR/serve.lock` for its whole life (one server per data directory). The
//! short-lived `DIR/init.lock` taken here is another matter: every command that may create or
//! migrate something (`serve`, `init`, `migrate`, `operator add`, ...) holds it while it does, so
//! two commands started at the same moment on a new directory never run the migrations twice or
//! create the CA twice; the second waits (at most [`INIT_WAIT`]) and then finds the work done. On
//! PostgreSQL, instances on other hosts share the database, so a session advisory lock on the
//! database serialises the same steps across hosts.

use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::store::{self, Database, Store};
use sqlx::{AnyConnection, Connection};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command waits for another one to finish initialising or migrating.
pub const INIT_WAIT: Duration = Duration::from_secs(30);
/// Key of the PostgreSQL advisory lock held around migrations and initialisation ("vouci"); the
/// writer's per-transaction lock uses another key.
const INIT_LOCK_KEY: i64 = 0x0076_6f75_6369;
const POLL: Duration = Duration::from_millis(100);

/// Held while migrating or initialising; released by [`InitLock::release`] or when dropped (the
/// file lock by closing the file, the advisory lock by ending its session).
pub struct InitLock {
    _file: Option<File>,
    pg: Option<AnyConnection>,
}

/// The lock file of a data directory.
pub fn init_lock_path(data: &DataDir) -> PathBuf {
    data.root().join("init.lock")
}

impl InitLock {
    /// Take the data directory's `init.lock` (when the directory exists) and, on PostgreSQL, the
    /// database's advisory lock, waiting at most [`INIT_WAIT`] for each.
    pub async fn acquire(data: &DataDir) -> Result<InitLock> {
        let file = if data.root().is_dir() {
            Some(lock_file(data.root(), &init_lock_path(data)).await?)
        } else {
            None
        };
        let pg = match data.database_target() {
            Database::Postgres(url) => Some(advisory_lock(&Database::Postgres(url)).await?),
            Database::Sqlite(_) => None,
        };
        Ok(InitLock { _file: file, pg })
    }

    /// Release both locks now, ending the advisory lock's session cleanly.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.pg.take() {
            let _ = store::advisory::unlock(&mut conn, INIT_LOCK_KEY).await;
            let _ = conn.close().await;
        }
    }
}

async fn lock_file(dir: &Path, path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), &e))?;
    let deadline = tokio::time::Instant::now() + INIT_WAIT;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), &e))
            }
        }
        if !said {
            tracing::info!(
                "waiting for another vouch command to finish initialising {} (it holds {})",
                dir.display(),
                path.display()
            );
            said = true;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::environment(format!(
                "another vouch command has been initialising {dir} for over {secs} s (it holds \
                 {lock}); if it is stuck, stop it (`fuser {lock}` names it), then run \
                 `vouch init --data-dir {dir}`",
                dir = dir.display(),
                lock = path.display(),
                secs = INIT_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn advisory_lock(db: &Database) -> Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    let mut conn = store::connect_writer(db).await?;
    let deadline = tokio::time::Instant::now() + INIT_WAIT;
    let mut said = false;
    loop {
        if store::advisory::try_lock(&mut conn, INIT_LOCK_KEY).await? {
            return Ok(conn);
        }
        if !said {
            tracing::info!(
                "waiting for another instance to finish migrating or initialising the database"
            );
            said = true;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = conn.close().await;
            return Err(Error::environment(format!(
                "another Vouch instance has been migrating or initialising the database {db:?} \
                 for over {} s; if it is stuck, stop it, then run `vouch init` again",
                INIT_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Open the database of an initialised data directory, applying pending migrations under the
/// init lock. A directory that another command is initialising right now is waited for.
pub async fn open_store(data: &DataDir) -> Result<Store> {
    // Lock only a directory that is (or is becoming) a Vouch directory: no lock file is left in a
    // mistyped --data-dir.
    let lock = if init_lock_path(data).exists() || data.require_initialised().is_ok() {
        Some(InitLock::acquire(data).await?)
    } else {
        None
    };
    data.require_initialised()?;
    let store = Store::connect(&data.database_target()).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    store
}

/// `vouch migrate`: bring the schema up to date under the init lock.
pub async fn migrate(data: &DataDir) -> Result<()> {
    let lock = InitLock::acquire(data).await?;
    let done = store::migrate(&data.database_target()).await;
    lock.release().await;
    done
}

/// What a first start made, printed on stdout (before the token, which stays the last line).
pub struct Summary {
    lines: Vec<String>,
}

impl Summary {
    /// The data directory, the database (passwords hidden), the CA certificates (subject and
    /// SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it) and the profiles.
    pub fn of(data: &DataDir, profiles: &[String]) -> Summary {
        let root = data.root();
        let shown = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let mut lines = vec![
            format!("  data directory: {}", shown.display()),
            format!("  database:       {:?}", data.database_target()),
        ];
        for (label, file) in [("root CA:", "root.pem"), ("issuing CA:", "issuing.pem")] {
            let path = data.ca_dir().join(file);
            match describe_certificate(&path) {
                Some((subject, fingerprint)) => {
                    lines.push(format!("  {label:<16}{subject}"));
                    lines.push(format!("  {:<16}SHA-256 {fingerprint}", ""));
                }
                None => lines.push(format!("  {label:<16}{}", path.display())),
            }
        }
        lines.push(format!(
            "  profiles:       {} (in {})",
            profiles.join(", "),
            data.profiles_dir().display()
        ));
        Summary { lines }
    }

    /// The lines to print, each indented by two spaces.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// Subject and colon-separated SHA-256 fingerprint of a PEM certificate.
fn describe_certificate(path: &Path) -> Option<(String, String)> {
    let pem = std::fs::read(path).ok()?;
    let cert = openssl::x509::X509::from_pem(&pem).ok()?;
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let digest = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some((subject, fingerprint))
}

/// How to use a bootstrap token against `url`: one command to try.
pub fn token_example(url: &str) -> String {
    format!(
        "try it (with TOKEN set to the token below): curl -H \"Authorization: Bearer $TOKEN\" \
         {}/api/v1/operators",
        url.trim_end_matches('/')
    )
}
