//! The key that seals TOTP secrets in the database (AES-256-GCM, ring): kept in
//! `<data-dir>/console.key` (0600), so a database dump alone does not hold the secrets. The
//! operator id is the additional data: a sealed secret moved to another operator's row does not
//! open.

use crate::error::{Error, Result};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::path::Path;
use zeroize::Zeroizing;

/// An AES-256-GCM key for TOTP secrets.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    fn from_bytes(bytes: &[u8]) -> Result<SealKey> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .map(|k| SealKey(LessSafeKey::new(k)))
            .map_err(|_| Error::Internal("console key: not an AES-256 key".into()))
    }

    /// A random key held in memory only (tests, and a server given no key file: enrolments then
    /// do not survive a restart).
    pub fn ephemeral() -> SealKey {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        // 32 bytes is what AES-256 takes.
        Self::from_bytes(raw.as_ref()).unwrap_or_else(|_| unreachable!("32-byte key"))
    }

    /// The key in `path`, created (0600, 32 random bytes) when missing.
    pub fn load_or_create(path: &Path) -> Result<SealKey> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != 32 {
                    return Err(Error::Environment(format!(
                        "{}: expected 32 bytes, found {}; restore it from a backup (TOTP \
                         enrolments need it)",
                        path.display(),
                        bytes.len()
                    )));
                }
                Self::from_bytes(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut raw = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(raw.as_mut());
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .and_then(|mut f| f.write_all(raw.as_ref()).map(|()| f))
                    .map_err(|e| Error::Environment(format!("{}: {e}", path.display())))?;
                f.flush()
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::Environment(format!("{}: {e}", path.display())))?;
                Self::from_bytes(raw.as_ref())
            }
            Err(e) => Err(Error::Environment(format!("{}: {e}", path.display()))),
        }
    }

    /// Seal `secret` for operator `id`: nonce, then ciphertext and tag.
    pub fn seal(&self, id: &str, secret: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = secret.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::Internal("sealing a TOTP secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Open what [`SealKey::seal`] sealed for `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Internal("sealed TOTP secret too short".into()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Internal("sealed TOTP nonce".into()))?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(id.as_bytes()), buf.as_mut_slice())
            .map_err(|_| {
                Error::Internal(
                    "a TOTP secret does not open with console.key (wrong key file?)".into(),
                )
            })?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_for_their_operator_only_and_do_not_show_the_secret() {
        let key = SealKey::ephemeral();
        let secret = b"12345678901234567890";
        let sealed = key.seal("op_a", secret).unwrap();
        assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        assert_eq!(key.open("op_a", &sealed).unwrap().as_slice(), secret);
        assert!(key.open("op_b", &sealed).is_err());
        assert!(SealKey::ephemeral().open("op_a", &sealed).is_err());
    }

    #[test]
    fn the_key_file_is_created_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.key");
        let sealed = SealKey::load_or_create(&path)
            .unwrap()
            .seal("op", b"s")
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SealKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("op", &sealed).unwrap().as_slice(), b"s");
    }
}
