//! The tamper-evident audit log. Every state change and every refused attempt is appended, in the
//! same transaction as the change it records, as an entry whose hash covers the previous entry's
//! hash. A head row keeps the newest (seq, hash) so that entries cut off the end are noticed too.

use crate::error::Result;
use crate::store::audit::{self as rows, row_hash, AuditRow, NewEntry, GENESIS};
use crate::store::{AuditLog, Conn};
use serde::Serialize;
use time::OffsetDateTime;

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Event {
    /// Operator id, or None for the system itself and unauthenticated callers.
    pub actor: Option<String>,
    pub action: &'static str,
    /// What it happened to: a request, subscriber, certificate serial, operator id.
    pub target: Option<String>,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(
        actor: Option<&str>,
        action: &'static str,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> Self {
        Event {
            actor: actor.map(str::to_string),
            action,
            target: target.map(str::to_string),
            details,
        }
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// Add `event` to a write job's audit log; it is chained and committed with the job's changes.
pub fn record(log: &mut AuditLog, now: OffsetDateTime, event: Event) {
    log.push(NewEntry {
        at: micros(now),
        actor: event.actor,
        action: event.action.to_string(),
        target: event.target,
        details: event.details.to_string(),
    });
}

/// What an audit entry looks like to an auditor.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub hash: String,
}

impl From<AuditRow> for Entry {
    fn from(r: AuditRow) -> Self {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.at) * 1000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Entry {
            seq: r.seq,
            at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: serde_json::from_str(&r.details)
                .unwrap_or(serde_json::Value::String(r.details)),
            hash: hex::encode(r.hash),
        }
    }
}

pub async fn page(conn: &mut Conn, after_seq: i64, limit: i64) -> Result<Vec<Entry>> {
    Ok(rows::page(conn, after_seq, limit)
        .await?
        .into_iter()
        .map(Entry::from)
        .collect())
}

/// Result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    /// Every entry links to the one before and the head matches the last entry.
    Intact { entries: i64, head: String },
    /// The first place where the chain breaks.
    Broken { seq: i64, problem: String },
}

pub async fn verify(conn: &mut Conn) -> Result<Verdict> {
    let mut expected = 1i64;
    let mut prev = GENESIS.to_vec();
    let mut broken: Option<Verdict> = None;
    rows::for_each(&mut *conn, |row| {
        let fail = |seq: i64, problem: String| Some(Verdict::Broken { seq, problem });
        if row.seq != expected {
            broken = fail(
                expected,
                format!(
                    "entry {expected} is missing (deleted); next entry is {}",
                    row.seq
                ),
            );
        } else if row.prev_hash != prev {
            broken = fail(
                row.seq,
                format!(
                    "entry {} does not link to entry {}: one of them was edited",
                    row.seq,
                    row.seq - 1
                ),
            );
        } else {
            let h = row_hash(
                &row.prev_hash,
                row.seq,
                row.at,
                row.actor.as_deref(),
                &row.action,
                row.target.as_deref(),
                &row.details,
            );
            if h != row.hash {
                broken = fail(
                    row.seq,
                    format!(
                        "entry {} was modified: its content does not match its hash",
                        row.seq
                    ),
                );
            }
        }
        if broken.is_some() {
            return std::ops::ControlFlow::Break(());
        }
        prev = row.hash;
        expected += 1;
        std::ops::ControlFlow::Continue(())
    })
    .await?;
    if let Some(b) = broken {
        return Ok(b);
    }
    let last = expected - 1;
    match rows::head(conn).await? {
        None if last == 0 => Ok(Verdict::Intact {
            entries: 0,
            head: hex::encode(GENESIS),
        }),
        None => Ok(Verdict::Broken {
            seq: last,
            problem: "the chain head record is missing".into(),
        }),
        Some((seq, hash)) if seq == last && hash == prev => Ok(Verdict::Intact {
            entries: last,
            head: hex::encode(hash),
        }),
        Some((seq, _)) if seq > last => Ok(Verdict::Broken {
            seq: last + 1,
            problem: format!(
                "entries {} to {seq} are missing (deleted from the end)",
                last + 1
            ),
        }),
        Some((seq, _)) => Ok(Verdict::Broken {
            seq,
            problem: format!("the chain head (entry {seq}) does not match the last entry ({last})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field() {
        let base = row_hash(&GENESIS, 1, 10, Some("op"), "a", Some("t"), "{}");
        assert_ne!(
            base,
            row_hash(&GENESIS, 2, 10, Some("op"), "a", Some("t"), "{}")
        );
        assert_ne!(
            base,
            row_hash(&GENESIS, 1, 11, Some("op"), "a", Some("t"), "{}")
        );
        assert_ne!(base, row_hash(&GENESIS, 1, 10, None, "a", Some("t"), "{}"));
        assert_ne!(
            base,
            row_hash(&GENESIS, 1, 10, Some("op"), "b", Some("t"), "{}")
        );
        assert_ne!(base, row_hash(&GENESIS, 1, 10, Some("op"), "a", None, "{}"));
        assert_ne!(
            base,
            row_hash(&GENESIS, 1, 10, Some("op"), "a", Some("t"), "{ }")
        );
        assert_ne!(
            base,
            row_hash(&[1u8; 32], 1, 10, Some("op"), "a", Some("t"), "{}")
        );
        // Field boundaries are unambiguous.
        assert_ne!(
            row_hash(&GENESIS, 1, 10, Some("ab"), "c", None, ""),
            row_hash(&GENESIS, 1, 10, Some("a"), "bc", None, "")
        );
    }
}
