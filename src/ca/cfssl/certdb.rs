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
//! `certificates` only. One connection per lookup (a retry, a check), bounded with its query by
//! the CA's `timeout_secs`.

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;
use std::time::Duration;

/// Most rows read for one serial (one per CA sharing the database, in practice).
const MAX_ROWS: i64 = 16;

/// A CFSSL certificate database.
pub struct CertDb {
    url: CertDbUrl,
    timeout: Duration,
}

impl std::fmt::Debug for CertDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertDb").field("url", &self.url).finish()
    }
}

/// A certificate CFSSL's database holds: its PEM and CFSSL's status for it (`good`, `revoked`).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The certificate, PEM.
    pub pem: Vec<u8>,
    /// CFSSL's status text.
    pub status: String,
}

/// The query parameters a PostgreSQL `certdb_url` may carry (those sqlx reads; also
/// `options[NAME]`).
const PG_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
    "statement-cache-capacity",
];

/// Whether `url` carries a password (in its user information, or as a `password` parameter).
pub fn holds_password(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password"))
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
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        // sqlx logs a parameter it does not know, with its value (a misspelt password, say).
        if let Some((key, _)) = parsed
            .query_pairs()
            .find(|(k, _)| !PG_PARAMETERS.contains(&k.as_ref()) && !k.starts_with("options["))
        {
            return Err(format!(
                "the parameter `{key}` is not one of {}",
                PG_PARAMETERS.join(", ")
            ));
        }
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
            CertDbUrl::Postgres(o) => match o.get_socket() {
                Some(dir) => write!(
                    f,
                    "postgres (socket in {}, port {})/{}",
                    dir.display(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                ),
                None => write!(
                    f,
                    "postgres://{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                ),
            },
        }
    }
}

impl CertDb {
    /// The database at `url`; each lookup opens one connection (lookups are rare: a retry, a
    /// check), so that a failure says what failed, and gives up after `timeout` in all.
    pub fn new(url: &CertDbUrl, timeout: Duration) -> CertDb {
        CertDb {
            url: url.clone(),
            timeout,
        }
    }

    /// The certificates stored under the serial `decimal`.
    pub async fn by_serial(&self, decimal: &str) -> Result<Vec<Stored>, String> {
        use sqlx::Connection;
        let query = async {
            let rows: Vec<(Vec<u8>, Vec<u8>)> = match &self.url {
                CertDbUrl::Sqlite(o) => {
                    let options = (**o).clone().busy_timeout(self.timeout);
                    let mut c = sqlx::SqliteConnection::connect_with(&options).await?;
                    let rows = sqlx::query_as(
                        "SELECT CAST(pem AS BLOB), CAST(status AS BLOB) FROM certificates \
                         WHERE CAST(serial_number AS TEXT) = ?1 LIMIT ?2",
                    )
                    .bind(decimal)
                    .bind(MAX_ROWS)
                    .fetch_all(&mut c)
                    .await;
                    let _ = c.close().await;
                    rows?
                }
                CertDbUrl::Postgres(o) => {
                    let mut c = sqlx::PgConnection::connect_with(o).await?;
                    // A text column casts to bytea by its characters, as a bytea one holds them.
                    let rows = sqlx::query_as(
                        "SELECT pem::bytea, status::bytea FROM certificates \
                         WHERE serial_number::bytea = $1 LIMIT $2",
                    )
                    .bind(decimal.as_bytes())
                    .bind(MAX_ROWS)
                    .fetch_all(&mut c)
                    .await;
                    let _ = c.close().await;
                    rows?
                }
            };
            Ok::<_, sqlx::Error>(rows)
        };
        match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(rows)) => Ok(rows
                .into_iter()
                .map(|(pem, status)| Stored {
                    pem,
                    status: String::from_utf8_lossy(&status).trim().to_string(),
                })
                .collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs())),
        }
    }
}
