//! Certificates a remote CA returned that are not delivered: one that does not match the approved
//! order, or a second one for a request already recorded (or ended). Each is audited
//! (`certificate.quarantined`, with the certificate), logged as an error, listed by `vouch
//! upstream queue` until an admin acknowledges it, and revoked at the CA when it is certainly the
//! CA's answer to this order.

use super::Ra;
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::store::audit::{AuditFilter, AuditRow};
use crate::store::requests::{IntentRow, RequestRow};
use crate::store::{job, Store};
use crate::x509::serial::Serial;

/// Where a certificate for an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Received {
    /// The CA's answer to this attempt.
    Answer,
    /// The issuance journal (kept from an earlier answer, or written there by an operator).
    Journal,
    /// A lookup by the order's reserved serial (`UpstreamCa::find_issued`).
    Lookup,
}

impl Ra {
    /// `der`, a certificate the CA returned for `intent` (or kept in the journal) that cannot be
    /// recorded, `req` being the request as it is now: recorded with another certificate (from
    /// an attempt by another instance sharing the database), or ended meanwhile (failed,
    /// dropped). It is quarantined (audited `certificate.quarantined` with the certificate,
    /// logged as an error, never delivered) and revoked at the CA (superseded) when it is this
    /// order's: the approved subject and key, issued by the CA's issuing certificate, a serial
    /// Vouch never recorded. Nothing to do when it is the recorded certificate, or for a CA that
    /// signs the reserved serial (the embedded CA makes no second certificate).
    pub(super) async fn quarantine_second(
        &self,
        intent: &IntentRow,
        req: &RequestRow,
        der: &[u8],
    ) -> bool {
        use x509_parser::prelude::FromDer;
        let ca = self.ca_by_id(&intent.ca_id);
        if ca.as_ref().is_some_and(|ca| !ca.picks_serial()) {
            return true;
        }
        let serial = x509_parser::certificate::X509Certificate::from_der(der)
            .map(|(_, c)| crate::x509::ac::parse::hex_serial(c.raw_serial()))
            .ok();
        if serial.is_some() && serial == req.serial {
            return true;
        }
        let Some(ca) = ca else {
            let revocation = serde_json::json!({"revoked": false,
                "not_revoked": "its CA is not configured (upstream.toml): revoke it there by hand"});
            return self
                .audit_quarantine(intent, req, der, serial, revocation)
                .await;
        };
        // Once the request is recorded, its intent holds the serial the CA chose, not the
        // reserved one; the order's serial is not compared for a CA that picks serials.
        let mut ordered = intent.clone();
        if Serial::parse(&ordered.serial).is_none() {
            ordered.serial = Serial::random().to_string();
        }
        let ours = match self.order_for(&ordered, req, ca.as_ref()).await {
            Ok(order) => super::received::check(der, &order, &intent.key_sha256, &ca.chain())
                .map(|_| ())
                .map_err(|why| why.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let revocation = match ours {
            Ok(()) => self
                .revoke_quarantined(ca.as_ref(), der, Received::Answer)
                .await
                .unwrap_or_else(|e| serde_json::json!({"revoked": false, "error": e.to_string()})),
            Err(why) => serde_json::json!({"revoked": false,
                "not_revoked": format!("it does not match this request's approved order ({why}): \
                    revoke it at the CA by hand if it is the CA's")}),
        };
        self.audit_quarantine(intent, req, der, serial, revocation)
            .await
    }

    /// The `certificate.quarantined` entry of [`Ra::quarantine_second`]; false when it could not
    /// be written.
    async fn audit_quarantine(
        &self,
        intent: &IntentRow,
        req: &RequestRow,
        der: &[u8],
        serial: Option<String>,
        revocation: serde_json::Value,
    ) -> bool {
        let message = match &req.serial {
            Some(recorded) => format!(
                "the request was recorded with the certificate {recorded} from another attempt; \
                 this second certificate from the CA {} is not delivered",
                intent.ca_id
            ),
            None => format!(
                "the request is {} and was not recorded with a certificate; this one from the CA \
                 {} is not delivered",
                req.status, intent.ca_id
            ),
        };
        tracing::error!(request = %intent.request_id, ca = %intent.ca_id, serial = ?serial,
            recorded = ?req.serial, "a certificate the request cannot be recorded with; quarantined");
        use base64::Engine;
        let details = serde_json::json!({"ca": intent.ca_id, "reserved_serial": intent.serial,
            "serial": serial, "recorded_serial": req.serial, "error": message,
            "certificate_sha256": crate::x509::sha256_hex(der),
            "certificate": base64::engine::general_purpose::STANDARD.encode(der),
            "upstream_revocation": revocation});
        let (id, now) = (intent.request_id.clone(), self.now());
        let written = self
            .store()
            .write(job!(|_c, log| {
                let event = Event::new(None, Action::CertificateQuarantined, Some(&id), details);
                audit::record(log, now, event);
                Ok(())
            }))
            .await;
        if let Err(e) = &written {
            tracing::error!(request = %intent.request_id, error = %e,
                "could not audit a quarantined second certificate");
        }
        written.is_ok()
    }

    /// Revoke at the CA a certificate it returned that does not match the order (reason
    /// superseded: the request it answered is failed). Returns the serial (hex) and what the CA
    /// said, for the quarantine's audit entry. The CA is asked only for a certificate it has just
    /// returned (not one read from the issuance journal, where an operator may have pasted
    /// another), that its issuing certificate issued, and whose serial Vouch has not recorded: a
    /// revocation by serial alone must not hit an unrelated certificate.
    pub(super) async fn revoke_quarantined(
        &self,
        ca: &dyn crate::ca::UpstreamCa,
        der: &[u8],
        source: Received,
    ) -> Result<serde_json::Value> {
        use x509_parser::prelude::FromDer;
        let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(der) else {
            return Ok(
                serde_json::json!({"revoked": false, "error": "the certificate cannot be read"}),
            );
        };
        let serial = crate::x509::ac::parse::hex_serial(cert.raw_serial());
        let recorded = {
            let mut c = self.store().read().await?;
            crate::store::certificates::get(&mut c, &serial)
                .await?
                .is_some()
        };
        let not_revoked = if source == Received::Journal {
            Some("it was read from the issuance journal, not returned by the CA: revoke it there by hand if it is the CA's")
        } else if source == Received::Lookup {
            Some("it was found in the CA's certificate database under the reserved serial, not returned for this order, and may be another's certificate: check it at the CA before revoking it")
        } else if recorded {
            Some("its serial is that of a certificate Vouch recorded")
        } else if !crate::ca::remote_crl::issued_by(der, &ca.chain().issuing().der) {
            Some("the CA's issuing certificate did not issue it")
        } else {
            None
        };
        if let Some(why) = not_revoked {
            tracing::error!(ca = %ca.issuing_id(), serial = %serial, why,
                "a quarantined certificate is not revoked at the CA");
            return Ok(serde_json::json!({"serial": serial, "revoked": false, "not_revoked": why}));
        }
        let reason = crate::x509::revocation::Reason::Superseded;
        Ok(match ca.revoke(&serial, reason, self.now()).await {
            Ok(()) => serde_json::json!({"serial": serial, "revoked": true}),
            Err(e) => {
                tracing::error!(ca = %ca.issuing_id(), serial = %serial, error = %e,
                    "could not revoke a quarantined certificate at its CA; revoke it there by hand");
                serde_json::json!({"serial": serial, "revoked": false, "error": e.to_string()})
            }
        })
    }
}

/// Longest reason an admin gives for acknowledging a quarantine.
pub const MAX_ACK_REASON: usize = 1000;

/// The quarantine audit entry numbered `seq` and, if it was acknowledged, the acknowledgement.
pub async fn quarantine_entry(
    conn: &mut crate::store::Conn,
    seq: i64,
) -> Result<Option<(AuditRow, Option<AuditRow>)>> {
    let filter = AuditFilter {
        action: Some(Action::CertificateQuarantined.as_str().into()),
        before_seq: Some(seq.saturating_add(1)),
        ..Default::default()
    };
    let Some(row) = crate::store::audit::search(conn, &filter, 1)
        .await?
        .into_iter()
        .find(|r| r.seq == seq)
    else {
        return Ok(None);
    };
    let acks = AuditFilter {
        action: Some(Action::CertificateQuarantineAcknowledged.as_str().into()),
        target: row.target.clone(),
        ..Default::default()
    };
    let ack = crate::store::audit::search(conn, &acks, 1000)
        .await?
        .into_iter()
        .find(|a| acknowledged_seq(a) == Some(seq));
    Ok(Some((row, ack)))
}

/// The newest `limit` quarantines, each with its acknowledgement if an admin gave one.
pub async fn newest(
    conn: &mut crate::store::Conn,
    limit: i64,
) -> Result<Vec<(AuditRow, Option<AuditRow>)>> {
    let by = |action: Action| AuditFilter {
        action: Some(action.as_str().into()),
        ..Default::default()
    };
    let quarantines =
        crate::store::audit::search(conn, &by(Action::CertificateQuarantined), limit).await?;
    if quarantines.is_empty() {
        return Ok(Vec::new());
    }
    // Acknowledgements come after their quarantine: those since the oldest one listed.
    let oldest = quarantines.last().map_or(0, |q| q.seq);
    let mut acks = Vec::new();
    let mut before = None;
    loop {
        let page = AuditFilter {
            before_seq: before,
            ..by(Action::CertificateQuarantineAcknowledged)
        };
        let rows = crate::store::audit::search(conn, &page, 500).await?;
        let done = rows.len() < 500 || rows.last().is_some_and(|r| r.seq <= oldest);
        before = rows.last().map(|r| r.seq);
        acks.extend(rows.into_iter().filter(|r| r.seq > oldest));
        if done {
            break;
        }
    }
    Ok(quarantines
        .into_iter()
        .map(|q| {
            let ack = acks
                .iter()
                .find(|a| acknowledged_seq(a) == Some(q.seq))
                .cloned();
            (q, ack)
        })
        .collect())
}

/// The quarantine an acknowledgement entry names.
pub fn acknowledged_seq(ack: &AuditRow) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(&ack.details)
        .ok()?
        .get("audit_seq")?
        .as_i64()
}

/// Acknowledge the quarantine recorded in audit entry `seq`, for `reason` (one line): dealt
/// with at the CA, or nothing to do. Audited (`certificate.quarantine_acknowledged`, actor null:
/// the host's command line); the check and the entry are one write, so it is acknowledged once.
/// Returns the quarantine's details.
pub async fn acknowledge(
    store: &Store,
    now: time::OffsetDateTime,
    seq: i64,
    reason: &str,
) -> Result<serde_json::Value> {
    let reason = reason.trim().to_string();
    if reason.is_empty() || reason.len() > MAX_ACK_REASON || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_reason",
            format!(
                "a reason is required: one line of at most {MAX_ACK_REASON} bytes saying what \
                 was done about the certificate"
            ),
        ));
    }
    store
        .write(job!(|c, log| {
            let Some((row, ack)) = quarantine_entry(c, seq).await? else {
                return Err(Error::invalid(
                    "not_a_quarantine",
                    format!(
                        "audit entry {seq} is not a quarantined certificate (`vouch upstream \
                         queue` lists them with their entry numbers)"
                    ),
                ));
            };
            if let Some(ack) = ack {
                return Err(Error::conflict(
                    "already_acknowledged",
                    format!(
                        "the quarantine of audit entry {seq} was acknowledged already (audit \
                         entry {})",
                        ack.seq
                    ),
                ));
            }
            let quarantine: serde_json::Value =
                serde_json::from_str(&row.details).unwrap_or_default();
            let serial = quarantine["upstream_revocation"]["serial"]
                .as_str()
                .or_else(|| quarantine["serial"].as_str())
                .map(str::to_string);
            let details = serde_json::json!({"audit_seq": seq, "serial": serial,
                "ca": quarantine["ca"], "reason": reason, "via": "host"});
            let event = Event::new(
                None,
                Action::CertificateQuarantineAcknowledged,
                row.target.as_deref(),
                details,
            );
            audit::record(log, now, event);
            Ok(quarantine)
        }))
        .await
}
