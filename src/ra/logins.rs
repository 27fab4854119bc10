//! Failed logins per source: after [`LOGIN_FAILURES_ALLOWED`] failures in a
//! [`LOGIN_FAILURE_WINDOW`] a client address is refused (429) without its credentials being looked
//! at, and the audit log gets one row per source and window instead of one per failure.

use super::{rfc3339, Ra};
use crate::audit::{self, Action, Event};
use crate::store::job;
use std::net::IpAddr;
use time::OffsetDateTime;

/// Failed logins one source may make in a window before it is refused outright (429) until the
/// window closes.
pub const LOGIN_FAILURES_ALLOWED: u32 = 10;
/// The window failed logins are counted (and aggregated in the audit log) over.
pub const LOGIN_FAILURE_WINDOW: time::Duration = time::Duration::minutes(1);
/// Sources tracked at once; past this, closed windows and then the oldest are flushed.
const LOGIN_SOURCES_MAX: usize = 4096;

/// One source's failed logins in its current window.
struct Failures {
    since: OffsetDateTime,
    /// Every failure in the window, the first (audited at once) included.
    failures: u32,
    /// Failures after the first, audited together when the window closes.
    unaudited: u32,
    /// Requests refused with 429 without looking at their credentials.
    refused: u32,
    reasons: std::collections::BTreeMap<&'static str, u32>,
}

/// The audit row that sums up a source's window.
struct WindowSummary {
    source: Option<IpAddr>,
    since: OffsetDateTime,
    until: OffsetDateTime,
    failures: u32,
    refused: u32,
    reasons: std::collections::BTreeMap<&'static str, u32>,
}

impl WindowSummary {
    fn event(&self) -> Event {
        Event::new(
            None,
            Action::AuthFailed,
            None,
            serde_json::json!({
                "source": source_name(self.source),
                "failures": self.failures,
                "refused": self.refused,
                "reasons": self.reasons,
                "since": rfc3339(self.since.unix_timestamp()),
                "until": rfc3339(self.until.unix_timestamp()),
            }),
        )
    }
}

fn source_name(source: Option<IpAddr>) -> String {
    source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// Failed logins per source (client address), bounded in memory: the first failure of a window
/// is audited at once, later ones are counted and audited as one row when the window closes.
#[derive(Default)]
pub struct LoginLimit {
    failures: std::sync::Mutex<std::collections::HashMap<Option<IpAddr>, Failures>>,
    in_flight: std::sync::Mutex<InFlight>,
}

/// Console logins whose password is being checked right now: counted against their source before
/// the check, so that simultaneous requests cannot all pass a limit that counts failures only
/// after they happen.
#[derive(Default)]
struct InFlight {
    /// Checks under way per source.
    sources: std::collections::HashMap<Option<IpAddr>, u32>,
    /// (lower-cased name, source) pairs with a check under way: one at a time each.
    pairs: std::collections::HashSet<(String, Option<IpAddr>)>,
}

/// A login attempt counted as under way until dropped (after its failure, if any, is recorded).
pub(crate) struct Attempt<'a> {
    limit: &'a LoginLimit,
    key: (String, Option<IpAddr>),
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut f = self.limit.flights();
        f.pairs.remove(&self.key);
        if let Some(n) = f.sources.get_mut(&self.key.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.sources.remove(&self.key.1);
            }
        }
    }
}

impl LoginLimit {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Option<IpAddr>, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a console login for `name` from `source` as under way, before its password is
    /// checked; None (refuse with 429) while the same name is being tried from the same source, or
    /// when the source's failures plus its attempts under way reach the limit.
    pub(crate) fn begin(
        &self,
        name: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Option<Attempt<'_>> {
        let failed = {
            let map = self.lock();
            map.get(&source)
                .filter(|f| now < f.since + LOGIN_FAILURE_WINDOW)
                .map_or(0, |f| f.failures)
        };
        let key = (name.to_lowercase(), source);
        let mut f = self.flights();
        let under_way = f.sources.get(&source).copied().unwrap_or(0);
        if f.pairs.contains(&key) || failed.saturating_add(under_way) >= LOGIN_FAILURES_ALLOWED {
            return None;
        }
        f.pairs.insert(key.clone());
        *f.sources.entry(source).or_default() += 1;
        Some(Attempt { limit: self, key })
    }

    /// Seconds until `source` may try again, if it is over the limit (the refusal is counted).
    pub(crate) fn blocked(&self, source: Option<IpAddr>, now: OffsetDateTime) -> Option<u64> {
        let mut map = self.lock();
        let f = map.get_mut(&source)?;
        let ends = f.since + LOGIN_FAILURE_WINDOW;
        if now >= ends || f.failures < LOGIN_FAILURES_ALLOWED {
            return None;
        }
        f.refused = f.refused.saturating_add(1);
        let secs = (ends - now).as_seconds_f64().ceil();
        Some((secs as u64).max(1))
    }

    /// Count a failure of `request` (`METHOD /path`) from `source`; returns the audit events due
    /// now: the failure itself if it is the first of its window, and the summaries of windows
    /// that closed.
    pub(crate) fn failed(
        &self,
        source: Option<IpAddr>,
        now: OffsetDateTime,
        reason: &'static str,
        request: &str,
    ) -> Vec<Event> {
        let (first, closed) = self.fail(source, now, reason);
        let mut events: Vec<Event> = closed.iter().map(WindowSummary::event).collect();
        if first {
            events.push(Event::new(
                None,
                Action::AuthFailed,
                None,
                serde_json::json!({"reason": reason, "request": request,
                                   "source": source_name(source), "failures": 1}),
            ));
        }
        events
    }

    /// Count a failure; returns whether to audit it at once (the first of a window), and the
    /// summaries of windows that closed.
    fn fail(
        &self,
        source: Option<IpAddr>,
        now: OffsetDateTime,
        reason: &'static str,
    ) -> (bool, Vec<WindowSummary>) {
        let mut map = self.lock();
        let mut closed = Vec::new();
        if let Some(f) = map.get_mut(&source) {
            if now < f.since + LOGIN_FAILURE_WINDOW {
                f.failures = f.failures.saturating_add(1);
                f.unaudited = f.unaudited.saturating_add(1);
                *f.reasons.entry(reason).or_default() += 1;
                return (false, closed);
            }
        }
        if let Some(f) = map.remove(&source) {
            closed.extend(summary(source, f, None));
        }
        if map.len() >= LOGIN_SOURCES_MAX {
            closed.extend(take_closed(&mut map, now));
        }
        if map.len() >= LOGIN_SOURCES_MAX {
            let oldest = map.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k);
            if let Some(k) = oldest {
                if let Some(f) = map.remove(&k) {
                    closed.extend(summary(k, f, Some(now)));
                }
            }
        }
        map.insert(
            source,
            Failures {
                since: now,
                failures: 1,
                unaudited: 0,
                refused: 0,
                reasons: Default::default(),
            },
        );
        (true, closed)
    }

    /// Windows that have closed, removed, as summaries to audit.
    fn due(&self, now: OffsetDateTime) -> Vec<WindowSummary> {
        take_closed(&mut self.lock(), now)
    }
}

fn take_closed(
    map: &mut std::collections::HashMap<Option<IpAddr>, Failures>,
    now: OffsetDateTime,
) -> Vec<WindowSummary> {
    let keys: Vec<_> = map
        .iter()
        .filter(|(_, f)| now >= f.since + LOGIN_FAILURE_WINDOW)
        .map(|(k, _)| *k)
        .collect();
    keys.into_iter()
        .filter_map(|k| map.remove(&k).and_then(|f| summary(k, f, None)))
        .collect()
}

/// The summary of a window, if anything in it is not audited yet. `cut` ends a window early
/// (evicted to make room).
fn summary(
    source: Option<IpAddr>,
    f: Failures,
    cut: Option<OffsetDateTime>,
) -> Option<WindowSummary> {
    (f.unaudited > 0 || f.refused > 0).then(|| WindowSummary {
        source,
        since: f.since,
        until: cut.unwrap_or(f.since + LOGIN_FAILURE_WINDOW),
        failures: f.unaudited,
        refused: f.refused,
        reasons: f.reasons,
    })
}

impl Ra {
    /// Audit the failed-login windows that have closed (the server does this every few seconds).
    pub async fn flush_login_failures(&self) {
        let events = self
            .logins()
            .due(self.now())
            .iter()
            .map(WindowSummary::event)
            .collect();
        self.audit_events(events).await;
    }

    pub(crate) async fn audit_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let now = self.now();
        let result = self
            .store()
            .write(job!(|_, log| {
                for e in events {
                    audit::record(log, now, e);
                }
                Ok(())
            }))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not audit failed logins");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_are_limited_per_source_and_summed_up_per_window() {
        let limit = LoginLimit::default();
        let t0 = time::macros::datetime!(2030-01-01 00:00 UTC);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let (first, closed) = limit.fail(a, t0, "unknown token");
        assert!(first && closed.is_empty());
        for _ in 1..LOGIN_FAILURES_ALLOWED {
            assert!(limit.blocked(a, t0).is_none());
            assert!(!limit.fail(a, t0, "unknown token").0);
        }
        assert_eq!(limit.blocked(a, t0 + time::Duration::seconds(20)), Some(40));
        assert!(
            limit.blocked(b, t0).is_none(),
            "another source is not affected"
        );
        assert!(limit.due(t0 + time::Duration::seconds(59)).is_empty());
        let due = limit.due(t0 + LOGIN_FAILURE_WINDOW);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].failures, due[0].refused),
            (LOGIN_FAILURES_ALLOWED - 1, 1)
        );
        assert!(limit.blocked(a, t0 + LOGIN_FAILURE_WINDOW).is_none());
        // A lone failure needs no summary.
        limit.fail(b, t0, "malformed token");
        assert!(limit.due(t0 + LOGIN_FAILURE_WINDOW).is_empty());
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let limit = LoginLimit::default();
        let t0 = time::macros::datetime!(2030-01-01 00:00 UTC);
        for n in 0..(LOGIN_SOURCES_MAX as u32 + 10) {
            let ip = Some(IpAddr::from(n.to_be_bytes()));
            limit.fail(ip, t0 + time::Duration::milliseconds(i64::from(n)), "x");
            limit.fail(ip, t0 + time::Duration::milliseconds(i64::from(n)), "x");
        }
        assert_eq!(limit.lock().len(), LOGIN_SOURCES_MAX);
    }

    #[test]
    fn attempts_under_way_count_before_their_outcome() {
        let limit = LoginLimit::default();
        let t0 = time::macros::datetime!(2030-01-01 00:00 UTC);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let first = limit.begin("Alice", a, t0).expect("a first attempt");
        assert!(
            limit.begin("alice", a, t0).is_none(),
            "one check at a time per name and source"
        );
        assert!(limit
            .begin("alice", Some(IpAddr::from([10, 0, 0, 2])), t0)
            .is_some());
        drop(first);
        assert!(limit.begin("alice", a, t0).is_some(), "released when done");
        // Failures plus attempts under way never pass the per-source limit.
        for _ in 0..LOGIN_FAILURES_ALLOWED - 2 {
            limit.fail(a, t0, "x");
        }
        let held: Vec<_> = (0..5)
            .filter_map(|n| limit.begin(&format!("op{n}"), a, t0))
            .collect();
        assert_eq!(held.len(), 2, "only as many as failures left in the window");
    }
}
