//! `vouch audit verify|acknowledge` on the data directory, and `audit tail` over the API
//! (`client::audit`).

use super::{open_store, DataDirArg};
use crate::audit::{self, Verdict};
use crate::client;
use crate::clock::SharedClock;
use crate::error::Result;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check the hash chain; exits 1 and names the first bad entry if a row was edited or deleted
    /// (breaks acknowledged with `audit acknowledge` are listed, and do not fail the check).
    Verify {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Acknowledge every break in the hash chain after investigating it: records an audited
    /// `audit.acknowledged` entry with the breaks and the reason, re-anchors the chain there, and
    /// lets servers report ready again.
    Acknowledge {
        #[command(flatten)]
        data: DataDirArg,
        /// Why the break is accepted (who investigated, what was found); kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Print the last entries of the audit log from a running server (auditor).
    Tail(client::audit::TailArgs),
}

/// Run an audit command.
pub(super) async fn audit_command(command: AuditCommand, clock: SharedClock) -> Result<ExitCode> {
    match command {
        AuditCommand::Tail(args) => Ok(client::audit::tail(args).await),
        AuditCommand::Acknowledge { data, reason } => acknowledge(data, &reason, clock).await,
        AuditCommand::Verify { data } => verify(data).await,
    }
}

/// `audit verify`: walk the hash chain on the data directory's database.
async fn verify(data: DataDirArg) -> Result<ExitCode> {
    let store = open_store(&data.resolve()?).await?;
    let mut c = store.read().await?;
    match audit::verify(&mut c).await? {
        Verdict::Intact {
            entries,
            head,
            acknowledged,
        } => {
            println!("audit log intact: {entries} entries, head {head}");
            for b in acknowledged {
                println!("acknowledged break at entry {}: {}", b.seq, b.problem);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { seq, problem } => {
            println!("audit log BROKEN at entry {seq}: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn acknowledge(data: DataDirArg, reason: &str, clock: SharedClock) -> Result<ExitCode> {
    let store = open_store(&data.resolve()?).await?;
    let done = audit::health::acknowledge(&store, clock.now(), reason).await;
    store.close().await;
    match done? {
        None => println!("nothing to acknowledge: the audit chain has no open break"),
        Some(ack) => {
            for b in &ack.breaks {
                println!("acknowledged break at entry {}: {}", b.seq, b.problem);
            }
            if let Some((from, to)) = ack.head_moved {
                let from = from.map_or("missing".to_string(), |s| format!("at entry {s}"));
                println!("chain head record was {from}; set to the last entry, {to}");
            }
            println!("recorded as an audit.acknowledged entry; servers report ready again");
        }
    }
    Ok(ExitCode::SUCCESS)
}
