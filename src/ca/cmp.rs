//! A CMP server as an upstream CA (`kind = "cmp"` in `upstream.toml`): RFC 4210 as updated by
//! RFC 9480, in the RFC 9483 lightweight profile, over HTTP (RFC 6712).
//!
//! - Issue: every attempt at one request is the same transaction to the CA (its transactionID
//!   derives from the CA and the reserved serial: see `transaction`). `request = "ir"` (default) or `"cr"` sends a CRMF
//!   CertReqMsg whose template is the approved order (subject, validity, key, keyUsage,
//!   extendedKeyUsage, subjectAltName), with proof of possession **raVerified**: the subscriber's
//!   CSR signature covers the CSR, not the CRMF CertRequest, so it cannot be passed on as a CRMF
//!   signature POP; the RA verified it when the request was submitted, and vouches for it with
//!   its own protection (RFC 4210 5.2.8.4, RFC 9483 4.1.1). `request = "p10cr"` sends the
//!   subscriber's CSR as signed (its own POP), so the CA sees the CSR's subject, not the approved
//!   one, unless it applies its own policy. A `waiting` answer is polled (pollReq/pollRep) for as
//!   long as the CA's checkAfter asks, at most `max_poll_seconds` in all. The certificate is
//!   confirmed with certConf (pkiConf expected), unless implicit confirmation was asked for
//!   (`implicit_confirm = true`) and the CA granted it; the certificate is handed to the RA's
//!   `keep` (the issuance journal) before the certConf, so a lost or refused confirmation loses
//!   nothing. A certificate for another public key is rejected in the certConf and refused.
//! - Revoke: rr for the issuing CA's name and the serial, with the CRLReason in crlEntryDetails;
//!   `release` sends an rr with removeFromCRL (how EJBCA lifts a hold; a CA without it refuses).
//! - Chain: at start (and by `vouch upstream check`), a genm asks for the CA certificates
//!   (id-it-caCerts, RFC 9480); see `chain` for how the chain is chosen.
//!
//! The CA's rejections (PKIStatus, PKIFailureInfo, statusString) become `Refused`, or
//! `Unavailable` when a failure bit says the CA is down or busy; transport and protection failures
//! are `Unavailable`. Messages name the CA and the request.

mod body;
mod chain;
mod message;
mod protection;
pub mod settings;
mod status;
mod transaction;
mod transport;

pub use transport::CALL_TIMEOUT;

use super::{CaChain, CaError, IssueOrder, Keep, UpstreamCa};
use crate::x509::revocation::{Reason, REMOVE_FROM_CRL};
use async_trait::async_trait;
use message::BodyType;
use protection::{Checker, Protector};
use settings::{CmpSettings, ProtectionSettings, RequestKind};
use status::PkiStatus;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use transaction::Transaction;

pub use transport::MAX_RESPONSE_BYTES;

/// Most pollReq messages in one issuance.
const MAX_POLLS: usize = 600;

/// A CMP server, with the CA chain its genp gave.
pub struct CmpCa {
    id: String,
    transport: transport::Transport,
    protector: Protector,
    checker: Checker,
    sender: Vec<u8>,
    recipient: Vec<u8>,
    sender_kid: Option<Vec<u8>>,
    request: RequestKind,
    implicit_confirm: bool,
    revocation: bool,
    max_poll: Duration,
    /// How long one call may take in all (`timeout_secs`).
    call_timeout: Duration,
    chain: Arc<CaChain>,
    not_after: OffsetDateTime,
    issuer_name: Vec<u8>,
    crl: Option<super::remote_crl::CrlSource>,
    /// The CA's OCSP responder, asked for the status of what it issued.
    ocsp: Option<super::remote_ocsp::OcspSource>,
}

impl std::fmt::Debug for CmpCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmpCa")
            .field("id", &self.id)
            .field("url", &self.transport.url())
            .finish_non_exhaustive()
    }
}

/// What Vouch needs of a certificate: its subject Name (DER), its subjectKeyIdentifier and its
/// notAfter.
type CertFacts = (Vec<u8>, Option<Vec<u8>>, OffsetDateTime);

fn cert_facts(der: &[u8]) -> Result<CertFacts, String> {
    let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let ski = c
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
    let not_after = OffsetDateTime::from_unix_timestamp(c.validity().not_after.timestamp())
        .map_err(|e| e.to_string())?;
    Ok((c.subject().as_raw().to_vec(), ski, not_after))
}

impl CmpCa {
    /// The CA `id` at `settings.url`: asks it for its CA certificates (genm), which also proves
    /// that both sides' protection works.
    pub async fn connect(id: &str, settings: &CmpSettings) -> Result<CmpCa, CaError> {
        let refuse = |m: String| CaError::Refused(format!("the CA {id}: {m}"));
        let transport = transport::Transport::new(
            id,
            settings.url.clone(),
            settings.tls_trust_anchors.as_deref(),
            settings.timeout,
        )?;
        let (protector, checker, sender, sender_kid) = match &settings.protection {
            ProtectionSettings::Signature { key, certificate } => {
                let (subject, ski, _) = cert_facts(certificate)
                    .map_err(|e| refuse(format!("the RA certificate: {e}")))?;
                let protector = Protector::signature(key.clone(), certificate.clone())
                    .map_err(|e| refuse(format!("the RA credentials: {e}")))?;
                let parse = |d: &Vec<u8>| openssl::x509::X509::from_der(d);
                let anchors = settings
                    .trust_anchors
                    .iter()
                    .map(parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| refuse(format!("the trust anchor: {e}")))?;
                let pinned = settings
                    .server_certificate
                    .as_ref()
                    .map(parse)
                    .transpose()
                    .map_err(|e| refuse(format!("the server certificate: {e}")))?;
                let checker = Checker::Signature { anchors, pinned };
                (protector, checker, message::directory_name(&subject), ski)
            }
            ProtectionSettings::Pbm { secret, reference } => (
                Protector::Pbm {
                    secret: secret.clone(),
                },
                Checker::Pbm {
                    secret: secret.clone(),
                },
                message::null_dn(),
                Some(reference.as_bytes().to_vec()),
            ),
        };
        let recipient = match (&settings.recipient, &settings.server_certificate) {
            (Some(name), _) => message::directory_name(name),
            (None, Some(server)) => {
                let (subject, _, _) = cert_facts(server)
                    .map_err(|e| refuse(format!("the server certificate: {e}")))?;
                message::directory_name(&subject)
            }
            (None, None) => message::null_dn(),
        };
        let mut ca = CmpCa {
            id: id.to_string(),
            transport,
            protector,
            checker,
            sender,
            recipient,
            sender_kid,
            request: settings.request,
            implicit_confirm: settings.implicit_confirm,
            revocation: settings.revocation,
            max_poll: Duration::from_secs(settings.max_poll_seconds),
            call_timeout: settings.timeout,
            chain: Arc::new(chain::build(id, &[], &settings.trust_anchors)?),
            not_after: OffsetDateTime::UNIX_EPOCH,
            issuer_name: Vec::new(),
            crl: settings
                .crl_url
                .clone()
                .map(|u| super::remote_crl::CrlSource::new(id, u))
                .transpose()?,
            ocsp: settings
                .ocsp_url
                .clone()
                .map(|u| super::remote_ocsp::OcspSource::new(id, u))
                .transpose()?,
        };
        let mut t = Transaction::new(&ca, "genm");
        let got = t.send(body::genm_ca_certs(), false).await?;
        if got.body_type != BodyType::Genp {
            return Err(t.unexpected(&got, "genp"));
        }
        let mut published = body::genp_ca_certs(&got.body).map_err(|e| t.unreadable(&got, e))?;
        if published.is_empty() {
            published = got.extra_certs.clone();
        }
        let chain = chain::build(id, &published, &settings.trust_anchors)?;
        let (issuer_name, _, not_after) = cert_facts(&chain.issuing().der)
            .map_err(|e| refuse(format!("the issuing CA certificate: {e}")))?;
        ca.chain = Arc::new(chain);
        ca.issuer_name = issuer_name;
        ca.not_after = not_after;
        Ok(ca)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        self.transport.url()
    }

    /// Wait and poll until the CA answers the request `req_id` with a certificate response, or
    /// the time allowed runs out. Returns that answer.
    async fn poll(
        &self,
        t: &mut Transaction<'_>,
        req_id: &[u8],
        until: tokio::time::Instant,
    ) -> Result<message::Received, CaError> {
        let mut wait = Duration::ZERO;
        for _ in 0..MAX_POLLS {
            if tokio::time::Instant::now() + wait > until {
                return Err(CaError::Unavailable(format!(
                    "the CA {} did not answer the {} within max_poll_seconds ({} s); it asked \
                     to check again after {} s",
                    self.id,
                    t.what(),
                    self.max_poll.as_secs(),
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            let got = t.send(body::poll_req(req_id), false).await?;
            if got.body_type != BodyType::PollRep {
                return Ok(got);
            }
            let (_, after, reason) =
                body::poll_rep(&got.body).map_err(|e| t.unreadable(&got, e))?;
            tracing::debug!(ca = %self.id, check_after = after, %reason, "CMP: polling");
            wait = Duration::from_secs(after);
        }
        Err(CaError::Unavailable(format!(
            "the CA {} was polled {MAX_POLLS} times for the {} without an answer",
            self.id,
            t.what()
        )))
    }

    /// The certificate of a certificate response, and its certReqId; polls while it is waiting.
    async fn certificate(
        &self,
        t: &mut Transaction<'_>,
        mut got: message::Received,
        expected: BodyType,
    ) -> Result<(Vec<u8>, Vec<u8>, bool), CaError> {
        let until = tokio::time::Instant::now() + self.max_poll;
        loop {
            if got.body_type != expected {
                return Err(t.unexpected(&got, expected.name()));
            }
            let response = body::cert_rep(&got.body).map_err(|e| t.unreadable(&got, e))?;
            match response.status.status {
                PkiStatus::Waiting => {
                    got = self.poll(t, &response.req_id, until).await?;
                }
                s if s.is_granted() => {
                    let cert = response.certificate.ok_or_else(|| {
                        t.unreadable(&got, "it grants the request but holds no certificate")
                    })?;
                    return Ok((cert, response.req_id, got.implicit_confirm));
                }
                _ => return Err(response.status.to_error(&self.id, t.what())),
            }
        }
    }

    /// Confirm (or, with `rejected`, reject) `cert` in a certConf; a pkiConf must follow.
    async fn confirm(
        &self,
        t: &mut Transaction<'_>,
        cert: &[u8],
        req_id: &[u8],
        rejected: Option<&str>,
    ) -> Result<(), CaError> {
        let hash = cert_hash(cert).map_err(|e| {
            CaError::Unavailable(format!("the certificate from the CA {}: {e}", self.id))
        })?;
        let got = t
            .send(body::cert_conf(&hash, req_id, rejected), false)
            .await?;
        if got.body_type != BodyType::PkiConf {
            return Err(t.unexpected(&got, "pkiconf"));
        }
        Ok(())
    }

    /// Enrol a key the RA holds itself (e.g. its own certificate for signature protection,
    /// asked for under a PBM shared secret: RFC 9483 4.1.1 with the MAC-based protection of
    /// 4.1.5): an ir for `order` whose proof of possession is `key`'s signature, then a certConf.
    /// The certificate must certify `key` and be issued by the CA's issuing certificate (from the
    /// genp at connect), and `keep` must take it (before the certConf: from then on the CA counts
    /// it as issued); otherwise it is rejected in the certConf and an error says why. Returns the
    /// certificate (DER).
    pub async fn enrol_own_key(
        &self,
        order: &IssueOrder,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        keep: &Keep<'_>,
    ) -> Result<Vec<u8>, CaError> {
        let body = body::cert_request_signed(BodyType::Ir, order, key)
            .map_err(|e| CaError::Refused(format!("the key cannot sign its request: {e}")))?;
        let mut t = Transaction::new(self, "ir");
        let got = t.send(body, false).await?;
        let (cert, req_id, _) = self.certificate(&mut t, got, BodyType::Ip).await?;
        let issuing = self.chain.issuing().der.clone();
        let why = if !same_key(&cert, &order.spki_der) {
            Some("the certificate certifies another public key".to_string())
        } else if !crate::ca::remote_crl::issued_by(&cert, &issuing) {
            Some("the certificate is not signed by the CA's issuing certificate".to_string())
        } else {
            keep(&cert)
                .err()
                .map(|e| format!("the RA could not keep the certificate: {e}"))
        };
        self.confirm(&mut t, &cert, &req_id, why.as_deref()).await?;
        match why {
            None => Ok(cert),
            Some(why) => Err(CaError::Refused(format!(
                "the CA {} answered the ir with a certificate Vouch rejected in its certConf: \
                 {why}",
                self.id
            ))),
        }
    }

    /// An rr for `serial` with reason `code`. `done_if_revoked`: a certRevoked rejection means the
    /// CA already did it (a repeated rr whose first answer was lost, or sent by another instance).
    async fn revoke_with(
        &self,
        serial: &str,
        code: u8,
        what: &'static str,
        done_if_revoked: bool,
    ) -> Result<(), CaError> {
        let bytes = openssl::bn::BigNum::from_hex_str(serial)
            .map(|n| n.to_vec())
            .map_err(|_| CaError::Refused(format!("{serial} is not a hex serial")))?;
        let mut integer = Vec::with_capacity(bytes.len() + 1);
        if bytes.first().is_none_or(|b| b & 0x80 != 0) {
            integer.push(0);
        }
        integer.extend_from_slice(&bytes);
        let mut t = Transaction::new(self, what);
        let got = t
            .send(body::rr(&self.issuer_name, &integer, code), false)
            .await?;
        if got.body_type != BodyType::Rp {
            return Err(t.unexpected(&got, "rp"));
        }
        let status = body::rev_rep(&got.body).map_err(|e| t.unreadable(&got, e))?;
        if done_if_revoked && status.already_revoked() {
            tracing::info!(ca = %self.id, %serial,
                "the CA says the certificate is already revoked (certRevoked): the revocation is done");
            return Ok(());
        }
        if !status.status.is_granted() {
            return Err(status.to_error(&self.id, what));
        }
        Ok(())
    }
}

/// certHash: the certificate's hash with the digest of its own signature algorithm (SHA-512
/// for EdDSA; RFC 9481 2.2).
fn cert_hash(der: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let x = openssl::x509::X509::from_der(der)?;
    let nid = x.signature_algorithm().object().nid();
    let md = nid
        .signature_algorithms()
        .and_then(|a| openssl::hash::MessageDigest::from_nid(a.digest))
        .unwrap_or_else(openssl::hash::MessageDigest::sha512);
    Ok(openssl::hash::hash(md, der)?.to_vec())
}

/// Whether `cert` certifies the public key of `spki_der`.
fn same_key(cert: &[u8], spki_der: &[u8]) -> bool {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert) else {
        return false;
    };
    matches!(
        (
            crate::x509::key::identity(c.public_key().raw),
            crate::x509::key::identity(spki_der)
        ),
        (Ok(a), Ok(b)) if a == b
    )
}

impl CmpCa {
    /// [`UpstreamCa::issue_kept`] in the transaction `id`.
    async fn issue_in(
        &self,
        order: &IssueOrder,
        keep: &Keep<'_>,
        id: [u8; 16],
    ) -> Result<Vec<u8>, CaError> {
        let (body, expected, what) = match self.request {
            RequestKind::P10cr => {
                if order.csr_der.is_empty() {
                    return Err(CaError::Refused(format!(
                        "the CA {} (CMP p10cr) needs the CSR, and the order has none",
                        self.id
                    )));
                }
                (body::p10cr(&order.csr_der), BodyType::Cp, "p10cr")
            }
            RequestKind::Ir => (body::cert_request(BodyType::Ir, order), BodyType::Ip, "ir"),
            RequestKind::Cr => (body::cert_request(BodyType::Cr, order), BodyType::Cp, "cr"),
        };
        let mut t = Transaction::with_id(self, what, id);
        let got = t.send(body, self.implicit_confirm).await?;
        let (cert, req_id, granted_implicit) = self.certificate(&mut t, got, expected).await?;
        let implicit = self.implicit_confirm && granted_implicit;
        if !same_key(&cert, &order.spki_der) {
            if implicit {
                // Confirmed already, so valid at the CA: the RA's check of the returned
                // certificate quarantines it and revokes it there (an rr), rather than leaving it
                // valid and unknown.
                return Ok(cert);
            }
            let why = "the certificate certifies another public key";
            self.confirm(&mut t, &cert, &req_id, Some(why)).await?;
            return Err(CaError::Refused(format!(
                "the CA {} answered the {what} with a certificate for another public key \
                 (SHA-256 {}); it was rejected",
                self.id,
                crate::x509::sha256_hex(&cert)
            )));
        }
        if implicit {
            return Ok(cert);
        }
        // Kept before the certConf: from here on the CA may count it as issued.
        if let Err(why) = keep(&cert) {
            let reason = "the RA could not keep the certificate";
            let rejected = self.confirm(&mut t, &cert, &req_id, Some(reason)).await;
            return Err(CaError::Unavailable(format!(
                "the certificate from the CA {} could not be kept ({why}), so it was rejected in \
                 the certConf{}; a later attempt asks again",
                self.id,
                match rejected {
                    Ok(()) => String::new(),
                    Err(CaError::Refused(m) | CaError::Unavailable(m)) =>
                        format!(" (which failed: {m})"),
                }
            )));
        }
        let confirmed = self.confirm(&mut t, &cert, &req_id, None).await;
        if let Err(CaError::Refused(m)) = confirmed {
            // The CA answered the certConf with an error: it did not take the confirmation, and
            // may or may not hold the certificate as valid. Not delivered; revoked there, so
            // that it is not valid at the CA for nobody.
            let serial = x509_parser::parse_x509_certificate(&cert)
                .map(|(_, c)| crate::x509::ac::parse::hex_serial(c.raw_serial()))
                .unwrap_or_default();
            let code = crate::x509::revocation::Reason::Superseded.code();
            let revoked = match self.revoke_with(&serial, code, "rr", true).await {
                Ok(()) => "it was revoked there (superseded)".to_string(),
                Err(CaError::Refused(e) | CaError::Unavailable(e)) => {
                    tracing::error!(ca = %self.id, %serial, error = %e,
                        "could not revoke a certificate whose certConf the CA rejected; revoke it there by hand");
                    format!("its revocation there failed ({e}): revoke it by hand")
                }
            };
            return Err(CaError::Refused(format!(
                "the CA {} rejected the confirmation (certConf) of the certificate it returned \
                 (serial {serial}): {m}; it is not delivered, and {revoked}",
                self.id
            )));
        }
        if let Err(CaError::Refused(m) | CaError::Unavailable(m)) = confirmed {
            return Err(CaError::Unavailable(format!(
                "the certificate from the CA {} is kept in the issuance journal, but its \
                 confirmation (certConf) failed: {m}; it is recorded from the journal at the next \
                 round, without asking the CA again",
                self.id
            )));
        }
        Ok(cert)
    }
}

#[async_trait]
impl UpstreamCa for CmpCa {
    fn issuing_id(&self) -> &str {
        &self.id
    }

    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        self.issue_kept(order, &|_| Ok(())).await
    }

    async fn issue_kept(&self, order: &IssueOrder, keep: &Keep<'_>) -> Result<Vec<u8>, CaError> {
        // Every attempt at one request is the same transaction to the CA (see `transaction`).
        let id = transaction::issuance_transaction_id(&self.id, order.serial.as_bytes());
        // Errors name the transaction, by which the CA's own records find what it did with it
        // (a certificate whose answer was lost, say).
        let named = |m: String| format!("{m} (CMP transactionID {})", hex::encode(id));
        self.issue_in(order, keep, id).await.map_err(|e| match e {
            CaError::Unavailable(m) => CaError::Unavailable(named(m)),
            CaError::Refused(m) => CaError::Refused(named(m)),
        })
    }

    fn check(&self, order: &IssueOrder) -> Result<(), CaError> {
        if self.request == RequestKind::P10cr && order.csr_der.is_empty() {
            return Err(CaError::Refused(format!(
                "the CA {} (CMP p10cr) needs the CSR, and the order has none",
                self.id
            )));
        }
        Ok(())
    }

    fn chain(&self) -> Arc<CaChain> {
        self.chain.clone()
    }

    fn max_not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn picks_serial(&self) -> bool {
        true
    }

    fn attempt_limit(&self) -> std::time::Duration {
        // As `CaKind::attempt_limit`: the request, the certConf and a poll, plus the polling.
        self.call_timeout * 3 + self.max_poll
    }

    fn crl_source(&self) -> Option<&super::remote_crl::CrlSource> {
        self.crl.as_ref()
    }

    fn ocsp_source(&self) -> Option<&super::remote_ocsp::OcspSource> {
        self.ocsp.as_ref()
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: Reason,
        _time: OffsetDateTime,
    ) -> Result<(), CaError> {
        if !self.revocation {
            return Err(CaError::Refused(format!(
                "revocations are not forwarded to the CA {} (revocation = false in upstream.toml)",
                self.id
            )));
        }
        // Not for a hold (the CA may hold it revoked for good) nor for keyCompromise (the CA may
        // hold it revoked with a lesser reason): those stay refused for an admin to look at.
        let done_if_revoked = !matches!(reason, Reason::CertificateHold | Reason::KeyCompromise);
        self.revoke_with(serial, reason.code(), "rr", done_if_revoked)
            .await
    }

    async fn release(&self, serial: &str) -> Result<(), CaError> {
        if !self.revocation {
            return Err(CaError::Refused(format!(
                "revocations are not forwarded to the CA {} (revocation = false in upstream.toml)",
                self.id
            )));
        }
        self.revoke_with(serial, REMOVE_FROM_CRL, "rr (removeFromCRL)", false)
            .await
    }
}
