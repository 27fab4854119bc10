//! `/audit`: the audit log for auditors, filtered by actor, action, object and time, newest
//! first; the hash-chain check (which reads the whole log) runs when asked for (`?verify=1`), not
//! on every view.

use super::render;
use super::session::Console;
use crate::store::audit::AuditFilter;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};

/// The filter form (`from` and `to` are dates, YYYY-MM-DD, UTC; `before` pages on).
#[derive(Deserialize, Serialize, Default)]
pub struct Params {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: Option<i64>,
    /// Run the hash-chain check (`verify=1`).
    #[serde(default, skip_serializing)]
    verify: Option<u8>,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A date's first microsecond (UTC), `days` later.
fn micros(date: &str, days: i64) -> Option<i64> {
    let d = crate::ra::subscribers::parse_date("date", date.trim()).ok()?;
    let t = d.midnight().assume_utc() + time::Duration::days(days);
    Some(t.unix_timestamp() * 1_000_000)
}

/// `GET /audit?actor=&action=&object=&from=&to=&before=&verify=1`.
pub async fn page(c: Console, Query(p): Query<Params>) -> Response {
    let filter = AuditFilter {
        actor: some(&p.actor),
        action: some(&p.action),
        target: some(&p.object),
        from_micros: micros(&p.from, 0),
        to_micros: micros(&p.to, 1),
        before_seq: p.before,
    };
    let entries = match c.ra.audit_search(c.op(), &filter, super::PAGE_SIZE).await {
        Ok(e) => e,
        Err(e) => return render::error(&c, &e),
    };
    let verdict = if p.verify == Some(1) {
        match c.ra.audit_verify(c.op()).await {
            Ok(v) => Some(serde_json::to_value(&v).unwrap_or_default()),
            Err(e) => return render::error(&c, &e),
        }
    } else {
        None
    };
    let next = (entries.len() as i64 == super::PAGE_SIZE)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let entries: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let details = e.details.to_string();
            context! { e => e, details => details }
        })
        .collect();
    render::page(
        c.lang,
        Some(&c.live.session),
        StatusCode::OK,
        "audit.html",
        context! { entries => entries, verdict => verdict, p => p, next => next,
        actions => crate::audit::Action::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>() },
    )
}
