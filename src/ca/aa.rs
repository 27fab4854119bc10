//! The attribute authority: a key of its own beside the CA keys (`ca/aa.key`, 0600) and a
//! certificate the embedded root issued (`ca/aa.pem`: cA=false, digitalSignature and
//! cRLSign for the AC CRL; RFC 5755 4.5).
//! It signs attribute certificates and the AC CRL itself, whichever CA signs identity
//! certificates.

use super::files::{check_key_file_mode, pem_to_der, write_public_file};
use super::key::{crl_algorithm, CaKey, CaKeyAlgorithm};
use super::root::{Publication, RootKey};
use crate::error::{Error, Result};
use crate::x509::ac::{self, AcContent};
use crate::x509::crl::{self, SignatureAlgorithm};
use crate::x509::key_identifier;
use rcgen::{DistinguishedName, DnType, KeyPair, PublicKeyData, SigningKey};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// Id of the attribute authority's certificate (`/ca/aa.pem`), and of its CRL (`/crl/aa.crl`).
pub const AA_ID: &str = "aa";

/// How long a new AA certificate is valid (cut at the root's notAfter).
pub const AA_VALIDITY: Duration = Duration::days(365 * 10);

/// The common name of the AA's certificate.
pub const AA_COMMON_NAME: &str = "Vouch Attribute Authority";

fn key_path(dir: &Path) -> PathBuf {
    dir.join("aa.key")
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("aa.pem")
}

/// The attribute authority, key in hand.
pub struct AttributeAuthority {
    key: CaKey,
    der: Vec<u8>,
    name_der: Vec<u8>,
    key_id: Vec<u8>,
    algorithm: SignatureAlgorithm,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for AttributeAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttributeAuthority([secret])")
    }
}

/// What signing an attribute certificate needs besides what the AA knows.
#[derive(Debug, Clone)]
pub struct AcOrder<'a> {
    /// The AC's serial.
    pub serial: &'a crate::x509::serial::Serial,
    /// The holder certificate's issuer Name, DER.
    pub holder_issuer_der: &'a [u8],
    /// The holder certificate's serial (INTEGER content octets).
    pub holder_serial: &'a [u8],
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// roleName URIs.
    pub role_uris: &'a [String],
    /// Group names.
    pub groups: &'a [String],
    /// targetName URIs.
    pub target_uris: &'a [String],
    /// noRevAvail, or the AC CRL's URLs.
    pub revocation: ac::AcRevocation<'a>,
}

impl AttributeAuthority {
    /// Whether `dir` (the CA directory) holds an AA certificate.
    pub fn exists(dir: &Path) -> bool {
        cert_path(dir).exists()
    }

    /// Make the AA in `dir`: a new key of `root`'s algorithm and a certificate `root` issues for
    /// it, with `publication`'s ARL and caIssuers when given. The key and certificate are written
    /// as new files and renamed into place, key first: a run interrupted before the certificate
    /// is in place leaves only a key no certificate names, replaced by the next run. Returns the
    /// certificate (DER).
    pub fn create(
        dir: &Path,
        root: &RootKey,
        publication: Option<&Publication>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        if Self::exists(dir) {
            return Err(Error::conflict(
                "aa_exists",
                format!("{} exists", cert_path(dir).display()),
            ));
        }
        let alg: &'static rcgen::SignatureAlgorithm = match root.key_algorithm() {
            CaKeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CaKeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        };
        let key = CaKey(KeyPair::generate_for(alg).map_err(Error::internal)?);
        let der = root.issue_aa(
            &key.0.subject_public_key_info(),
            aa_name(root.organisation().as_deref()),
            now - Duration::minutes(5),
            now + AA_VALIDITY,
            publication,
        )?;
        let staged_key = dir.join("aa.key.new");
        let staged_cert = dir.join("aa.pem.new");
        for stale in [&staged_key, &staged_cert] {
            if stale.exists() {
                std::fs::remove_file(stale)
                    .map_err(|e| Error::internal(format!("removing {}: {e}", stale.display())))?;
            }
        }
        super::files::write_secret_file(
            &staged_key,
            Zeroizing::new(key.0.serialize_pem()).as_bytes(),
        )?;
        write_public_file(
            &staged_cert,
            crate::x509::pem_encode("CERTIFICATE", &der).as_bytes(),
        )?;
        for (from, to) in [(&staged_key, key_path(dir)), (&staged_cert, cert_path(dir))] {
            std::fs::rename(from, &to)
                .map_err(|e| Error::internal(format!("moving {} into place: {e}", to.display())))?;
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::internal)?;
        Ok(der)
    }

    /// A new certificate for the AA in `dir` (same key and subject, a new serial and validity,
    /// `publication`'s URLs), put in place. ACs signed before stay valid under it: they name the
    /// same issuer and key identifier. Returns the certificate (DER).
    pub fn reissue(
        dir: &Path,
        root: &RootKey,
        publication: Option<&Publication>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let old = Self::load(dir)?;
        let der = root.issue_aa(
            &old.key.0.subject_public_key_info(),
            aa_name(root.organisation().as_deref()),
            now - Duration::minutes(5),
            now + AA_VALIDITY,
            publication,
        )?;
        Self::replace_certificate(dir, &der)?;
        Ok(der)
    }

    /// Remove the AA that [`AttributeAuthority::create`] just made in `dir` (the database turned
    /// out bound to another one): the certificate first, so that what is left is never a
    /// certificate without its key.
    pub fn remove(dir: &Path) -> Result<()> {
        for path in [cert_path(dir), key_path(dir)] {
            std::fs::remove_file(&path)
                .map_err(|e| Error::internal(format!("removing {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Replace the AA certificate with `der` (a new certificate for the same key and subject,
    /// e.g. naming the ARL once the public URL is known). The old file is kept as
    /// `aa-<serial>.pem`.
    fn replace_certificate(dir: &Path, der: &[u8]) -> Result<()> {
        let old = Self::load(dir)?;
        let (_, new) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::internal(format!("attribute authority certificate: {e}")))?;
        if new.public_key().raw != old.key.0.subject_public_key_info().as_slice()
            || new.subject().as_raw() != old.name_der.as_slice()
        {
            return Err(Error::internal(
                "a replacement attribute authority certificate must keep the key and subject",
            ));
        }
        let serial = crate::x509::certificate::read(&old.der)
            .map_err(|e| Error::internal(format!("attribute authority certificate: {e}")))?
            .serial;
        let kept = dir.join(format!("aa-{}.pem", hex::encode(serial)));
        if !kept.exists() {
            write_public_file(
                &kept,
                crate::x509::pem_encode("CERTIFICATE", &old.der).as_bytes(),
            )?;
        }
        let staged = dir.join("aa.pem.new");
        write_public_file(
            &staged,
            crate::x509::pem_encode("CERTIFICATE", der).as_bytes(),
        )?;
        std::fs::rename(&staged, cert_path(dir))
            .map_err(|e| Error::internal(format!("replacing the AA certificate: {e}")))?;
        Ok(())
    }

    /// Load the AA from `dir`: the key (refused if others can read it) and its certificate,
    /// which must certify that key.
    pub fn load(dir: &Path) -> Result<Self> {
        let (kp, cp) = (key_path(dir), cert_path(dir));
        check_key_file_mode(&kp)?;
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))
        };
        let key_pem = Zeroizing::new(read(&kp)?);
        let key = CaKey(
            KeyPair::from_pem(&key_pem)
                .map_err(|e| Error::internal(format!("loading {}: {e}", kp.display())))?,
        );
        let der = pem_to_der(&read(&cp)?)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| Error::internal(format!("attribute authority certificate: {e}")))?;
        if cert.public_key().raw != key.0.subject_public_key_info().as_slice() {
            return Err(Error::internal(
                "the attribute authority key does not match its certificate",
            ));
        }
        Ok(AttributeAuthority {
            algorithm: crl_algorithm(&key.0)?,
            name_der: cert.subject().as_raw().to_vec(),
            key_id: key_identifier(&cert.public_key().subject_public_key.data),
            not_after: cert.validity().not_after.to_datetime(),
            key,
            der,
        })
    }

    /// The AA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The AA certificate's notAfter: no AC it signs outlives it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Sign one attribute certificate; returns its DER.
    pub fn sign_ac(&self, order: &AcOrder<'_>) -> Result<Vec<u8>> {
        let tbs = ac::encode::tbs(&AcContent {
            algorithm: self.algorithm,
            serial: order.serial,
            holder_issuer_der: order.holder_issuer_der,
            holder_serial: order.holder_serial,
            issuer_name_der: &self.name_der,
            key_id: &self.key_id,
            not_before: order.not_before,
            not_after: order.not_after,
            role_uris: order.role_uris,
            groups: order.groups,
            target_uris: order.target_uris,
            revocation: order.revocation,
        });
        let signature = self
            .key
            .sign(&tbs)
            .map_err(|e| Error::internal(format!("signing an attribute certificate: {e}")))?;
        Ok(ac::encode::assemble(&tbs, self.algorithm, &signature))
    }

    /// Sign the AC CRL: entries of revoked and held ACs, an issuingDistributionPoint with
    /// onlyContainsAttributeCerts naming `urls` (where it is published, when known).
    pub fn sign_crl(
        &self,
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        entries: &[crl::CrlEntry],
        urls: &[String],
    ) -> Result<Vec<u8>> {
        let tbs = crl::tbs(&crl::CrlContent {
            algorithm: self.algorithm,
            issuer_name_der: &self.name_der,
            key_id: &self.key_id,
            number,
            this_update,
            next_update,
            entries,
            removed: &[],
            delta_base: None,
            freshest_urls: &[],
            attribute_certs: Some(urls),
        });
        let signature = self
            .key
            .sign(&tbs)
            .map_err(|e| Error::internal(format!("signing the AC CRL: {e}")))?;
        Ok(crl::assemble(&tbs, self.algorithm, &signature))
    }
}

/// The AA's subject: the root's organisation, and [`AA_COMMON_NAME`].
fn aa_name(organisation: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = organisation {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, AA_COMMON_NAME);
    dn
}
