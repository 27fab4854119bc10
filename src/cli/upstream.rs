//! `vouch upstream check`: read `<data-dir>/upstream.toml`, reach each remote CA it names, and
//! print what each one is and the chain it gives. Needs only the data directory's files, not its
//! database.

use super::DataDirArg;
use crate::ca::upstream_config;
use crate::ca::CaError;
use crate::error::Result;
use crate::x509::profile::Profiles;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum UpstreamCommand {
    /// Check <data-dir>/upstream.toml and contact each CA it names (CFSSL: POST /api/v1/cfssl/info;
    /// CMP: a genm asking for the CA certificates, whose protected genp proves both sides'
    /// credentials): print each CA's id, kind, url, profiles, status and its chain (subject, issuer, notAfter of
    /// each certificate). Exits 1 if any CA cannot be reached or used, 2 if the file is invalid,
    /// 0 otherwise (also without the file: then the embedded CA signs every profile).
    Check {
        #[command(flatten)]
        data: DataDirArg,
    },
}

pub(super) async fn upstream_command(command: UpstreamCommand) -> Result<ExitCode> {
    let UpstreamCommand::Check { data } = command;
    let data = data.resolve()?;
    let profiles = Profiles::load_dir(&data.profiles_dir())?;
    let known = profiles.names().map(str::to_string).collect();
    let file = data.upstream_file();
    let Some(entries) = upstream_config::load(&file, data.root(), &known)? else {
        println!("no {}: the embedded CA signs every profile", file.display());
        return Ok(ExitCode::SUCCESS);
    };
    if entries.is_empty() {
        println!(
            "{}: no [[ca]] entries: the embedded CA signs every profile",
            file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = 0;
    for entry in &entries {
        println!("ca {}", entry.id);
        println!("  kind: {}", entry.kind.name());
        println!("  url: {}", entry.kind.url().as_str().trim_end_matches('/'));
        println!("  profiles: {}", entry.profiles.join(", "));
        match crate::ca::upstreams::connect(entry).await {
            Ok(ca) => {
                println!("  status: ok");
                println!("  chain:");
                for (i, cert) in ca.chain().iter().enumerate() {
                    print_certificate(i + 1, &cert.der);
                }
            }
            Err(CaError::Refused(m) | CaError::Unavailable(m)) => {
                failed += 1;
                println!("  status: failed: {m}");
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "vouch: {failed} of {} upstream CAs failed the check",
            entries.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_certificate(n: usize, der: &[u8]) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let not_after = crate::ra::rfc3339(cert.validity().not_after.timestamp());
            println!("    {n}. subject: {}", cert.subject());
            println!("       issuer: {}", cert.issuer());
            println!("       notAfter: {not_after}");
        }
        Err(e) => println!("    {n}. (unreadable certificate: {e})"),
    }
}
