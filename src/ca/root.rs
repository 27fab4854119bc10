//! The embedded root CA's own duties, which need its private key: signing the ARL (the CRL of CA
//! certificates, at `/crl/root.crl`) and re-issuing the issuing CA certificate with the extensions
//! relying parties follow to check it (cRLDistributionPoints to the ARL, AIA caIssuers to the root).
//!
//! The root key may live in the data directory (`ca/root.key`) or offline, in a file brought in
//! for a ceremony (`--root-key FILE`); either way it is read into a zeroize-on-drop holder, only
//! for as long as the command needs it.

use super::files::check_key_file_mode;
use super::key::CaKey;
use crate::error::{Error, Result};
use crate::x509::crl::{self, CrlEntry};
use crate::x509::key_identifier;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber, SubjectPublicKeyInfo,
};
use std::path::Path;
use time::OffsetDateTime;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

/// Where relying parties find the root's ARL and certificate, under the RA's public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// cRLDistributionPoints of the issuing CA certificate: the ARL.
    pub crl_urls: Vec<String>,
    /// AIA caIssuers of the issuing CA certificate: the root certificate, DER first (what Windows
    /// fetches), then PEM.
    pub ca_issuers_urls: Vec<String>,
}

impl Publication {
    /// The URLs the root's certificates carry when the RA publishes under `base_url` (which has passed [`crate::config::check_public_url`]). The URLs are built from the text as given, not re-serialised by the `url` crate, so certificates name the URL the operator typed.
    pub fn under(base_url: &str) -> Publication {
        let base = base_url.trim_end_matches('/');
        Publication {
            crl_urls: vec![format!("{base}/crl/root.crl")],
            ca_issuers_urls: vec![format!("{base}/ca/root.cer"), format!("{base}/ca/root.pem")],
        }
    }

    /// The URLs a certificate carries (empty lists when it has neither extension).
    pub fn of(cert_der: &[u8]) -> Result<Publication> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| Error::internal(format!("CA certificate: {e}")))?;
        let mut p = Publication {
            crl_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            p.crl_urls.extend(uris(names));
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for desc in aia.iter() {
                        // id-ad-caIssuers
                        if desc.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2" {
                            p.ca_issuers_urls
                                .extend(uris(std::slice::from_ref(&desc.access_location)));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }
}

fn uris(names: &[GeneralName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// The root CA, key in hand.
pub struct RootKey {
    issuer: Issuer<'static, CaKey>,
    name_der: Vec<u8>,
    key_id: Vec<u8>,
    algorithm: crl::SignatureAlgorithm,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([secret])")
    }
}

impl RootKey {
    /// Read the root key from `key_file` (PEM PKCS#8, readable by its owner only) and check that
    /// it is the key of `root_cert_der`.
    pub fn load(key_file: &Path, root_cert_der: &[u8]) -> Result<RootKey> {
        if !key_file.exists() {
            return Err(Error::invalid(
                "root_key_missing",
                format!("{}: no such file", key_file.display()),
            ));
        }
        check_key_file_mode(key_file)?;
        let pem =
            Zeroizing::new(std::fs::read_to_string(key_file).map_err(|e| {
                Error::invalid("bad_root_key", format!("{}: {e}", key_file.display()))
            })?);
        let key = CaKey(KeyPair::from_pem(&pem).map_err(|e| {
            Error::invalid(
                "bad_root_key",
                format!("{}: not a PEM private key: {e}", key_file.display()),
            )
        })?);
        let (_, cert) = x509_parser::parse_x509_certificate(root_cert_der)
            .map_err(|e| Error::internal(format!("root CA certificate: {e}")))?;
        if cert.public_key().raw != key.0.subject_public_key_info().as_slice() {
            return Err(Error::invalid(
                "root_key_mismatch",
                format!(
                    "{} is not the key of this data directory's root CA ({})",
                    key_file.display(),
                    cert.subject()
                ),
            ));
        }
        let name_der = cert.subject().as_raw().to_vec();
        let key_id = key_identifier(&cert.public_key().subject_public_key.data);
        let algorithm = super::key::crl_algorithm(&key.0)?;
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&root_cert_der.to_vec().into(), key)
            .map_err(|e| Error::internal(format!("loading the root CA: {e}")))?;
        Ok(RootKey {
            issuer,
            name_der,
            key_id,
            algorithm,
            not_after,
        })
    }

    /// Sign an ARL: the root's CRL, listing revoked CA certificates, with a CRL number and the
    /// root's authorityKeyIdentifier.
    pub fn sign_arl(
        &self,
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        entries: &[CrlEntry],
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
            attribute_certs: None,
        });
        use rcgen::SigningKey;
        let signature = self
            .issuer
            .key()
            .sign(&tbs)
            .map_err(|e| Error::internal(format!("signing the ARL: {e}")))?;
        Ok(crl::assemble(&tbs, self.algorithm, &signature))
    }

    /// A new certificate for the issuing CA of `issuing_der`: the same key, subject, validity,
    /// key usages, basic constraints and key identifiers, a new serial, and `publication`'s
    /// cRLDistributionPoints and AIA caIssuers. Certificates the issuing CA signed stay valid
    /// under it: they name the same issuer and authority key identifier.
    pub fn reissue_issuing(
        &self,
        issuing_der: &[u8],
        publication: &Publication,
    ) -> Result<Vec<u8>> {
        let (_, old) = x509_parser::parse_x509_certificate(issuing_der)
            .map_err(|e| Error::internal(format!("issuing CA certificate: {e}")))?;
        let spki = SubjectPublicKeyInfo::from_der(old.public_key().raw)
            .map_err(|e| Error::internal(format!("issuing CA key: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_name(old.subject())?;
        params.not_before = old.validity().not_before.to_datetime();
        params.not_after = old.validity().not_after.to_datetime();
        params.is_ca = match old.basic_constraints().ok().flatten() {
            Some(bc) if bc.value.ca => match bc.value.path_len_constraint {
                Some(n) => IsCa::Ca(BasicConstraints::Constrained(
                    u8::try_from(n).map_err(Error::internal)?,
                )),
                None => IsCa::Ca(BasicConstraints::Unconstrained),
            },
            _ => return Err(Error::internal("the issuing CA certificate is not a CA")),
        };
        if let Some(ku) = old.key_usage().ok().flatten() {
            let ku = ku.value;
            let flags = [
                (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
                (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
                (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
                (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
                (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
                (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
                (ku.crl_sign(), KeyUsagePurpose::CrlSign),
                (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
                (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
            ];
            params.key_usages = flags
                .into_iter()
                .filter_map(|(set, purpose)| set.then_some(purpose))
                .collect();
        }
        params.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        params.key_identifier_method =
            KeyIdMethod::PreSpecified(key_identifier(&old.public_key().subject_public_key.data));
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: publication.crl_urls.clone(),
        }];
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            crate::x509::aia::encode(&[], &publication.ca_issuers_urls),
        )];
        let new = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| Error::internal(format!("signing the issuing CA certificate: {e}")))?
            .der()
            .to_vec();
        same_ca(&old, &new)?;
        Ok(new)
    }
}

impl RootKey {
    /// The algorithm of the root's key (a new attribute authority key is made alike).
    pub fn key_algorithm(&self) -> super::key::CaKeyAlgorithm {
        match self.algorithm {
            crl::SignatureAlgorithm::EcdsaSha256 => super::key::CaKeyAlgorithm::P256,
            crl::SignatureAlgorithm::EcdsaSha384 => super::key::CaKeyAlgorithm::P384,
        }
    }

    /// The root's subject organisation (organizationName), for the names of what it certifies.
    pub fn organisation(&self) -> Option<String> {
        let (_, name) = x509_parser::x509::X509Name::from_der(&self.name_der).ok()?;
        let o = name.iter_organization().next()?;
        o.as_str().ok().map(str::to_string)
    }

    /// A certificate for the attribute authority's key `aa_spki_der`: subject `name`, valid from
    /// `not_before` to `not_after` (cut at the root's own notAfter), basicConstraints cA=false and
    /// keyUsage digitalSignature and cRLSign, both critical (RFC 5755 4.5: an AA is not a CA), key
    /// identifiers, and `publication`'s ARL and caIssuers when given.
    pub fn issue_aa(
        &self,
        aa_spki_der: &[u8],
        name: DistinguishedName,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        publication: Option<&Publication>,
    ) -> Result<Vec<u8>> {
        let spki = SubjectPublicKeyInfo::from_der(aa_spki_der)
            .map_err(|e| Error::internal(format!("attribute authority key: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.not_before = not_before;
        params.not_after = not_after.min(self.not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        // cRLSign too: the AA signs the AC CRL, and relying parties that check a CRL's issuer
        // (Bouncy Castle's PKIX revocation checks do) want it asserted (RFC 5280 4.2.1.3).
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        let (_, key) = x509_parser::x509::SubjectPublicKeyInfo::from_der(aa_spki_der)
            .map_err(|e| Error::internal(format!("attribute authority key: {e}")))?;
        params.key_identifier_method =
            KeyIdMethod::PreSpecified(key_identifier(&key.subject_public_key.data));
        params.use_authority_key_identifier_extension = true;
        if let Some(publication) = publication {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: publication.crl_urls.clone(),
            }];
            params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                crate::x509::aia::encode(&[], &publication.ca_issuers_urls),
            )];
        }
        Ok(params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| Error::internal(format!("signing the attribute authority: {e}")))?
            .der()
            .to_vec())
    }
}

/// The rcgen form of a Name, attribute by attribute in its order, each value in its string type;
/// the caller checks that the re-encoding comes out byte for byte the same.
fn rcgen_name(name: &x509_parser::x509::X509Name<'_>) -> Result<DistinguishedName> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| Error::internal("an attribute type out of range"))?
                .collect();
            let ty = match oid.as_slice() {
                [2, 5, 4, 3] => DnType::CommonName,
                [2, 5, 4, 10] => DnType::OrganizationName,
                [2, 5, 4, 11] => DnType::OrganizationalUnitName,
                [2, 5, 4, 6] => DnType::CountryName,
                [2, 5, 4, 7] => DnType::LocalityName,
                [2, 5, 4, 8] => DnType::StateOrProvinceName,
                _ => DnType::CustomDnType(oid.clone()),
            };
            let value = attr.attr_value();
            let text = || {
                std::str::from_utf8(value.data)
                    .map(str::to_string)
                    .map_err(|_| Error::internal("a CA name attribute is not text"))
            };
            let value = match value.tag() {
                Tag::Utf8String => DnValue::Utf8String(text()?),
                Tag::PrintableString => DnValue::PrintableString(
                    text()?
                        .try_into()
                        .map_err(|_| Error::internal("bad PrintableString"))?,
                ),
                other => {
                    return Err(Error::internal(format!(
                        "a CA name attribute of type {other} cannot be re-encoded"
                    )))
                }
            };
            dn.push(ty, value);
        }
    }
    Ok(dn)
}

/// Refuse a re-issued certificate that would not stand in for the old one in every chain.
fn same_ca(old: &x509_parser::certificate::X509Certificate<'_>, new_der: &[u8]) -> Result<()> {
    let (_, new) = x509_parser::parse_x509_certificate(new_der)
        .map_err(|e| Error::internal(format!("re-issued certificate: {e}")))?;
    let differs = |what: &str| {
        Err(Error::internal(format!(
            "the re-issued issuing CA certificate would differ in its {what}; nothing was changed"
        )))
    };
    if new.subject().as_raw() != old.subject().as_raw() {
        return differs("subject");
    }
    if new.issuer().as_raw() != old.issuer().as_raw() {
        return differs("issuer");
    }
    if new.public_key().raw != old.public_key().raw {
        return differs("public key");
    }
    if new.validity().not_before != old.validity().not_before
        || new.validity().not_after != old.validity().not_after
    {
        return differs("validity");
    }
    let ski = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
    };
    if ski(&new) != ski(old) {
        return differs("subject key identifier");
    }
    let bc = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.basic_constraints()
            .ok()
            .flatten()
            .map(|b| (b.value.ca, b.value.path_len_constraint))
    };
    if bc(&new) != bc(old) {
        return differs("basic constraints");
    }
    let ku = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.key_usage().ok().flatten().map(|k| k.value.flags)
    };
    if ku(&new) != ku(old) {
        return differs("key usage");
    }
    Ok(())
}

/// Read a PEM certificate file into DER.
#[cfg(test)]
fn read_cert(path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
    super::files::pem_to_der(&pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::local::{CaOptions, LocalCa};
    use openssl::x509::X509;

    #[test]
    fn reissued_issuing_ca_keeps_its_identity_and_gains_publication() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        LocalCa::create(&dir, &CaOptions::default(), OffsetDateTime::now_utc()).unwrap();
        let root_der = read_cert(&dir.join("root.pem")).unwrap();
        let issuing_der = read_cert(&dir.join("issuing.pem")).unwrap();
        let root = RootKey::load(&dir.join("root.key"), &root_der).unwrap();
        let publication = Publication::under("http://ra.example:8080/");
        let new = root.reissue_issuing(&issuing_der, &publication).unwrap();
        assert_eq!(Publication::of(&new).unwrap(), publication);
        assert_eq!(
            Publication::of(&issuing_der).unwrap(),
            Publication {
                crl_urls: vec![],
                ca_issuers_urls: vec![]
            }
        );
        let (old, new) = (
            X509::from_der(&issuing_der).unwrap(),
            X509::from_der(&new).unwrap(),
        );
        let root_cert = X509::from_der(&root_der).unwrap();
        assert!(new.verify(&root_cert.public_key().unwrap()).unwrap());
        assert_ne!(
            old.serial_number().to_bn().unwrap(),
            new.serial_number().to_bn().unwrap()
        );
        assert_eq!(
            old.subject_key_id().unwrap().as_slice(),
            new.subject_key_id().unwrap().as_slice()
        );
        assert_eq!(
            new.authority_key_id().unwrap().as_slice(),
            root_cert.subject_key_id().unwrap().as_slice()
        );
    }

    #[test]
    fn a_key_that_is_not_the_roots_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        LocalCa::create(&dir, &CaOptions::default(), OffsetDateTime::now_utc()).unwrap();
        let root_der = read_cert(&dir.join("root.pem")).unwrap();
        let err = RootKey::load(&dir.join("issuing.key"), &root_der).unwrap_err();
        assert!(err.to_string().contains("is not the key"), "{err}");
    }
}
