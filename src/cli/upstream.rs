//! `vouch upstream check`: read `<data-dir>/upstream.toml`, reach each remote CA it names, and
//! print what each one is and the chain it gives. Needs only the data directory's files, not its
//! database. `vouch upstream queue`: what waits for a CA, read from the data directory's
//! database, and `retry` / `drop` of revocation forwards (in `queue`). `vouch upstream
//! enrol-ra`: a CMP entry's RA certificate from its CA (in `enrol`).

mod enrol;
mod queue;

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
    /// List what waits for a CA, from the data directory's database: approved requests whose
    /// certificate is not issued yet (the CA was down, slow or could not store it), and
    /// revocations not yet acknowledged by the remote CA that issued the certificate, each with
    /// its CA, state (pending: retried with back-off; failed: the CA refused it, waiting for an
    /// admin), failed attempts, last error and next attempt; and the newest certificates a CA
    /// returned that were quarantined (never delivered), each revoked at the CA or with the
    /// action left to an admin, until acknowledged. `retry` and `drop` are an admin's way out of
    /// a forward that will not go through, `ack` of a quarantine dealt with. Exits 0 (also when
    /// all are empty).
    Queue(QueueArgs),
    /// Obtain the RA certificate of a `kind = "cmp"` entry (protection = "signature") from its
    /// CA, by an ir of its own (RFC 9483 4.1.1 and 4.1.5): protected by a password-based MAC
    /// with the one-time shared secret the CA's operator gave for this, for a new P-256 key
    /// (or the key of --key-file) whose signature proves possession. The certificate must
    /// certify that key and be issued by the CA's issuing certificate (chaining to the entry's
    /// trust anchor); it is then confirmed (certConf) and written with its key where the
    /// entry's `ra_certificate_file` and `ra_key_file` point (key mode 0600; existing files only
    /// with --force). Restart `vouch serve` to use them. Needs no database. Exits 0 once
    /// written; on any error nothing is written.
    EnrolRa {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        enrolment: enrol::Enrolment,
    },
}

#[derive(clap::Args)]
pub(super) struct QueueArgs {
    #[command(subcommand)]
    action: Option<QueueAction>,
    /// Data directory (SQLite database, CA keys, profiles, optional vouch.toml).
    #[arg(long, global = true, env = "VOUCH_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    data_dir: std::path::PathBuf,
    /// Database to use instead of vouch.db in the data directory: postgres://user@host:port/db
    /// (overrides database_url in <data-dir>/vouch.toml).
    #[arg(
        long,
        global = true,
        env = "VOUCH_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Print JSON: {"issuances": [...], "revocation_forwards": [...], "quarantined": [...]}.
    #[arg(long)]
    json: bool,
    /// List the revocation forwards the CA acknowledged and those an admin dropped too, and
    /// the quarantined certificates an admin acknowledged.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum QueueAction {
    /// Ask again for the revocation forward of certificate SERIAL (one the CA refused, one
    /// waiting for its next attempt, or one dropped), or, without SERIAL, for every forward that
    /// --ca and --failed select (pending or refused; dropped ones only by their SERIAL): the
    /// server's retry task tries them at its next round. Each is audited
    /// (certificate.revocation_forward_retried).
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true)
        .args(["serial", "ca", "failed"])))]
    Retry {
        /// The certificate's serial (hex).
        #[arg(conflicts_with_all = ["ca", "failed"])]
        serial: Option<String>,
        /// Every pending or refused forward to the CA with this id (upstream.toml).
        #[arg(long, value_name = "ID")]
        ca: Option<String>,
        /// Only the forwards the CA refused (state failed), not those waiting for their next
        /// attempt.
        #[arg(long)]
        failed: bool,
    },
    /// Give up the revocation forward of certificate SERIAL: the remote CA is never told. The
    /// certificate stays revoked (or on hold) here, and the forward stays listed by `--all`.
    /// Audited (certificate.revocation_forward_dropped, with the reason).
    Drop {
        /// The certificate's serial (hex).
        serial: String,
        /// Why the CA need not be told (one line, required; kept and audited).
        #[arg(long)]
        reason: String,
    },
    /// Acknowledge a quarantined certificate once dealt with (revoked at the CA by hand, or
    /// nothing to do): the queue lists it no more, `--all` still does. Audited
    /// (certificate.quarantine_acknowledged, with the reason).
    Ack {
        /// The quarantine's audit entry number, as the queue lists it.
        audit_seq: i64,
        /// What was done about it (one line, required; kept and audited).
        #[arg(long)]
        reason: String,
    },
}

pub(super) async fn upstream_command(command: UpstreamCommand) -> Result<ExitCode> {
    let data = match command {
        UpstreamCommand::Check { data } => data,
        UpstreamCommand::Queue(args) => return queue::run(args).await,
        UpstreamCommand::EnrolRa { data, enrolment } => {
            let data = data.resolve()?;
            return enrol::run(data.root(), &data.upstream_file(), enrolment).await;
        }
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
        // A CMP url is POSTed to as written; a CFSSL one is a base (its root's `/` not shown).
        let url = match &entry.kind {
            crate::ca::upstream_config::CaKind::Cmp(s) => s.url.as_str(),
            crate::ca::upstream_config::CaKind::Cfssl(s) => s.url.as_str().trim_end_matches('/'),
        };
        println!("  url: {url}");
        if let crate::ca::upstream_config::CaKind::Cfssl(s) = &entry.kind {
            if let Some(db) = &s.certdb {
                // Without credentials (see `CertDbUrl`'s Debug).
                println!("  certificate database: {db:?}");
            }
        }
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
