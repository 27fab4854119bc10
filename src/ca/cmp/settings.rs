//! The keys of a `kind = "cmp"` entry in `upstream.toml`, checked strictly:
//!
//! ```toml
//! [[ca]]
//! id = "city-cmp"
//! kind = "cmp"
//! url = "https://ca.example.org/pkix/"       # where CMP messages are POSTed
//! recipient = "/O=City/CN=City Issuing CA"   # the CA's name (header recipient); NULL-DN if absent
//! protection = "signature"                   # or "pbm"
//! ra_certificate_file = "cmp/ra.pem"         # signature: the RA's certificate (PEM)
//! ra_key_file = "cmp/ra.key"                 # signature: its private key (PEM, mode 0600)
//! # pbm_secret = "…" or pbm_secret_file = "cmp/secret" (0600), and pbm_reference = "…" (senderKID)
//! trust_anchor_file = "cmp/root.pem"         # what the server's signature and the CA chain to
//! server_certificate_file = "cmp/server.pem" # optional: only this certificate may sign answers
//! tls_trust_anchor_file = "cmp/tls-root.pem" # optional, https: trusted for TLS instead of the system's
//! request = "ir"                             # or "cr", "p10cr"
//! implicit_confirm = false                   # ask the CA to skip certConf/pkiConf
//! revocation = true                          # forward revocations with rr
//! max_poll_seconds = 120                     # the longest an issuance waits on a polling CA
//! timeout_secs = 30                          # the longest one call may take (1 to 300)
//! crl_url = "http://ca.example.org/city.crl" # optional: the CA's CRL, read for status
//! ocsp_url = "http://ca.example.org/ocsp"    # optional: the CA's OCSP responder, asked for status
//! profiles = ["person-signing"]
//! ```
//!
//! Relative paths are taken from the data directory. Errors name the file, the entry and the key;
//! the PBM secret is kept in a zeroize-on-drop buffer and never shown.

use super::super::upstream_config::{
    crl_url, endpoint_url, invalid, read_key_file, CaEntry, CaKind,
};
use crate::error::Result;
use openssl::pkey::{PKey, Private};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Longest PEM file read (certificates, keys), in bytes.
const MAX_PEM_BYTES: u64 = 64 * 1024;
/// Longest PBM secret, in bytes.
const MAX_SECRET_BYTES: usize = 1024;
/// Upper bound of `max_poll_seconds`.
const MAX_POLL_LIMIT: u64 = 3600;

/// The message body Vouch asks for certificates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// p10cr: the subscriber's CSR as signed.
    P10cr,
    /// ir: a CRMF request built from the approved order.
    Ir,
    /// cr: the same, as a certification request.
    Cr,
}

/// How Vouch protects its messages.
pub enum ProtectionSettings {
    /// A signature by the RA's key.
    Signature {
        /// The RA's private key.
        key: PKey<Private>,
        /// The RA's certificate, DER.
        certificate: Vec<u8>,
    },
    /// A password-based MAC.
    Pbm {
        /// The shared secret.
        secret: Zeroizing<Vec<u8>>,
        /// The senderKID the CA knows the secret by.
        reference: String,
    },
}

/// How to reach a CMP server, checked.
pub struct CmpSettings {
    /// Where messages are POSTed.
    pub url: url::Url,
    /// The recipient, a Name's DER (None: NULL-DN).
    pub recipient: Option<Vec<u8>>,
    /// The protection of requests (answers are checked the same way).
    pub protection: ProtectionSettings,
    /// The trust anchors, DER.
    pub trust_anchors: Vec<Vec<u8>>,
    /// The only certificate that may sign answers, DER.
    pub server_certificate: Option<Vec<u8>>,
    /// TLS roots for https (PEM), instead of the system's.
    pub tls_trust_anchors: Option<Vec<u8>>,
    /// How certificates are asked for.
    pub request: RequestKind,
    /// Ask for implicit confirmation.
    pub implicit_confirm: bool,
    /// Forward revocations with rr.
    pub revocation: bool,
    /// The longest an issuance polls, in seconds.
    pub max_poll_seconds: u64,
    /// How long one call may take in all (`timeout_secs`, 1 to 300; default 30 s): a slower CA
    /// is treated as unavailable, and the request retried later.
    pub timeout: std::time::Duration,
    /// Where the CA's CRL is read for the status of what it issued; none: not read.
    pub crl_url: Option<url::Url>,
    /// Where the CA answers OCSP requests, asked for the status of what it issued when Vouch
    /// reports it; none: not asked.
    pub ocsp_url: Option<url::Url>,
}

impl std::fmt::Debug for CmpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmpSettings")
            .field("url", &self.url.as_str())
            .field("request", &self.request)
            .field("protection", &"(credentials)")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CmpEntry {
    id: String,
    #[serde(rename = "kind")]
    _kind: String,
    url: String,
    recipient: Option<String>,
    protection: Option<String>,
    ra_certificate_file: Option<PathBuf>,
    ra_key_file: Option<PathBuf>,
    pbm_secret_file: Option<PathBuf>,
    pbm_reference: Option<String>,
    trust_anchor_file: PathBuf,
    server_certificate_file: Option<PathBuf>,
    tls_trust_anchor_file: Option<PathBuf>,
    request: Option<String>,
    implicit_confirm: Option<bool>,
    revocation: Option<bool>,
    max_poll_seconds: Option<u64>,
    timeout_secs: Option<u64>,
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    profiles: Vec<String>,
}

/// A `kind = "cmp"` entry (`pbm_secret` already taken out of `table`).
pub fn cmp_entry(
    table: toml::Table,
    pbm_secret: Option<Zeroizing<String>>,
    at: &str,
    data_dir: &Path,
) -> Result<CaEntry> {
    let e = CmpEntry::deserialize(toml::Value::Table(table))
        .map_err(|e| invalid(format!("{at}: {}", e.message().trim())))?;
    let url =
        endpoint_url(&e.url).map_err(|why| invalid(format!("{at}: `url` \"{}\": {why}", e.url)))?;
    let recipient = e
        .recipient
        .as_deref()
        .map(|r| name_der(r).map_err(|why| invalid(format!("{at}: `recipient` \"{r}\": {why}"))))
        .transpose()?;
    let file = |key: &str, path: &Path| -> Result<(PathBuf, Vec<u8>)> {
        let p = data_dir.join(path);
        read_pem_file(&p, false)
            .map(|b| (p.clone(), b))
            .map_err(|why| invalid(format!("{at}: `{key}` {}: {why}", p.display())))
    };
    let certs = |key: &str, path: &Path| -> Result<Vec<Vec<u8>>> {
        let (p, pem) = file(key, path)?;
        let stack = openssl::x509::X509::stack_from_pem(&pem)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{at}: `{key}` {}: no PEM certificate", p.display())))?;
        stack
            .iter()
            .map(|c| c.to_der())
            .collect::<std::result::Result<_, _>>()
            .map_err(|err| invalid(format!("{at}: `{key}` {}: {err}", p.display())))
    };
    let protection = match e.protection.as_deref().unwrap_or("signature") {
        "signature" => {
            if pbm_secret.is_some() || e.pbm_secret_file.is_some() || e.pbm_reference.is_some() {
                return Err(invalid(format!(
                    "{at}: `pbm_secret`, `pbm_secret_file` and `pbm_reference` are for \
                     protection = \"pbm\""
                )));
            }
            let (Some(cert_path), Some(key_path)) = (&e.ra_certificate_file, &e.ra_key_file) else {
                return Err(invalid(format!(
                    "{at}: protection = \"signature\" needs `ra_certificate_file` and \
                     `ra_key_file` (the RA's certificate and key)"
                )));
            };
            let certificate = certs("ra_certificate_file", cert_path)?.remove(0);
            let kp = data_dir.join(key_path);
            let pem =
                Zeroizing::new(read_pem_file(&kp, true).map_err(|why| {
                    invalid(format!("{at}: `ra_key_file` {}: {why}", kp.display()))
                })?);
            let key = PKey::private_key_from_pem(&pem).map_err(|_| {
                invalid(format!(
                    "{at}: `ra_key_file` {}: not an unencrypted PEM private key",
                    kp.display()
                ))
            })?;
            ProtectionSettings::Signature { key, certificate }
        }
        "pbm" => {
            if e.ra_certificate_file.is_some() || e.ra_key_file.is_some() {
                return Err(invalid(format!(
                    "{at}: `ra_certificate_file` and `ra_key_file` are for protection = \
                     \"signature\""
                )));
            }
            let secret = match (pbm_secret, &e.pbm_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "{at}: give `pbm_secret` or `pbm_secret_file`, not both"
                    )))
                }
                (None, None) => {
                    return Err(invalid(format!(
                        "{at}: protection = \"pbm\" needs `pbm_secret` or `pbm_secret_file`"
                    )))
                }
                (Some(s), None) => s,
                (None, Some(path)) => {
                    let p = data_dir.join(path);
                    read_key_file(&p).map_err(|why| {
                        invalid(format!("{at}: `pbm_secret_file` {}: {why}", p.display()))
                    })?
                }
            };
            let secret = secret.trim_end_matches(['\n', '\r']);
            if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
                return Err(invalid(format!(
                    "{at}: the PBM secret must be 1 to {MAX_SECRET_BYTES} bytes"
                )));
            }
            let reference = e.pbm_reference.clone().ok_or_else(|| {
                invalid(format!(
                    "{at}: protection = \"pbm\" needs `pbm_reference` (the senderKID the CA \
                     knows the secret by)"
                ))
            })?;
            if reference.is_empty() || reference.len() > 128 {
                return Err(invalid(format!("{at}: `pbm_reference`: 1 to 128 bytes")));
            }
            ProtectionSettings::Pbm {
                secret: Zeroizing::new(secret.as_bytes().to_vec()),
                reference,
            }
        }
        other => {
            return Err(invalid(format!(
                "{at}: `protection` = \"{other}\": use \"signature\" or \"pbm\""
            )))
        }
    };
    let request = match e.request.as_deref().unwrap_or("ir") {
        "ir" => RequestKind::Ir,
        "cr" => RequestKind::Cr,
        "p10cr" => RequestKind::P10cr,
        other => {
            return Err(invalid(format!(
                "{at}: `request` = \"{other}\": use \"ir\", \"cr\" or \"p10cr\""
            )))
        }
    };
    let max_poll_seconds = e.max_poll_seconds.unwrap_or(120);
    if max_poll_seconds > MAX_POLL_LIMIT {
        return Err(invalid(format!(
            "{at}: `max_poll_seconds` = {max_poll_seconds}: at most {MAX_POLL_LIMIT}"
        )));
    }
    let timeout = match e.timeout_secs {
        None => super::CALL_TIMEOUT,
        Some(s @ 1..=300) => std::time::Duration::from_secs(s),
        Some(_) => return Err(invalid(format!("{at}: `timeout_secs`: 1 to 300"))),
    };
    let trust_anchors = certs("trust_anchor_file", &e.trust_anchor_file)?;
    let server_certificate = match &e.server_certificate_file {
        Some(p) => Some(certs("server_certificate_file", p)?.remove(0)),
        None => None,
    };
    let tls_trust_anchors = match &e.tls_trust_anchor_file {
        Some(p) => {
            certs("tls_trust_anchor_file", p)?;
            Some(file("tls_trust_anchor_file", p)?.1)
        }
        None => None,
    };
    let crl_url = e
        .crl_url
        .as_deref()
        .map(|u| crl_url(u).map_err(|why| invalid(format!("{at}: `crl_url` \"{u}\": {why}"))))
        .transpose()?;
    let ocsp_url = e
        .ocsp_url
        .as_deref()
        .map(|u| endpoint_url(u).map_err(|why| invalid(format!("{at}: `ocsp_url` \"{u}\": {why}"))))
        .transpose()?;
    Ok(CaEntry {
        id: e.id,
        profiles: e.profiles,
        kind: CaKind::Cmp(Box::new(CmpSettings {
            url,
            recipient,
            protection,
            trust_anchors,
            server_certificate,
            tls_trust_anchors,
            request,
            implicit_confirm: e.implicit_confirm.unwrap_or(false),
            revocation: e.revocation.unwrap_or(true),
            max_poll_seconds,
            timeout,
            crl_url,
            ocsp_url,
        })),
    })
}

/// An OpenSSL-style name, `/O=City/CN=City CA`, as a Name's DER.
fn name_der(text: &str) -> std::result::Result<Vec<u8>, String> {
    let Some(rest) = text.strip_prefix('/') else {
        return Err("write it as /O=…/CN=…".into());
    };
    if text.contains('\\') || text.chars().any(char::is_control) {
        return Err("no backslashes or control characters".into());
    }
    let mut b = openssl::x509::X509NameBuilder::new().map_err(|e| e.to_string())?;
    for part in rest.split('/') {
        let (key, value) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("\"{part}\" is not KEY=value"))?;
        b.append_entry_by_text(key, value)
            .map_err(|_| format!("\"{key}\" is not an attribute name OpenSSL knows"))?;
    }
    b.build().to_der().map_err(|e| e.to_string())
}

/// A small PEM file; a key file (`secret`) must be readable by its owner only.
fn read_pem_file(path: &Path, secret: bool) -> std::result::Result<Vec<u8>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if secret && meta.permissions().mode() & 0o077 != 0 {
        return Err("is readable by group or others; chmod 600 it".into());
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!("{} bytes; at most {MAX_PEM_BYTES}", meta.len()));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::ca::upstream_config::{parse, CaKind};
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A data directory with an RA key and certificate (made by OpenSSL) and their entry.
    fn setup() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = openssl::pkey::PKey::from_ec_key(key).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "RA").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let cert = b.build().to_pem().unwrap();
        std::fs::write(dir.path().join("ra.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("root.pem"), &cert).unwrap();
        let key_file = dir.path().join("ra.key");
        std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = "[[ca]]\nid = \"city-cmp\"\nkind = \"cmp\"\nurl = \"http://127.0.0.1:1/pkix\"\n\
                    recipient = \"/O=City/CN=City CA\"\nra_certificate_file = \"ra.pem\"\n\
                    ra_key_file = \"ra.key\"\ntrust_anchor_file = \"root.pem\"\n\
                    profiles = [\"person-signing\"]\n"
            .to_string();
        (dir, text)
    }

    fn load(dir: &Path, text: &str) -> Result<Vec<crate::ca::upstream_config::CaEntry>, String> {
        let known: BTreeSet<String> = ["person-signing".to_string()].into();
        parse(text, &dir.join("upstream.toml"), dir, &known).map_err(|e| e.to_string())
    }

    #[test]
    fn a_signature_entry_is_read_with_its_defaults() {
        let (dir, text) = setup();
        let entries = load(dir.path(), &text).unwrap();
        let CaKind::Cmp(s) = &entries[0].kind else {
            panic!("a CMP entry")
        };
        assert_eq!(s.request, super::RequestKind::Ir);
        assert!(!s.implicit_confirm && s.revocation);
        assert_eq!(s.max_poll_seconds, 120);
        assert_eq!(s.timeout, super::super::CALL_TIMEOUT);
        assert!(s.recipient.is_some());
        assert!(matches!(
            s.protection,
            super::ProtectionSettings::Signature { .. }
        ));
    }

    #[test]
    fn timeout_secs_is_read_within_its_bounds() {
        let (dir, text) = setup();
        let with = |v: &str| text.replace("profiles =", &format!("timeout_secs = {v}\nprofiles ="));
        let entries = load(dir.path(), &with("5")).unwrap();
        let CaKind::Cmp(s) = &entries[0].kind else {
            panic!("a CMP entry")
        };
        assert_eq!(s.timeout, std::time::Duration::from_secs(5));
        for bad in ["0", "301"] {
            let e = load(dir.path(), &with(bad)).unwrap_err();
            assert!(e.contains("`timeout_secs`: 1 to 300"), "{e}");
        }
    }

    #[test]
    fn errors_name_the_entry_and_the_key() {
        let (dir, text) = setup();
        let e = |t: &str| load(dir.path(), t).unwrap_err();
        let at = "[[ca]] #1 (id \"city-cmp\")";
        for (changed, want) in [
            (format!("{text}colour = 1\n"), "unknown field `colour`"),
            (
                text.replace("recipient = \"/O=City/CN=City CA\"", "recipient = \"CN=x\""),
                "`recipient`",
            ),
            (format!("{text}request = \"kur\"\n"), "`request` = \"kur\""),
            (
                format!("{text}protection = \"mac\"\n"),
                "`protection` = \"mac\"",
            ),
            (
                format!("{text}pbm_secret = \"s\"\n"),
                "are for protection = \"pbm\"",
            ),
            (
                text.replace("ra_key_file = \"ra.key\"\n", ""),
                "needs `ra_certificate_file` and `ra_key_file`",
            ),
            (
                text.replace(
                    "ra_certificate_file = \"ra.pem\"\nra_key_file = \"ra.key\"\n",
                    "",
                ) + "protection = \"pbm\"\npbm_secret = \"s3cret\"\n",
                "needs `pbm_reference`",
            ),
            (
                format!("{text}max_poll_seconds = 99999\n"),
                "`max_poll_seconds`",
            ),
            (text.replace("root.pem", "ra.key"), "`trust_anchor_file`"),
        ] {
            let got = e(&changed);
            assert!(got.contains(at) && got.contains(want), "{want}: {got}");
            assert!(!got.contains("s3cret"), "the secret is never shown: {got}");
        }
        std::fs::set_permissions(
            dir.path().join("ra.key"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let got = e(&text);
        assert!(
            got.contains("`ra_key_file`") && got.contains("chmod 600"),
            "{got}"
        );
    }
}
