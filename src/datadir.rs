//! The data directory: `vouch.db` (SQLite, unless a PostgreSQL database is configured), `ca/`
//! (embedded CA keys and certificates), `profiles/` (certificate profiles), an optional
//! `vouch.toml` (settings such as `database_url`) and an optional `upstream.toml` (remote CAs). Created 0700; key files 0600.

use crate::error::{Error, Result};
use crate::store::Database;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A data directory, and the database its RA uses.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    /// A database other than `vouch.db` in the directory (e.g. PostgreSQL).
    database: Option<Database>,
}

/// Settings read from `<data-dir>/vouch.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    attribute_namespace: Option<String>,
}

impl DataDir {
    /// The data directory at `root`, using `vouch.db` in it unless told otherwise.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir {
            root: root.into(),
            database: None,
        }
    }

    /// Use this database instead of `vouch.db` in the directory.
    pub fn with_database(mut self, database: Database) -> Self {
        self.database = Some(database);
        self
    }

    /// Resolve the database: `url` (from `--database-url` / `VOUCH_DATABASE_URL`) first, then
    /// `database_url` in `<data-dir>/vouch.toml`, else `vouch.db` in the directory.
    pub fn resolve_database(self, url: Option<&str>) -> Result<Self> {
        if let Some(url) = url {
            let db = Database::from_url(url)?;
            return Ok(self.with_database(db));
        }
        match self.file_config()?.database_url {
            Some(url) => Ok(self.with_database(Database::from_url(&url)?)),
            None => Ok(self),
        }
    }

    /// How role and application names become URIs in attribute certificates: the
    /// `attribute_namespace` of `<data-dir>/vouch.toml`, or [`crate::x509::ac::DEFAULT_NAMESPACE`].
    pub fn attribute_names(&self) -> Result<crate::x509::ac::AttributeNames> {
        match self.file_config()?.attribute_namespace {
            Some(ns) => crate::x509::ac::AttributeNames::new(&ns),
            None => Ok(Default::default()),
        }
    }

    /// The settings of `<data-dir>/vouch.toml` (all unset when there is none).
    fn file_config(&self) -> Result<FileConfig> {
        let file = self.config_file();
        if !file.exists() {
            return Ok(FileConfig::default());
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), &e))?;
        toml::from_str(&text).map_err(|e| {
            Error::invalid(
                "invalid_config",
                format!("{}: {}", file.display(), e.message()),
            )
        })
    }

    /// `<data-dir>/vouch.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("vouch.toml")
    }

    /// The database this directory's RA uses.
    pub fn database_target(&self) -> Database {
        self.database
            .clone()
            .unwrap_or_else(|| Database::Sqlite(self.database()))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite file used when no other database is configured.
    pub fn database(&self) -> PathBuf {
        self.root.join("vouch.db")
    }

    fn database_target_path(&self) -> Option<PathBuf> {
        match self.database_target() {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }

    /// `<data-dir>/ca`: the embedded CA's keys and certificates.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    /// `<data-dir>/upstream.toml`: the remote CAs and the profiles each signs; optional.
    pub fn upstream_file(&self) -> PathBuf {
        self.root.join("upstream.toml")
    }

    /// `<data-dir>/issuance-journal`: remote CAs' answers kept until the database has recorded
    /// them (see `ra::journal`).
    pub fn issuance_journal_dir(&self) -> PathBuf {
        self.root.join("issuance-journal")
    }

    /// `<data-dir>/console.key`: the key that seals operators' TOTP secrets in the database
    /// (0600, made at the first start).
    pub fn console_key_file(&self) -> PathBuf {
        self.root.join("console.key")
    }

    /// `<data-dir>/tsa`: the TSA certificates (PEM) whose RFC 3161 timestamps the verification
    /// API trusts; optional.
    pub fn tsa_dir(&self) -> PathBuf {
        self.root.join("tsa")
    }

    /// The certificates (DER) of every `*.pem` in [`DataDir::tsa_dir`]; none without the
    /// directory. A file that is not PEM certificates stops the start, naming it.
    pub fn tsa_anchors(&self) -> Result<Vec<Vec<u8>>> {
        pem_certificates(&self.tsa_dir())
    }

    /// `<data-dir>/anchors`: root certificates (PEM) of other CAs whose subscribers' signatures
    /// the verification API accepts; optional.
    pub fn anchors_dir(&self) -> PathBuf {
        self.root.join("anchors")
    }

    /// The certificates (DER) of every `*.pem` in [`DataDir::anchors_dir`].
    pub fn trust_anchors(&self) -> Result<Vec<Vec<u8>>> {
        pem_certificates(&self.anchors_dir())
    }

    /// `<data-dir>/profiles`: the certificate profiles.
    pub fn profiles_dir(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// Fail with a clear message unless `vouch init` (or a first `vouch serve`) has run here.
    pub fn require_initialised(&self) -> Result<()> {
        let ready = match &self.database {
            Some(Database::Postgres(_)) => self.ca_dir().exists(),
            _ => self.database_target_path().is_some_and(|p| p.exists()),
        };
        if ready {
            return Ok(());
        }
        let dir = self.root.display();
        Err(Error::invalid(
            "not_initialised",
            format!("{dir} is not a Vouch data directory; run `vouch init --data-dir {dir}`"),
        ))
    }

    /// Create the directory tree (0700) if missing. Existing directories are left as they are.
    /// The CA directory is made by the CA itself when it is generated.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [self.root.clone(), self.profiles_dir()] {
            if dir.exists() && !dir.is_dir() {
                return Err(Error::environment(format!(
                    "{} is a file, not a directory; give --data-dir a directory (new or existing)",
                    dir.display()
                )));
            }
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
            }
        }
        Ok(())
    }

    /// Write the built-in profiles that are not there yet; an operator's edits are kept.
    pub fn install_profiles(&self) -> Result<()> {
        for (file, text) in crate::x509::profile::BUILT_IN {
            let path = self.profiles_dir().join(file);
            if !path.exists() {
                std::fs::write(&path, text)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), &e))?;
            }
        }
        Ok(())
    }
}

pub use crate::ca::files::write_secret_file;

/// The certificates (DER) of every `*.pem` in `dir`; none without the directory. A file that is
/// not PEM certificates is an error naming it.
fn pem_certificates(dir: &Path) -> Result<Vec<Vec<u8>>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), &e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .map_err(|e| Error::io(format!("reading {}", dir.display()), &e))?
                .path(),
        );
    }
    paths.sort();
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let pem = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?;
        let certs = openssl::x509::X509::stack_from_pem(&pem).map_err(|_| {
            Error::invalid(
                "invalid_config",
                format!("{}: not PEM certificates", path.display()),
            )
        })?;
        for c in certs {
            out.push(c.to_der().map_err(Error::internal)?);
        }
    }
    Ok(out)
}
