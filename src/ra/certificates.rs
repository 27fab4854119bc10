//! Reading issued certificates.

use super::{rfc3339, Operator, Ra};
use crate::error::{Error, Result};
use crate::state::CertificateStatus;
use crate::store::certificates as rows;
use crate::store::job;
use crate::x509::{pem_encode, serial::Serial};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
/// A certificate as the API shows it.
pub struct CertificateView {
    /// Serial number, hex.
    pub serial: String,
    /// valid | expired | on-hold | revoked
    pub status: String,
    /// Subject DN, RFC 4514.
    pub subject: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// The certificate, PEM.
    pub pem: String,
    /// Issuing CA, then root.
    pub chain_pem: String,
    /// Identifier of the issuing CA.
    pub ca: String,
    /// The profile it was issued under.
    pub profile: String,
    /// The request it was issued for.
    pub request_id: String,
    /// The subscriber it was issued to.
    pub subscriber_id: String,
    /// SHA-256 of its canonical SubjectPublicKeyInfo, hex.
    pub key_sha256: String,
    /// When it was stored, RFC 3339.
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// When it was revoked or put on hold, RFC 3339.
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The RFC 5280 reason of its revocation or hold.
    pub revocation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The invalidity date given with its revocation, RFC 3339.
    pub invalidity_date: Option<String>,
    /// Its revocation or hold not yet acknowledged by the remote CA that issued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_forward: Option<ForwardView>,
}

/// A revocation or hold queued for the remote CA that issued the certificate.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardView {
    /// The CA to tell.
    pub ca: String,
    /// The reason to tell it (certificateHold: on hold).
    pub reason: String,
    /// When it was queued, RFC 3339.
    pub queued_at: String,
    /// Attempts that failed so far.
    pub failed_attempts: i64,
    /// The last attempt's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due, RFC 3339 (not tried on its own while `failed`).
    pub next_attempt_at: String,
    /// `pending` (retried on its own) or `failed` (the CA refused it; waits for an admin).
    pub state: &'static str,
    /// When the CA refused it, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
}

impl From<crate::store::upstream_queue::ForwardRow> for ForwardView {
    fn from(f: crate::store::upstream_queue::ForwardRow) -> Self {
        let state = f.state();
        ForwardView {
            ca: f.ca_id,
            reason: f.reason,
            queued_at: rfc3339(f.queued_at),
            failed_attempts: f.attempts,
            last_error: f.last_error,
            next_attempt_at: rfc3339(f.next_attempt_at),
            state,
            failed_at: f.failed_at.map(rfc3339),
        }
    }
}

/// One status change of a certificate, as its page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChange {
    /// When, RFC 3339.
    pub at: String,
    /// The status from then on.
    pub status: String,
    /// The RFC 5280 reason, if any.
    pub reason: Option<String>,
}

impl Ra {
    /// Any authenticated operator may read a certificate: certificates are public documents.
    pub async fn certificate(&self, _op: &Operator, serial: &str) -> Result<CertificateView> {
        let serial = Serial::from_client(serial)?;
        let mut c = self.store().read().await?;
        let row = rows::get(&mut c, &serial)
            .await?
            .ok_or(Error::NotFound("certificate"))?;
        let upstream_forward = crate::store::upstream_queue::pending_of(&mut c, &serial)
            .await?
            .map(ForwardView::from);
        // Expiry is not a stored status: a valid certificate past its notAfter shows as expired.
        let status = if row.status == CertificateStatus::Valid
            && row.not_after < self.now().unix_timestamp()
        {
            "expired".to_string()
        } else {
            row.status.to_string()
        };
        // The chain of the CA that issued it (empty if that CA is no longer configured).
        let chain_pem = self
            .ca_by_id(&row.ca_id)
            .map(|ca| {
                ca.chain()
                    .iter()
                    .map(|c| pem_encode("CERTIFICATE", &c.der))
                    .collect::<String>()
            })
            .unwrap_or_default();
        Ok(CertificateView {
            serial: row.serial,
            status,
            subject: row.subject,
            not_before: rfc3339(row.not_before),
            not_after: rfc3339(row.not_after),
            pem: pem_encode("CERTIFICATE", &row.der),
            chain_pem,
            ca: row.ca_id,
            profile: row.profile,
            request_id: row.request_id,
            subscriber_id: row.subscriber_id,
            key_sha256: row.key_sha256,
            issued_at: rfc3339(row.issued_at),
            revoked_at: row.revoked_at.map(rfc3339),
            revocation_reason: row.revocation_reason,
            invalidity_date: row.invalidity_date.map(rfc3339),
            upstream_forward,
        })
    }
}

impl Ra {
    /// Block a public key (by the SHA-256 of its canonical SPKI, as requests and certificates show
    /// it, or by PEM in any encoding): future requests with it are refused. Returns the fingerprint.
    pub async fn block_key(
        &self,
        op: &Operator,
        key_sha256: Option<&str>,
        public_key_pem: Option<&str>,
        reason: &str,
    ) -> Result<String> {
        use super::Role;
        self.authorize_any(op, &[Role::Admin, Role::Revoker], "key.block", None)
            .await?;
        let fp = match (key_sha256, public_key_pem) {
            (Some(h), None) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                h.to_ascii_lowercase()
            }
            (None, Some(pem)) if pem.len() <= 16 * 1024 => {
                let key =
                    openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).map_err(|_| {
                        Error::invalid("invalid_field", "public_key_pem is not a PEM public key")
                    })?;
                crate::x509::key::identity(&key.public_key_to_der().map_err(Error::internal)?)?
            }
            _ => {
                return Err(Error::invalid(
                    "invalid_field",
                    "give either key_sha256 (64 hex digits) or public_key_pem",
                ))
            }
        };
        let reason = super::free_text("reason", reason, 200, false)?;
        let now = self.now();
        let (by, key) = (op.id.clone(), fp.clone());
        self.store()
            .write(job!(|c, log| {
                if rows::block_key(c, &key, &reason, Some(&by), now.unix_timestamp()).await? {
                    let event = crate::audit::Event::new(
                        Some(&by),
                        crate::audit::Action::KeyBlocked,
                        Some(&key),
                        serde_json::json!({"reason": reason}),
                    );
                    crate::audit::record(log, now, event);
                }
                Ok(())
            }))
            .await?;
        Ok(fp)
    }

    /// Every status change of a certificate, oldest first (any operator, as for the certificate).
    pub async fn certificate_history(
        &self,
        _op: &Operator,
        serial: &str,
    ) -> Result<Vec<StatusChange>> {
        let serial = Serial::from_client(serial)?;
        let mut c = self.store().read().await?;
        let rows = crate::store::history::history(
            &mut c,
            crate::store::history::HistoryKind::Certificate,
            &serial,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|h| StatusChange {
                at: rfc3339(h.at),
                status: h.status.to_string(),
                reason: h.reason,
            })
            .collect())
    }
}
