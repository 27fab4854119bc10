//! `vouch upstream check`: read `<data-dir>/upstream.toml`, reach each remote CA it names, and
//! print what each one is and the chain it gives. Needs only the data directory's files, not its
//! database. `vouch upstream queue`: what waits for a CA, read from the data directory's
//! database.

use super::{open_store, DataDirArg};
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
    /// List what waits for a CA, from the data directory's database: approved requests whose
    /// certificate is not issued yet (the CA was down, slow or could not store it), and
    /// revocations not yet acknowledged by the remote CA that issued the certificate; each with
    /// its CA, failed attempts, last error and next attempt. Exits 0 (also when both are empty).
    Queue {
        #[command(flatten)]
        data: DataDirArg,
        /// Print JSON: {"issuances": [...], "revocation_forwards": [...]}.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn upstream_command(command: UpstreamCommand) -> Result<ExitCode> {
    let data = match command {
        UpstreamCommand::Check { data } => data,
        UpstreamCommand::Queue { data, json } => return queue(data, json).await,
    };
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
        let checked = match crate::ca::upstreams::connect(entry).await {
            Ok(ca) => ca.check_credentials().await.map(|()| ca),
            Err(e) => Err(e),
        };
        match checked {
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

/// Most entries of each kind listed.
const QUEUE_LIMIT: i64 = 10_000;

async fn queue(data: DataDirArg, json: bool) -> Result<ExitCode> {
    use crate::ra::rfc3339;
    use crate::store::upstream_queue as q;
    let store = open_store(&data.resolve()?).await?;
    let listed = async {
        let mut c = store.read().await?;
        let issuances = q::pending_issuances(&mut c, QUEUE_LIMIT).await?;
        let forwards = q::pending(&mut c, QUEUE_LIMIT).await?;
        Ok::<_, crate::error::Error>((issuances, forwards))
    }
    .await;
    store.close().await;
    let (issuances, forwards) = listed?;
    if json {
        let issuances: Vec<_> = issuances
            .iter()
            .map(|i| {
                serde_json::json!({"request_id": i.request_id, "profile": i.profile, "ca": i.ca_id,
                    "serial": i.serial, "approved_at": rfc3339(i.created_at),
                    "failed_attempts": i.attempts, "last_error": i.last_error,
                    "next_attempt_at": next_attempt(i.next_attempt_at, i.created_at)})
            })
            .collect();
        let forwards: Vec<_> = forwards
            .iter()
            .map(|f| {
                serde_json::json!({"serial": f.serial, "ca": f.ca_id, "reason": f.reason,
                    "revoked_at": rfc3339(f.revoked_at), "queued_at": rfc3339(f.queued_at),
                    "failed_attempts": f.attempts, "last_error": f.last_error,
                    "next_attempt_at": rfc3339(f.next_attempt_at)})
            })
            .collect();
        let out = serde_json::json!({"issuances": issuances, "revocation_forwards": forwards});
        println!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    let none = |e: &Option<String>| e.clone().unwrap_or_else(|| "-".into());
    /// When an intent is tried again: None before its first failed attempt (it is taken up at
    /// the retry task's next round, not at a set time).
    fn next_attempt(at: i64, approved: i64) -> Option<String> {
        (at > approved).then(|| rfc3339(at))
    }
    println!("pending issuances: {}", issuances.len());
    for i in &issuances {
        println!(
            "  request {} (profile {}, ca {}, serial {})",
            i.request_id, i.profile, i.ca_id, i.serial
        );
        println!(
            "    approved {}; failed attempts {}; next attempt {}",
            rfc3339(i.created_at),
            i.attempts,
            next_attempt(i.next_attempt_at, i.created_at)
                .unwrap_or_else(|| "at the retry task's next round".into())
        );
        println!("    last error: {}", none(&i.last_error));
    }
    println!("pending revocation forwards: {}", forwards.len());
    for f in &forwards {
        println!(
            "  certificate {} (ca {}, reason {})",
            f.serial, f.ca_id, f.reason
        );
        println!(
            "    queued {}; failed attempts {}; next attempt {}",
            rfc3339(f.queued_at),
            f.attempts,
            rfc3339(f.next_attempt_at)
        );
        println!("    last error: {}", none(&f.last_error));
    }
    Ok(ExitCode::SUCCESS)
}
