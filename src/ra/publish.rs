//! CRL publication: the `CrlPublisher` signs the issuing CA's full and delta CRLs, keeps them
//! until a certificate status changes or they reach half their validity, and keeps the list of
//! revoked certificates so the next full CRL applies only what changed since. It owns its cache,
//! its lock and the status generation that the OCSP responder's cache follows too.

use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::{CrlEntry, CrlOrder, CrlRemoval, PublishingCa};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::store::certificates as rows;
use crate::store::{job, Store};
use crate::x509::freshness::Freshness;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long a CRL is valid by default (nextUpdate - thisUpdate); it is re-signed at half-life, or
/// at once when a status changes.
pub const CRL_VALIDITY: Duration = Duration::hours(24);

/// How long a delta CRL is valid: a 24th of the full CRL's validity (1 h by default), at least 5
/// minutes. Relying parties cache a CRL until its nextUpdate, so a delta that lived as long as the
/// full CRL would never be fetched again in between.
pub fn delta_validity(full: Duration) -> Duration {
    (full / 24_i32).max(Duration::minutes(5)).min(full)
}

/// The signed full and delta CRLs, kept until a status changes or they reach half their
/// validity.
pub(crate) struct CachedCrl {
    generation: u64,
    this_update: OffsetDateTime,
    full: bytes::Bytes,
    delta: bytes::Bytes,
    /// thisUpdate, nextUpdate and digest of each, for HTTP caches.
    full_freshness: Freshness,
    delta_freshness: Freshness,
}

/// The full CRL the delta CRL is relative to: its number, and the status version its entries
/// were read at.
#[derive(Clone)]
struct DeltaBase {
    number: u64,
    version: i64,
    this_update: OffsetDateTime,
}

/// What only the signer touches, under the signing lock: the delta base and the kept list.
#[derive(Default)]
struct SigningState {
    base: Option<DeltaBase>,
    entries: Option<Listed>,
}

/// The revoked and held certificates as of a status version, sorted by serial: the next full CRL
/// applies the rows changed since instead of reading a million rows again. Read afresh every
/// half validity.
struct Listed {
    version: i64,
    read_at: OffsetDateTime,
    entries: Vec<CrlEntry>,
}

/// What was read for the full CRL: every listed row, or the rows changed since the kept list.
enum FullRows {
    All(Vec<rows::RevokedRow>),
    Changed(Vec<rows::ChangedRow>),
}

/// One row of `changed_since` as a CRL change: the entry it now has, or None (valid again).
fn change_of(r: &rows::ChangedRow) -> Result<(Serial, Option<CrlEntry>)> {
    let serial = parse_serial(&r.serial)?;
    match (
        r.status.is_revoked_or_held(),
        r.revoked_at,
        r.revocation_reason.as_deref(),
    ) {
        (true, Some(at), Some(reason)) => Ok((
            serial.clone(),
            Some(CrlEntry {
                serial,
                revoked_at: unix(at)?,
                reason: Reason::parse(reason)?,
                invalidity_date: r.invalidity_date.map(unix).transpose()?,
            }),
        )),
        _ => Ok((serial, None)),
    }
}

/// Apply changes (sorted by serial, one per serial) to entries sorted by serial, in one pass.
fn merge(entries: Vec<CrlEntry>, changes: Vec<(Serial, Option<CrlEntry>)>) -> Vec<CrlEntry> {
    let mut out = Vec::with_capacity(entries.len() + changes.len());
    let mut changes = changes.into_iter().peekable();
    for e in entries {
        while let Some((s, _)) = changes.peek() {
            if s.as_bytes() < e.serial.as_bytes() {
                if let Some((_, Some(new))) = changes.next() {
                    out.push(new);
                }
            } else {
                break;
            }
        }
        match changes.peek() {
            Some((s, _)) if s.as_bytes() == e.serial.as_bytes() => {
                if let Some((_, Some(new))) = changes.next() {
                    out.push(new);
                }
            }
            _ => out.push(e),
        }
    }
    out.extend(changes.filter_map(|(_, new)| new));
    out
}

fn unix(t: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal)
}

fn parse_serial(s: &str) -> Result<Serial> {
    Serial::parse(s).ok_or_else(|| Error::internal("stored serial is malformed"))
}

/// Signs and caches the issuing CA's CRLs; one per RA.
pub(crate) struct CrlPublisher {
    store: Store,
    ca: Arc<dyn PublishingCa>,
    clock: SharedClock,
    /// How long a full CRL is valid.
    validity: Duration,
    /// Where the delta CRL is published (the full CRL's freshestCRL).
    delta_urls: Vec<String>,
    /// The CRLs signed last. Read without waiting for a signing in progress; its lock is held
    /// only to read or replace the `Arc`.
    current: std::sync::Mutex<Option<Arc<CachedCrl>>>,
    /// Held from the decision to re-sign until the new CRLs are cached: one signing at a time.
    /// Callers that find fresh CRLs in `current` never take it.
    signing: tokio::sync::Mutex<SigningState>,
    /// Moves on every certificate status change; cached CRLs and OCSP answers of an older
    /// generation are stale.
    generation: AtomicU64,
    /// The database's status version at the last [`CrlPublisher::observe_status_changes`].
    observed_status_version: AtomicI64,
}

impl CrlPublisher {
    pub(crate) fn new(
        store: Store,
        ca: Arc<dyn PublishingCa>,
        clock: SharedClock,
        validity: Duration,
        delta_urls: Vec<String>,
    ) -> Self {
        CrlPublisher {
            store,
            ca,
            clock,
            validity,
            delta_urls,
            current: Default::default(),
            signing: Default::default(),
            generation: Default::default(),
            observed_status_version: AtomicI64::new(-1),
        }
    }

    /// Any status change makes the cached CRLs and OCSP responses stale.
    pub(crate) fn status_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The status generation: it moves whenever a certificate status changes.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Mark caches stale when the database's status version moved since the last call (a change
    /// made by another instance sharing the database).
    pub(crate) async fn observe_status_changes(&self) -> Result<()> {
        let version = {
            let mut c = self.store.read().await?;
            rows::status_version(&mut c).await?
        };
        if self.observed_status_version.swap(version, Ordering::SeqCst) != version {
            self.status_changed();
        }
        Ok(())
    }

    /// The full and delta CRLs, re-signed together when a status changed since the last ones, or
    /// when they have used half their validity. A delta CRL is relative to a base: a full CRL this
    /// process signed earlier, replaced by a newer one every half validity. Both carry the same
    /// CRL number when signed together (RFC 5280 5.2.3).
    pub(crate) async fn signed(&self, ca_id: &str) -> Result<Arc<CachedCrl>> {
        if ca_id != self.ca.issuing_id() {
            return Err(Error::NotFound("CRL"));
        }
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let mut state = self.signing.lock().await;
        // Another caller may have signed while this one waited for the lock.
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let fresh = Arc::new(self.sign(ca_id, &mut state).await?);
        *self.current_slot() = Some(fresh.clone());
        Ok(fresh)
    }

    /// The cached CRLs, if they are of the current status generation and not yet due for
    /// re-signing (at half the delta's validity, so a fresh delta is always there to fetch).
    fn fresh(&self) -> Option<Arc<CachedCrl>> {
        let current = self.current_slot().clone()?;
        let due = current.this_update + delta_validity(self.validity) / 2;
        (current.generation == self.generation() && self.clock.now() < due).then_some(current)
    }

    fn current_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<CachedCrl>>> {
        // A panic while the lock was held cannot leave the Option half-written: use it as is.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sign a new full and delta CRL pair, under the signing lock.
    async fn sign(&self, ca_id: &str, state: &mut SigningState) -> Result<CachedCrl> {
        let now = self.clock.now();
        let validity = self.validity;
        // Read before the status version below: a change after this point moves the generation
        // again, so the CRLs signed now are never taken for newer than they are.
        let generation = self.generation();
        // With no base yet, the full CRL signed now becomes the base, and the delta takes the next
        // number. The numbers and the status version are taken in one write job, so across
        // instances a higher CRL number always goes with an equal or later version; the rows are
        // read after that, so a CRL lists at least every change up to its version. Numbers are
        // taken before signing (a failed signing leaves a gap, never a repeat); the signing is
        // audited once it has happened.
        let first = state.base.is_none();
        let ca = ca_id.to_string();
        let (number, delta_number, version) = self
            .store
            .write(job!(|c, _| {
                let number = rows::next_crl_number(c, &ca).await?;
                let delta_number = if first {
                    rows::next_crl_number(c, &ca).await?
                } else {
                    number
                };
                Ok((number, delta_number, rows::status_version(c).await?))
            }))
            .await?;
        let number = u64::try_from(number).map_err(Error::internal)?;
        let delta_number = u64::try_from(delta_number).map_err(Error::internal)?;
        let ts = unix;
        let serial = parse_serial;
        let base = match state.base.clone() {
            Some(b) => b,
            None => DeltaBase {
                number,
                version,
                this_update: now,
            },
        };
        // The full list: the last one plus what changed since, or read afresh. Both CRLs are read
        // in one snapshot, so signed together they carry the same revocation information.
        let previous = state
            .entries
            .take()
            .filter(|listed| now < listed.read_at + validity / 2);
        let since = previous.as_ref().map(|l| l.version);
        let (ca, base_version) = (ca_id.to_string(), base.version);
        let (full_rows, changed) = self
            .store
            .read_snapshot(move |c| {
                Box::pin(async move {
                    let full = match since {
                        Some(v) => FullRows::Changed(rows::changed_since(c, &ca, v).await?),
                        None => FullRows::All(rows::revoked(c, &ca).await?),
                    };
                    Ok((full, rows::changed_since(c, &ca, base_version).await?))
                })
            })
            .await?;
        let listed = match (previous, full_rows) {
            (Some(previous), FullRows::Changed(changed)) => {
                let changes = changed.iter().map(change_of).collect::<Result<Vec<_>>>()?;
                Listed {
                    version,
                    read_at: previous.read_at,
                    entries: merge(previous.entries, changes),
                }
            }
            (_, FullRows::All(revoked)) => Listed {
                version,
                read_at: now,
                entries: revoked
                    .into_iter()
                    .map(|r| {
                        Ok(CrlEntry {
                            serial: serial(&r.serial)?,
                            revoked_at: ts(r.revoked_at)?,
                            reason: Reason::parse(&r.revocation_reason)?,
                            invalidity_date: r.invalidity_date.map(ts).transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            },
            (None, FullRows::Changed(_)) => {
                return Err(Error::internal(
                    "CRL changes read without a list to apply them to",
                ))
            }
        };
        let entries = listed.entries.clone();
        state.entries = Some(listed);
        let count = entries.len();
        let (mut delta_entries, mut removed) = (Vec::new(), Vec::new());
        for r in &changed {
            match change_of(r)? {
                (_, Some(entry)) => delta_entries.push(entry),
                (serial, None) => removed.push(CrlRemoval {
                    serial,
                    at: ts(r.status_changed_at.unwrap_or(now.unix_timestamp()))?,
                }),
            }
        }
        let full = CrlOrder {
            number,
            this_update: now,
            next_update: now + validity,
            entries,
            removed: Vec::new(),
            delta_base: None,
            freshest_urls: self.delta_urls.clone(),
        };
        let delta_count = delta_entries.len() + removed.len();
        let delta = CrlOrder {
            number: delta_number,
            this_update: now,
            next_update: now + delta_validity(validity),
            entries: delta_entries,
            removed,
            delta_base: Some(base.number),
            freshest_urls: Vec::new(),
        };
        // Encoding and signing a large CRL is CPU work of seconds, and hashing it for its ETag
        // (once, here) a tenth of that: keep both off the request threads.
        let ca = self.ca.clone();
        let handle = tokio::runtime::Handle::current();
        let ((full_der, full_freshness), (delta_der, delta_freshness)) =
            tokio::task::spawn_blocking(move || {
                handle.block_on(async {
                    let signed = |order: CrlOrder, der: Vec<u8>| {
                        let f = Freshness::of(&der, order.this_update, order.next_update);
                        (der, f)
                    };
                    let full_der = ca.sign_crl(&full).await?;
                    let delta_der = ca.sign_crl(&delta).await?;
                    Ok::<_, crate::ca::CaError>((signed(full, full_der), signed(delta, delta_der)))
                })
            })
            .await
            .map_err(Error::internal)?
            .map_err(|e| Error::Upstream(e.to_string()))?;
        let ca = ca_id.to_string();
        let details = serde_json::json!({
            "number": number, "entries": count, "delta_number": delta_number,
            "delta_base": base.number, "delta_entries": delta_count,
        });
        self.store
            .write(job!(|_, log| {
                audit::record(
                    log,
                    now,
                    Event::new(None, Action::CrlSigned, Some(&ca), details),
                );
                Ok(())
            }))
            .await?;
        // The base moves forward every half validity, so a delta stays small.
        state.base = if first || now >= base.this_update + validity / 2 {
            Some(DeltaBase {
                number,
                version,
                this_update: now,
            })
        } else {
            Some(base)
        };
        Ok(CachedCrl {
            generation,
            this_update: now,
            full_freshness,
            delta_freshness,
            full: full_der.into(),
            delta: delta_der.into(),
        })
    }
}

impl Ra {
    /// Any status change makes the cached CRLs and OCSP responses stale.
    pub(crate) fn status_changed(&self) {
        self.crl_publisher().status_changed();
    }

    /// Mark caches stale when the database's status version moved since the last call (a change
    /// made by another instance sharing the database). Called about once a second.
    pub async fn observe_status_changes(&self) -> Result<()> {
        self.crl_publisher().observe_status_changes().await
    }

    /// The current full CRL (DER) of the issuing CA `ca_id`.
    pub async fn crl(&self, ca_id: &str) -> Result<bytes::Bytes> {
        Ok(self.crls(ca_id).await?.full.clone())
    }

    /// The current delta CRL (DER) of the issuing CA `ca_id`: the changes since its base CRL,
    /// removeFromCRL entries for certificates released from hold.
    pub async fn delta_crl(&self, ca_id: &str) -> Result<bytes::Bytes> {
        Ok(self.crls(ca_id).await?.delta.clone())
    }

    /// [`Ra::crl`] with its thisUpdate, nextUpdate and digest, recorded when it was signed.
    pub async fn crl_with_freshness(&self, ca_id: &str) -> Result<(bytes::Bytes, Freshness)> {
        let c = self.crls(ca_id).await?;
        Ok((c.full.clone(), c.full_freshness.clone()))
    }

    /// [`Ra::delta_crl`] with its thisUpdate, nextUpdate and digest.
    pub async fn delta_crl_with_freshness(&self, ca_id: &str) -> Result<(bytes::Bytes, Freshness)> {
        let c = self.crls(ca_id).await?;
        Ok((c.delta.clone(), c.delta_freshness.clone()))
    }

    async fn crls(&self, ca_id: &str) -> Result<Arc<CachedCrl>> {
        self.crl_publisher().signed(ca_id).await
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn entry(n: u8, reason: Reason) -> CrlEntry {
        let mut hex = format!("1{:031x}", n);
        hex.truncate(32);
        CrlEntry {
            serial: Serial::parse(&hex).unwrap(),
            revoked_at: OffsetDateTime::UNIX_EPOCH,
            reason,
            invalidity_date: None,
        }
    }

    #[test]
    fn a_delta_lives_a_24th_of_the_full_crl_and_at_least_5_minutes() {
        assert_eq!(delta_validity(Duration::hours(24)), Duration::hours(1));
        assert_eq!(delta_validity(Duration::hours(1)), Duration::minutes(5));
        assert_eq!(delta_validity(Duration::minutes(3)), Duration::minutes(3));
    }

    #[test]
    fn changes_are_applied_in_one_ordered_pass() {
        let list = vec![
            entry(2, Reason::Superseded),
            entry(4, Reason::CertificateHold),
            entry(6, Reason::KeyCompromise),
        ];
        let changes = vec![
            (
                entry(1, Reason::Unspecified).serial,
                Some(entry(1, Reason::Unspecified)),
            ),
            // released from hold: leaves the list
            (entry(4, Reason::CertificateHold).serial, None),
            // hold became keyCompromise elsewhere: replaced
            (
                entry(6, Reason::KeyCompromise).serial,
                Some(entry(6, Reason::CaCompromise)),
            ),
            (
                entry(9, Reason::Superseded).serial,
                Some(entry(9, Reason::Superseded)),
            ),
            // valid and not listed: nothing to remove
            (entry(10, Reason::Superseded).serial, None),
        ];
        let merged = merge(list, changes);
        let got: Vec<(String, Reason)> = merged
            .iter()
            .map(|e| (e.serial.to_string(), e.reason))
            .collect();
        let want: Vec<(String, Reason)> = [
            (1, Reason::Unspecified),
            (2, Reason::Superseded),
            (6, Reason::CaCompromise),
            (9, Reason::Superseded),
        ]
        .into_iter()
        .map(|(n, r)| (entry(n, r).serial.to_string(), r))
        .collect();
        assert_eq!(got, want);
    }
}
