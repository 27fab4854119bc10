//! Weak-key blocklists an administrator imports from files (such as Debian's openssl-blacklist
//! lists, or lists of SPKI hashes published with badkeys): parsing, the audited import, and the
//! refusal of requests whose key is listed.
//!
//! Formats, one entry a line; `#` starts a comment, blank lines are skipped:
//! - `spki-sha256`: the SHA-256 of a key's DER SubjectPublicKeyInfo, as 64 hex digits or base64
//!   (standard or URL-safe, padded or not);
//! - `debian`: Debian openssl-blacklist lines, the low 80 bits (20 hex digits) of the SHA-1 of
//!   `Modulus=<HEX>\n`, for RSA keys of one size (from the file name `blacklist.RSA-<bits>` or
//!   given).

use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::{blocklist as rows, Conn, Store};
use crate::x509::key::{CheckedKey, KeyType, RSA_MAX_BITS};
use crate::x509::weak::{debian_weak_key_hash, rsa_modulus, spki_blocklist_entry};
use time::OffsetDateTime;

/// Largest file accepted (Debian's lists are about 600 KiB each).
pub const MAX_FILE_BYTES: usize = 256 << 20;
/// Longest line accepted, comment included.
const MAX_LINE_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The format of a blocklist file.
pub enum Format {
    /// One hex SHA-256 of a SubjectPublicKeyInfo per line.
    SpkiSha256,
    /// Debian openssl-blacklist, for RSA keys of this many bits.
    Debian {
        /// The RSA modulus size the list is for.
        bits: u32,
    },
}

impl Format {
    /// The name of the format, as recorded with each entry (`spki-sha256`, `debian-rsa-N`).
    pub fn as_str(self) -> String {
        match self {
            Format::SpkiSha256 => "spki-sha256".to_string(),
            Format::Debian { bits } => format!("debian-rsa-{bits}"),
        }
    }

    /// The key size of a Debian list: `bits` if given, else from a file named
    /// `blacklist.RSA-<bits>`.
    pub fn debian(file_name: &str, bits: Option<u32>) -> Result<Format> {
        let bits = match bits {
            Some(b) => b,
            None => file_name
                .rsplit_once("blacklist.RSA-")
                .and_then(|(_, b)| b.parse::<u32>().ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "bad_blocklist",
                        "the key size of a Debian list is not known: name the file blacklist.RSA-<bits> or give --bits",
                    )
                })?,
        };
        if bits == 0 || bits > RSA_MAX_BITS {
            return Err(Error::invalid(
                "bad_blocklist",
                format!("RSA key size {bits} out of range"),
            ));
        }
        Ok(Format::Debian { bits })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A line of a blocklist file that was not understood.
pub struct BadLine {
    /// 1-based.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// A blocklist file, parsed.
#[derive(Debug, Clone)]
pub struct ParsedList {
    /// `<file name> sha256:<hash of the file>`: recorded with each entry and in the audit log.
    pub name: String,
    /// SHA-256 of the whole file, hex.
    pub file_sha256: String,
    /// The format it was read as.
    pub format: Format,
    /// Lines read.
    pub lines: usize,
    /// Distinct entries in file order, in the stored form (`spki-sha256:…`, `debian-rsa-N:…`).
    pub entries: Vec<String>,
    /// Entries listed more than once in the file.
    pub duplicates: usize,
    /// Lines not understood.
    pub bad: Vec<BadLine>,
}

/// Parse a blocklist file of `format`; refuses a file that is too large or not text.
pub fn parse(file_name: &str, bytes: &[u8], format: Format) -> Result<ParsedList> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            "bad_blocklist",
            format!("blocklist file larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let file_sha256 = crate::x509::sha256_hex(bytes);
    let mut seen = std::collections::HashSet::new();
    let mut list = ParsedList {
        name: format!("{file_name} sha256:{file_sha256}"),
        file_sha256,
        format,
        lines: 0,
        entries: Vec::new(),
        duplicates: 0,
        bad: Vec::new(),
    };
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    list.lines = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let bad = |problem: &str| BadLine {
            line: i + 1,
            problem: problem.to_string(),
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            list.bad.push(bad("not UTF-8 text"));
            continue;
        };
        if text.chars().count() > MAX_LINE_CHARS {
            list.bad.push(bad("line too long"));
            continue;
        }
        let value = text.split('#').next().unwrap_or_default().trim();
        if value.is_empty() {
            continue;
        }
        let entry = match format {
            Format::SpkiSha256 => spki_line(value).map(|h| spki_blocklist_entry(&h)),
            Format::Debian { bits } => debian_line(value).map(|h| format!("debian-rsa-{bits}:{h}")),
        };
        match entry {
            Ok(entry) => {
                if seen.insert(entry.clone()) {
                    list.entries.push(entry);
                } else {
                    list.duplicates += 1;
                }
            }
            Err(problem) => list.bad.push(bad(problem)),
        }
    }
    Ok(list)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A SHA-256 as lowercase hex.
fn spki_line(value: &str) -> Result<String, &'static str> {
    if is_hex(value, 64) {
        return Ok(value.to_ascii_lowercase());
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(value).ok())
        .filter(|bytes| bytes.len() == 32)
        .map(hex::encode)
        .ok_or("expected a SHA-256 as 64 hex digits or base64")
}

fn debian_line(value: &str) -> Result<String, &'static str> {
    if is_hex(value, 20) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err("expected 20 hex digits (the low 80 bits of a SHA-1)")
    }
}

/// What an import did, or (dry run) would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries added to the blocklist.
    pub added: u64,
    /// Entries that were listed already.
    pub already_listed: u64,
    /// Entries in the blocklist after the import (before it, on a dry run).
    pub total: i64,
}

fn refuse_bad_lines(list: &ParsedList) -> Result<()> {
    match list.bad.first() {
        None => Ok(()),
        Some(first) => Err(Error::invalid(
            "bad_blocklist",
            format!(
                "{} bad line(s), the first at line {}: {}; nothing imported",
                list.bad.len(),
                first.line,
                first.problem
            ),
        )),
    }
}

/// What `import` would do, without changing anything.
pub async fn preview(store: &Store, list: &ParsedList) -> Result<ImportReport> {
    refuse_bad_lines(list)?;
    let mut c = store.read().await?;
    let listed = rows::count_listed(&mut c, &list.entries).await?;
    let listed = u64::try_from(listed).unwrap_or(0);
    Ok(ImportReport {
        added: list.entries.len() as u64 - listed.min(list.entries.len() as u64),
        already_listed: listed,
        total: rows::count(&mut c).await?,
    })
}

/// Add every entry of `list` in one transaction, with one audit event (counts and the file's
/// SHA-256). A file with any bad line is refused whole.
pub async fn import(
    store: &Store,
    now: OffsetDateTime,
    by: Option<String>,
    list: ParsedList,
) -> Result<ImportReport> {
    refuse_bad_lines(&list)?;
    store
        .write(job!(|c, log| {
            let added = rows::insert(c, &list.entries, &list.name, now.unix_timestamp()).await?;
            let already_listed = list.entries.len() as u64 - added;
            let total = rows::count(c).await?;
            audit::record(
                log,
                now,
                Event::new(
                    by.as_deref(),
                    Action::BlocklistImported,
                    Some(&list.name),
                    serde_json::json!({
                        "file_sha256": list.file_sha256,
                        "format": list.format.as_str(),
                        "lines": list.lines,
                        "entries": list.entries.len(),
                        "duplicates": list.duplicates,
                        "added": added,
                        "already_listed": already_listed,
                        "total": total,
                    }),
                ),
            );
            Ok(ImportReport {
                added,
                already_listed,
                total,
            })
        }))
        .await
}

/// Refuse a key that an imported blocklist names, by its SPKI hash or (RSA) its Debian hash.
pub(crate) async fn refuse_if_listed(conn: &mut Conn, key: &CheckedKey) -> Result<()> {
    let mut entries = vec![spki_blocklist_entry(key.fingerprint())];
    if key.key_type() == KeyType::Rsa {
        if let Some(modulus) = rsa_modulus(key.spki_der()) {
            entries.push(debian_weak_key_hash(&modulus, key.bits()));
        }
    }
    match rows::find(conn, &entries).await? {
        Some((_, list)) => Err(Error::refused(
            "weak_key",
            format!("the public key is on an imported weak-key blocklist ({list})"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_lists_take_hex_or_base64_and_report_bad_lines() {
        let hash = "AB".repeat(32);
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode([0xcd; 32])
        };
        let text = format!(
            "# a comment\n\n{hash}\n{b64}  # trailing comment\n{}\nnot-a-hash\n{}\n",
            hash.to_lowercase(),
            "ab".repeat(31)
        );
        let list = parse("keys.txt", text.as_bytes(), Format::SpkiSha256).unwrap();
        assert_eq!(list.lines, 7);
        assert_eq!(
            list.entries,
            vec![
                format!("spki-sha256:{}", "ab".repeat(32)),
                format!("spki-sha256:{}", "cd".repeat(32)),
            ]
        );
        assert_eq!(list.duplicates, 1);
        assert_eq!(
            list.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![6, 7]
        );
        assert!(list.name.starts_with("keys.txt sha256:"));
        assert_eq!(list.file_sha256, crate::x509::sha256_hex(text.as_bytes()));
        assert_eq!(refuse_bad_lines(&list).unwrap_err().code(), "bad_blocklist");
    }

    #[test]
    fn debian_lists_know_their_key_size() {
        assert_eq!(
            Format::debian("/usr/share/openssl-blacklist/blacklist.RSA-2048", None).unwrap(),
            Format::Debian { bits: 2048 }
        );
        assert_eq!(
            Format::debian("list.txt", Some(4096)).unwrap(),
            Format::Debian { bits: 4096 }
        );
        assert!(Format::debian("list.txt", None).is_err());
        let text = "# comment\n00005890bc78bcbee3ca\n3C430072D96E4A1E1809\n0123\n";
        let list = parse(
            "blacklist.RSA-2048",
            text.as_bytes(),
            Format::Debian { bits: 2048 },
        )
        .unwrap();
        assert_eq!(
            list.entries,
            vec![
                "debian-rsa-2048:00005890bc78bcbee3ca".to_string(),
                "debian-rsa-2048:3c430072d96e4a1e1809".to_string()
            ]
        );
        assert_eq!(
            list.bad,
            vec![BadLine {
                line: 4,
                problem: "expected 20 hex digits (the low 80 bits of a SHA-1)".into()
            }]
        );
    }

    #[test]
    fn hostile_bytes_are_bad_lines_not_panics() {
        let mut text = b"\xff\xfe\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', 5000));
        text.extend(b"\r\n");
        let list = parse("x", &text, Format::SpkiSha256).unwrap();
        assert_eq!(list.lines, 2);
        assert_eq!(list.bad.len(), 2);
        assert!(list.entries.is_empty());
    }
}
