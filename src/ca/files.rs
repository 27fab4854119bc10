//! The files of the embedded CA's directory (`<data-dir>/ca`): where each key and certificate
//! lives, how key files are written (0600, new files only) and checked, and how certificate files
//! are written durably.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The files of a CA directory.
pub(crate) struct Paths {
    pub(crate) root_key: PathBuf,
    pub(crate) root_cert: PathBuf,
    pub(crate) issuing_key: PathBuf,
    pub(crate) issuing_cert: PathBuf,
}

/// Where the root and issuing CA keep their keys and certificates in `dir`.
pub(crate) fn paths(dir: &Path) -> Paths {
    Paths {
        root_key: dir.join("root.key"),
        root_cert: dir.join("root.pem"),
        issuing_key: dir.join("issuing.key"),
        issuing_cert: dir.join("issuing.pem"),
    }
}

/// Write a certificate file and flush it to disk.
pub(crate) fn write_public_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)
        .map_err(|e| Error::internal(format!("creating {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))
}

/// The DER of a PEM certificate.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(Error::internal)?;
    x.to_der().map_err(Error::internal)
}

/// Refuse to run with a CA key that others can read.
pub(crate) fn check_key_file_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::internal(format!(
            "{} is accessible by group or others; chmod 600 it",
            path.display()
        )));
    }
    Ok(())
}

/// Create a new file readable by the owner only and write `bytes` to it. Fails if it exists.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), &e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), &e))
}
