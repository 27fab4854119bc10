//! The embedded CA: a root and an issuing CA whose keys live in the data directory (files 0600),
//! loaded into zeroize-on-drop holders. Certificates are built with rcgen from the SPKI taken out of
//! the CSR (never from the CSR's signature algorithm: rcgen #448). What only this CA does (CRLs,
//! the OCSP responder's and the receipt signer's certificates) is in `services`.

mod services;

use super::files::{check_key_file_mode, paths, pem_to_der, write_public_file, write_secret_file};
use super::key::{crl_algorithm, CaKey};
use super::{CaCertificate, CaChain, CaError, CrlOrder, IssueOrder, UpstreamCa};
use crate::x509::crl;
use crate::x509::key_identifier;
use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use crate::x509::subject::DnAttr;
use async_trait::async_trait;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, SigningKey, SubjectPublicKeyInfo,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

pub use super::key::{CaKeyAlgorithm, CaOptions};

/// Id of the root CA certificate (`/ca/root.pem`).
pub const ROOT_ID: &str = "root";
/// Id of the issuing CA certificate (`/ca/issuing.pem`).
pub const ISSUING_ID: &str = "issuing";

/// The embedded CA, loaded: the issuing key in hand, and the chain it serves.
pub struct LocalCa {
    /// The CA directory (`<data-dir>/ca`).
    dir: PathBuf,
    issuer: Issuer<'static, CaKey>,
    /// The issuing CA's subjectKeyIdentifier, for CRLs' authorityKeyIdentifier.
    issuing_key_id: Vec<u8>,
    /// The issuing CA's subject Name (DER), the CRLs' issuer.
    issuing_name_der: Vec<u8>,
    /// How the issuing key signs (CRLs are encoded here, not by rcgen).
    crl_algorithm: crl::SignatureAlgorithm,
    /// Issuing CA certificate then root; the issuing one is replaced when it is re-issued.
    chain: std::sync::RwLock<Arc<CaChain>>,
    issuing_not_after: OffsetDateTime,
}

fn ca_err(context: &str) -> impl Fn(rcgen::Error) -> crate::error::Error + '_ {
    move |e| crate::error::Error::internal(format!("{context}: {e}"))
}

impl LocalCa {
    /// Whether `dir` holds a complete CA.
    pub fn exists(dir: &Path) -> bool {
        paths(dir).issuing_cert.exists()
    }

    /// Generate the root and issuing CA into `dir`, which must not exist yet. The files are
    /// written into a sibling `*.partial` directory that is renamed into place when complete, so an
    /// interrupted run leaves no half-made CA behind.
    pub fn create(dir: &Path, opts: &CaOptions, now: OffsetDateTime) -> crate::error::Result<()> {
        use crate::error::Error;
        use std::os::unix::fs::DirBuilderExt;
        if dir.exists() {
            return Err(Error::internal(format!(
                "{} exists but holds no complete CA; move it away",
                dir.display()
            )));
        }
        let staging = dir.with_extension("partial");
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .map_err(|e| Error::internal(format!("removing {}: {e}", staging.display())))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(|e| Error::internal(format!("creating {}: {e}", staging.display())))?;
        let p = paths(&staging);
        let root_key = CaKey(
            KeyPair::generate_for(opts.algorithm.rcgen()).map_err(ca_err("generating root key"))?,
        );
        let mut root = CertificateParams::default();
        root.distinguished_name = ca_name(&opts.organisation, "Vouch Root CA");
        root.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        root.not_before = now - Duration::minutes(5);
        root.not_after = now + Duration::days(365 * 20);
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.key_identifier_method =
            KeyIdMethod::PreSpecified(key_identifier(root_key.der_bytes()));
        let root_cert = root
            .self_signed(&root_key)
            .map_err(ca_err("signing root"))?;

        let issuing_key = CaKey(
            KeyPair::generate_for(opts.algorithm.rcgen())
                .map_err(ca_err("generating issuing key"))?,
        );
        let mut issuing = CertificateParams::default();
        issuing.distinguished_name = ca_name(&opts.organisation, "Vouch Issuing CA 1");
        issuing.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        issuing.not_before = now - Duration::minutes(5);
        issuing.not_after = now + Duration::days(365 * 10);
        issuing.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuing.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        issuing.use_authority_key_identifier_extension = true;
        issuing.key_identifier_method =
            KeyIdMethod::PreSpecified(key_identifier(issuing_key.der_bytes()));
        let root_issuer = Issuer::from_params(&root, &root_key);
        let issuing_cert = issuing
            .signed_by(&issuing_key, &root_issuer)
            .map_err(ca_err("signing issuing CA"))?;

        write_secret_file(
            &p.root_key,
            Zeroizing::new(root_key.0.serialize_pem()).as_bytes(),
        )?;
        write_secret_file(
            &p.issuing_key,
            Zeroizing::new(issuing_key.0.serialize_pem()).as_bytes(),
        )?;
        write_public_file(&p.root_cert, root_cert.pem().as_bytes())?;
        write_public_file(&p.issuing_cert, issuing_cert.pem().as_bytes())?;
        std::fs::rename(&staging, dir).map_err(|e| {
            Error::internal(format!("moving the new CA into {}: {e}", dir.display()))
        })?;
        // Make the rename itself durable.
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(Error::internal)?;
        }
        Ok(())
    }

    /// Load the CA in `dir`: the issuing key (refused if others can read it) and the chain.
    pub fn load(dir: &Path) -> crate::error::Result<Self> {
        use crate::error::Error;
        let p = paths(dir);
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))
        };
        check_key_file_mode(&p.issuing_key)?;
        if p.root_key.exists() {
            check_key_file_mode(&p.root_key)?;
        }
        let key_pem = Zeroizing::new(read(&p.issuing_key)?);
        let key = CaKey(KeyPair::from_pem(&key_pem).map_err(ca_err("loading issuing key"))?);
        let issuing_pem = read(&p.issuing_cert)?;
        let root_pem = read(&p.root_cert)?;
        let issuing_der = pem_to_der(&issuing_pem)?;
        let root_der = pem_to_der(&root_pem)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&issuing_der)
            .map_err(|e| Error::internal(format!("issuing CA certificate: {e}")))?;
        if parsed.public_key().raw != key.0.subject_public_key_info().as_slice() {
            return Err(Error::internal(
                "issuing CA key does not match its certificate",
            ));
        }
        let issuing_not_after = parsed.validity().not_after.to_datetime();
        let issuing_key_id = key_identifier(&parsed.public_key().subject_public_key.data);
        let issuing_name_der = parsed.subject().as_raw().to_vec();
        let crl_algorithm = crl_algorithm(&key.0)?;
        let issuer = Issuer::from_ca_cert_der(&issuing_der.clone().into(), key)
            .map_err(ca_err("loading issuing CA"))?;
        Ok(LocalCa {
            dir: dir.to_path_buf(),
            issuer,
            issuing_key_id,
            issuing_name_der,
            crl_algorithm,
            chain: std::sync::RwLock::new(Arc::new(CaChain::new(
                CaCertificate {
                    id: ISSUING_ID.to_string(),
                    der: issuing_der,
                },
                vec![CaCertificate {
                    id: ROOT_ID.to_string(),
                    der: root_der,
                }],
            ))),
            issuing_not_after,
        })
    }

    /// The root key file in the data directory; absent when the root is kept offline.
    pub fn root_key_path(&self) -> PathBuf {
        paths(&self.dir).root_key
    }

    /// Whether the root key is in the data directory.
    pub fn root_key_online(&self) -> bool {
        self.root_key_path().exists()
    }

    /// Read the root key: from `file` when given (an offline root brought in for a ceremony),
    /// else from the data directory.
    pub fn root_key(&self, file: Option<&Path>) -> crate::error::Result<super::root::RootKey> {
        let path = match file {
            Some(f) => f.to_path_buf(),
            None if self.root_key_online() => self.root_key_path(),
            None => {
                return Err(crate::error::Error::invalid(
                    "root_key_offline",
                    format!(
                        "the root key is not in {}: bring it in with --root-key FILE",
                        self.dir.display()
                    ),
                ))
            }
        };
        super::root::RootKey::load(&path, &self.chain_now().root().der)
    }

    fn chain_now(&self) -> Arc<CaChain> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The issuing CA certificate now in use (DER).
    pub fn issuing_der(&self) -> Vec<u8> {
        self.chain_now().issuing().der.clone()
    }

    /// Put a re-issued issuing CA certificate (same key and subject) in place: written next to
    /// the old one and renamed over it, then served. The old file is kept as
    /// `issuing-<old serial>.pem`.
    pub fn replace_issuing(&self, der: &[u8]) -> crate::error::Result<()> {
        use crate::error::Error;
        let (_, new) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::internal(format!("issuing CA certificate: {e}")))?;
        let old_der = self.issuing_der();
        let (_, old) = x509_parser::parse_x509_certificate(&old_der)
            .map_err(|e| Error::internal(format!("issuing CA certificate: {e}")))?;
        if new.public_key().raw != old.public_key().raw
            || new.subject().as_raw() != old.subject().as_raw()
        {
            return Err(Error::internal(
                "a replacement issuing CA certificate must keep the key and subject",
            ));
        }
        let p = paths(&self.dir);
        let kept = self.dir.join(format!(
            "issuing-{}.pem",
            old.raw_serial_as_string().replace(':', "")
        ));
        if !kept.exists() {
            write_public_file(
                &kept,
                crate::x509::pem_encode("CERTIFICATE", &old_der).as_bytes(),
            )?;
        }
        let staging = self.dir.join("issuing.pem.new");
        write_public_file(
            &staging,
            crate::x509::pem_encode("CERTIFICATE", der).as_bytes(),
        )?;
        std::fs::rename(&staging, &p.issuing_cert)
            .map_err(|e| Error::internal(format!("replacing {}: {e}", p.issuing_cert.display())))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::internal)?;
        let mut chain = self.chain.write().unwrap_or_else(|p| p.into_inner());
        *chain = Arc::new(chain.with_issuing_der(der.to_vec()));
        Ok(())
    }

    /// Sign a full or delta CRL (CRL number, authorityKeyIdentifier, reason codes, invalidity
    /// dates; deltaCRLIndicator or freshestCRL).
    pub fn sign_crl_now(&self, order: &CrlOrder) -> Result<Vec<u8>, CaError> {
        let tbs = crl::tbs(&crl::CrlContent {
            algorithm: self.crl_algorithm,
            issuer_name_der: &self.issuing_name_der,
            key_id: &self.issuing_key_id,
            number: order.number,
            this_update: order.this_update,
            next_update: order.next_update,
            entries: &order.entries,
            removed: &order.removed,
            delta_base: order.delta_base,
            freshest_urls: &order.freshest_urls,
            attribute_certs: None,
        });
        let signature = self
            .issuer
            .key()
            .sign(&tbs)
            .map_err(|e| CaError::Unavailable(format!("signing CRL: {e}")))?;
        Ok(crl::assemble(&tbs, self.crl_algorithm, &signature))
    }

    /// Build and sign, synchronously: signing is CPU work of tens of microseconds.
    pub fn sign(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        let (params, spki) = Self::params(order)?;
        let cert = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| CaError::Unavailable(format!("signing: {e}")))?;
        Ok(cert.der().to_vec())
    }

    /// Everything signing does but the signature: what this CA would refuse in `order`.
    fn params(order: &IssueOrder) -> Result<(CertificateParams, SubjectPublicKeyInfo), CaError> {
        let spki = SubjectPublicKeyInfo::from_der(&order.spki_der)
            .map_err(|e| CaError::Refused(format!("public key: {e}")))?;
        // rcgen re-encodes the key from its algorithm and bits: it must come out as it went in,
        // the canonical SubjectPublicKeyInfo, or the certificate would certify other bytes.
        if spki.subject_public_key_info() != order.spki_der {
            return Err(CaError::Refused(
                "the public key is not in its canonical encoding".into(),
            ));
        }
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(order.serial.as_bytes()));
        params.not_before = order.not_before;
        params.not_after = order.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(spki.der_bytes()));
        let mut dn = DistinguishedName::new();
        for (attr, value) in &order.subject.dn {
            match attr {
                DnAttr::CommonName => {
                    dn.push(DnType::CommonName, DnValue::Utf8String(value.clone()))
                }
                DnAttr::Organisation => {
                    dn.push(DnType::OrganizationName, DnValue::Utf8String(value.clone()))
                }
                DnAttr::SerialNumber => {
                    let printable = value
                        .clone()
                        .try_into()
                        .map_err(|_| CaError::Refused("serialNumber is not printable".into()))?;
                    // 2.5.4.5 serialNumber
                    dn.push(
                        DnType::CustomDnType(vec![2, 5, 4, 5]),
                        DnValue::PrintableString(printable),
                    )
                }
            }
        }
        params.distinguished_name = dn;
        for email in &order.subject.emails {
            let ia5 = email
                .clone()
                .try_into()
                .map_err(|_| CaError::Refused("email is not IA5".into()))?;
            params.subject_alt_names.push(SanType::Rfc822Name(ia5));
        }
        params.key_usages = order
            .key_usage
            .iter()
            .map(|u| match u {
                KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
                KeyUsage::NonRepudiation => KeyUsagePurpose::ContentCommitment,
                KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
                KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
                KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            })
            .collect();
        params.extended_key_usages = order
            .extended_key_usage
            .iter()
            .map(|u| match u {
                ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
                ExtendedKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
                ExtendedKeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
            })
            .collect();
        if !order.crl_urls.is_empty() {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: order.crl_urls.clone(),
            }];
        }
        if !order.ca_issuers_urls.is_empty() || !order.ocsp_urls.is_empty() {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    crate::x509::aia::encode(&order.ocsp_urls, &order.ca_issuers_urls),
                ));
        }
        Ok((params, spki))
    }
}

fn ca_name(organisation: &str, cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        DnValue::Utf8String(organisation.to_string()),
    );
    dn.push(DnType::CommonName, DnValue::Utf8String(cn.to_string()));
    dn
}

#[async_trait]
impl UpstreamCa for LocalCa {
    fn issuing_id(&self) -> &str {
        ISSUING_ID
    }

    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        self.sign(order)
    }

    fn check(&self, order: &IssueOrder) -> Result<(), CaError> {
        Self::params(order).map(|_| ())
    }

    fn chain(&self) -> Arc<CaChain> {
        self.chain_now()
    }

    fn max_not_after(&self) -> OffsetDateTime {
        self.issuing_not_after
    }

    async fn revoke(
        &self,
        _serial: &str,
        _reason: crate::x509::revocation::Reason,
        _time: OffsetDateTime,
    ) -> Result<(), CaError> {
        // Vouch publishes this CA's status itself (CRL, OCSP) from its own records.
        Ok(())
    }

    async fn release(&self, _serial: &str) -> Result<(), CaError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::serial::Serial;
    use crate::x509::subject::SubjectSpec;
    use openssl::nid::Nid;

    fn order(spki_der: Vec<u8>, now: OffsetDateTime) -> IssueOrder {
        IssueOrder {
            serial: Serial::random(),
            spki_der,
            csr_der: Vec::new(),
            subject: SubjectSpec {
                dn: vec![
                    (DnAttr::Organisation, "City".into()),
                    (DnAttr::CommonName, "Li Wei".into()),
                ],
                emails: vec!["li@example.org".into()],
            },
            not_before: now,
            not_after: now + Duration::days(30),
            key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::NonRepudiation],
            extended_key_usage: vec![ExtendedKeyUsage::EmailProtection],
            crl_urls: vec!["http://127.0.0.1:8080/crl/issuing.crl".into()],
            ca_issuers_urls: vec!["http://127.0.0.1:8080/ca/issuing.pem".into()],
            ocsp_urls: vec!["http://127.0.0.1:8080/ocsp".into()],
        }
    }

    #[test]
    fn p384_key_gets_a_p384_spki_whatever_the_csr_signature() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let ca_dir = dir.path().join("ca");
        LocalCa::create(&ca_dir, &CaOptions::default(), now).unwrap();
        let ca = LocalCa::load(&ca_dir).unwrap();
        let key = crate::x509::csr::tests::ec_key(Nid::SECP384R1);
        let spki = key.public_key_to_der().unwrap();
        let o = order(spki.clone(), now);
        let der = ca.sign(&o).unwrap();
        let cert = openssl::x509::X509::from_der(&der).unwrap();
        assert_eq!(
            cert.public_key().unwrap().public_key_to_der().unwrap(),
            spki
        );
        let issuing = openssl::x509::X509::from_der(&ca.chain()[0].der).unwrap();
        assert!(cert.verify(&issuing.public_key().unwrap()).unwrap());
        assert_eq!(
            hex::encode(cert.serial_number().to_bn().unwrap().to_vec()),
            o.serial.to_string()
        );
    }

    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        LocalCa::create(&dir, &CaOptions::default(), OffsetDateTime::now_utc()).unwrap();
        assert!(!dir.with_extension("partial").exists());
        for f in ["root.key", "issuing.key"] {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        for f in ["issuing.key", "root.key"] {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(LocalCa::load(&dir).is_err(), "{f} readable by others");
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(LocalCa::load(&dir).is_ok());
    }

    #[test]
    fn an_interrupted_creation_leaves_nothing_half_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        // A previous run died after writing part of the CA into the staging directory.
        std::fs::create_dir(dir.with_extension("partial")).unwrap();
        std::fs::write(dir.with_extension("partial").join("root.key"), "stale").unwrap();
        assert!(!LocalCa::exists(&dir));
        LocalCa::create(&dir, &CaOptions::default(), OffsetDateTime::now_utc()).unwrap();
        assert!(LocalCa::load(&dir).is_ok());
    }
}
