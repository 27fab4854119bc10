//! CFSSL's certificate database, read (never written) to find what CFSSL issued under a serial:
//! the lookup that CFSSL's HTTP API lacks (`certdb_url` in `upstream.toml`). CFSSL writes every
//! certificate it signs there (its `-db-config`), with the serial in decimal as Go's
//! `big.Int.String()` prints it and the PEM; with `"ClientProvidesSerialNumbers": true` that
//! serial is the one Vouch reserved for the request, so a certificate whose answer was lost is
//! found by the request's own idempotency key.
//!
//! CFSSL's schemas differ between releases and drivers (`TEXT` or `blob` columns in SQLite,
//! `bytea` or text in PostgreSQL), so the queries compare and read through casts that hold for
//! each. A SQLite file is opened read-only; a PostgreSQL account needs `SELECT` on
//! `certificates` only. One connection, opened when first needed, each query bounded by the CA's
//! `timeout_secs`.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Most rows read for one serial (one per CA sharing the database, in practice).
const MAX_ROWS: i64 = 16;

/// A CFSSL certificate database.
pub struct CertDb {
    pool: Pool,
    timeout: Duration,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for CertDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        };
        f.debug_struct("CertDb").field("kind", &kind).finish()
    }
}

/// Check `url` as a `certdb_url`: `sqlite:PATH` (relative paths from `data_dir`) or
/// `postgres://…`. Returns the connect options; nothing is opened.
pub fn parse(url: &str, data_dir: &std::path::Path) -> Result<CertDbUrl, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err("give the database file: sqlite:/var/lib/cfssl/certdb.db".into());
        }
        let path = data_dir.join(path);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .create_if_missing(false);
        return Ok(CertDbUrl::Sqlite(Box::new(options)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
        return Ok(CertDbUrl::Postgres(Box::new(options)));
    }
    Err("`sqlite:PATH` or `postgres://user@host/database` (CFSSL's -db-config)".into())
}

/// A checked `certdb_url`.
#[derive(Clone)]
pub enum CertDbUrl {
    /// A SQLite file, opened read-only.
    Sqlite(Box<SqliteConnectOptions>),
    /// A PostgreSQL database.
    Postgres(Box<PgConnectOptions>),
}

impl std::fmt::Debug for CertDbUrl {
    /// Without credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertDbUrl::Sqlite(o) => write!(f, "sqlite:{}", o.get_filename().display()),
            CertDbUrl::Postgres(o) => write!(
                f,
                "postgres://{}:{}/{}",
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or("")
            ),
        }
    }
}

impl CertDb {
    /// The database at `url`, connected when first asked; every query gives up after
    /// `timeout`.
    pub fn new(url: &CertDbUrl, timeout: Duration) -> CertDb {
        let pool = match url {
            CertDbUrl::Sqlite(o) => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(timeout)
                    .connect_lazy_with((**o).clone().busy_timeout(timeout)),
            ),
            CertDbUrl::Postgres(o) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(timeout)
                    .connect_lazy_with((**o).clone()),
            ),
        };
        CertDb { pool, timeout }
    }

    /// The PEM texts of the certificates stored under the serial `decimal`.
    pub async fn by_serial(&self, decimal: &str) -> Result<Vec<Vec<u8>>, String> {
        let query = async {
            match &self.pool {
                Pool::Sqlite(p) => {
                    sqlx::query_scalar::<_, Vec<u8>>(
                        "SELECT CAST(pem AS BLOB) FROM certificates \
                         WHERE CAST(serial_number AS TEXT) = ?1 LIMIT ?2",
                    )
                    .bind(decimal)
                    .bind(MAX_ROWS)
                    .fetch_all(p)
                    .await
                }
                Pool::Postgres(p) => {
                    // A text column casts to bytea by its characters, as a bytea one holds them.
                    sqlx::query_scalar::<_, Vec<u8>>(
                        "SELECT pem::bytea FROM certificates \
                         WHERE serial_number::bytea = $1 LIMIT $2",
                    )
                    .bind(decimal.as_bytes())
                    .bind(MAX_ROWS)
                    .fetch_all(p)
                    .await
                }
            }
        };
        match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs())),
        }
    }
}
