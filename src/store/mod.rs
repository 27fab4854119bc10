//! Storage: the only module that runs SQL. SQLite (WAL, synchronous=FULL: every commit is durable)
//! with one writer connection driven by the group-commit task in [`writer`], and a pool of
//! read-only connections.

pub mod audit;
pub mod certificates;
pub mod operators;
pub mod requests;
pub mod subscribers;
mod writer;

use crate::error::{Error, Result};
use audit::NewEntry;
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub type Conn = SqliteConnection;
/// Audit entries a write job adds; they are chained and stored with the job's changes.
pub type AuditLog = Vec<NewEntry>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct Store {
    writer: tokio::sync::mpsc::Sender<writer::Queued>,
    reader: SqlitePool,
}

impl Store {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(Error::internal)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = opts.connect().await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| Error::internal(format!("migrations: {e}")))?;
        restrict_permissions(path);
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            // A local file: a liveness ping before every checkout would only add a round trip.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Store {
            writer: writer::spawn(conn),
            reader,
        })
    }

    /// Run `job` in a write transaction, batched with other writers' jobs; returns once its
    /// changes and audit entries are durably committed. See [`writer`] for the job contract.
    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn, &'c mut AuditLog) -> BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        let (queued, reply) = writer::queued(Box::new(move |conn, log| {
            Box::pin(async move {
                job(conn, log)
                    .await
                    .map(|v| Box::new(v) as Box<dyn std::any::Any + Send>)
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

    /// A pooled read-only connection.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>> {
        Ok(self.reader.acquire().await?)
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

/// True when `e` is a unique-constraint violation (someone else got there first).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
