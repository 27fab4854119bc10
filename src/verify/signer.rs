//! One signer of a submission against Vouch's records: its certificate (from the CMS, or Vouch's
//! own by issuer and serial), its signature, the signing time, the chain to Vouch's issuing CA,
//! the certificate's validity and status at that time, key usage, profile and role.

use super::cms::{check_signature, find_certificate, SignedData, SignerId, SignerInfo};
use super::records::{self, CertificateRecord};
use super::{Policy, RequiredKeyUsage, RevocationInfo, SignerReport, TimePolicy};
use crate::error::Result;
use crate::ra::{rfc3339, Ra};
use crate::state::CertificateStatus;
use crate::store::certificates as certs;
use crate::x509::ac::parse::hex_serial;
use std::sync::Arc;
use time::OffsetDateTime;

/// A certificate's status at a time, from Vouch's records: `good`, `revoked` or `on-hold`.
/// A revocation after `t` does not count, except keyCompromise whose invalidity date is at or
/// before `t`; a hold counts while it lasted.
fn status_at(record: &CertificateRecord, t: i64) -> &'static str {
    let row = &record.row;
    if row.status == CertificateStatus::Revoked
        && row.revocation_reason.as_deref() == Some("keyCompromise")
        && row.invalidity_date.is_some_and(|d| d <= t)
    {
        return "revoked";
    }
    match records::status_at(&record.history, t).map(|h| h.status) {
        Some(CertificateStatus::Revoked) => "revoked",
        Some(CertificateStatus::OnHold) => "on-hold",
        Some(CertificateStatus::Valid) | None => "good",
    }
}

impl Ra {
    /// Check one signer; the reasons it fails the policy are in the report.
    pub(super) async fn check_signer(
        &self,
        sd: &SignedData,
        info: &SignerInfo,
        content: &[u8],
        policy: &Policy,
        caller_acs: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<SignerReport> {
        let mut report = SignerReport {
            serial: None,
            subject: None,
            subscriber_id: None,
            profile: None,
            certificate_status: "unknown",
            revocation: None,
            roles: Vec::new(),
            signed_at: None,
            time_source: None,
            reasons: Vec::new(),
        };
        let Some(der) = self.signer_certificate(info, sd).await? else {
            report.reasons.push("signer_certificate_missing");
            return Ok(report);
        };
        // The certificate the signer names, unreadable: as good as none.
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&der) else {
            report.reasons.push("signer_certificate_missing");
            return Ok(report);
        };
        report.serial = Some(hex_serial(parsed.raw_serial()));
        report.subject = Some(parsed.subject().to_string());
        if let Err(p) = check_signature(info, &sd.content_type, content, parsed.public_key().raw) {
            report.reasons.push(p.code());
        }
        let serial = hex_serial(parsed.raw_serial());
        let mut record = self.own_certificate(&serial, &der).await?;
        // A remote CA's certificate: its OCSP responder, when it has one, may know of a
        // revocation its last CRL did not list yet.
        if let Some(r) = record.as_ref().filter(|r| !self.is_embedded(&r.row.ca_id)) {
            let row = r.row.clone();
            if self.refresh_from_ocsp(&row).await {
                record = self.own_certificate(&serial, &der).await?;
            }
        }
        let row = record.as_ref().map(|r| &r.row);
        if let Some(row) = row {
            report.subscriber_id = Some(row.subscriber_id.clone());
            report.profile = Some(row.profile.clone());
        }
        // Without a signing time, no status at it: the report says whose certificate it is and
        // why there is no time.
        let Some((at, source)) = self.signing_time(info, policy, now, &mut report.reasons) else {
            return Ok(report);
        };
        report.signed_at = Some(rfc3339(at.unix_timestamp()));
        report.time_source = Some(source);
        let t = at.unix_timestamp();
        if t < parsed.validity().not_before.timestamp() {
            report.reasons.push("certificate_not_yet_valid");
        } else if t > parsed.validity().not_after.timestamp() {
            report.reasons.push("certificate_expired");
        }
        for ku in &policy.key_usage {
            let has = parsed.key_usage().ok().flatten().is_some_and(|k| match ku {
                RequiredKeyUsage::DigitalSignature => k.value.digital_signature(),
                RequiredKeyUsage::NonRepudiation => k.value.non_repudiation(),
            });
            if !has {
                report.reasons.push(match ku {
                    RequiredKeyUsage::DigitalSignature => "digital_signature_missing",
                    RequiredKeyUsage::NonRepudiation => "non_repudiation_missing",
                });
            }
        }
        match &record {
            None => {
                let foreign = self.foreign_status(&der, &sd.certificates, at).await?;
                report.certificate_status = foreign.status;
                report.reasons.extend(foreign.reasons);
                if policy.profiles.is_some() {
                    report.reasons.push("profile_not_allowed");
                }
            }
            Some(record) => {
                let row = &record.row;
                // The embedded issuing CA's revocation concerns its own certificates only (a
                // remote CA's status is that CA's to publish).
                if row.ca_id == self.ca().issuing_id() && self.issuing_revoked_cached().await? {
                    report.reasons.push("issuing_ca_revoked");
                }
                report.certificate_status = status_at(record, t);
                match report.certificate_status {
                    "revoked" => report.reasons.push("certificate_revoked"),
                    "on-hold" => report.reasons.push("certificate_on_hold"),
                    _ => {}
                }
                if let (Some(when), Some(reason)) = (row.revoked_at, &row.revocation_reason) {
                    report.revocation = Some(RevocationInfo {
                        time: rfc3339(when),
                        reason: reason.clone(),
                        invalidity_date: row.invalidity_date.map(rfc3339),
                    });
                }
                if let Some(allowed) = &policy.profiles {
                    if !allowed.contains(&row.profile) {
                        report.reasons.push("profile_not_allowed");
                    }
                }
            }
        }
        if let (Some(role), Some(app)) = (&policy.role, &policy.application) {
            let holder = row.map(|r| r.serial.as_str());
            let (roles, problems) = self
                .roles_at(&der, holder, role, app, caller_acs, at)
                .await?;
            report.roles = roles;
            report.reasons.extend(problems);
        }
        Ok(report)
    }

    /// The signer's certificate: among those the CMS carries, else Vouch's own by serial (when
    /// the signer names Vouch's issuing CA).
    async fn signer_certificate(
        &self,
        info: &SignerInfo,
        sd: &SignedData,
    ) -> Result<Option<Vec<u8>>> {
        if let Some(c) = find_certificate(&info.sid, &sd.certificates) {
            return Ok(Some(c.to_vec()));
        }
        let SignerId::IssuerSerial { issuer, serial } = &info.sid else {
            return Ok(None);
        };
        let issuing = self.ca().chain().issuing().der.clone();
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(&issuing) else {
            return Ok(None);
        };
        if ca.subject().as_raw() != issuer.as_slice() {
            return Ok(None);
        }
        let row = {
            let mut c = self.store().read().await?;
            certs::get(&mut c, &hex_serial(serial)).await?
        };
        Ok(row.map(|r| r.der))
    }

    /// Vouch's record of the certificate `der` with serial `serial`: only a certificate Vouch
    /// issued has its exact DER on record, so the records stand for the chain to Vouch's issuing
    /// CA (checking its signature again would cost a P-256 verification per signer).
    async fn own_certificate(
        &self,
        serial: &str,
        der: &[u8],
    ) -> Result<Option<Arc<CertificateRecord>>> {
        let record = self.certificate_record(serial).await?;
        Ok(record.filter(|r| r.row.der == der))
    }

    /// Whether the issuing CA is revoked, read once per status generation (revoking it moves
    /// the status version, so a change is seen within about a second).
    async fn issuing_revoked_cached(&self) -> Result<bool> {
        let generation = self.status_generation();
        if let Some((g, revoked)) = *self
            .verify_state()
            .issuing_revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            if g == generation {
                return Ok(revoked);
            }
        }
        let revoked = self.issuing_ca_revocation().await?.is_some();
        *self
            .verify_state()
            .issuing_revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((generation, revoked));
        Ok(revoked)
    }

    /// The signing time and where it came from, or None (with the reason) when the policy's
    /// source gives none.
    fn signing_time(
        &self,
        info: &SignerInfo,
        policy: &Policy,
        now: OffsetDateTime,
        reasons: &mut Vec<&'static str>,
    ) -> Option<(OffsetDateTime, &'static str)> {
        if let Some(token) = info.timestamp_tokens.first() {
            let anchors = &self.config().tsa_anchors;
            return match super::timestamp::check(token, &info.signature, anchors) {
                Ok(t) => Some((t, "timestamp")),
                Err(p) => {
                    reasons.push(p.code());
                    None
                }
            };
        }
        if policy.require_timestamp || policy.time == TimePolicy::Timestamp {
            reasons.push("timestamp_required");
            return None;
        }
        match policy.time {
            TimePolicy::SigningTime => match info.signing_time {
                Some(t) => Some((t, "signing-time")),
                None => {
                    reasons.push("signing_time_missing");
                    None
                }
            },
            _ => Some((now, "now")),
        }
    }
}
