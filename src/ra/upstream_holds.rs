//! Holds a remote CA set, lifted when the CA lifts them: a certificate a CRL (or OCSP answer) of
//! the CA put on hold here (`upstream_holds`, migration 0022), and nothing changed since, is
//! released when a newer CRL of the CA no longer lists it ([`Ra::lift_holds`], from
//! `ra::upstream_status`) or the CA's OCSP responder says good (`ra::upstream_ocsp`), audited as
//! `certificate.released_upstream`. A hold set here is lifted only here.

use super::attributes::{follow_holder, HolderChange};
use super::upstream_status::Told;
use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::remote_crl::RemoteRevocation;
use crate::error::Result;
use crate::store::job;
use crate::store::{certificates as rows, upstream_crls as crls};
use std::collections::HashMap;

/// The most holds set by a CA's CRL that one CRL is checked against (the oldest first).
const MAX_HOLDS_CHECKED: i64 = 10_000;

impl Ra {
    /// Release the certificates an earlier CRL of the CA `id` put on hold here (and nothing
    /// changed since) that its CRL of `crl_time`, newer than that one, no longer lists: the CA
    /// lifted the hold. Audited `certificate.released_upstream`; the holder's attribute
    /// certificates held with it are released too. The release is dated at the CRL's thisUpdate
    /// (the CA lifted the hold at the latest then; a signature between the CA's release and that
    /// time is taken as made on hold). A hold set here, a certificate past its notAfter at the
    /// CRL's time (a CA may leave expired certificates off its CRL), or a certificate the CA's
    /// current issuing certificate did not issue (an earlier key's CRL lists it), is left as it
    /// is. The release changes the certificate's status version, which ends the hold's row.
    pub(super) async fn lift_holds(
        &self,
        id: &str,
        url: &str,
        entries: &HashMap<&str, &RemoteRevocation>,
        crl_time: i64,
        issuing: &[u8],
    ) -> Result<usize> {
        let holds = {
            let mut c = self.store().read().await?;
            crls::standing_holds(&mut c, id, crl_time, MAX_HOLDS_CHECKED).await?
        };
        let mut released = 0;
        for hold in holds {
            if entries.contains_key(hold.serial.as_str()) || crl_time <= hold.crl_this_update {
                continue;
            }
            if !crate::ca::remote_crl::issued_by(&hold.der, issuing) {
                tracing::debug!(serial = %hold.serial, ca = %id,
                    "a hold the CA's CRL set is not listed by its newer CRL, but its issuing certificate did not issue the certificate (an earlier key?): the hold stays");
                continue;
            }
            let told = Told::Crl(url.to_string());
            if self.lift_hold(id, &told, &hold, crl_time).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Release the certificate of `hold` (set by what the CA `id` said earlier), now that the CA
    /// says (`told`, at `time`, later than the hold) it is not held: unless its status changed
    /// here since, or a newer CRL of the CA was used. Audited `certificate.released_upstream`;
    /// the holder's attribute certificates held with it are released too. The release is dated
    /// at `time` (never later than now, nor before the certificate's last change). Returns
    /// whether it was released.
    pub(super) async fn lift_hold(
        &self,
        id: &str,
        told: &Told,
        hold: &crls::UpstreamHold,
        time: i64,
    ) -> Result<bool> {
        let now = self.now();
        let (target, version, ca_id, source) = (
            hold.serial.clone(),
            hold.status_version,
            id.to_string(),
            told.clone(),
        );
        let held_by = hold.crl_this_update;
        let done = self
            .store()
            .write(job!(|c, log| {
                // Checked again in the write: the status may have changed here, or a newer
                // CRL been used, since they were read.
                if !crls::hold_stands(c, &target, version).await?
                    || crls::last_this_update(c, &ca_id)
                        .await?
                        .is_some_and(|t| time < t)
                {
                    return Ok(false);
                }
                let changed_at = crls::status_changed_at(c, &target).await?;
                let at = time
                    .min(now.unix_timestamp())
                    .max(changed_at.unwrap_or(i64::MIN));
                if !rows::release(c, &target, at).await? {
                    return Ok(false);
                }
                let mut details = serde_json::json!({"ca": ca_id,
                    "released_at": super::rfc3339(at), "seen_at": source.seen_at(),
                    "held_by_this_update": super::rfc3339(held_by)});
                source.describe(&mut details, time);
                let event = Event::new(
                    None,
                    Action::CertificateReleasedUpstream,
                    Some(&target),
                    details,
                );
                audit::record(log, now, event);
                follow_holder(c, log, now, None, &target, HolderChange::Released).await?;
                Ok(true)
            }))
            .await?;
        if done {
            tracing::info!(serial = %hold.serial, ca = %id, source = told.name(),
                "the CA no longer holds a certificate it had put on hold; released here too");
        }
        Ok(done)
    }
}
