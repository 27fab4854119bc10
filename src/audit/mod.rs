//! The tamper-evident audit log. Every state change and every refused attempt is appended, in the
//! same transaction as the change it records, as an entry whose hash covers the previous entry's
//! hash. A head row keeps the newest (seq, hash) so that entries cut off the end are noticed too.

pub mod action;
pub mod chain;
pub mod health;

pub use action::Action;

use crate::error::Result;
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{AuditLog, Conn};
use chain::{entry_hash, NewEntry, GENESIS};
use serde::Serialize;
use time::OffsetDateTime;

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Event {
    /// Operator id, or None for the system itself and unauthenticated callers.
    pub actor: Option<String>,
    /// What happened; its documented string (`request.submitted`, ...) is what the log stores.
    pub action: Action,
    /// What it happened to: a request, subscriber, certificate serial, operator id.
    pub target: Option<String>,
    /// What else an auditor needs to know, as JSON.
    pub details: serde_json::Value,
}

impl Event {
    /// An event by `actor` (None for the system), of `action`, on `target`.
    pub fn new(
        actor: Option<&str>,
        action: Action,
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
        action: event.action.as_str().to_string(),
        target: event.target,
        details: event.details.to_string(),
    });
}

/// What an audit entry looks like to an auditor.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The entry's number, from 1.
    pub seq: i64,
    /// When it happened, RFC 3339.
    pub at: String,
    /// Operator id, or None for the system itself and unauthenticated callers.
    pub actor: Option<String>,
    /// The action string.
    pub action: String,
    /// What it happened to.
    pub target: Option<String>,
    /// The details, as JSON.
    pub details: serde_json::Value,
    /// The entry's hash, lowercase hex.
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

/// Up to `limit` entries after entry `after_seq`, oldest first.
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
    /// Every entry links to the one before and the head matches the last entry, except at breaks
    /// an admin has acknowledged (`vouch audit acknowledge`), which are listed.
    Intact {
        /// How many entries the chain holds.
        entries: i64,
        /// The last entry's hash, lowercase hex.
        head: String,
        /// The acknowledged breaks.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        acknowledged: Vec<Break>,
    },
    /// The first place where the chain breaks that nobody has acknowledged.
    Broken {
        /// The entry where it breaks.
        seq: i64,
        /// What is wrong there.
        problem: String,
    },
}

/// A place where the chain does not hold: the entry it names and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The entry where the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// Most breaks collected in one walk; past this the walk stops (the verdict names the first).
const MAX_BREAKS: usize = 1000;

/// Walks rows in order, checking each link and hash. After a break it carries on from the row
/// where the break showed (trusting that row's stored hash), so that one break is reported once
/// and every later one is still found.
pub(crate) struct Walk {
    expected: i64,
    prev: Vec<u8>,
    /// False until the first row when checking a window (the newest entries only).
    anchored: bool,
    pub(crate) breaks: Vec<Break>,
    /// Entry numbers listed as acknowledged by acknowledgement entries seen.
    pub(crate) acknowledged: std::collections::BTreeSet<i64>,
}

impl Walk {
    /// From the first entry.
    pub(crate) fn whole() -> Walk {
        Walk {
            expected: 1,
            prev: GENESIS.to_vec(),
            anchored: true,
            breaks: Vec::new(),
            acknowledged: Default::default(),
        }
    }

    /// From whatever row comes first (the start of a window of the newest entries): that row's
    /// link to its predecessor is not checked, its own hash is.
    pub(crate) fn window() -> Walk {
        Walk {
            anchored: false,
            ..Walk::whole()
        }
    }

    fn broken(&mut self, seq: i64, problem: String) {
        self.breaks.push(Break { seq, problem });
    }

    pub(crate) fn full(&self) -> bool {
        self.breaks.len() >= MAX_BREAKS
    }

    pub(crate) fn feed(&mut self, row: &AuditRow) {
        if row.action == Action::AuditAcknowledged.as_str() {
            if let Ok(details) = serde_json::from_str::<serde_json::Value>(&row.details) {
                let listed = details["breaks"].as_array().into_iter().flatten();
                self.acknowledged
                    .extend(listed.filter_map(|b| b["seq"].as_i64()));
            }
        }
        let own_hash = entry_hash(
            &row.prev_hash,
            row.seq,
            row.at,
            row.actor.as_deref(),
            &row.action,
            row.target.as_deref(),
            &row.details,
        );
        let modified = own_hash != row.hash;
        let modified_text = || {
            format!(
                "entry {} was modified: its content does not match its hash",
                row.seq
            )
        };
        if !self.anchored && row.seq != 1 {
            if modified {
                self.broken(row.seq, modified_text());
            }
        } else if row.seq != self.expected {
            let expected = self.expected;
            self.broken(
                expected,
                format!(
                    "entry {expected} is missing (deleted); next entry is {}",
                    row.seq
                ),
            );
            if modified {
                self.broken(row.seq, modified_text());
            }
        } else if row.prev_hash != self.prev {
            self.broken(
                row.seq,
                format!(
                    "entry {} does not link to entry {}: one of them was edited",
                    row.seq,
                    row.seq - 1
                ),
            );
        } else if modified {
            self.broken(row.seq, modified_text());
        }
        self.anchored = true;
        self.prev = row.hash.clone();
        self.expected = row.seq + 1;
    }

    /// Compare the last row seen with the head record; returns the last entry number and hash.
    pub(crate) fn finish(&mut self, head: Option<(i64, Vec<u8>)>) -> (i64, Vec<u8>) {
        let last = self.expected - 1;
        let prev = self.prev.clone();
        match head {
            None if last == 0 => {}
            None => self.broken(last, "the chain head record is missing".into()),
            Some((seq, hash)) if seq == last && hash == prev => {}
            Some((seq, _)) if seq > last => self.broken(
                last + 1,
                format!(
                    "entries {} to {seq} are missing (deleted from the end)",
                    last + 1
                ),
            ),
            Some((seq, _)) => self.broken(
                seq,
                format!("the chain head (entry {seq}) does not match the last entry ({last})"),
            ),
        }
        (last, prev)
    }
}

/// Walk the whole chain: every break found (up to [`MAX_BREAKS`]), the entry numbers
/// acknowledged in it, and the last entry.
pub(crate) async fn walk_all(conn: &mut Conn) -> Result<(Walk, i64, Vec<u8>)> {
    let mut walk = Walk::whole();
    rows::for_each(&mut *conn, |row| {
        walk.feed(&row);
        if walk.full() {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .await?;
    let head = rows::head(conn).await?;
    let (last, hash) = if walk.full() {
        (walk.expected - 1, walk.prev.clone())
    } else {
        walk.finish(head)
    };
    Ok((walk, last, hash))
}

/// Check the whole chain. Breaks that an acknowledgement entry lists are reported as
/// acknowledged; the first other one makes the verdict `Broken`.
pub async fn verify(conn: &mut Conn) -> Result<Verdict> {
    let (walk, last, hash) = walk_all(conn).await?;
    let (acknowledged, open): (Vec<Break>, Vec<Break>) = walk
        .breaks
        .into_iter()
        .partition(|b| walk.acknowledged.contains(&b.seq));
    match open.into_iter().next() {
        Some(Break { seq, problem }) => Ok(Verdict::Broken { seq, problem }),
        None => Ok(Verdict::Intact {
            entries: last,
            head: hex::encode(hash),
            acknowledged,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chained(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let hash = entry_hash(&prev, seq, seq, None, "a", None, "{}");
                AuditRow {
                    seq,
                    at: seq,
                    actor: None,
                    action: "a".into(),
                    target: None,
                    details: "{}".into(),
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    fn walk(mut w: Walk, rows: &[AuditRow], head: Option<(i64, Vec<u8>)>) -> Vec<i64> {
        for r in rows {
            w.feed(r);
        }
        w.finish(head);
        w.breaks.iter().map(|b| b.seq).collect()
    }

    #[test]
    fn a_window_and_the_whole_walk_name_the_same_entries() {
        let rows = chained(8);
        let head = Some((8, rows[7].hash.clone()));
        assert!(walk(Walk::whole(), &rows, head.clone()).is_empty());
        assert!(walk(Walk::window(), &rows[3..], head.clone()).is_empty());
        // Entry 6 deleted; entry 7 edited; the last two cut off the end.
        let mut gap = rows.clone();
        gap.remove(5);
        assert_eq!(walk(Walk::whole(), &gap, head.clone()), [6]);
        assert_eq!(walk(Walk::window(), &gap[3..], head.clone()), [6]);
        let mut edited = rows.clone();
        edited[6].details = "{\"x\":1}".into();
        assert_eq!(walk(Walk::whole(), &edited, head.clone()), [7]);
        assert_eq!(walk(Walk::window(), &edited[6..], head.clone()), [7]);
        assert_eq!(walk(Walk::whole(), &rows[..6], head.clone()), [7]);
        assert_eq!(walk(Walk::window(), &rows[4..6], head.clone()), [7]);
        // After a break the walk carries on: a second one is found too.
        let mut two = gap.clone();
        two[6].details = "{}{}".into();
        assert_eq!(walk(Walk::whole(), &two, head), [6, 8]);
    }
}
