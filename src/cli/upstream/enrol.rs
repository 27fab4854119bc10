//! `vouch upstream enrol-ra --ca ID --secret-file FILE --reference REF`: obtain the RA
//! certificate of a `kind = "cmp"` entry from its CA, by an ir of its own (RFC 9483 4.1.1,
//! under the MAC-based protection of 4.1.5). The entry keeps `protection = "signature"`; the
//! command asks the CA once, under a password-based MAC with the one-time secret the CA's
//! operator gave for this enrolment, for a certificate of a key the RA generates (P-256, or the
//! key of `--key-file`), proving possession by that key's signature, and writes the key (mode
//! 0600) and the certificate where the entry's `ra_key_file` and `ra_certificate_file` point.
//! From then on the server protects its messages with them. Needs only the data directory's
//! files, not its database.

use crate::ca::cmp::settings::{cmp_entry, CmpSettings};
use crate::ca::cmp::CmpCa;
use crate::ca::upstream_config::CaKind;
use crate::ca::{CaError, IssueOrder};
use crate::error::{Error, Result};
use crate::x509::serial::Serial;
use crate::x509::subject::{DnAttr, SubjectSpec};
use openssl::pkey::{PKey, Private};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Longest upstream.toml read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Longest validity asked for, in days.
const MAX_DAYS: u32 = 3650;

/// What `enrol-ra` was asked.
#[derive(clap::Args)]
pub(in crate::cli) struct Enrolment {
    /// The id of the CMP entry in <data-dir>/upstream.toml.
    #[arg(long, value_name = "ID")]
    ca: String,
    /// File holding the shared secret the CA gave for this enrolment (mode 0600).
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// The reference the CA knows that secret by (the senderKID).
    #[arg(long, value_name = "REF")]
    reference: String,
    /// The subject to ask for, /O=…/CN=… (CN, O and serialNumber; the CA may change it).
    #[arg(long, default_value = "/CN=Vouch RA")]
    subject: String,
    /// Days of validity to ask for (1 to 3650; the CA may give fewer).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Have this private key (unencrypted PEM, mode 0600) certified instead of a new P-256 key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Replace the RA certificate and key files if they exist.
    #[arg(long)]
    force: bool,
}

pub(super) async fn run(data_dir: &Path, upstream_file: &Path, e: Enrolment) -> Result<ExitCode> {
    let subject = subject(&e.subject)?;
    if e.days == 0 || e.days > MAX_DAYS {
        return Err(Error::invalid(
            "invalid_days",
            format!("--days: 1 to {MAX_DAYS}"),
        ));
    }
    let (settings, cert_path, key_path) = settings(data_dir, upstream_file, &e)?;
    if cert_path == key_path {
        return Err(Error::invalid(
            "invalid_config",
            format!(
                "the CA {}'s `ra_certificate_file` and `ra_key_file` are one file ({}): name two",
                e.ca,
                key_path.display()
            ),
        ));
    }
    let given = e
        .key_file
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .map_err(|err| Error::invalid("invalid_key", format!("--key-file: {err}")))?;
    // The key given is the entry's key file already: it stays where it is.
    let key_in_place = given.as_deref() == Some(key_path.as_path());
    if given.as_deref() == Some(cert_path.as_path()) {
        return Err(Error::invalid(
            "invalid_key",
            format!(
                "--key-file {} is where the RA certificate goes",
                cert_path.display()
            ),
        ));
    }
    for path in [&cert_path, &key_path] {
        let ours = key_in_place && path == &key_path;
        if path.exists() && !e.force && !ours {
            return Err(Error::conflict(
                "ra_credentials_exist",
                format!(
                    "{} exists: the CA {} has RA credentials already; --force replaces them",
                    path.display(),
                    e.ca
                ),
            ));
        }
    }
    let key = match &e.key_file {
        Some(path) => read_key(path)?,
        None => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .map_err(Error::internal)?;
            let ec = openssl::ec::EcKey::generate(&group).map_err(Error::internal)?;
            PKey::from_ec_key(ec).map_err(Error::internal)?
        }
    };
    let spki_der = key.public_key_to_der().map_err(Error::internal)?;
    let now = time::OffsetDateTime::now_utc();
    let order = IssueOrder {
        serial: Serial::random(),
        spki_der,
        csr_der: Vec::new(),
        subject,
        not_before: now,
        not_after: now + time::Duration::days(i64::from(e.days)),
        key_usage: vec![crate::x509::profile::KeyUsage::DigitalSignature],
        extended_key_usage: Vec::new(),
        crl_urls: Vec::new(),
        ca_issuers_urls: Vec::new(),
        ocsp_urls: Vec::new(),
    };
    let ca = CmpCa::connect(&e.ca, &settings).await.map_err(ca_error)?;
    // The key is written beside its place before the CA is asked (the directory is writable),
    // the certificate before it is confirmed; both are moved into place once it is.
    let mut staged = Staged::default();
    if !key_in_place {
        let pem = Zeroizing::new(key.private_key_to_pem_pkcs8().map_err(Error::internal)?);
        staged.write(&key_path, &pem, true)?;
    }
    let cert_new = staged.reserve(&cert_path)?;
    let keep = |der: &[u8]| -> std::result::Result<(), String> {
        let pem = openssl::x509::X509::from_der(der)
            .and_then(|x| x.to_pem())
            .map_err(|err| err.to_string())?;
        crate::ca::files::write_public_file(&cert_new, &pem).map_err(|err| err.to_string())
    };
    let cert = ca
        .enrol_own_key(&order, &key, &keep)
        .await
        .map_err(ca_error)?;
    staged.install()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).map_err(Error::internal)?;
    println!(
        "the CA {} issued the RA certificate {} (serial {}, valid until {})",
        e.ca,
        parsed.subject(),
        hex::encode(parsed.raw_serial()),
        crate::ra::rfc3339(parsed.validity().not_after.timestamp()),
    );
    println!("  certificate: {}", cert_path.display());
    println!("  key: {} (mode 0600)", key_path.display());
    println!(
        "restart `vouch serve` for it to sign its messages to {} with them",
        e.ca
    );
    Ok(ExitCode::SUCCESS)
}

fn ca_error(e: CaError) -> Error {
    match e {
        CaError::Refused(m) => Error::refused("upstream_refused", m),
        CaError::Unavailable(m) => Error::CaUnavailable {
            code: "upstream_ca_unavailable",
            message: m,
        },
    }
}

/// `/O=…/CN=…` (O, CN and serialNumber only) as the subject to ask for.
fn subject(text: &str) -> Result<SubjectSpec> {
    let bad =
        |why: String| Error::invalid("invalid_subject", format!("--subject \"{text}\": {why}"));
    let rest = text
        .strip_prefix('/')
        .ok_or_else(|| bad("write it as /O=…/CN=…".into()))?;
    let mut dn = Vec::new();
    for part in rest.split('/') {
        let (key, value) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| bad(format!("\"{part}\" is not KEY=value")))?;
        let attr = match key {
            "CN" => DnAttr::CommonName,
            "O" => DnAttr::Organisation,
            "serialNumber" => DnAttr::SerialNumber,
            other => return Err(bad(format!("\"{other}\": use CN, O or serialNumber"))),
        };
        crate::x509::subject::check_dn_value(attr, value).map_err(|e| bad(e.to_string()))?;
        dn.push((attr, value.to_string()));
    }
    if !dn.iter().any(|(a, _)| *a == DnAttr::CommonName) {
        return Err(bad("it needs a CN".into()));
    }
    Ok(SubjectSpec {
        dn,
        emails: Vec::new(),
    })
}

/// The entry `e.ca` of `upstream_file`, checked as the server checks it, but protected by a PBM
/// with the enrolment's secret and reference and asking with an ir; and where its RA certificate
/// and key go.
fn settings(
    data_dir: &Path,
    upstream_file: &Path,
    e: &Enrolment,
) -> Result<(CmpSettings, PathBuf, PathBuf)> {
    let file_name = upstream_file.display().to_string();
    let bad = |m: String| Error::invalid("invalid_config", m);
    let size = std::fs::metadata(upstream_file)
        .map_err(|err| bad(format!("{file_name}: {err}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(bad(format!(
            "{file_name}: {size} bytes; at most {MAX_FILE_BYTES}"
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(upstream_file).map_err(|err| bad(format!("{file_name}: {err}")))?,
    );
    let doc: toml::Table =
        toml::from_str(&text).map_err(|err| bad(format!("{file_name}: {}", err.message())))?;
    let entries = match doc.get("ca") {
        Some(toml::Value::Array(a)) => a,
        _ => return Err(bad(format!("{file_name}: no [[ca]] entries"))),
    };
    let mut table = entries
        .iter()
        .filter_map(toml::Value::as_table)
        .find(|t| t.get("id").and_then(toml::Value::as_str) == Some(e.ca.as_str()))
        .cloned()
        .ok_or_else(|| bad(format!("{file_name}: no [[ca]] entry with id \"{}\"", e.ca)))?;
    let at = format!("{file_name}: [[ca]] (id \"{}\")", e.ca);
    if table.get("kind").and_then(toml::Value::as_str) != Some("cmp") {
        return Err(bad(format!(
            "{at}: not a kind = \"cmp\" entry; only a CMP CA issues the RA's certificate"
        )));
    }
    match table.get("protection").and_then(toml::Value::as_str) {
        None | Some("signature") => {}
        Some(_) => {
            return Err(bad(format!(
                "{at}: enrol-ra is for protection = \"signature\" (the RA certificate and key \
                 it writes are what that protection signs with)"
            )))
        }
    }
    let path = |key: &str| -> Result<PathBuf> {
        match table.get(key) {
            Some(toml::Value::String(p)) if !p.is_empty() => Ok(data_dir.join(p)),
            _ => Err(bad(format!(
                "{at}: `{key}` names no file: say where the RA's certificate and key go"
            ))),
        }
    };
    let (cert_path, key_path) = (path("ra_certificate_file")?, path("ra_key_file")?);
    for key in [
        "protection",
        "ra_certificate_file",
        "ra_key_file",
        "request",
        "implicit_confirm",
    ] {
        table.remove(key);
    }
    let secret_file = std::path::absolute(&e.secret_file)
        .map_err(|err| bad(format!("--secret-file {}: {err}", e.secret_file.display())))?;
    let strings = [
        ("protection", "pbm".to_string()),
        ("request", "ir".to_string()),
        ("pbm_secret_file", secret_file.display().to_string()),
        ("pbm_reference", e.reference.clone()),
    ];
    for (key, value) in strings {
        table.insert(key.to_string(), toml::Value::String(value));
    }
    let entry = cmp_entry(table, None, &at, data_dir).map_err(|err| match err {
        // The secret's and the reference's errors name the entry's keys: say the flags.
        Error::Invalid { message, .. } => bad(message
            .replace("`pbm_secret_file`", "--secret-file")
            .replace("`pbm_reference`", "--reference")),
        other => other,
    })?;
    match entry.kind {
        CaKind::Cmp(settings) => Ok((*settings, cert_path, key_path)),
        CaKind::Cfssl(_) => Err(bad(format!("{at}: not a kind = \"cmp\" entry"))),
    }
}

/// An unencrypted PEM private key the owner alone may read.
fn read_key(path: &Path) -> Result<PKey<Private>> {
    let bad = |why: String| {
        Error::invalid(
            "invalid_key",
            format!("--key-file {}: {why}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad("is readable by group or others; chmod 600 it".into()));
        }
    }
    if meta.len() > 64 * 1024 {
        return Err(bad("larger than 64 KiB".into()));
    }
    let pem = Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
    PKey::private_key_from_pem(&pem).map_err(|_| bad("not an unencrypted PEM private key".into()))
}

/// Files written beside their place (`NAME.new`) and moved into place together once the CA
/// has confirmed; removed if that does not happen (dropped before [`Staged::install`]).
#[derive(Default)]
struct Staged {
    /// (the new file, its place).
    files: Vec<(PathBuf, PathBuf)>,
    installed: bool,
}

impl Staged {
    /// `NAME.new` beside `path`, empty, to be filled later; its directory made if missing.
    fn reserve(&mut self, path: &Path) -> Result<PathBuf> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
        }
        std::fs::File::create(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), &e))?;
        self.files.push((tmp.clone(), path.to_path_buf()));
        Ok(tmp)
    }

    /// `bytes` written to `NAME.new` beside `path` (mode 0600 for a `secret`), flushed.
    fn write(&mut self, path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
        let tmp = self.reserve(path)?;
        let _ = std::fs::remove_file(&tmp);
        if secret {
            crate::ca::files::write_secret_file(&tmp, bytes)
        } else {
            crate::ca::files::write_public_file(&tmp, bytes)
        }
    }

    /// Every new file renamed over its place (the files there kept as `NAME.old` until all are
    /// in place, and put back if one cannot be), then the directories synced.
    fn install(mut self) -> Result<()> {
        let old = |p: &Path| {
            let mut o = p.as_os_str().to_owned();
            o.push(".old");
            PathBuf::from(o)
        };
        let mut backed_up = Vec::new();
        let mut moved = Vec::new();
        let result = (|| -> Result<()> {
            for (_, path) in &self.files {
                if path.exists() {
                    std::fs::rename(path, old(path))
                        .map_err(|e| Error::io(format!("moving {} aside", path.display()), &e))?;
                    backed_up.push(path.clone());
                }
            }
            for (tmp, path) in &self.files {
                std::fs::rename(tmp, path).map_err(|e| {
                    Error::io(
                        format!("renaming {} to {}", tmp.display(), path.display()),
                        &e,
                    )
                })?;
                moved.push(path.clone());
            }
            Ok(())
        })();
        if let Err(e) = result {
            for path in &moved {
                let _ = std::fs::remove_file(path);
            }
            for path in &backed_up {
                let _ = std::fs::rename(old(path), path);
            }
            return Err(e);
        }
        for path in &backed_up {
            let _ = std::fs::remove_file(old(path));
        }
        for (_, path) in &self.files {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        self.installed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.installed {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}
