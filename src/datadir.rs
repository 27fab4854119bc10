//! The data directory: `vouch.db` (SQLite), `ca/` (embedded CA keys and certificates) and
//! `profiles/` (certificate profiles). Created 0700; key files 0600.

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("vouch.db")
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// Fail with a clear message unless `vouch init` (or a first `vouch serve`) has run here.
    pub fn require_initialised(&self) -> Result<()> {
        if self.database().exists() {
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
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
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
                    .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
            }
        }
        Ok(())
    }
}

/// Create a new file readable by the owner only and write `bytes` to it. Fails if it exists.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("creating {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))
}
