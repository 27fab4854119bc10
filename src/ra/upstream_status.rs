//! The status of certificates a remote CA issued, as that CA's CRL tells it. Vouch records its
//! own revocations and forwards them; a CA may also revoke on its own (an operator at the CA, a
//! CA that revokes what was never confirmed). Each remote CA with a `crl_url` has its CRL read
//! by the background task every [`RaConfig::upstream_crl_interval`](super::RaConfig) (and by
//! [`Ra::read_upstream_crls`] when asked). A CRL is used only when it verifies with that CA's
//! issuing certificate (see [`crate::ca::remote_crl`]) and is not older than the last one used
//! (kept in the database, `upstream_crls`); an entry is not used for a certificate whose status
//! changed here at or after the CRL's thisUpdate (a released hold is not put back by a CRL made
//! before the release).
//! A certificate Vouch holds as valid (or on hold) that it lists is recorded as revoked (on hold
//! for certificateHold) with the CRL entry's reason and revocationDate (keyCompromise also blocks
//! the key and revokes the other certificates with it, as a revocation here does, and raises a
//! certificate revoked here with another reason to keyCompromise; the entry's invalidityDate is
//! kept), audited as
//! `certificate.revoked_upstream` (actor null, the CA and the CRL in the details), so that
//! `GET /certificates/{serial}` and the verification API say so; its forward is recorded as
//! acknowledged (the CA knows). A certificate the CRL lists as Vouch already holds it (revoked,
//! or on hold) whose forward is still pending, or refused and waiting for an admin, has the
//! forward recorded as acknowledged (`certificate.revocation_forwarded`, the CRL as the source):
//! revoked at the CA by hand, or a forward whose answer was lost. A certificate a CRL of the CA
//! put on hold here (and nothing changed since) that a newer CRL of the CA no longer lists is
//! released, audited as `certificate.released_upstream`: the CA lifted its hold (a hold set here
//! is lifted only here). A CRL that cannot be read or does not verify changes nothing:
//! it is logged each time and audited (`upstream.crl_unreadable`) when a CA's reads start
//! failing or fail for another reason; the last good one stands.

use super::attributes::{follow_holder, HolderChange};
use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::remote_crl::RemoteRevocation;
use crate::ca::CaError;
use crate::error::Result;
use crate::store::job;
use crate::store::{certificates as rows, upstream_crls as crls, upstream_queue as queue};
use crate::x509::revocation::Reason;

/// The most forwards still to be acknowledged that one CRL is checked against (the CA's oldest).
const MAX_FORWARDS_CHECKED: i64 = 10_000;
use std::collections::HashMap;

/// What told Vouch of a certificate's status at its remote CA, and where it was read.
#[derive(Debug, Clone)]
pub(crate) enum Told {
    /// The CA's CRL at this URL.
    Crl(String),
    /// The CA's OCSP responder at this URL.
    Ocsp(String),
}

impl Told {
    /// For logs.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Told::Crl(_) => "CRL",
            Told::Ocsp(_) => "OCSP",
        }
    }

    /// The audit entry's `seen_at`.
    pub(super) fn seen_at(&self) -> &'static str {
        match self {
            Told::Crl(_) => "the upstream CA's CRL",
            Told::Ocsp(_) => "the upstream CA's OCSP responder",
        }
    }

    /// The audit entry's source fields: `crl_url` and `crl_this_update`, or `ocsp_url` and
    /// `ocsp_this_update`.
    pub(super) fn describe(&self, details: &mut serde_json::Value, at: i64) {
        let (url_key, time_key, url) = match self {
            Told::Crl(u) => ("crl_url", "crl_this_update", u),
            Told::Ocsp(u) => ("ocsp_url", "ocsp_this_update", u),
        };
        details[url_key] = url.clone().into();
        details[time_key] = super::rfc3339(at).into();
    }
}
use std::sync::Mutex;
use time::OffsetDateTime;

/// What the RA remembers of each CA's CRL reads in memory (the thisUpdate of the last CRL used is
/// in the database, `upstream_crls`: it survives a restart and is shared by every instance).
#[derive(Default)]
pub(crate) struct CrlReads {
    by_ca: Mutex<HashMap<String, CaReads>>,
    last_round: Mutex<Option<tokio::time::Instant>>,
}

#[derive(Default, Clone)]
struct CaReads {
    /// The last read's error, if it failed (audited when reads start failing, or fail otherwise).
    failing: Option<String>,
    /// thisUpdate of the last CRL audited as past its nextUpdate (audited once per CRL).
    stale: Option<OffsetDateTime>,
}

/// How far ahead of this host's clock a CRL's thisUpdate may be (the CA's clock may run a little
/// ahead); a CRL further ahead is not used: it would lock out every CRL until that time.
pub const CRL_CLOCK_ALLOWANCE: time::Duration = time::Duration::minutes(5);

/// What one round did, per CA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlRound {
    /// CAs whose CRL was read and used.
    pub read: usize,
    /// CAs whose CRL could not be read or did not verify (nothing changed for them).
    pub failed: usize,
    /// Certificates recorded as revoked or on hold from the CRLs.
    pub recorded: usize,
    /// Certificates released from a hold a CA's CRL had set, now that a newer CRL of that CA no
    /// longer lists them.
    pub released: usize,
}

impl Ra {
    /// Read each remote CA's CRL now (those with a `crl_url`), and record what it says of the
    /// certificates Vouch holds as valid or on hold.
    pub async fn read_upstream_crls(&self) -> Result<CrlRound> {
        *self
            .crl_reads()
            .last_round
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        let mut round = CrlRound::default();
        for ca in self.config().upstreams.iter() {
            let Some(source) = ca.crl_source() else {
                continue;
            };
            let id = ca.issuing_id().to_string();
            let chain = ca.chain();
            let read = source.read(&id, &chain).await;
            let crl = match read {
                Ok(crl) => crl,
                Err(CaError::Refused(e) | CaError::Unavailable(e)) => {
                    round.failed += 1;
                    self.crl_unreadable(&id, source.url(), &e).await;
                    continue;
                }
            };
            let now = self.now();
            if crl.this_update > now + CRL_CLOCK_ALLOWANCE {
                round.failed += 1;
                let why = format!(
                    "its thisUpdate {} is in the future (now {}): not used",
                    super::rfc3339(crl.this_update.unix_timestamp()),
                    super::rfc3339(now.unix_timestamp())
                );
                self.crl_unreadable(&id, source.url(), &why).await;
                continue;
            }
            let last_used = {
                let mut c = self.store().read().await?;
                crls::last_this_update(&mut c, &id).await?
            };
            if let Some(last) = last_used.filter(|t| crl.this_update.unix_timestamp() < *t) {
                round.failed += 1;
                let why = format!(
                    "its thisUpdate {} is older than the last CRL used ({}): not used",
                    super::rfc3339(crl.this_update.unix_timestamp()),
                    super::rfc3339(last)
                );
                self.crl_unreadable(&id, source.url(), &why).await;
                continue;
            }
            if self.ca_reads(&id).failing.is_some() {
                tracing::info!(ca = %id, url = %source.url(), "the CA's CRL is readable again");
            }
            let (recorded, released) = self
                .apply_crl(
                    &id,
                    source.url(),
                    &crl.entries,
                    crl.this_update,
                    &chain.issuing().der,
                )
                .await?;
            let (ca_id, this_update, read_at) = (
                id.clone(),
                crl.this_update.unix_timestamp(),
                self.now().unix_timestamp(),
            );
            self.store()
                .write(job!(|c, _log| {
                    crls::record_this_update(c, &ca_id, this_update, read_at).await
                }))
                .await?;
            let mut reads = self.ca_reads(&id);
            reads.failing = None;
            self.set_ca_reads(&id, reads);
            if let Some(next) = crl.next_update.filter(|n| *n < now) {
                self.crl_stale(&id, source.url(), crl.this_update, next)
                    .await;
            }
            round.read += 1;
            round.recorded += recorded;
            round.released += released;
        }
        Ok(round)
    }

    /// A round of [`Ra::read_upstream_crls`] if `upstream_crl_interval` has passed since the
    /// last (the background task asks at each of its rounds).
    pub async fn read_upstream_crls_if_due(&self) -> Result<Option<CrlRound>> {
        let last = *self
            .crl_reads()
            .last_round
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.config().upstream_crl_interval) {
            return Ok(None);
        }
        self.read_upstream_crls().await.map(Some)
    }

    fn ca_reads(&self, id: &str) -> CaReads {
        let map = self
            .crl_reads()
            .by_ca
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned().unwrap_or_default()
    }

    fn set_ca_reads(&self, id: &str, reads: CaReads) {
        let mut map = self
            .crl_reads()
            .by_ca
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(id.to_string(), reads);
    }

    /// Log a CRL that cannot be used; audit it when the CA's reads start failing, or fail for
    /// another reason than the last (not at every round of a CA that stays down).
    async fn crl_unreadable(&self, id: &str, url: &str, error: &str) {
        tracing::warn!(ca = %id, %url, %error,
            "the CA's CRL cannot be used; the status recorded from its last good CRL stands");
        let mut reads = self.ca_reads(id);
        if reads.failing.as_deref() == Some(error) {
            return;
        }
        reads.failing = Some(error.to_string());
        self.set_ca_reads(id, reads);
        let now = self.now();
        let details = serde_json::json!({"ca": id, "url": url, "error": error});
        let event = Event::new(None, Action::UpstreamCrlUnreadable, Some(id), details);
        let written = self
            .store()
            .write(job!(|_c, log| {
                audit::record(log, now, event);
                Ok(())
            }))
            .await;
        if let Err(e) = written {
            tracing::error!(ca = %id, error = %e, "could not audit an unreadable CRL");
        }
    }

    /// Log a CRL used though its nextUpdate has passed; audit it once per CRL.
    async fn crl_stale(
        &self,
        id: &str,
        url: &str,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) {
        let this = this_update;
        let (this_update, next_update) = (
            super::rfc3339(this_update.unix_timestamp()),
            super::rfc3339(next_update.unix_timestamp()),
        );
        tracing::warn!(ca = %id, %url, %this_update, %next_update,
            "the CA's CRL is past its nextUpdate: the CA publishes no newer one");
        let mut reads = self.ca_reads(id);
        if reads.stale == Some(this) {
            return;
        }
        reads.stale = Some(this);
        self.set_ca_reads(id, reads);
        let now = self.now();
        let details = serde_json::json!({"ca": id, "url": url, "this_update": this_update,
            "next_update": next_update});
        let event = Event::new(None, Action::UpstreamCrlStale, Some(id), details);
        let written = self
            .store()
            .write(job!(|_c, log| {
                audit::record(log, now, event);
                Ok(())
            }))
            .await;
        if let Err(e) = written {
            tracing::error!(ca = %id, error = %e, "could not audit a stale CRL");
        }
    }

    /// Forwards to the CA `id` still to be acknowledged (pending, or refused and waiting for an
    /// admin) of certificates its CRL of `crl_time` lists as Vouch holds them (revoked with the
    /// same reason class, on hold for a hold) are recorded as acknowledged, audited
    /// `certificate.revocation_forwarded` with the CRL as the source: the CA has the status
    /// (revoked there by hand, or a forward whose answer was lost). A keyCompromise forward is
    /// acknowledged only by a keyCompromise entry (otherwise the CA does not say the key is
    /// compromised: the forward goes on), and only for a certificate `issuing` issued.
    async fn acknowledge_from_crl(
        &self,
        id: &str,
        url: &str,
        entries: &HashMap<&str, &RemoteRevocation>,
        crl_time: i64,
        issuing: &[u8],
    ) -> Result<()> {
        let listed: Vec<(queue::ForwardRow, Reason)> = {
            let mut c = self.store().read().await?;
            let mut out = Vec::new();
            for f in queue::pending_to(&mut c, id, MAX_FORWARDS_CHECKED).await? {
                let Some(entry) = entries.get(f.serial.as_str()) else {
                    continue;
                };
                // A CRL made before the status this forward tells says nothing of it (an old
                // CRL still listing an earlier hold, say).
                if crl_time <= f.revoked_at
                    || crls::status_changed_at(&mut c, &f.serial)
                        .await?
                        .is_some_and(|t| crl_time <= t)
                {
                    continue;
                }
                let told = match f.reason.as_str() {
                    "certificateHold" => entry.reason == Reason::CertificateHold,
                    "keyCompromise" => entry.reason == Reason::KeyCompromise,
                    _ => entry.reason != Reason::CertificateHold,
                };
                let ours = rows::get(&mut c, &f.serial)
                    .await?
                    .is_some_and(|cert| crate::ca::remote_crl::issued_by(&cert.der, issuing));
                if told && ours {
                    out.push((f, entry.reason));
                }
            }
            out
        };
        for (forward, reason) in listed {
            let now = self.now();
            let details = serde_json::json!({"ca": id, "reason": forward.reason,
                "acknowledged_by": "the upstream CA's CRL", "crl_url": url,
                "crl_reason": reason.as_str(), "crl_this_update": super::rfc3339(crl_time),
                "attempts": forward.attempts, "was": forward.state()});
            let (target, version, ca_id) = (
                forward.serial.clone(),
                forward.status_version,
                id.to_string(),
            );
            let done = self
                .store()
                .write(job!(|c, log| {
                    // Checked again in the write: the status may have changed, the forward been
                    // dropped, or a newer CRL been used since they were read.
                    let still = queue::pending_of(c, &target)
                        .await?
                        .is_some_and(|f| f.status_version == version);
                    if !still
                        || crls::status_changed_at(c, &target)
                            .await?
                            .is_some_and(|t| crl_time <= t)
                        || crls::last_this_update(c, &ca_id)
                            .await?
                            .is_some_and(|t| crl_time < t)
                    {
                        return Ok(false);
                    }
                    if !queue::acknowledge(c, &target, version, now.unix_timestamp()).await? {
                        return Ok(false);
                    }
                    let event = Event::new(
                        None,
                        Action::CertificateRevocationForwarded,
                        Some(&target),
                        details,
                    );
                    audit::record(log, now, event);
                    Ok(true)
                }))
                .await?;
            if done {
                tracing::info!(serial = %forward.serial, ca = %id,
                    "a pending revocation forward is acknowledged: the CA's CRL lists the certificate");
            }
        }
        Ok(())
    }

    /// Record the revocations of `entries` (the CRL of the CA `id` at `url`) that Vouch does not
    /// know of yet, and lift the holds an earlier CRL of the CA set that this one no longer
    /// lists. Returns how many certificates were revoked or held, and how many released.
    async fn apply_crl(
        &self,
        id: &str,
        url: &str,
        entries: &[RemoteRevocation],
        this_update: OffsetDateTime,
        issuing: &[u8],
    ) -> Result<(usize, usize)> {
        let serials: Vec<String> = entries.iter().map(|e| e.serial.clone()).collect();
        let live = {
            let mut c = self.store().read().await?;
            rows::live_of_ca(&mut c, id, &serials).await?
        };
        let by_serial: HashMap<&str, &RemoteRevocation> =
            entries.iter().map(|e| (e.serial.as_str(), e)).collect();
        let mut recorded = 0;
        let mut propagated = Vec::new();
        let crl_time = this_update.unix_timestamp();
        // A failure here is logged; the CRL's entries are still applied.
        if let Err(e) = self
            .acknowledge_from_crl(id, url, &by_serial, crl_time, issuing)
            .await
        {
            tracing::warn!(ca = %id, error = %e, "could not check the queued revocation forwards against the CA's CRL");
        }
        for live_row in live {
            let Some(entry) = by_serial.get(live_row.0.as_str()).copied() else {
                continue;
            };
            let told = Told::Crl(url.to_string());
            if let Some(others) = self
                .record_remote(id, &told, live_row, entry, crl_time, issuing)
                .await?
            {
                propagated.extend(others);
                recorded += 1;
            }
        }
        // A failure here is logged; the entries above are applied.
        let released = match self
            .lift_holds(id, url, &by_serial, crl_time, issuing)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(ca = %id, error = %e, "could not check the holds the CA's CRL had set against its newer CRL");
                0
            }
        };
        if recorded + released > 0 {
            self.status_changed();
        }
        // The others revoked with a compromised key are forwarded to the CAs that issued them.
        self.forward_revocations(None, &propagated).await;
        Ok((recorded, released))
    }

    /// Record what the CA `id` says (`told`: its CRL, or its OCSP responder, at `crl_time`) of
    /// the certificate `live` (valid, on hold, or revoked with another reason than
    /// keyCompromise here): `entry` revokes it, holds it (certificateHold; the hold remembered,
    /// to be lifted when the CA lifts it), or raises its reason to keyCompromise, unless the
    /// CA's issuing certificate `issuing` did not issue it, or the certificate changed here at or
    /// after `crl_time`. Audited `certificate.revoked_upstream` (or
    /// `certificate.revocation_updated`); a keyCompromise blocks the key and revokes the other
    /// certificates with it (returned, to be forwarded to their CAs). None when nothing changed.
    pub(super) async fn record_remote(
        &self,
        id: &str,
        told: &Told,
        live: rows::LiveOfCa,
        entry: &RemoteRevocation,
        crl_time: i64,
        issuing: &[u8],
    ) -> Result<Option<Vec<String>>> {
        let (serial, status, key, changed_at, der) = live;
        if !crate::ca::remote_crl::issued_by(&der, issuing) {
            tracing::warn!(%serial, ca = %id, source = told.name(),
                "the CA lists a serial of a certificate its issuing certificate did not issue (an earlier key?): not used");
            return Ok(None);
        }
        let hold = entry.reason == Reason::CertificateHold;
        if hold && status == "on-hold" {
            return Ok(None);
        }
        // A certificate revoked here is changed only by a keyCompromise entry (raised).
        let raise = status == "revoked";
        if raise && entry.reason != Reason::KeyCompromise {
            return Ok(None);
        }
        // A CRL made before the certificate's last change here (a release of a hold, say)
        // says nothing of its status now: a stale or replayed CRL would put it back.
        if changed_at.is_some_and(|t| crl_time <= t) {
            tracing::debug!(%serial, ca = %id, source = told.name(), "older than the certificate's last status change: not used");
            return Ok(None);
        }
        let now = self.now();
        let (ca_id, reason, source) = (id.to_string(), entry.reason, told.clone());
        let (target, revoked_at) = (serial.clone(), entry.revoked_at);
        let invalidity = entry.invalidity.map(|t| t.min(now).unix_timestamp());
        let changed = self
            .store()
            .write(job!(|c, log| {
                // Checked again in the write: another instance may have changed the
                // certificate, or used a newer CRL, since it was read.
                let changed_at = crls::status_changed_at(c, &target).await?;
                if changed_at.is_some_and(|t| crl_time <= t)
                    || crls::last_this_update(c, &ca_id)
                        .await?
                        .is_some_and(|t| crl_time < t)
                {
                    return Ok(None);
                }
                // Never in the future (a CA's clock ahead of ours does not revoke ahead of
                // time), nor before the certificate's last status change here.
                let at = revoked_at
                    .min(now)
                    .unix_timestamp()
                    .max(changed_at.unwrap_or(i64::MIN));
                let mut details = serde_json::json!({"ca": ca_id, "reason": reason.as_str(),
                    "revoked_at": super::rfc3339(at), "seen_at": source.seen_at(),
                    "invalidity_date": invalidity.map(super::rfc3339), "was": status});
                source.describe(&mut details, crl_time);
                let changed = match (raise, hold) {
                    // RFC 5280 5.3.1: a revoked certificate's reason may become
                    // keyCompromise, as a revocation here may raise it.
                    (true, _) => {
                        rows::escalate_to_key_compromise(
                            c,
                            &target,
                            invalidity,
                            now.unix_timestamp(),
                        )
                        .await?
                    }
                    (false, true) => {
                        let held = rows::hold(c, &target, at).await?;
                        if held {
                            // The CA's hold: lifted here when a newer CRL of the CA no
                            // longer lists it, or its OCSP responder says good.
                            crls::record_hold(c, &target, &ca_id, crl_time).await?;
                        }
                        held
                    }
                    (false, false) => {
                        rows::revoke(c, &target, reason.as_str(), at, invalidity).await?
                    }
                };
                if !changed {
                    return Ok(None);
                }
                let action = match raise {
                    true => Action::CertificateRevocationUpdated,
                    false => Action::CertificateRevokedUpstream,
                };
                let event = Event::new(None, action, Some(&target), details);
                audit::record(log, now, event);
                let change = match (raise, hold) {
                    (true, _) => HolderChange::KeyCompromised(invalidity),
                    (false, true) => HolderChange::Held,
                    (false, false) => HolderChange::Revoked(reason, invalidity),
                };
                follow_holder(c, log, now, None, &target, change).await?;
                // A key the CA says is compromised is blocked here too, and the other
                // certificates with it are revoked, as for a keyCompromise revocation here.
                let others = match reason {
                    Reason::KeyCompromise => {
                        super::revocation::compromise_key(
                            c, log, now, None, &target, &key, invalidity,
                        )
                        .await?
                    }
                    _ => Vec::new(),
                };
                // The CA told us: nothing to forward back to it.
                if let Some(row) = queue::queue(c, &target, &ca_id, now.unix_timestamp()).await? {
                    queue::acknowledge(c, &target, row.status_version, now.unix_timestamp())
                        .await?;
                }
                Ok(Some(others))
            }))
            .await?;
        if changed.is_some() {
            tracing::warn!(%serial, ca = %id, reason = entry.reason.as_str(), source = told.name(),
                "the CA says a certificate Vouch held as valid is revoked (or on hold); recorded");
        }
        Ok(changed)
    }
}
