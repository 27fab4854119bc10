//! `vouch attribute grant|show|list|revoke|grants|grant-status|approve|reject|aa-cert`: RFC 5755
//! attribute certificates (roles in named applications, held by the holder of an identity
//! certificate), the grants that wait for a second `aa` operator, and the attribute authority's
//! certificate.

mod show;

use self::show::{approval_count, grant_fields, pem_certificates, show_grant, written};
use super::output::{self, Fields, Table};
use super::{finish, write_output, Client, Connection, Failure, Outcome};
use clap::{ArgGroup, Subcommand};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// A CA certificate file (`/ca/aa.pem`, `/ca/aa-chain.pem`) is read up to this size.
const MAX_CA_FILE_BYTES: usize = 1 << 20;

/// The longest relative time accepted (`+36600d`, 100 years): far past any profile's limit, short
/// of the time crate's range.
const MAX_RELATIVE_DAYS: i64 = 36_600;

/// `vouch attribute`: attribute certificates and their grants.
#[derive(Subcommand)]
pub enum AttributeCommand {
    /// Grant roles in applications to the holder of a certificate Vouch issued (aa). The AC is
    /// issued at once, or, when the profile asks for approvals, a pending grant is recorded that
    /// another aa operator approves with `vouch attribute approve ID`.
    #[command(
        after_help = "Times: RFC 3339, e.g. 2030-01-31T17:00:00Z, or relative to now: \
                            +30d (30 days) or +12h (12 hours), computed on this machine (no \
                            shell date arithmetic needed) and sent as RFC 3339 UTC.\n\n\
                            Prints the AC (serial, status, roles, validity...) as `key: value` \
                            lines, or, for a grant awaiting approval, its id with `status: \
                            pending`."
    )]
    Grant {
        /// Serial number (hex) of the holder's identity certificate.
        #[arg(long = "holder", value_name = "SERIAL")]
        holder: String,
        /// A role to grant, as the profile allows (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// An application (target) the roles hold in, as the profile allows (repeat for several).
        #[arg(long = "target", value_name = "APP", required = true)]
        targets: Vec<String>,
        /// A group the holder belongs to (repeat for several; free names).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// End of validity: RFC 3339 (2030-01-31T17:00:00Z), or relative to now: +30d (days),
        /// +12h (hours).
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        not_after: String,
        /// Start of validity (default: now; not in the past): RFC 3339, or relative to now (+1d).
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        not_before: Option<String>,
        /// AC profile (default on the server: application-role; application-role-approved needs
        /// a second aa operator's approval).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Also write the AC to FILE: PEM (ATTRIBUTE CERTIFICATE), DER with --der; `-` writes it
        /// to stdout instead of the fields. Not written while the grant awaits approval.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write --out as DER instead of PEM.
        #[arg(long, requires = "out")]
        der: bool,
        /// Overwrite --out if it exists.
        #[arg(long, requires = "out")]
        force: bool,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Show an attribute certificate and its status (aa, auditor, revoker); --out writes it.
    Show {
        /// Serial number (hex) of the attribute certificate.
        serial: String,
        /// Also write the AC to FILE: PEM (ATTRIBUTE CERTIFICATE), DER with --der; `-` writes it
        /// to stdout instead of the fields.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write --out as DER instead of PEM.
        #[arg(long, requires = "out")]
        der: bool,
        /// Overwrite --out if it exists.
        #[arg(long, requires = "out")]
        force: bool,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// List attribute certificates of a holder, with a role, or for an application, newest first
    /// (aa, auditor, revoker); at least one of --holder, --role, --target.
    #[command(group(ArgGroup::new("filter").args(["holder", "role", "target"]).required(true).multiple(true)))]
    List {
        /// Only the ACs of this holder certificate (hex serial).
        #[arg(long, value_name = "SERIAL")]
        holder: Option<String>,
        /// Only the ACs carrying this role.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Only the ACs for this application.
        #[arg(long, value_name = "APP")]
        target: Option<String>,
        /// At most this many (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Revoke an attribute certificate on its own (revoker); its holder certificate stays valid.
    Revoke {
        /// Serial number (hex) of the attribute certificate.
        serial: String,
        /// RFC 5280 reason, typically privilegeWithdrawn or affiliationChanged (not
        /// certificateHold: an AC is held only with its holder certificate).
        #[arg(long)]
        reason: String,
        /// A note kept in the audit log (at most 1000 characters).
        #[arg(long)]
        comment: Option<String>,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// List grants, oldest first (aa, auditor).
    Grants {
        /// pending (the default), granted, rejected, expired, failed or all.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Show a grant: its status, approvals and, once granted, the AC's serial (aa, auditor).
    GrantStatus {
        /// Grant id (grant_…).
        id: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Approve a pending grant (aa, never the granter); the last approval issues the AC.
    Approve {
        /// Grant id (grant_…).
        id: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Reject a pending grant (aa; the granter may withdraw their own); final.
    Reject {
        /// Grant id (grant_…).
        id: String,
        /// Why (1–1000 characters), kept with the grant and in the audit log.
        #[arg(long)]
        reason: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Download the attribute authority's certificate (public: no token needed), the issuer a
    /// relying party checks ACs against.
    AaCert {
        /// File to write (`-` for stdout); an existing file is refused without --force.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Append the root certificate after the AA's (/ca/aa-chain.pem).
        #[arg(long)]
        chain: bool,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
}

/// Run a `vouch attribute` command.
pub async fn run(command: AttributeCommand) -> ExitCode {
    finish(dispatch(command).await)
}

/// A time argument: RFC 3339 as given (the server checks it), or `+N` with `d` (days) or `h`
/// (hours), turned into RFC 3339 UTC from now.
fn parse_time_arg(text: &str) -> Result<String, String> {
    relative_time(text, OffsetDateTime::now_utc())
}

fn relative_time(text: &str, now: OffsetDateTime) -> Result<String, String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('+') else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            format!("{text:?} is not an RFC 3339 time (2030-01-31T17:00:00Z) nor +Nd / +Nh")
        })?;
        return Ok(text.to_string());
    };
    let bad =
        || format!("{text:?}: a relative time is + and a whole number then d or h: +30d, +12h");
    let Some((last, _)) = rest.char_indices().last() else {
        return Err(bad());
    };
    let (number, unit) = rest.split_at(last);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 9 {
        return Err(bad());
    }
    let n: i64 = number.parse().map_err(|_| bad())?;
    let span = match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        _ => return Err(bad()),
    };
    if span > Duration::days(MAX_RELATIVE_DAYS) {
        return Err(format!("{text:?}: at most +{MAX_RELATIVE_DAYS}d"));
    }
    let at = now
        .replace_nanosecond(0)
        .map_err(|e| e.to_string())?
        .checked_add(span)
        .ok_or_else(bad)?;
    at.format(&Rfc3339).map_err(|e| e.to_string())
}

async fn dispatch(command: AttributeCommand) -> Outcome {
    match command {
        AttributeCommand::Grant {
            holder,
            roles,
            targets,
            groups,
            not_after,
            not_before,
            profile,
            out,
            der,
            force,
            conn,
        } => {
            let mut body = json!({
                "holder_serial": holder,
                "roles": roles,
                "targets": targets,
                "not_after": not_after,
            });
            if !groups.is_empty() {
                body["groups"] = json!(groups);
            }
            if let Some(t) = not_before {
                body["not_before"] = Value::String(t);
            }
            if let Some(p) = profile {
                body["profile"] = Value::String(p);
            }
            // An --out that would be refused is refused before the AC is issued.
            if let Some(out) = out.as_deref() {
                if !force && out != Path::new("-") && out.symlink_metadata().is_ok() {
                    return Err(Failure::local(format!(
                        "{} exists; give another --out or --force to overwrite it",
                        out.display()
                    )));
                }
            }
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "attribute-certificates"], &body)
                .await?;
            if answer.status == StatusCode::ACCEPTED {
                if let Some(out) = &out {
                    eprintln!(
                        "vouch: nothing written to {}: the grant awaits approval; once granted, \
                         `vouch attribute show SERIAL --out FILE` writes the AC",
                        out.display()
                    );
                }
                if conn.json {
                    output::raw(&answer.raw);
                } else {
                    grant_fields(&answer.value).print();
                }
            } else {
                written(&answer, out.as_deref(), der, force, conn.json).map_err(|e| match e {
                    // The AC exists now: say which, so that it can be fetched again.
                    Failure::Local(m) => {
                        let serial = output::text(&answer.value["serial"]).unwrap_or_default();
                        Failure::local(format!(
                            "{m}; the attribute certificate {serial} was issued: `vouch \
                             attribute show {serial} --out FILE` writes it"
                        ))
                    }
                    other => other,
                })?;
            }
        }
        AttributeCommand::Show {
            serial,
            out,
            der,
            force,
            conn,
        } => {
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "attribute-certificates", &serial], &[])
                .await?;
            written(&answer, out.as_deref(), der, force, conn.json)?;
        }
        AttributeCommand::List {
            holder,
            role,
            target,
            limit,
            conn,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(h) = holder {
                query.push(("holder_serial", h));
            }
            if let Some(r) = role {
                query.push(("role", r));
            }
            if let Some(t) = target {
                query.push(("target", t));
            }
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "attribute-certificates"], &query)
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                let keys = [
                    "serial",
                    "status",
                    "holder_serial",
                    "roles",
                    "targets",
                    "not_after",
                ];
                let mut t = Table::new(&keys);
                for ac in answer.value["attribute_certificates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let mut cells: Vec<String> = keys
                        .iter()
                        .map(|k| output::text(&ac[*k]).unwrap_or_else(|| "-".into()))
                        .collect();
                    if ac["expired"] == Value::Bool(true) {
                        cells[1].push_str(" (expired)");
                    }
                    t.row(cells);
                }
                t.print();
            }
        }
        AttributeCommand::Revoke {
            serial,
            reason,
            comment,
            conn,
        } => {
            let mut body = json!({"reason": reason});
            if let Some(c) = comment {
                body["comment"] = Value::String(c);
            }
            let answer = Client::new(&conn)?
                .post(
                    &["api", "v1", "attribute-certificates", &serial, "revoke"],
                    &body,
                )
                .await?;
            written(&answer, None, false, false, conn.json)?;
        }
        AttributeCommand::Grants {
            status,
            limit,
            conn,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "attribute-grants"], &query)
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                let mut t = Table::new(&[
                    "id",
                    "status",
                    "holder_serial",
                    "roles",
                    "targets",
                    "approvals",
                    "requested_by",
                    "expires_at",
                    "serial",
                ]);
                for g in answer.value["grants"].as_array().into_iter().flatten() {
                    let cell = |k: &str| output::text(&g[k]).unwrap_or_else(|| "-".into());
                    t.row(vec![
                        cell("id"),
                        cell("status"),
                        cell("holder_serial"),
                        cell("roles"),
                        cell("targets"),
                        approval_count(g),
                        cell("requested_by"),
                        cell("expires_at"),
                        cell("serial"),
                    ]);
                }
                t.print();
            }
        }
        AttributeCommand::GrantStatus { id, conn } => {
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "attribute-grants", &id], &[])
                .await?;
            show_grant(&answer, conn.json);
        }
        AttributeCommand::Approve { id, conn } => {
            let answer = Client::new(&conn)?
                .post(
                    &["api", "v1", "attribute-grants", &id, "approve"],
                    &json!({}),
                )
                .await?;
            show_grant(&answer, conn.json);
        }
        AttributeCommand::Reject { id, reason, conn } => {
            let answer = Client::new(&conn)?
                .post(
                    &["api", "v1", "attribute-grants", &id, "reject"],
                    &json!({"reason": reason}),
                )
                .await?;
            show_grant(&answer, conn.json);
        }
        AttributeCommand::AaCert {
            out,
            chain,
            force,
            conn,
        } => {
            let file = if chain { "aa-chain.pem" } else { "aa.pem" };
            let pem = Client::anonymous(&conn)?
                .get_bytes(&["ca", file], MAX_CA_FILE_BYTES)
                .await?;
            let certs = pem_certificates(&pem).ok_or_else(|| {
                Failure::local(format!("the answer for /ca/{file} is not PEM certificates"))
            })?;
            write_output(&out, &pem, force)?;
            let summary = json!({
                "file": out.display().to_string(),
                "subject": certs.first().map(|c| c.0.clone()),
                "not_after": certs.first().map(|c| c.1.clone()),
                "certificates": certs.len(),
            });
            if conn.json {
                println!("{summary}");
            } else if out.as_os_str() != "-" {
                Fields::new()
                    .keys(&summary, &["file", "subject", "not_after", "certificates"])
                    .print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn relative_times_count_from_now_in_utc() {
        let now = datetime!(2030-01-31 17:00:00.25 UTC);
        assert_eq!(relative_time("+30d", now).unwrap(), "2030-03-02T17:00:00Z");
        assert_eq!(relative_time("+12h", now).unwrap(), "2030-02-01T05:00:00Z");
        assert_eq!(
            relative_time("2031-01-01T00:00:00+08:00", now).unwrap(),
            "2031-01-01T00:00:00+08:00"
        );
        for bad in [
            "+30",
            "+d",
            "+30m",
            "+-3d",
            "+3.5d",
            "30d",
            "tomorrow",
            "+99999999d",
            "+3é",
        ] {
            assert!(relative_time(bad, now).is_err(), "{bad}");
        }
    }
}
