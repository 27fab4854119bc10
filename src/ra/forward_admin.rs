//! An admin's way out of a revocation forward that will not go through: ask for it again
//! (`vouch upstream queue retry SERIAL`: due at once, no longer failed or dropped), or give it up
//! (`vouch upstream queue drop SERIAL --reason TEXT`: the CA is never told). Either way the local
//! status stays revoked (or on hold): only whether the remote CA is told changes. Both work on
//! the store alone (the host's command line needs no running server and no CA), and both are
//! audited (`certificate.revocation_forward_retried`, `certificate.revocation_forward_dropped`).

use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::store::upstream_queue::{self as queue, ForwardRow};
use crate::store::{job, Store};
use crate::x509::serial::Serial;
use time::OffsetDateTime;

/// Longest reason an admin may give for dropping a forward, in bytes.
pub const MAX_DROP_REASON: usize = 1000;

/// The unacknowledged forward of `serial`'s current status (pending, failed or dropped).
async fn undone(store: &Store, serial: &str) -> Result<ForwardRow> {
    let mut c = store.read().await?;
    queue::undone_of(&mut c, serial)
        .await?
        .ok_or(Error::NotFound("revocation forward"))
}

/// Ask again for the forward of certificate `serial` (by `by`; None: the host's command line):
/// the retry task tries it at its next round. Returns the forward as it was.
pub async fn retry_forward(
    store: &Store,
    now: OffsetDateTime,
    by: Option<&str>,
    serial: &str,
) -> Result<ForwardRow> {
    retry(store, now, by, serial, true).await
}

/// [`retry_forward`]; a dropped forward only when `dropped_too` (else a conflict).
async fn retry(
    store: &Store,
    now: OffsetDateTime,
    by: Option<&str>,
    serial: &str,
    dropped_too: bool,
) -> Result<ForwardRow> {
    let serial = Serial::from_client(serial)?;
    let row = undone(store, &serial).await?;
    if !dropped_too && row.dropped_at.is_some() {
        return Err(Error::conflict(
            "forward_dropped",
            format!("the forward of {serial} was dropped meanwhile"),
        ));
    }
    let details = serde_json::json!({"ca": row.ca_id, "reason": row.reason,
        "was": row.state(), "failed_attempts": row.attempts, "last_error": row.last_error,
        "via": via(by)});
    let event = Event::new(
        by,
        Action::CertificateRevocationForwardRetried,
        Some(&serial),
        details,
    );
    let version = row.status_version;
    let changed = store
        .write(job!(|c, log| {
            let changed =
                queue::retry(c, &serial, version, now.unix_timestamp(), dropped_too).await?;
            if changed {
                audit::record(log, now, event);
            }
            Ok(changed)
        }))
        .await?;
    match changed {
        true => Ok(row),
        false => Err(Error::conflict(
            "forward_changed",
            "the forward was acknowledged or replaced meanwhile",
        )),
    }
}

/// Give up the forward of certificate `serial` for `reason` (by `by`; None: the host's command
/// line): the CA is never told; the certificate stays revoked here, and the forward stays
/// listed (`vouch upstream queue --all`). Returns the forward as it was.
pub async fn drop_forward(
    store: &Store,
    now: OffsetDateTime,
    by: Option<&str>,
    serial: &str,
    reason: &str,
) -> Result<ForwardRow> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_DROP_REASON || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_reason",
            format!(
                "a reason is required: one line of at most {MAX_DROP_REASON} bytes saying why \
                 the CA need not be told"
            ),
        ));
    }
    let serial = Serial::from_client(serial)?;
    let row = undone(store, &serial).await?;
    if row.dropped_at.is_some() {
        return Err(Error::conflict(
            "forward_dropped",
            format!("the forward of {serial} was dropped already"),
        ));
    }
    let details = serde_json::json!({"ca": row.ca_id, "reason": row.reason,
        "drop_reason": reason, "was": row.state(), "failed_attempts": row.attempts,
        "last_error": row.last_error, "via": via(by)});
    let event = Event::new(
        by,
        Action::CertificateRevocationForwardDropped,
        Some(&serial),
        details,
    );
    let (version, reason) = (row.status_version, reason.to_string());
    let by_owned = by.map(str::to_string);
    let changed = store
        .write(job!(|c, log| {
            let changed = queue::drop(
                c,
                &serial,
                version,
                by_owned.as_deref(),
                &reason,
                now.unix_timestamp(),
            )
            .await?;
            if changed {
                audit::record(log, now, event);
            }
            Ok(changed)
        }))
        .await?;
    match changed {
        true => Ok(row),
        false => Err(Error::conflict(
            "forward_changed",
            "the forward was acknowledged, dropped or replaced meanwhile",
        )),
    }
}

/// Most forwards one [`retry_forwards`] asks again for.
pub const MAX_RETRIED: i64 = 10_000;

/// What [`retry_forwards`] did.
#[derive(Debug, Default)]
pub struct Retried {
    /// The forwards asked again for, as they were.
    pub retried: Vec<ForwardRow>,
    /// Selected forwards acknowledged, replaced or dropped between the read and their write.
    pub changed_meanwhile: usize,
    /// More forwards matched than [`MAX_RETRIED`]: the oldest were taken.
    pub truncated: bool,
}

/// Ask again (by `by`; None: the host's command line) for every pending forward a retry changes
/// (refused, or waiting for its next attempt; not one already due), to the CA `ca` only when
/// given, and only the refused ones when `failed_only`: each as [`retry_forward`] does it, one
/// audit entry each. Dropped forwards are left (an admin chose to drop each; it is retried by
/// its serial). The oldest [`MAX_RETRIED`] at most; a second call takes the rest.
pub async fn retry_forwards(
    store: &Store,
    now: OffsetDateTime,
    by: Option<&str>,
    ca: Option<&str>,
    failed_only: bool,
) -> Result<Retried> {
    let mut selected: Vec<ForwardRow> = {
        let mut c = store.read().await?;
        let now = now.unix_timestamp();
        queue::retryable(&mut c, ca, failed_only, now, MAX_RETRIED + 1).await?
    };
    // A retried forward is due at once, so it is not selected again: a second run takes the
    // rest.
    let truncated = selected.len() as i64 > MAX_RETRIED;
    selected.truncate(MAX_RETRIED as usize);
    let mut out = Retried {
        truncated,
        ..Retried::default()
    };
    for row in selected {
        match retry(store, now, by, &row.serial, false).await {
            Ok(was) => out.retried.push(was),
            Err(Error::NotFound(_)) => out.changed_meanwhile += 1,
            Err(Error::Conflict { .. }) => out.changed_meanwhile += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn via(by: Option<&str>) -> &'static str {
    match by {
        Some(_) => "api",
        None => "host",
    }
}
