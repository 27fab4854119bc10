//! `vouch cert show|get|revoke|hold|release` and `vouch crl get`: issued certificates, their
//! status, and the published CRLs (the issuing CA's, the root's ARL, the attribute authority's).

use super::output::{self, Fields};
use super::{finish, write_output, Answer, Client, Connection, Failure, Outcome};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// A CRL is read up to this size.
const MAX_CRL_BYTES: usize = 64 << 20;

/// `vouch cert`: issued certificates.
#[derive(Subcommand)]
pub enum CertCommand {
    /// Show a certificate's record and status.
    Show {
        /// Serial number (hex; `:` separators and upper case accepted).
        serial: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Write a certificate to a file (PEM).
    Get {
        /// Serial number (hex).
        serial: String,
        /// File to write (`-` for stdout); an existing file is refused without --force.
        #[arg(long)]
        out: PathBuf,
        /// Append the chain (issuing CA, then root) after the certificate.
        #[arg(long)]
        chain: bool,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Revoke a certificate (revoker).
    Revoke {
        /// Serial number (hex).
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, privilegeWithdrawn or aACompromise.
        #[arg(long)]
        reason: String,
        /// When the key is known or suspected to have been compromised (RFC 3339).
        #[arg(long)]
        invalidity_date: Option<String>,
        /// A note kept in the audit log (at most 1000 characters).
        #[arg(long)]
        comment: Option<String>,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Suspend a valid certificate (certificateHold; revoker).
    Hold(HoldArgs),
    /// Make a held certificate valid again (revoker).
    Release(HoldArgs),
}

/// The arguments of `cert hold` and `cert release`.
#[derive(Args)]
pub struct HoldArgs {
    /// Serial number (hex).
    serial: String,
    /// A note kept in the audit log.
    #[arg(long)]
    comment: Option<String>,
    /// Where the server is and who is calling.
    #[command(flatten)]
    conn: Connection,
}

/// Whose CRL `vouch crl get` fetches.
#[derive(Clone, Copy, ValueEnum)]
pub enum CrlCa {
    /// The issuing CA's CRL of end-entity certificates.
    Issuing,
    /// The root's ARL (CRL of CA certificates).
    Root,
    /// The attribute authority's CRL of attribute certificates.
    Aa,
}

/// `vouch crl`: the published CRLs.
#[derive(Subcommand)]
pub enum CrlCommand {
    /// Download a CRL (public: no token needed) and write it to a file.
    Get {
        /// Whose CRL.
        #[arg(long, value_enum, default_value = "issuing")]
        ca: CrlCa,
        /// The issuing CA's delta CRL instead of the full one.
        #[arg(long)]
        delta: bool,
        /// File to write (`-` for stdout); an existing file is refused without --force.
        #[arg(long)]
        out: PathBuf,
        /// Write PEM (X509 CRL) instead of DER.
        #[arg(long)]
        pem: bool,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
}

/// Run a `vouch cert` command.
pub async fn run(command: CertCommand) -> ExitCode {
    finish(dispatch(command).await)
}

/// Run a `vouch crl` command.
pub async fn run_crl(command: CrlCommand) -> ExitCode {
    finish(crl(command).await)
}

async fn dispatch(command: CertCommand) -> Outcome {
    match command {
        CertCommand::Show { serial, conn } => {
            let answer = fetch(&conn, &serial).await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                Fields::new()
                    .keys(
                        &answer.value,
                        &[
                            "serial",
                            "status",
                            "subject",
                            "not_before",
                            "not_after",
                            "ca",
                            "profile",
                            "request_id",
                            "subscriber_id",
                            "key_sha256",
                            "issued_at",
                            "revoked_at",
                            "revocation_reason",
                            "invalidity_date",
                        ],
                    )
                    .print();
            }
        }
        CertCommand::Get {
            serial,
            out,
            chain,
            force,
            conn,
        } => {
            let answer = fetch(&conn, &serial).await?;
            let mut pem = answer.value["pem"]
                .as_str()
                .filter(|p| p.starts_with("-----BEGIN CERTIFICATE-----"))
                .ok_or_else(|| Failure::local("the answer has no certificate PEM"))?
                .to_string();
            if chain {
                if !pem.ends_with('\n') {
                    pem.push('\n');
                }
                pem.push_str(answer.value["chain_pem"].as_str().unwrap_or(""));
            }
            write_output(&out, pem.as_bytes(), force)?;
            if conn.json {
                output::raw(&answer.raw);
            } else if out.as_os_str() != "-" {
                let what = if chain {
                    "certificate and chain"
                } else {
                    "certificate"
                };
                println!(
                    "wrote the {what} {} ({}) to {}",
                    output::text(&answer.value["serial"]).unwrap_or_default(),
                    output::text(&answer.value["status"]).unwrap_or_default(),
                    out.display()
                );
            }
        }
        CertCommand::Revoke {
            serial,
            reason,
            invalidity_date,
            comment,
            conn,
        } => {
            let mut body = json!({"reason": reason});
            if let Some(d) = invalidity_date {
                body["invalidity_date"] = Value::String(d);
            }
            if let Some(c) = comment {
                body["comment"] = Value::String(c);
            }
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "certificates", &serial, "revoke"], &body)
                .await?;
            outcome(&answer, conn.json);
        }
        CertCommand::Hold(a) => hold(a, "hold").await?,
        CertCommand::Release(a) => hold(a, "release").await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(conn: &Connection, serial: &str) -> Result<Answer, Failure> {
    Client::new(conn)?
        .get(&["api", "v1", "certificates", serial], &[])
        .await
}

async fn hold(a: HoldArgs, action: &str) -> Result<(), Failure> {
    let body = match a.comment {
        Some(c) => json!({"comment": c}),
        None => json!({}),
    };
    let answer = Client::new(&a.conn)?
        .post(&["api", "v1", "certificates", &a.serial, action], &body)
        .await?;
    outcome(&answer, a.conn.json);
    Ok(())
}

/// The answer to a revoke, hold or release.
fn outcome(answer: &Answer, json: bool) {
    if json {
        output::raw(&answer.raw);
        return;
    }
    let v = &answer.value;
    let mut f = Fields::new();
    f.keys(v, &["serial", "status", "reason", "also_revoked"]);
    if let Some(id) = output::text(&v["id"]) {
        f.line(
            "revocation_request",
            format!("{id} (a second revoker must approve it)"),
        );
    }
    f.print();
}

async fn crl(command: CrlCommand) -> Outcome {
    let CrlCommand::Get {
        ca,
        delta,
        out,
        pem,
        force,
        conn,
    } = command;
    let file = match (ca, delta) {
        (CrlCa::Issuing, false) => "issuing.crl",
        (CrlCa::Issuing, true) => "issuing-delta.crl",
        (CrlCa::Root, false) => "root.crl",
        (CrlCa::Aa, false) => "aa.crl",
        (CrlCa::Root | CrlCa::Aa, true) => {
            return Err(Failure::local(
                "only the issuing CA publishes a delta CRL: --delta goes with --ca issuing",
            ))
        }
    };
    let der = Client::anonymous(&conn)?
        .get_bytes(&["crl", file], MAX_CRL_BYTES)
        .await?;
    let (_, parsed) = x509_parser::parse_x509_crl(&der)
        .map_err(|_| Failure::local(format!("the answer for /crl/{file} is not a DER CRL")))?;
    let summary = json!({
        "file": out.display().to_string(),
        "crl": file,
        "number": parsed.crl_number().map(|n| n.to_string()),
        "this_update": rfc3339(parsed.last_update()),
        "next_update": parsed.next_update().map(rfc3339),
        "entries": parsed.iter_revoked_certificates().count(),
    });
    let bytes = if pem {
        crate::x509::pem_encode("X509 CRL", &der).into_bytes()
    } else {
        der.clone()
    };
    write_output(&out, &bytes, force)?;
    if conn.json {
        println!("{summary}");
    } else if out.as_os_str() != "-" {
        let mut f = Fields::new();
        f.keys(
            &summary,
            &[
                "file",
                "crl",
                "number",
                "this_update",
                "next_update",
                "entries",
            ],
        );
        f.print();
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
