//! Reading issued certificates.

use super::{rfc3339, Operator, Ra, Role};
use crate::error::{Error, Result};
use crate::state::CertificateStatus;
use crate::store::certificates as rows;
use crate::store::job;
use crate::x509::{pem_encode, serial::Serial};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

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
        let mut row = rows::get(&mut c, &serial)
            .await?
            .ok_or(Error::NotFound("certificate"))?;
        // A remote CA's certificate: its OCSP responder, when it has one, may know of a
        // revocation its last CRL did not list yet.
        if !self.is_embedded(&row.ca_id) {
            drop(c);
            let changed = self.refresh_from_ocsp(&row).await;
            c = self.store().read().await?;
            if changed {
                row = rows::get(&mut c, &serial)
                    .await?
                    .ok_or(Error::NotFound("certificate"))?;
            }
        }
        let upstream_forward = crate::store::upstream_queue::pending_of(&mut c, &serial)
            .await?
            .map(ForwardView::from);
        let status = shown_status(row.status, row.not_after, self.now().unix_timestamp());
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

/// A certificate in a list of certificates found.
#[derive(Debug, Clone, Serialize)]
pub struct FoundCertificate {
    /// Serial number, hex.
    pub serial: String,
    /// valid | expired | on-hold | revoked
    pub status: String,
    /// Subject DN, RFC 4514.
    pub subject: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// The subscriber it was issued to.
    pub subscriber_id: String,
    /// The subscriber's vetted name.
    pub subscriber_name: String,
    /// When it was stored, RFC 3339.
    pub issued_at: String,
}

/// What a certificate search found.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSearch {
    /// The serial, when the query is exactly the serial of a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The certificates found, newest first.
    pub certificates: Vec<FoundCertificate>,
    /// The serial to pass as `before` for the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Roles that may search certificates: those that read subscribers, and auditors.
pub const SEARCHERS: [Role; 5] = [
    Role::Clerk,
    Role::Approver,
    Role::Revoker,
    Role::Admin,
    Role::Auditor,
];

/// Longest certificate query, in characters.
pub const MAX_QUERY: usize = 128;

/// Fewest hex digits a serial prefix search needs.
const MIN_SERIAL_PREFIX: usize = 4;

impl Ra {
    /// Find certificates by serial (hex, with or without ':', any case: exactly, or its first
    /// digits), by the name of their subscriber, or by an identifier (e-mail address, evidence
    /// number) as the subscriber search finds them; newest first, `limit` a page, the next page
    /// after the serial `before`.
    pub async fn find_certificates(
        &self,
        op: &Operator,
        q: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<CertificateSearch> {
        self.authorize_any(op, &SEARCHERS, "certificate.search", None)
            .await?;
        let q: String = q.trim().nfc().collect();
        if q.chars().count() > MAX_QUERY {
            return Err(Error::invalid(
                "invalid_field",
                format!("q: at most {MAX_QUERY} characters"),
            ));
        }
        let limit = limit.clamp(1, 200);
        let mut c = self.store().read().await?;
        let before = match before.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => {
                let serial = Serial::from_client(b)?;
                let row = rows::get(&mut c, &serial).await?.ok_or_else(|| {
                    Error::invalid("invalid_field", "before: no such certificate")
                })?;
                Some((row.issued_at, row.serial))
            }
            None => None,
        };
        let hex = !q.is_empty() && q.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let mut found = Vec::new();
        if hex {
            let digits: String = q
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if before.is_none() {
                if let Some(serial) = Serial::normalise(&digits) {
                    if let Some(row) = rows::get(&mut c, &serial).await? {
                        let one = rows::FoundRow {
                            subscriber_name: crate::store::subscribers::get(
                                &mut c,
                                &row.subscriber_id,
                            )
                            .await?
                            .map(|s| s.name)
                            .unwrap_or_default(),
                            serial: row.serial,
                            subject: row.subject,
                            status: row.status,
                            not_after: row.not_after,
                            subscriber_id: row.subscriber_id,
                            issued_at: row.issued_at,
                        };
                        return Ok(CertificateSearch {
                            exact: Some(one.serial.clone()),
                            certificates: vec![self.found(one)],
                            next: None,
                        });
                    }
                }
            }
            if digits.len() >= MIN_SERIAL_PREFIX && digits.len() <= 64 {
                let b = before.as_ref().map(|(at, s)| (*at, s.as_str()));
                found.extend(
                    rows::find(&mut c, rows::FindBy::SerialPrefix(&digits), b, limit + 1).await?,
                );
            }
        }
        let words = crate::store::subscribers::words(&q);
        if !words.is_empty() {
            let b = before.as_ref().map(|(at, s)| (*at, s.as_str()));
            found.extend(rows::find(&mut c, rows::FindBy::Words(&words), b, limit + 1).await?);
        }
        // Both searches ran for a query that could be either (digits are a serial prefix and an
        // evidence number): one list, newest first, each certificate once.
        found.sort_by(|a, b| (b.issued_at, &b.serial).cmp(&(a.issued_at, &a.serial)));
        found.dedup_by(|a, b| a.serial == b.serial);
        let more = found.len() as i64 > limit;
        found.truncate(limit as usize);
        let next = more
            .then(|| found.last().map(|r| r.serial.clone()))
            .flatten();
        Ok(CertificateSearch {
            exact: None,
            certificates: found.into_iter().map(|r| self.found(r)).collect(),
            next,
        })
    }

    fn found(&self, r: rows::FoundRow) -> FoundCertificate {
        FoundCertificate {
            status: shown_status(r.status, r.not_after, self.now().unix_timestamp()),
            serial: r.serial,
            subject: r.subject,
            not_after: rfc3339(r.not_after),
            subscriber_id: r.subscriber_id,
            subscriber_name: r.subscriber_name,
            issued_at: rfc3339(r.issued_at),
        }
    }
}

/// Expiry is not a stored status: a valid certificate past its notAfter shows as expired.
fn shown_status(status: CertificateStatus, not_after: i64, now: i64) -> String {
    if status == CertificateStatus::Valid && not_after < now {
        "expired".to_string()
    } else {
        status.to_string()
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
