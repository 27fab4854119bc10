//! The issuance journal: what a remote CA answered, kept in a file until the database has
//! recorded it.
//!
//! A remote CA cannot be asked "what did you issue for this request?" (CFSSL 1.2 has no lookup
//! by request), so its answer must not be lost between the CA and the database. The certificate
//! is written to `<data-dir>/issuance-journal/<request-id>.pem`, flushed to disk (the file and
//! the directory), before anything else is done with it; the entry is removed once the database
//! has recorded the certificate (or quarantined it). Reconciliation completes a request from its
//! entry without calling the CA again. An operator recovers a certificate whose answer was lost
//! before it reached the journal by writing it there under the request's id (see
//! docs/OPERATIONS.md, "Upstream CAs").

use super::Ra;
use crate::error::{Error, Result};
use crate::state::RequestState;
use crate::store::requests::{self as rows, IntentRow, RequestRow};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest journal entry read (a certificate in PEM, with room for explanatory text).
const MAX_ENTRY_BYTES: u64 = 256 * 1024;

/// The journal in a directory; a journal without one keeps nothing.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    dir: Option<PathBuf>,
}

/// Whether `id` can name a journal file: a request id (`req_` and hex), nothing that walks out of
/// the directory.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Journal {
    /// `path` as shown in errors, which reach API clients (`issuance.last_error`): relative to
    /// the data directory, not the server's absolute path.
    fn shown(&self, path: &Path) -> String {
        match self
            .dir
            .as_deref()
            .and_then(Path::parent)
            .and_then(|root| path.strip_prefix(root).ok())
        {
            Some(rel) => format!("<data directory>/{}", rel.display()),
            None => path.display().to_string(),
        }
    }

    fn io_error(&self, what: &str, path: &Path, e: std::io::Error) -> Error {
        Error::io(format!("issuance journal: {what} {}", self.shown(path)), &e)
    }

    /// A journal in `dir`, or none. With `now` (remote CAs are configured) the directory is
    /// made at once, owner only, rather than at the first answer kept, so that an operator
    /// recovering a certificate by hand (docs/OPERATIONS.md) finds it; a failure is logged, and
    /// the first write reports it again.
    pub fn new(dir: Option<PathBuf>, now: bool) -> Journal {
        if let (Some(d), true) = (&dir, now) {
            if let Err(e) = make_dir(d) {
                tracing::error!(dir = %d.display(), error = %e, "cannot create the issuance journal");
            }
        }
        Journal { dir }
    }

    fn path(&self, request_id: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        valid_id(request_id).then(|| dir.join(format!("{request_id}.pem")))
    }

    /// Keep `der`, the certificate a CA returned for `request_id`, durably: written to a
    /// temporary file, flushed, renamed into place, and the directory flushed.
    pub fn write(&self, request_id: &str, der: &[u8]) -> Result<()> {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.path(request_id)) else {
            return Ok(());
        };
        make_dir(dir).map_err(|e| self.io_error("cannot create", dir, e))?;
        let tmp = dir.join(format!(".{request_id}.pem.tmp"));
        let pem = crate::x509::pem_encode("CERTIFICATE", der);
        let mut file =
            std::fs::File::create(&tmp).map_err(|e| self.io_error("cannot write", &tmp, e))?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io_error("cannot write", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| self.io_error("cannot rename", &tmp, e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io_error("cannot flush", dir, e))
    }

    /// The certificate kept for `request_id` (DER), if any. An entry that cannot be read as a
    /// certificate is an error naming the file, for the operator to fix.
    pub fn read(&self, request_id: &str) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.path(request_id) else {
            return Ok(None);
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("cannot read", &path, e)),
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_ENTRY_BYTES), &mut text)
            .map_err(|e| self.io_error("cannot read", &path, e))?;
        let cert = openssl::x509::X509::from_pem(&text)
            .or_else(|_| openssl::x509::X509::from_der(&text))
            .map_err(|_| {
                Error::Environment(format!(
                    "issuance journal: {} is not a certificate (PEM or DER)",
                    self.shown(&path)
                ))
            })?;
        cert.to_der().map(Some).map_err(Error::internal)
    }

    /// Drop the entry of `request_id` (its certificate is recorded). A failure is logged: a
    /// stale entry is removed by a later reconciliation.
    pub fn remove(&self, request_id: &str) {
        if let Some(path) = self.path(request_id) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove an issuance journal entry")
                }
            }
        }
    }

    /// The request ids with an entry.
    pub fn entries(&self) -> Result<Vec<String>> {
        let Some(dir) = self.dir.as_ref() else {
            return Ok(Vec::new());
        };
        let listing = match std::fs::read_dir(dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("cannot list", dir, e)),
        };
        let mut ids = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| self.io_error("cannot list", dir, e))?;
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".pem")) {
                if valid_id(id) {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl Ra {
    /// Whether `req`'s intent still needs a certificate recorded: an approved request, or a
    /// cancelled one whose CA's answer is in the journal (`journaled`) and not recorded (it is
    /// recorded, and revoked at once). The journal entry of a request whose certificate is
    /// recorded, or that failed (a certificate that did not match the order is kept in its
    /// `certificate.quarantined` audit entry), is dropped.
    pub(super) fn still_to_record(
        &self,
        req: &RequestRow,
        intent: &IntentRow,
        journaled: bool,
    ) -> bool {
        let recorded = req.serial.is_some();
        let wanted = !recorded
            && match req.status {
                RequestState::Approved => true,
                RequestState::Cancelled => journaled,
                _ => false,
            };
        if journaled && !wanted {
            tracing::info!(request = %intent.request_id, status = %req.status,
                "dropping the issuance journal entry of a request that is completed");
            self.journal().remove(&intent.request_id);
        }
        wanted
    }

    /// Complete the requests whose CA's answer is in the journal, without calling the CA.
    /// Returns how many were issued.
    pub(super) async fn reconcile_journal(&self) -> Result<usize> {
        let mut done = 0;
        for id in self.journal().entries()? {
            let intent = {
                let mut c = self.store().read().await?;
                rows::intent_of(&mut c, &id).await?
            };
            let Some(intent) = intent else {
                tracing::error!(entry = %id, "an issuance journal entry names no request with an issuance intent; left for the operator");
                continue;
            };
            match self.complete_issuance(&intent, None).await {
                Ok(Some(_)) => done += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(request = %id, error = %e, "could not record the certificate kept in the issuance journal")
                }
            }
        }
        Ok(done)
    }
}

/// Make the journal directory (and its parents), owner only; one made by an earlier version
/// under the umask is narrowed to that.
fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_made_at_once_owner_only_and_an_old_one_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("fresh");
        Journal::new(Some(fresh.clone()), false);
        assert!(!fresh.exists(), "made only when remote CAs are configured");
        Journal::new(Some(fresh.clone()), true);
        assert_eq!(mode(&fresh), 0o700);
        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        Journal::new(Some(old.clone()), true);
        assert_eq!(mode(&old), 0o700);
    }

    #[test]
    fn an_entry_is_kept_read_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(Some(dir.path().join("j")), false);
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = openssl::pkey::PKey::from_ec_key(key).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(7).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "journal").unwrap();
        let name = name.build();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let der = b.build().to_der().unwrap();
        assert_eq!(journal.read("req_1").unwrap(), None);
        journal.write("req_1", &der).unwrap();
        assert_eq!(journal.entries().unwrap(), ["req_1"]);
        assert_eq!(journal.read("req_1").unwrap(), Some(der));
        journal.remove("req_1");
        assert!(journal.entries().unwrap().is_empty());
        // Nothing outside the directory is named.
        assert_eq!(journal.read("../etc/passwd").unwrap(), None);
        std::fs::write(dir.path().join("j/req_2.pem"), "not a certificate").unwrap();
        assert!(journal
            .read("req_2")
            .unwrap_err()
            .to_string()
            .contains("req_2.pem"));
    }
}
