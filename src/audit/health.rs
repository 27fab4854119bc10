//! The chain's health while serving. A full check reads every entry, so the server checks only the
//! newest [`WINDOW`] entries and the head record (enough to catch entries cut off the end or an
//! edit of a recent one), at start, every few seconds and on `/readyz`. A break it finds is
//! recorded (a mark in `instance_meta` and an `audit.chain_broken` entry), so that it stays
//! reported after newer entries push it out of the window, after a restart and on every instance
//! sharing the database, until an admin acknowledges it with `vouch audit acknowledge`.
//!
//! The acknowledgement is itself an audit entry (`audit.acknowledged`, listing the breaks and the
//! admin's reason). It re-anchors the chain: checks carry on from the entry after each
//! acknowledged break, `vouch audit verify` passes and names the acknowledged breaks. When the
//! head record itself was damaged (missing, or behind the last entry) it is set to the last entry,
//! so that appends work again.

use super::{rows, Action, Break, Event, Walk};
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::{Conn, Store};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// How many of the newest entries the running server checks.
pub const WINDOW: i64 = 256;
/// Longest reason accepted for an acknowledgement.
pub const MAX_REASON_CHARS: usize = 500;

const BROKEN_MARK: &str = "audit.broken.";
const ACKNOWLEDGED_MARK: &str = "audit.acknowledged.";

/// Breaks recorded and acknowledged so far, from `instance_meta`.
#[derive(Default)]
struct Marks {
    broken: BTreeMap<i64, String>,
    acknowledged: BTreeSet<i64>,
}

async fn read_marks(conn: &mut Conn) -> Result<Marks> {
    let mut marks = Marks::default();
    for (key, value) in rows::marks(conn).await? {
        if let Some(seq) = key.strip_prefix(BROKEN_MARK).and_then(|s| s.parse().ok()) {
            let problem = serde_json::from_str::<serde_json::Value>(&value)
                .ok()
                .and_then(|v| v["problem"].as_str().map(str::to_string))
                .unwrap_or(value);
            marks.broken.insert(seq, problem);
        } else if let Some(seq) = key
            .strip_prefix(ACKNOWLEDGED_MARK)
            .and_then(|s| s.parse().ok())
        {
            marks.acknowledged.insert(seq);
        }
    }
    Ok(marks)
}

/// The first break not acknowledged, and whether it is recorded already.
async fn head_status(conn: &mut Conn) -> Result<Option<(Break, bool)>> {
    let marks = read_marks(conn).await?;
    if let Some((seq, problem)) = marks
        .broken
        .iter()
        .find(|(seq, _)| !marks.acknowledged.contains(seq))
    {
        let found = Break {
            seq: *seq,
            problem: problem.clone(),
        };
        return Ok(Some((found, true)));
    }
    let newest = rows::last(conn, WINDOW).await?;
    let mut walk = Walk::window();
    for row in &newest {
        walk.feed(row);
    }
    walk.finish(rows::head(conn).await?);
    let open = walk
        .breaks
        .into_iter()
        .find(|b| !marks.acknowledged.contains(&b.seq) && !walk.acknowledged.contains(&b.seq));
    Ok(open.map(|b| (b, false)))
}

/// The first unacknowledged break the server can see (see the module comment); a new one is
/// recorded. None when the chain's head is sound.
pub async fn check(store: &Store, now: OffsetDateTime) -> Result<Option<Break>> {
    let seen = store
        .read_snapshot(|c| Box::pin(async move { head_status(c).await }))
        .await?;
    let found = match seen {
        None => return Ok(None),
        Some((found, true)) => return Ok(Some(found)),
        Some((found, false)) => found,
    };
    // Record it, if it is still there and unrecorded once the write lock is held (an
    // acknowledgement may have committed since the read).
    let recorded = store
        .write(job!(|c, log| {
            let Some((found, false)) = head_status(c).await? else {
                return Ok(());
            };
            let mark = serde_json::json!({
                "problem": found.problem,
                "detected_at": super::micros(now),
            });
            if rows::add_mark(c, &format!("{BROKEN_MARK}{}", found.seq), &mark.to_string()).await? {
                let details = serde_json::json!({"seq": found.seq, "problem": found.problem});
                super::record(
                    log,
                    now,
                    Event::new(None, Action::AuditChainBroken, None, details),
                );
            }
            Ok(())
        }))
        .await;
    if let Err(e) = recorded {
        // A chain whose head record is gone cannot take new entries; the break is still reported.
        tracing::warn!(error = %e, "could not record the audit chain break");
    }
    Ok(Some(found))
}

/// What an acknowledgement did.
#[derive(Debug, Clone)]
pub struct Acknowledgement {
    /// The breaks acknowledged.
    pub breaks: Vec<Break>,
    /// (old head entry, new head entry) when the head record was set to the last entry; the old
    /// one is None when the head record was missing.
    pub head_moved: Option<(Option<i64>, i64)>,
}

/// Acknowledge every break not yet acknowledged (found by a full walk, or recorded by a server),
/// with the admin's reason, in one audited entry. None when there is nothing to acknowledge.
pub async fn acknowledge(
    store: &Store,
    now: OffsetDateTime,
    reason: &str,
) -> Result<Option<Acknowledgement>> {
    let reason = reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::invalid(
            "invalid_reason",
            format!("give a reason of 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    // The full walk runs on a read connection, outside the write lock, so that a long log does
    // not hold up the servers' writes.
    let open: BTreeMap<i64, String> = {
        let mut c = store.read().await?;
        let (walk, _, _) = super::walk_all(&mut c).await?;
        let marks = read_marks(&mut c).await?;
        let mut open: BTreeMap<i64, String> = walk
            .breaks
            .into_iter()
            .filter(|b| !walk.acknowledged.contains(&b.seq))
            .map(|b| (b.seq, b.problem))
            .collect();
        for (seq, problem) in marks.broken {
            if !marks.acknowledged.contains(&seq) {
                open.entry(seq).or_insert(problem);
            }
        }
        open
    };
    store
        .write(job!(|c, log| {
            let head = rows::head(c).await?;
            let last = rows::last(c, 1).await?.pop();
            // A head record that is missing or behind the last entry stops every append
            // (the next entry number is taken): set it to the last entry. A head ahead of
            // the last entry (entries cut off the end) stays: the gap is what is
            // acknowledged.
            let head_moved = match (&head, &last) {
                (None, Some(l)) => Some((None, l.seq, l.hash.clone())),
                (Some((seq, hash)), Some(l))
                    if *seq < l.seq || (*seq == l.seq && *hash != l.hash) =>
                {
                    Some((Some(*seq), l.seq, l.hash.clone()))
                }
                _ => None,
            };
            if open.is_empty() && head_moved.is_none() {
                return Ok(None);
            }
            if let Some((_, seq, hash)) = &head_moved {
                rows::set_head(c, *seq, hash).await?;
            }
            let mark = serde_json::json!({"reason": reason, "at": super::micros(now)});
            for seq in open.keys() {
                rows::add_mark(c, &format!("{ACKNOWLEDGED_MARK}{seq}"), &mark.to_string()).await?;
            }
            let breaks: Vec<Break> = open
                .into_iter()
                .map(|(seq, problem)| Break { seq, problem })
                .collect();
            let details = serde_json::json!({
                "breaks": breaks,
                "reason": reason,
                "head_moved": head_moved.as_ref().map(|(from, to, hash)| serde_json::json!({
                    "from": from, "to": to, "hash": hex::encode(hash),
                })),
            });
            super::record(
                log,
                now,
                Event::new(None, Action::AuditAcknowledged, None, details),
            );
            Ok(Some(Acknowledgement {
                breaks,
                head_moved: head_moved.map(|(from, to, _)| (from, to)),
            }))
        }))
        .await
}
