//! `vouch request submit|show|list|approve|reject|cancel`: certificate requests and the
//! four-eyes decision on them.

use super::output::{self, Fields, Table};
use super::{finish, read_file, Answer, Client, Connection, Outcome};
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// A CSR file is read up to this size; the server's own limit (16 KiB) decides.
const MAX_CSR_FILE_BYTES: u64 = 64 * 1024;

/// `vouch request`: certificate requests.
#[derive(Subcommand)]
pub enum RequestCommand {
    /// Submit a certificate request for a vetted subscriber (clerk).
    Submit {
        /// Subscriber id (sub_…).
        #[arg(long)]
        subscriber: String,
        /// Profile name, e.g. person-signing.
        #[arg(long)]
        profile: String,
        /// The PKCS#10 CSR (PEM); only its key and signature count.
        #[arg(long)]
        csr: PathBuf,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Show a request.
    Show {
        /// Request id (req_…).
        id: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// List requests, oldest first.
    List {
        /// Only requests in this state: pending, approved, issued, rejected, expired, failed or
        /// cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only the requests of this subscriber (sub_…).
        #[arg(long)]
        subscriber: Option<String>,
        /// At most this many (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Approve a request (an approver who did not submit it); issued once enough approved.
    Approve {
        /// Request id (req_…).
        id: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Reject a pending request (approver); final.
    Reject {
        /// Request id (req_…).
        id: String,
        /// Why (1–1000 characters), kept with the request and in the audit log.
        #[arg(long)]
        reason: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Withdraw an approved request that is not issued yet (admin).
    Cancel {
        /// Request id (req_…).
        id: String,
        /// Why (1–1000 characters).
        #[arg(long)]
        reason: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
}

/// Run a `vouch request` command.
pub async fn run(command: RequestCommand) -> ExitCode {
    finish(dispatch(command).await)
}

async fn dispatch(command: RequestCommand) -> Outcome {
    let (answer, json) = match command {
        RequestCommand::Submit {
            subscriber,
            profile,
            csr,
            conn,
        } => {
            let pem = read_file(&csr, MAX_CSR_FILE_BYTES)?;
            let pem = String::from_utf8(pem).map_err(|_| {
                super::Failure::local(format!("{}: not a PEM text file", csr.display()))
            })?;
            let body = json!({"subscriber_id": subscriber, "profile": profile, "csr": pem});
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "requests"], &body)
                .await?;
            (answer, conn.json)
        }
        RequestCommand::Show { id, conn } => {
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "requests", &id], &[])
                .await?;
            (answer, conn.json)
        }
        RequestCommand::List {
            status,
            subscriber,
            limit,
            conn,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(s) = subscriber {
                query.push(("subscriber_id", s));
            }
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "requests"], &query)
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                let keys = ["id", "status", "profile", "subject", "created_at", "serial"];
                let mut t = Table::new(&keys);
                for r in answer.value["requests"].as_array().into_iter().flatten() {
                    t.row_of(r, &keys);
                }
                t.print();
            }
            return Ok(ExitCode::SUCCESS);
        }
        RequestCommand::Approve { id, conn } => {
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "requests", &id, "approve"], &json!({}))
                .await?;
            (answer, conn.json)
        }
        RequestCommand::Reject { id, reason, conn } => {
            let answer = Client::new(&conn)?
                .post(
                    &["api", "v1", "requests", &id, "reject"],
                    &json!({"reason": reason}),
                )
                .await?;
            (answer, conn.json)
        }
        RequestCommand::Cancel { id, reason, conn } => {
            let answer = Client::new(&conn)?
                .post(
                    &["api", "v1", "requests", &id, "cancel"],
                    &json!({"reason": reason}),
                )
                .await?;
            (answer, conn.json)
        }
    };
    show(&answer, json);
    Ok(ExitCode::SUCCESS)
}

/// A request as `key: value` lines.
fn show(answer: &Answer, json: bool) {
    if json {
        output::raw(&answer.raw);
        return;
    }
    let r = &answer.value;
    let mut f = Fields::new();
    f.keys(
        r,
        &[
            "id",
            "status",
            "serial",
            "subscriber_id",
            "profile",
            "subject",
        ],
    );
    f.add("emails", &r["subject_alt_emails"]);
    f.keys(r, &["key_sha256", "validity_days"]);
    let approvals: Vec<&Value> = r["approvals"].as_array().into_iter().flatten().collect();
    let by: Vec<String> = approvals
        .iter()
        .filter_map(|a| output::text(&a["operator"]))
        .collect();
    let mut line = format!(
        "{} of {}",
        approvals.len(),
        output::text(&r["required_approvals"]).unwrap_or_else(|| "?".into())
    );
    if !by.is_empty() {
        line.push_str(&format!(" ({})", by.join(", ")));
    }
    f.line("approvals", line);
    f.keys(
        r,
        &[
            "requested_by",
            "created_at",
            "expires_at",
            "decided_at",
            "rejected_by",
            "reject_reason",
            "failure",
            "cancelled_by",
            "cancel_reason",
        ],
    );
    let issuance = &r["issuance"];
    if issuance.is_object() {
        f.add("failed_attempts", &issuance["failed_attempts"]);
        f.add("last_error", &issuance["last_error"]);
        f.add("next_attempt_at", &issuance["next_attempt_at"]);
    }
    f.print();
}
