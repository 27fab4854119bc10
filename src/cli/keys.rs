//! `vouch keys import-blocklist`: weak-key blocklists (badkeys, Debian's openssl-blacklist)
//! read, checked and imported on the data directory.

use super::{open_store, DataDirArg};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::ra::blocklist;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// Import a blocklist of weak public keys; requests for listed keys are refused with weak_key.
    /// A dry run (counts only) unless --apply is given. Exits 1, importing nothing, if any line
    /// is malformed.
    ImportBlocklist {
        #[command(flatten)]
        data: DataDirArg,
        /// The list: one entry a line, `#` comments and blank lines ignored.
        file: PathBuf,
        /// spki-sha256: SHA-256 of the DER SubjectPublicKeyInfo, hex or base64 (badkeys' spkisha256).
        /// debian: Debian openssl-blacklist lines (20 hex digits), RSA keys of one size.
        #[arg(long, value_enum, default_value = "spki-sha256")]
        format: BlocklistFormat,
        /// Key size of a Debian list (default: from a file name blacklist.RSA-<bits>).
        #[arg(long)]
        bits: Option<u32>,
        /// Import (without it, only report what would be imported).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum BlocklistFormat {
    SpkiSha256,
    Debian,
}

/// Bad lines shown before "... and N more".
const BAD_LINES_SHOWN: usize = 20;

async fn import_blocklist(
    data: DataDirArg,
    file: PathBuf,
    format: BlocklistFormat,
    bits: Option<u32>,
    apply: bool,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let file_name = file.display().to_string();
    let format = match format {
        BlocklistFormat::SpkiSha256 => blocklist::Format::SpkiSha256,
        BlocklistFormat::Debian => blocklist::Format::debian(&file_name, bits)?,
    };
    let size = std::fs::metadata(&file)
        .map_err(|e| Error::invalid("bad_blocklist", format!("{file_name}: {e}")))?
        .len();
    if size > blocklist::MAX_FILE_BYTES as u64 {
        return Err(Error::invalid(
            "bad_blocklist",
            format!(
                "{file_name}: larger than {} bytes",
                blocklist::MAX_FILE_BYTES
            ),
        ));
    }
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::invalid("bad_blocklist", format!("{file_name}: {e}")))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file_name.clone());
    let list = blocklist::parse(&name, &bytes, format)?;
    println!(
        "{file_name}: {} lines, {} entries ({}), {} duplicate(s), {} bad line(s); file sha256 {}",
        list.lines,
        list.entries.len(),
        list.format.as_str(),
        list.duplicates,
        list.bad.len(),
        list.file_sha256
    );
    if !list.bad.is_empty() {
        for bad in list.bad.iter().take(BAD_LINES_SHOWN) {
            eprintln!("line {}: {}", bad.line, bad.problem);
        }
        if list.bad.len() > BAD_LINES_SHOWN {
            eprintln!(
                "... and {} more bad line(s)",
                list.bad.len() - BAD_LINES_SHOWN
            );
        }
        eprintln!("nothing imported: fix or remove the bad lines");
        return Ok(ExitCode::from(1));
    }
    let store = open_store(&data.resolve()?).await?;
    if apply {
        let report = blocklist::import(&store, clock.now(), None, list).await?;
        store.close().await;
        println!(
            "imported: {} added, {} already listed; the blocklist holds {} entries",
            report.added, report.already_listed, report.total
        );
    } else {
        let report = blocklist::preview(&store, &list).await?;
        store.close().await;
        println!(
            "dry run: {} would be added, {} already listed (the blocklist holds {} entries); run again with --apply to import",
            report.added, report.already_listed, report.total
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run a keys command.
pub(super) async fn keys_command(command: KeysCommand, clock: SharedClock) -> Result<ExitCode> {
    match command {
        KeysCommand::ImportBlocklist {
            data,
            file,
            format,
            bits,
            apply,
        } => import_blocklist(data, file, format, bits, apply, &clock).await,
    }
}
