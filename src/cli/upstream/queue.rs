//! `vouch upstream queue [--all] [--json]`, `vouch upstream queue retry SERIAL`, `vouch upstream
//! queue drop SERIAL --reason TEXT` and `vouch upstream queue ack AUDIT_SEQ --reason TEXT`, on the
//! data directory's database (no server and no CA needed).

use super::{QueueAction, QueueArgs};
use crate::cli::{open_store, DataDirArg};
use crate::error::Result;
use crate::ra::forward_admin;
use crate::ra::quarantine;
use crate::ra::rfc3339;
use crate::store::upstream_queue::{self as q, ForwardRow};
use std::process::ExitCode;

/// Most entries of each kind listed.
const QUEUE_LIMIT: i64 = 10_000;

/// Most quarantined certificates listed (the newest).
const QUARANTINE_LIMIT: i64 = 100;

pub(super) async fn run(args: QueueArgs) -> Result<ExitCode> {
    let data = DataDirArg {
        data_dir: args.data_dir,
        database_url: args.database_url,
    };
    let store = open_store(&data.resolve()?).await?;
    let now = time::OffsetDateTime::now_utc();
    let outcome = match args.action {
        None => list(&store, args.json, args.all).await,
        Some(QueueAction::Retry {
            serial: None,
            ca,
            failed,
        }) => retry_many(&store, now, ca.as_deref(), failed).await,
        Some(QueueAction::Retry {
            serial: Some(serial),
            ..
        }) => match forward_admin::retry_forward(&store, now, None, &serial).await {
            Ok(row) => {
                println!(
                    "the revocation forward of {} to the CA {} (was {}) is due at the \
                         server's next retry round",
                    row.serial,
                    row.ca_id,
                    row.state()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(e),
        },
        Some(QueueAction::Ack { audit_seq, reason }) => {
            match quarantine::acknowledge(&store, now, audit_seq, &reason).await {
                Ok(q) => {
                    println!(
                        "the quarantined certificate of audit entry {audit_seq} (CA {}) is \
                         acknowledged; `vouch upstream queue --all` still lists it",
                        q["ca"].as_str().unwrap_or("?")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e),
            }
        }
        Some(QueueAction::Drop { serial, reason }) => {
            match forward_admin::drop_forward(&store, now, None, &serial, &reason).await {
                Ok(row) => {
                    println!(
                        "the revocation forward of {} to the CA {} is dropped: the CA will not be \
                         told; the certificate stays {} here",
                        row.serial,
                        row.ca_id,
                        match row.reason.as_str() {
                            "certificateHold" => "on hold",
                            _ => "revoked",
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e),
            }
        }
    };
    store.close().await;
    outcome
}

/// `retry --ca ID` / `--failed`: every selected forward asked again, one audit entry each.
async fn retry_many(
    store: &crate::store::Store,
    now: time::OffsetDateTime,
    ca: Option<&str>,
    failed_only: bool,
) -> Result<ExitCode> {
    let outcome = forward_admin::retry_forwards(store, now, None, ca, failed_only).await?;
    for row in &outcome.retried {
        println!(
            "the revocation forward of {} to the CA {} (was {}) is due at the server's next \
             retry round",
            row.serial,
            row.ca_id,
            row.state()
        );
    }
    let which = match (ca, failed_only) {
        (Some(ca), true) => format!("refused forwards to the CA {ca}"),
        (Some(ca), false) => format!("pending or refused forwards to the CA {ca}"),
        (None, _) => "refused forwards".to_string(),
    };
    println!(
        "{} {which} asked again{}",
        outcome.retried.len(),
        match outcome.changed_meanwhile {
            0 => String::new(),
            n => format!("; {n} acknowledged, replaced or dropped meanwhile, left as they are"),
        }
    );
    if outcome.truncated {
        println!(
            "more forwards match than one run takes ({}): run the command again",
            forward_admin::MAX_RETRIED
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn forward_json(f: &ForwardRow, state: &str) -> serde_json::Value {
    let mut v = serde_json::json!({"serial": f.serial, "ca": f.ca_id, "reason": f.reason,
        "state": state, "revoked_at": rfc3339(f.revoked_at), "queued_at": rfc3339(f.queued_at),
        "failed_attempts": f.attempts, "last_error": f.last_error,
        "next_attempt_at": rfc3339(f.next_attempt_at)});
    let times = [
        ("failed_at", f.failed_at),
        ("acknowledged_at", f.acknowledged_at),
        ("dropped_at", f.dropped_at),
    ];
    for (key, at) in times {
        if let Some(at) = at {
            v[key] = rfc3339(at).into();
        }
    }
    if f.dropped_at.is_some() {
        v["dropped_by"] = f.dropped_by.clone().into();
        v["drop_reason"] = f.drop_reason.clone().into();
    }
    v
}

async fn list(store: &crate::store::Store, json: bool, all: bool) -> Result<ExitCode> {
    let (issuances, forwards, quarantined) = {
        let mut c = store.read().await?;
        let issuances = q::pending_issuances(&mut c, QUEUE_LIMIT).await?;
        // Each with its state; `--all` also tells the superseded ones (the certificate's status
        // changed here since: never forwarded now) from those still pending.
        let forwards: Vec<(ForwardRow, &'static str)> = match all {
            true => q::all(&mut c, QUEUE_LIMIT)
                .await?
                .into_iter()
                .map(|f| {
                    let state = f.state();
                    (f.row, state)
                })
                .collect(),
            false => q::pending(&mut c, QUEUE_LIMIT)
                .await?
                .into_iter()
                .map(|f| {
                    let state = f.state();
                    (f, state)
                })
                .collect(),
        };
        let quarantined = quarantine::newest(&mut c, QUARANTINE_LIMIT).await?;
        (issuances, forwards, quarantined)
    };
    // Acknowledged ones only with `--all`.
    let quarantined: Vec<Quarantine> = quarantined
        .iter()
        .map(|(row, ack)| Quarantine::from_entry(row, ack.as_ref()))
        .filter(|q| all || q.acknowledged.is_none())
        .collect();
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
        let forwards: Vec<_> = forwards.iter().map(|(f, s)| forward_json(f, s)).collect();
        let quarantined: Vec<_> = quarantined.iter().map(Quarantine::json).collect();
        let out = serde_json::json!({"issuances": issuances, "revocation_forwards": forwards,
            "quarantined": quarantined});
        println!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    let none = |e: &Option<String>| e.clone().unwrap_or_else(|| "-".into());
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
    let title = match all {
        true => "revocation forwards",
        false => "pending revocation forwards",
    };
    println!("{title}: {}", forwards.len());
    for (f, state) in &forwards {
        println!(
            "  certificate {} (ca {}, reason {}): {state}",
            f.serial, f.ca_id, f.reason,
        );
        let next = match *state {
            "pending" => rfc3339(f.next_attempt_at),
            "failed" => "none: the CA refused it (`vouch upstream queue retry` or `drop`)".into(),
            "superseded" => {
                "none: the certificate's status changed here since (a hold released, say)".into()
            }
            _ => "none".into(),
        };
        println!(
            "    queued {}; failed attempts {}; next attempt {next}",
            rfc3339(f.queued_at),
            f.attempts,
        );
        println!("    last error: {}", none(&f.last_error));
        if let Some(at) = f.dropped_at {
            println!(
                "    dropped {} by {}: {}",
                rfc3339(at),
                f.dropped_by.as_deref().unwrap_or("the host's command line"),
                none(&f.drop_reason)
            );
        }
    }
    let which = match all {
        true => "",
        false => "not acknowledged, ",
    };
    println!(
        "quarantined certificates (never delivered; {which}of the newest {QUARANTINE_LIMIT}): {}",
        quarantined.len()
    );
    for q in &quarantined {
        q.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// A certificate a CA returned that Vouch did not deliver (a `certificate.quarantined` audit
/// entry): one that does not match the approved order, or a second one for a request.
struct Quarantine {
    seq: i64,
    at: String,
    request_id: String,
    details: serde_json::Value,
    /// When and why an admin acknowledged it.
    acknowledged: Option<(String, String)>,
}

impl Quarantine {
    fn from_entry(
        row: &crate::store::audit::AuditRow,
        ack: Option<&crate::store::audit::AuditRow>,
    ) -> Quarantine {
        let acknowledged = ack.map(|a| {
            let d: serde_json::Value = serde_json::from_str(&a.details).unwrap_or_default();
            let reason = d["reason"].as_str().unwrap_or_default().to_string();
            (rfc3339(a.at / 1_000_000), reason)
        });
        Quarantine {
            seq: row.seq,
            at: rfc3339(row.at / 1_000_000),
            request_id: row.target.clone().unwrap_or_default(),
            details: serde_json::from_str(&row.details).unwrap_or_default(),
            acknowledged,
        }
    }

    /// The certificate's serial, as the entry gives it.
    fn serial(&self) -> Option<&str> {
        let d = &self.details;
        d["upstream_revocation"]["serial"]
            .as_str()
            .or_else(|| d["serial"].as_str())
    }

    /// None once revoked at the CA; else what the admin must do, and why.
    fn action(&self) -> Option<String> {
        let r = &self.details["upstream_revocation"];
        if r["revoked"] == true {
            return None;
        }
        let why = r["not_revoked"]
            .as_str()
            .or_else(|| r["error"].as_str())
            .unwrap_or("no revocation was attempted");
        Some(format!(
            "revoke it at the CA {} by hand if it is valid there ({why})",
            self.details["ca"].as_str().unwrap_or("?")
        ))
    }

    fn json(&self) -> serde_json::Value {
        let d = &self.details;
        serde_json::json!({"audit_seq": self.seq, "at": self.at, "request_id": self.request_id,
            "ca": d["ca"], "serial": self.serial(), "certificate_sha256": d["certificate_sha256"],
            "error": d["error"], "revoked_at_ca": d["upstream_revocation"]["revoked"] == true,
            "action": self.action(),
            "acknowledged_at": self.acknowledged.as_ref().map(|(at, _)| at),
            "acknowledged_reason": self.acknowledged.as_ref().map(|(_, why)| why)})
    }

    fn print(&self) {
        let d = &self.details;
        println!(
            "  certificate {} from the CA {} for request {} ({}, audit entry {})",
            self.serial().unwrap_or("(serial unreadable)"),
            d["ca"].as_str().unwrap_or("?"),
            self.request_id,
            self.at,
            self.seq
        );
        println!("    why: {}", d["error"].as_str().unwrap_or("-"));
        match self.action() {
            None => println!("    revoked at the CA (superseded)"),
            Some(action) => println!("    action: {action}"),
        }
        match &self.acknowledged {
            Some((at, why)) => println!("    acknowledged {at}: {why}"),
            None => println!(
                "    once dealt with: vouch upstream queue ack {} --reason TEXT",
                self.seq
            ),
        }
    }
}

/// When an intent is tried again: None before its first failed attempt (it is taken up at the
/// retry task's next round, not at a set time).
fn next_attempt(at: i64, approved: i64) -> Option<String> {
    (at > approved).then(|| rfc3339(at))
}
