//! `<data-dir>/upstream.toml`: the remote CAs and the Vouch profiles each one signs, read at
//! start and checked strictly. Without the file, the embedded CA signs every profile.
//!
//! ```toml
//! [[ca]]
//! id = "city-cfssl"               # stored with each certificate it issues
//! kind = "cfssl"                  # or "cmp": its keys are in `ca::cmp::settings`
//! url = "http://127.0.0.1:8888"
//! auth_key = "0123abcd…"          # hex HMAC key (or auth_key_file = "…")
//! cfssl_profile = "default"       # optional
//! profiles = ["person-signing"]   # the Vouch profiles this CA signs
//! crl_url = "http://ca.example.org/city.crl"  # optional: the CA's CRL, read for status
//! certdb_url = "sqlite:/var/lib/cfssl/certdb.db" # optional: CFSSL's database, read to recover
//! ```
//!
//! Every error names the file, the entry (its position and id) and the key. Keys are decoded into
//! zeroize-on-drop buffers and never logged or shown.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Longest `upstream.toml` read, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Longest HMAC key accepted, in bytes (hex digits / 2).
pub const MAX_KEY_BYTES: usize = 1024;

/// One `[[ca]]` entry, checked.
#[derive(Debug)]
pub struct CaEntry {
    /// The CA's id (`ca_id` of the certificates it issues).
    pub id: String,
    /// The Vouch profiles it signs.
    pub profiles: Vec<String>,
    /// What kind of CA it is, and how to reach it.
    pub kind: CaKind,
}

/// The kinds of remote CA.
#[derive(Debug)]
pub enum CaKind {
    /// A CFSSL remote signer (`kind = "cfssl"`).
    Cfssl(Box<CfsslSettings>),
    /// A CMP server (`kind = "cmp"`).
    Cmp(Box<super::cmp::settings::CmpSettings>),
}

impl CaKind {
    /// The kind's name in `upstream.toml`.
    pub fn name(&self) -> &'static str {
        match self {
            CaKind::Cfssl(_) => "cfssl",
            CaKind::Cmp(_) => "cmp",
        }
    }

    /// The CA's URL.
    pub fn url(&self) -> &url::Url {
        match self {
            CaKind::Cfssl(s) => &s.url,
            CaKind::Cmp(s) => &s.url,
        }
    }

    /// The longest one issuance attempt at this CA can take: CFSSL's `timeout_secs` (twice it with
    /// `certdb_url`, whose lookup comes first); for CMP,
    /// the request, the certConf and one poll at the call timeout each, plus
    /// `max_poll_seconds`. An attempt claims its intent for twice this (see
    /// `ra::claims`), so that another instance sharing the database does not ask again
    /// while it may still be answered.
    pub fn attempt_limit(&self) -> std::time::Duration {
        match self {
            // With `certdb_url`, a lookup before the signing call.
            CaKind::Cfssl(s) if s.certdb.is_some() => s.timeout * 2,
            CaKind::Cfssl(s) => s.timeout,
            CaKind::Cmp(s) => s.timeout * 3 + std::time::Duration::from_secs(s.max_poll_seconds),
        }
    }
}

/// How to reach a CFSSL signer.
pub struct CfsslSettings {
    /// The server's base URL (http or https), without a trailing `/`.
    pub url: url::Url,
    /// The HMAC-SHA256 key of its `auth_key` provider, decoded from hex.
    pub auth_key: Zeroizing<Vec<u8>>,
    /// The CFSSL signing profile to ask for (CFSSL's default profile when absent).
    pub cfssl_profile: Option<String>,
    /// How long one call may take in all (`timeout_secs`, 1 to 300; default 30 s): a slower CA
    /// is treated as unavailable, and the call retried later.
    pub timeout: std::time::Duration,
    /// Where the CA's CRL is read for the status of what it issued (`crl_url`; see
    /// `ra::upstream_status`); none: not read.
    pub crl_url: Option<url::Url>,
    /// Where the CA answers OCSP requests (`ocsp_url`), asked for the status of what it issued
    /// when Vouch reports it; none: not asked.
    pub ocsp_url: Option<url::Url>,
    /// CFSSL's certificate database (`certdb_url`), read to find a certificate signed under a
    /// request's reserved serial whose answer was lost; none: no lookup.
    pub certdb: Option<crate::ca::cfssl::certdb::CertDbUrl>,
}

impl std::fmt::Debug for CfsslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfsslSettings")
            .field("url", &self.url.as_str())
            .field("auth_key", &"(secret)")
            .field("cfssl_profile", &self.cfssl_profile)
            .field("timeout", &self.timeout)
            .field("crl_url", &self.crl_url.as_ref().map(url::Url::as_str))
            .field("ocsp_url", &self.ocsp_url.as_ref().map(url::Url::as_str))
            .field("certdb", &self.certdb)
            .finish()
    }
}

/// The keys of a `kind = "cfssl"` entry besides `auth_key` (taken out first, so that the key is
/// never copied into a string serde owns).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CfsslEntry {
    id: String,
    /// Read (it is "cfssl") before this struct is.
    #[serde(rename = "kind")]
    _kind: String,
    url: String,
    auth_key_file: Option<PathBuf>,
    cfssl_profile: Option<String>,
    timeout_secs: Option<u64>,
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    profiles: Vec<String>,
}

/// Read `path` (relative `auth_key_file`s are taken from `data_dir`), with `known` the names of
/// the certificate profiles. None when there is no file.
pub fn load(
    path: &Path,
    data_dir: &Path,
    known: &BTreeSet<String>,
) -> Result<Option<Vec<CaEntry>>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), &e)),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{}: {} bytes; at most {MAX_FILE_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?,
    );
    use std::os::unix::fs::PermissionsExt;
    let private = meta.permissions().mode() & 0o077 == 0;
    parse_file(&text, path, private, data_dir, known).map(Some)
}

pub(crate) fn invalid(message: String) -> Error {
    Error::invalid("invalid_config", message)
}

/// Parse and check the text of `upstream.toml` (`file` names it in errors).
pub fn parse(
    text: &str,
    file: &Path,
    data_dir: &Path,
    known: &BTreeSet<String>,
) -> Result<Vec<CaEntry>> {
    parse_file(text, file, true, data_dir, known)
}

/// [`parse`], knowing whether the file is readable by its owner only (`private`): a key written
/// in a file others can read is refused.
fn parse_file(
    text: &str,
    file: &Path,
    private: bool,
    data_dir: &Path,
    known: &BTreeSet<String>,
) -> Result<Vec<CaEntry>> {
    let file_name = file.display().to_string();
    let mut doc: toml::Table = toml::from_str(text)
        .map_err(|e| invalid(format!("{file_name}: {}", e.message().trim())))?;
    let entries = match doc.remove("ca") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(invalid(format!(
                "{file_name}: `ca` must be an array of tables: write each CA as [[ca]]"
            )))
        }
    };
    if let Some(key) = doc.keys().next() {
        return Err(invalid(format!(
            "{file_name}: unknown key `{key}` at the top level; only [[ca]] entries are allowed"
        )));
    }
    let mut out: Vec<CaEntry> = Vec::new();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for (i, value) in entries.into_iter().enumerate() {
        let toml::Value::Table(mut table) = value else {
            return Err(invalid(format!(
                "{file_name}: [[ca]] #{}: not a table",
                i + 1
            )));
        };
        let id = match table.get("id") {
            Some(toml::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let at = if id.is_empty() {
            format!("{file_name}: [[ca]] #{}", i + 1)
        } else {
            format!("{file_name}: [[ca]] #{} (id \"{id}\")", i + 1)
        };
        // The secrets leave the table before anything else can copy them.
        let auth_key = take_secret(&mut table, "auth_key", &at)?;
        if auth_key.is_some() && !private {
            return Err(invalid(format!(
                "{at}: `auth_key` is written in a file group or others can read: chmod 600 \
                 {file_name}, or keep the key in an `auth_key_file`"
            )));
        }
        // CFSSL's certificate database may be reached with a password in its URL.
        let certdb_url = take_secret(&mut table, "certdb_url", &at)?;
        if certdb_url
            .as_deref()
            .is_some_and(|u| crate::ca::cfssl::certdb::holds_password(u))
            && !private
        {
            return Err(invalid(format!(
                "{at}: `certdb_url` holds a password and is written in a file group or others can \
                 read: chmod 600 {file_name}"
            )));
        }
        let pbm_secret = take_secret(&mut table, "pbm_secret", &at)?;
        if pbm_secret.is_some() && !private {
            return Err(invalid(format!(
                "{at}: `pbm_secret` is written in a file group or others can read: chmod 600 \
                 {file_name}, or keep the secret in a `pbm_secret_file`"
            )));
        }
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.clone(),
            Some(_) => return Err(invalid(format!("{at}: `kind` must be a string"))),
            None => {
                return Err(invalid(format!(
                    "{at}: `kind` is missing (\"cfssl\" or \"cmp\")"
                )))
            }
        };
        let misplaced = match kind.as_str() {
            "cfssl" => pbm_secret.is_some().then_some("pbm_secret"),
            "cmp" => auth_key
                .is_some()
                .then_some("auth_key")
                .or(certdb_url.is_some().then_some("certdb_url")),
            _ => None,
        };
        if let Some(key) = misplaced {
            return Err(invalid(format!(
                "{at}: `{key}` is not a key of a kind = \"{kind}\" entry"
            )));
        }
        let entry = match kind.as_str() {
            "cfssl" => cfssl_entry(table, auth_key, certdb_url, &at, data_dir)?,
            "cmp" => super::cmp::settings::cmp_entry(table, pbm_secret, &at, data_dir)?,
            other => {
                return Err(invalid(format!(
                    "{at}: `kind` = \"{other}\" is not a CA kind; use \"cfssl\" or \"cmp\""
                )))
            }
        };
        check_id(&entry.id, &at)?;
        if out.iter().any(|e| e.id == entry.id) {
            return Err(invalid(format!(
                "{at}: `id` \"{}\" is used by an earlier entry; ids must be unique",
                entry.id
            )));
        }
        if entry.profiles.is_empty() {
            return Err(invalid(format!(
                "{at}: `profiles` is empty; name the Vouch profiles this CA signs"
            )));
        }
        for p in &entry.profiles {
            if !known.contains(p) {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(invalid(format!(
                    "{at}: `profiles`: \"{p}\" is not a certificate profile (known: {})",
                    names.join(", ")
                )));
            }
            if let Some(other) = claimed.insert(p.clone(), entry.id.clone()) {
                let whom = if other == entry.id {
                    "this entry already".to_string()
                } else {
                    format!("the CA \"{other}\" already")
                };
                return Err(invalid(format!(
                    "{at}: `profiles`: \"{p}\" is claimed by {whom}; a profile has one CA"
                )));
            }
        }
        out.push(entry);
    }
    Ok(out)
}

/// Remove the string `key` from `table` into a zeroize-on-drop buffer, wiping the table's copy.
fn take_secret(table: &mut toml::Table, key: &str, at: &str) -> Result<Option<Zeroizing<String>>> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::String(mut s)) => {
            let out = Zeroizing::new(s.clone());
            s.zeroize();
            Ok(Some(out))
        }
        Some(_) => Err(invalid(format!("{at}: `{key}` must be a string"))),
    }
}

fn check_id(id: &str, at: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(invalid(format!(
            "{at}: `id` \"{id}\": 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit"
        )));
    }
    if id == super::local::ISSUING_ID || id == super::local::ROOT_ID {
        return Err(invalid(format!(
            "{at}: `id` \"{id}\" is the embedded CA's; choose another"
        )));
    }
    Ok(())
}

fn cfssl_entry(
    table: toml::Table,
    auth_key: Option<Zeroizing<String>>,
    certdb_url: Option<Zeroizing<String>>,
    at: &str,
    data_dir: &Path,
) -> Result<CaEntry> {
    let e = CfsslEntry::deserialize(toml::Value::Table(table))
        .map_err(|e| invalid(format!("{at}: {}", e.message().trim())))?;
    let url =
        base_url(&e.url).map_err(|why| invalid(format!("{at}: `url` \"{}\": {why}", e.url)))?;
    let auth_key = match (auth_key, &e.auth_key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{at}: give `auth_key` or `auth_key_file`, not both"
            )))
        }
        (None, None) => {
            return Err(invalid(format!(
                "{at}: `auth_key` (hex) or `auth_key_file` is needed: CFSSL's authsign checks an \
                 HMAC-SHA256 token"
            )))
        }
        (Some(hex_key), None) => {
            decode_key(&hex_key).map_err(|why| invalid(format!("{at}: `auth_key`: {why}")))?
        }
        (None, Some(path)) => {
            let path = data_dir.join(path);
            let text = read_key_file(&path).map_err(|why| {
                invalid(format!("{at}: `auth_key_file` {}: {why}", path.display()))
            })?;
            decode_key(&text).map_err(|why| {
                invalid(format!("{at}: `auth_key_file` {}: {why}", path.display()))
            })?
        }
    };
    if let Some(p) = &e.cfssl_profile {
        if p.is_empty() || p.len() > 128 || p.chars().any(|c| c.is_control()) {
            return Err(invalid(format!(
                "{at}: `cfssl_profile`: 1 to 128 characters, no control characters"
            )));
        }
    }
    let timeout = match e.timeout_secs {
        None => crate::ca::cfssl::CALL_TIMEOUT,
        Some(s @ 1..=300) => std::time::Duration::from_secs(s),
        Some(_) => return Err(invalid(format!("{at}: `timeout_secs`: 1 to 300"))),
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
    let certdb = certdb_url
        .as_deref()
        .map(|u| {
            crate::ca::cfssl::certdb::parse(u, data_dir)
                .map_err(|why| invalid(format!("{at}: `certdb_url`: {why}")))
        })
        .transpose()?;
    Ok(CaEntry {
        id: e.id,
        profiles: e.profiles,
        kind: CaKind::Cfssl(Box::new(CfsslSettings {
            url,
            auth_key,
            cfssl_profile: e.cfssl_profile,
            timeout,
            crl_url,
            ocsp_url,
            certdb,
        })),
    })
}

/// `crl_url`: where the CA publishes its CRL (http or https, no credentials; a query is kept).
pub(crate) fn crl_url(text: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("http or https only".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("no user or password in the URL".into());
    }
    if url.host_str().is_none() || url.fragment().is_some() {
        return Err("a host and no fragment".into());
    }
    Ok(url)
}

/// An http(s) base URL without credentials, query or fragment; the trailing `/` dropped.
pub(crate) fn base_url(text: &str) -> std::result::Result<url::Url, String> {
    let url = endpoint_url(text)?;
    let trimmed = url.as_str().trim_end_matches('/').to_string();
    url::Url::parse(&trimmed).map_err(|e| e.to_string())
}

/// An http(s) URL messages are POSTed to, exactly as given (a trailing `/` kept: `openssl cmp`'s
/// server, for one, answers `/pkix/` and not `/pkix`), without credentials, query or fragment.
pub(crate) fn endpoint_url(text: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("must be http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    Ok(url)
}

/// The key file's text: owner-only (0600), small.
pub(crate) fn read_key_file(path: &Path) -> std::result::Result<Zeroizing<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err("is readable by group or others; chmod 600 it".into());
    }
    if meta.len() > (MAX_KEY_BYTES * 2 + 16) as u64 {
        return Err(format!("{} bytes; too long for a key", meta.len()));
    }
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| e.to_string())
}

/// Hex digits (surrounding whitespace ignored) to key bytes.
fn decode_key(text: &str) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if let Some((i, _)) = t.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "is not hex: a character that is not a hex digit at position {}",
            i + 1
        ));
    }
    if !t.len().is_multiple_of(2) {
        return Err(format!(
            "has {} hex digits; an even number is needed",
            t.len()
        ));
    }
    if t.len() / 2 > MAX_KEY_BYTES {
        return Err(format!("is longer than {MAX_KEY_BYTES} bytes"));
    }
    hex::decode(t)
        .map(Zeroizing::new)
        .map_err(|_| "is not hex".to_string())
}

#[cfg(test)]
mod tests;
