//! Storage: the only module that runs SQL, on SQLite (the embedded default) or PostgreSQL (several
//! instances on one database), through one code path: the queries are written once, in the SQL
//! both engines accept, and run over sqlx's `Any` driver.
//!
//! - SQLite: WAL, synchronous=FULL (every commit is durable), one writer connection driven by the
//!   group-commit task in [`writer`], and a pool of read-only connections.
//! - PostgreSQL: the same writer task per instance; each write transaction first takes a
//!   transaction-scoped advisory lock, so write batches from all instances are serialised and the
//!   audit chain stays one chain. Reads use a pool.

pub mod attributes;
pub mod audit;
pub mod blocklist;
pub mod ca;
pub mod certificates;
pub mod console;
mod error;
pub mod history;
pub mod keys;
pub mod operator_resets;
pub mod operators;
pub mod requests;
pub mod subscribers;
pub mod upstream_crls;
pub mod upstream_queue;
mod writer;

pub use error::is_unique_violation;
pub use writer::Committed;

/// A write job for [`Store::write`], written as a plain closure body:
///
/// ```ignore
/// store.write(job!(|c, log| {
///     rows::insert(c, &row).await?;
///     audit::record(log, now, event);
///     Ok(())
/// })).await?;
/// ```
///
/// `c` is the transaction's connection and `log` the job's audit entries; the closure moves what
/// it uses. It stands for `move |c, log| Box::pin(async move { … })`: Rust's async closures
/// cannot yet promise a `Send` future, which the writer task needs.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_job {
    (|$c:pat_param, $log:pat_param| $body:block) => {
        move |$c, $log| ::std::boxed::Box::pin(async move $body)
    };
    (|$c:pat_param, $log:pat_param| $body:expr) => {
        move |$c, $log| ::std::boxed::Box::pin(async move { $body })
    };
}
pub use crate::__store_job as job;

use crate::error::{Error, Result};
use audit::NewEntry;
use futures_util::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A database connection (either engine, through sqlx's `Any` driver).
pub type Conn = AnyConnection;
/// Audit entries a write job adds; they are chained and stored with the job's changes.
pub type AuditLog = Vec<NewEntry>;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database to use.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl Database {
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://path` a SQLite file.
    pub fn from_url(url: &str) -> Result<Database> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            AnyConnectOptions::from_str(url)
                .map_err(|e| Error::invalid("invalid_database_url", e.to_string()))?;
            return Ok(Database::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if !path.is_empty() {
                return Ok(Database::Sqlite(PathBuf::from(path)));
            }
        }
        Err(Error::invalid(
            "invalid_database_url",
            "database_url must start with postgres:// (or postgresql://) or sqlite://",
        ))
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Database::Sqlite(_) => &SQLITE_MIGRATOR,
            Database::Postgres(_) => &POSTGRES_MIGRATOR,
        }
    }
}

/// Never print a password that may be in the URL.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Database::Postgres(url) => write!(f, "{}", redact(url)),
        }
    }
}

/// Hide passwords: `postgres://user:secret@host/db?password=x&sslmode=require` ->
/// `postgres://user:***@host/db?password=***&sslmode=require`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_string(),
            },
            None => base.to_string(),
        },
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_wherever_they_are_in_the_url() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/vouch"),
            "postgres://app:***@db:5432/vouch"
        );
        assert_eq!(
            redact("postgres://app@db/vouch?sslmode=require&password=s3cret"),
            "postgres://app@db/vouch?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://app:p@ss@db/vouch"),
            "postgres://app:***@db/vouch"
        );
        assert_eq!(redact("postgres://db/vouch"), "postgres://db/vouch");
    }
}

/// The database: a read pool and the one writer task that batches write jobs. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: tokio::sync::mpsc::Sender<writer::Queued>,
    reader: AnyPool,
    postgres: bool,
}

const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";
const POSTGRES_WRITER_SETUP: &str = "SET statement_timeout = '30s'; SET lock_timeout = '30s'; \
     SET idle_in_transaction_session_timeout = '30s';";
const SQLITE_READER_SETUP: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

fn options(url: &str) -> Result<AnyConnectOptions> {
    Ok(AnyConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("invalid_database_url", e.to_string()))?
        .disable_statement_logging())
}

fn sqlite_url(path: &Path, mode: &str) -> String {
    format!("sqlite://{}?mode={mode}", path.display())
}

/// Bring the schema up to date (what `vouch migrate` does; `serve` does it at start too).
pub async fn migrate(db: &Database) -> Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = connect_writer(db).await?;
    run_migrations(db, &mut conn).await?;
    conn.close().await?;
    Ok(())
}

pub(crate) async fn connect_writer(db: &Database) -> Result<AnyConnection> {
    match db {
        Database::Sqlite(path) => {
            let mut conn = options(&sqlite_url(path, "rwc"))?
                .connect()
                .await
                .map_err(|e| sqlite_open_error(path, e))?;
            conn.execute(SQLITE_SETUP).await?;
            restrict_permissions(path);
            Ok(conn)
        }
        Database::Postgres(url) => {
            let mut conn = options(url)?
                .connect()
                .await
                .map_err(|e| postgres_connect_error(url, e))?;
            // A writer that stalls inside a transaction (frozen process, network cut) must not
            // hold the cross-instance write lock for long: the server ends such sessions.
            conn.execute(POSTGRES_WRITER_SETUP).await?;
            Ok(conn)
        }
    }
}

/// The SQLite file cannot be opened: almost always the directory's permissions or a path that is
/// not a directory.
fn sqlite_open_error(path: &Path, e: sqlx::Error) -> Error {
    let why = match &e {
        sqlx::Error::Io(io) => return Error::io(format!("opening {}", path.display()), io),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    Error::environment(format!(
        "cannot open the SQLite database {}: {why}; check that its directory exists, is a \
         directory, and is writable by this user",
        path.display()
    ))
}

/// PostgreSQL does not answer or refuses us: say where we tried (without the password) and what
/// to check.
fn postgres_connect_error(url: &str, e: sqlx::Error) -> Error {
    let why = match &e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: is PostgreSQL running and listening there?".to_string()
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    Error::environment(format!(
        "cannot connect to the database {}: {why} (set by --database-url, VOUCH_DATABASE_URL or \
         database_url in vouch.toml)",
        redact(url)
    ))
}

async fn run_migrations(db: &Database, conn: &mut AnyConnection) -> Result<()> {
    let migrator = db.migrator();
    if db.is_postgres() && up_to_date(migrator, conn).await {
        // The application role may lack CREATE rights: nothing to do, so do not ask.
        return Ok(());
    }
    // A migration may take longer than the writer's statement timeout.
    if db.is_postgres() {
        conn.execute("SET statement_timeout = 0").await?;
    }
    migrator
        .run(&mut *conn)
        .await
        .map_err(|e| Error::internal(format!("migrations: {e}")))?;
    if db.is_postgres() {
        conn.execute(POSTGRES_WRITER_SETUP).await?;
    }
    Ok(())
}

/// True when every migration is recorded as applied (with a matching checksum).
async fn up_to_date(migrator: &sqlx::migrate::Migrator, conn: &mut AnyConnection) -> bool {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => rows,
            Err(_) => return false,
        };
    migrator.iter().all(|m| {
        applied
            .iter()
            .any(|(v, sum)| *v == m.version && sum.as_slice() == &*m.checksum)
    })
}

impl Store {
    /// Open (creating if needed) the SQLite database at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        Self::connect(&Database::Sqlite(path.to_path_buf())).await
    }

    /// Open the database and bring its schema up to date.
    pub async fn connect(db: &Database) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let mut conn = connect_writer(db).await?;
        run_migrations(db, &mut conn).await?;
        let reader = match db {
            Database::Sqlite(path) => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    // A local file: a liveness ping before every checkout would only add a round
                    // trip.
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move { conn.execute(SQLITE_READER_SETUP).await.map(|_| ()) })
                    })
                    .connect_with(options(&sqlite_url(path, "ro"))?)
                    .await?
            }
            Database::Postgres(url) => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options(url)?)
                    .await?
            }
        };
        Ok(Store {
            writer: writer::spawn(conn, db.clone()),
            reader,
            postgres: db.is_postgres(),
        })
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Run `job` in a write transaction, batched with other writers' jobs; returns once its
    /// changes and audit entries are durably committed. See [`writer`] for the job contract: a job
    /// does database work only, since on SQLite it runs again (a fresh clone) when a job batched
    /// before it fails at the database and the batch is rolled back.
    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn, &'c mut AuditLog) -> BoxFuture<'c, Result<T>>
            + Clone
            + Send
            + 'static,
    {
        // A job may run more than once (see the writer's job contract), so each run gets a clone.
        let (queued, reply) = writer::queued(Box::new(move || -> writer::Job {
            let job = job.clone();
            Box::new(move |conn, log| {
                Box::pin(async move {
                    job(conn, log)
                        .await
                        .map(|v| Box::new(v) as Box<dyn std::any::Any + Send>)
                })
            })
        }));
        self.writer
            .send(queued)
            .await
            .map_err(|_| Error::internal("the writer has stopped"))?;
        let out = reply
            .await
            .map_err(|_| Error::internal("the writer dropped a job"))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::internal("write job returned an unexpected type"))
    }

    /// A pooled connection for reading.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.reader.acquire().await?)
    }

    /// Run `f` on a read connection inside one read-only transaction, so every statement in it sees
    /// the same snapshot of the database (SQLite: a deferred transaction; PostgreSQL: REPEATABLE
    /// READ).
    pub async fn read_snapshot<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<T>>,
    {
        let mut c = self.read().await?;
        let begin = if self.postgres {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN"
        };
        c.execute(begin).await?;
        let out = f(&mut c).await;
        if c.execute("ROLLBACK").await.is_err() {
            // Never hand a connection still inside a transaction back to the pool.
            let _ = c.detach().close().await;
        }
        out
    }

    /// Readiness: an (empty) write transaction commits through the writer, and a pooled read
    /// answers.
    pub async fn ready(&self) -> Result<()> {
        self.write(job!(|c, _| {
            certificates::status_version(c).await?;
            Ok(())
        }))
        .await?;
        let mut c = self.read().await?;
        certificates::status_version(&mut c).await?;
        Ok(())
    }

    /// Close the read pool; the writer stops when the last handle is dropped.
    pub async fn close(&self) {
        self.reader.close().await;
    }
}

/// The database holds token hashes and evidence records: keep it owner-only.
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [
        path.to_path_buf(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// PostgreSQL session advisory locks (on the connection that takes them, until it unlocks or
/// closes), for work that must run once across instances, such as migration and initialisation.
pub mod advisory {
    use super::Conn;
    use crate::error::Result;

    /// Take lock `key` if nobody holds it; whether it was taken.
    pub async fn try_lock(conn: &mut Conn, key: i64) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(conn)
            .await?)
    }

    /// Release the session lock `key` taken on this connection.
    pub async fn unlock(conn: &mut Conn, key: i64) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Settings that belong to the database rather than to one instance.
pub mod meta {
    use super::Conn;
    use crate::error::Result;

    /// The setting `key`, if it is set.
    pub async fn get(conn: &mut Conn, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM instance_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(conn)
                .await?,
        )
    }

    /// Set `key` (once: a key already set is a unique violation).
    pub async fn put(conn: &mut Conn, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO instance_meta (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Insert or replace.
    pub async fn set(conn: &mut Conn, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO instance_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
        Ok(())
    }
}
