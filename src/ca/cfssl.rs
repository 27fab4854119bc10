//! A CFSSL remote signer as an upstream CA (`kind = "cfssl"` in `upstream.toml`).
//!
//! - Issue: `POST /api/v1/cfssl/authsign` with CFSSL's authenticated request,
//!   `{"token": base64(HMAC-SHA256(key, request)), "request": base64(request)}`, where `request`
//!   is the JSON sign request: the subscriber's CSR (`certificate_request`), the CFSSL profile,
//!   and the subject and hosts Vouch approved (`subject`, `hosts`: CFSSL takes the subject from the
//!   CSR where the request leaves a field empty, which the RA's check of the result catches).
//!   The request also carries the serial Vouch reserved for the request (`serial`, a JSON
//!   number): a CFSSL profile with `"ClientProvidesSerialNumbers": true` signs under it, so every
//!   attempt at one request asks for the same serial and CFSSL's certificate database refuses a
//!   second certificate with it (a store error, code 11000, which is reported as "already
//!   issued" and retried, never as a refusal). A profile without that setting ignores it and
//!   picks a random serial. CFSSL picks the validity (from its profile).
//! - Find what an earlier attempt made: with `certdb_url`, CFSSL's certificate database is read
//!   for a certificate of this CA under the reserved serial (`certdb`) before a retry.
//! - Chain: `POST /api/v1/cfssl/info` gives the signer's certificate, read when the adapter is
//!   made (at start, and by `vouch upstream check`).
//! - Revoke: `POST /api/v1/cfssl/revoke` with the serial in decimal, the authority key id (hex)
//!   and the reason's name. CFSSL's certificate database records the authority key id its signer
//!   saw, which builds from 2016 on current Go leave empty, so a "not found" answer is retried
//!   once with an empty one. CFSSL cannot lift a hold (no such endpoint): `release` is refused.
//!
//! - Status: CFSSL 1.2 serves no CRL of its own (its `/api/v1/cfssl/crl` signs a CRL from
//!   a key sent in the request); `crl_url` names where the CA's CRL is published (from 1.3 on,
//!   its `GET /api/v1/cfssl/crl`), read by `ra::upstream_status`.
//!
//! Every call has a connect and a total timeout and reads at most [`MAX_RESPONSE_BYTES`]. An error
//! is `Unavailable` when the CA could not be reached or failed (5xx), `Refused` with CFSSL's own
//! message when it answered no (4xx, or `success: false`); both name the CA.

pub mod certdb;
pub(crate) mod wire;

use super::upstream_config::CfsslSettings;
use super::{CaCertificate, CaChain, CaError, IssueOrder, UpstreamCa};
use crate::x509::revocation::Reason;
use crate::x509::subject::DnAttr;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use wire::MAX_RESPONSE_BYTES;

/// How long a connection to CFSSL may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call to CFSSL may take in all, unless `timeout_secs` says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A CFSSL signer, with its certificate as `/info` gave it.
pub struct CfsslCa {
    id: String,
    http: wire::Client,
    auth_key: Zeroizing<Vec<u8>>,
    cfssl_profile: Option<String>,
    chain: Arc<CaChain>,
    not_after: OffsetDateTime,
    /// The signer's subjectKeyIdentifier, lowercase hex (the authority key id of what it signs).
    key_id: String,
    /// Where its CRL is read (`crl_url`).
    crl: Option<super::remote_crl::CrlSource>,
    /// The CA's OCSP responder, asked for the status of what it issued.
    ocsp: Option<super::remote_ocsp::OcspSource>,
    /// `timeout_secs`: the longest one signing call takes.
    timeout: std::time::Duration,
    /// CFSSL's certificate database (`certdb_url`), where a certificate signed under a reserved
    /// serial is found when its answer was lost.
    certdb: Option<certdb::CertDb>,
}

impl std::fmt::Debug for CfsslCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfsslCa")
            .field("id", &self.id)
            .field("url", &self.http.base())
            .finish_non_exhaustive()
    }
}

impl CfsslCa {
    /// The CA `id` at `settings.url`: asks `/info` for its certificate.
    pub async fn connect(id: &str, settings: &CfsslSettings) -> Result<CfsslCa, CaError> {
        let http = wire::Client::new(id, settings.url.clone(), settings.timeout)?;
        let body = serde_json::json!({
            "label": "",
            "profile": settings.cfssl_profile.clone().unwrap_or_default(),
        });
        let result = http.post("info", body.to_string().into_bytes()).await?;
        let pem = result
            .get("certificate")
            .and_then(|c| c.as_str())
            .ok_or_else(|| CaError::Refused(format!("the CA {id} sent no certificate in /info")))?;
        let cert = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|e| {
            CaError::Refused(format!(
                "the CA {id} sent an unreadable certificate in /info: {e}"
            ))
        })?;
        let der = cert
            .to_der()
            .map_err(|e| CaError::Refused(format!("the CA {id}'s certificate: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CaError::Refused(format!("the CA {id}'s certificate: {e}")))?;
        let not_after = OffsetDateTime::from_unix_timestamp(
            parsed.validity().not_after.timestamp(),
        )
        .map_err(|e| CaError::Refused(format!("the CA {id}'s certificate notAfter: {e}")))?;
        let key_id = parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(hex::encode(k.0))
                }
                _ => None,
            })
            .unwrap_or_default();
        let chain = CaChain::new(
            CaCertificate {
                id: id.to_string(),
                der,
            },
            Vec::new(),
        );
        Ok(CfsslCa {
            id: id.to_string(),
            http,
            auth_key: settings.auth_key.clone(),
            cfssl_profile: settings.cfssl_profile.clone(),
            chain: Arc::new(chain),
            not_after,
            key_id,
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
            timeout: settings.timeout,
            certdb: settings
                .certdb
                .as_ref()
                .map(|u| certdb::CertDb::new(u, settings.timeout)),
        })
    }

    /// The certificate CFSSL's database holds under the order's reserved serial, signed by this
    /// CA (a database several CAs share may hold the serial for another), with CFSSL's status
    /// for it: None without `certdb_url`, or when there is none. The RA checks it against the
    /// order as any answer.
    async fn look_up(&self, order: &IssueOrder) -> Result<Option<(Vec<u8>, String)>, CaError> {
        let Some(db) = &self.certdb else {
            return Ok(None);
        };
        let decimal = openssl::bn::BigNum::from_slice(order.serial.as_bytes())
            .and_then(|n| n.to_dec_str().map(|s| s.to_string()))
            .map_err(|e| CaError::Unavailable(format!("the reserved serial: {e}")))?;
        let rows = db.by_serial(&decimal).await.map_err(|e| {
            CaError::Unavailable(format!(
                "the certificate database of the CA {} (certdb_url) could not be read: {e}",
                self.id
            ))
        })?;
        let issuer = &self.chain.issuing().der;
        for row in rows {
            let Ok(der) = openssl::x509::X509::from_pem(&row.pem).and_then(|c| c.to_der()) else {
                continue;
            };
            if super::remote_crl::issued_by(&der, issuer) {
                return Ok(Some((der, row.status)));
            }
        }
        Ok(None)
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        self.http.base()
    }

    /// CFSSL's sign request for `order`: the CSR, the profile, the approved subject (CN, O,
    /// serialNumber) and the approved e-mail addresses as hosts (an empty list clears whatever
    /// names the CSR asked for).
    /// CFSSL fills every subject attribute the request leaves unset (C, ST, L, O, OU, ...) from
    /// the CSR's subject (its `csr_whitelist` does not stop that in the 1.2 builds), while Vouch
    /// certifies the vetted subject only: a CSR whose subject has attribute types the approved
    /// subject lacks is refused at submission, with what to change, rather than signed and
    /// then quarantined.
    fn check_csr_subject(&self, order: &IssueOrder) -> Result<(), CaError> {
        use x509_parser::prelude::FromDer;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&order.csr_der)
                .map_err(|e| CaError::Refused(format!("the CSR cannot be read: {e}")))?;
        let approved: Vec<String> = order
            .subject
            .dn
            .iter()
            .map(|(a, _)| a.oid().to_string())
            .collect();
        let mut extra: Vec<String> = Vec::new();
        for attr in csr.certification_request_info.subject.iter_attributes() {
            let oid = attr.attr_type().to_id_string();
            if !approved.contains(&oid) {
                let name = x509_parser::objects::oid2abbrev(
                    attr.attr_type(),
                    x509_parser::objects::oid_registry(),
                )
                .map(str::to_string)
                .unwrap_or(oid);
                if !extra.contains(&name) {
                    extra.push(name);
                }
            }
        }
        if extra.is_empty() {
            return Ok(());
        }
        Err(CaError::Refused(format!(
            "the CA {} (CFSSL) copies a CSR's subject into the certificate, and this CSR's \
             subject has {} which the approved subject does not: submit a CSR whose subject is \
             empty or holds only the vetted name",
            self.id,
            extra.join(", ")
        )))
    }

    fn sign_request(&self, order: &IssueOrder) -> Result<serde_json::Value, CaError> {
        let mut cn = None;
        let mut serial_number = None;
        let mut names = Vec::new();
        for (attr, value) in &order.subject.dn {
            let slot = match attr {
                DnAttr::CommonName => &mut cn,
                DnAttr::SerialNumber => &mut serial_number,
                DnAttr::Organisation => {
                    names.push(serde_json::json!({"O": value}));
                    continue;
                }
            };
            if slot.replace(value.clone()).is_some() {
                return Err(CaError::Refused(format!(
                    "the CA {} (CFSSL) cannot put two {attr:?} attributes in a subject",
                    self.id
                )));
            }
        }
        if order.csr_der.is_empty() {
            return Err(CaError::Refused(format!(
                "the CA {} (CFSSL) signs CSRs, and the order has none",
                self.id
            )));
        }
        self.check_csr_subject(order)?;
        let csr = crate::x509::pem_encode("CERTIFICATE REQUEST", &order.csr_der);
        Ok(serde_json::json!({
            "certificate_request": csr,
            "profile": self.cfssl_profile.clone().unwrap_or_default(),
            "hosts": order.subject.emails,
            "subject": {
                "CN": cn.unwrap_or_default(),
                "names": names,
                "SerialNumber": serial_number.unwrap_or_default(),
            },
        }))
    }

    async fn revoke_with(
        &self,
        serial_dec: &str,
        key_id: &str,
        reason: Reason,
    ) -> Result<(), CaError> {
        let body = serde_json::json!({
            "serial": serial_dec,
            "authority_key_id": key_id,
            "reason": reason.as_str(),
        });
        self.http
            .post("revoke", body.to_string().into_bytes())
            .await
            .map(|_| ())
    }
}

/// The JSON text of `request` with the order's reserved serial as `serial`: a JSON number (Go's
/// `big.Int`), which may exceed what a JSON library's numbers hold, so it is written as digits.
fn with_serial(request: &serde_json::Value, order: &IssueOrder) -> Result<String, CaError> {
    let decimal = openssl::bn::BigNum::from_slice(order.serial.as_bytes())
        .and_then(|n| n.to_dec_str().map(|s| s.to_string()))
        .map_err(|e| CaError::Refused(format!("the reserved serial: {e}")))?;
    let text = request.to_string();
    match text.strip_suffix('}') {
        Some(body) if request.is_object() => Ok(format!("{body},\"serial\":{decimal}}}")),
        _ => Err(CaError::Refused(
            "the sign request is not a JSON object".into(),
        )),
    }
}

/// Whether a store error from CFSSL says the serial is already in its database (its SQLite,
/// PostgreSQL and MySQL drivers' words for a unique-key violation).
fn is_duplicate(message: &str) -> bool {
    [
        "UNIQUE constraint failed",
        "duplicate key",
        "Duplicate entry",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[async_trait]
impl UpstreamCa for CfsslCa {
    fn issuing_id(&self) -> &str {
        &self.id
    }

    /// `/info` needs no authentication, so a wrong `auth_key` would show only when the first
    /// approved request fails. Ask `authsign` for nothing (an empty CSR): CFSSL checks the token
    /// before the request, so `invalid token` means the key is wrong, and any other refusal
    /// (the empty CSR) that it is right. Nothing is signed. With `certdb_url`, the certificate
    /// database must answer a lookup too.
    async fn check_credentials(&self) -> Result<(), CaError> {
        let request = serde_json::json!({
            "certificate_request": "",
            "profile": self.cfssl_profile.clone().unwrap_or_default(),
        })
        .to_string()
        .into_bytes();
        let token = wire::token(&self.auth_key, &request)
            .map_err(|e| CaError::Unavailable(format!("HMAC for the CA {}: {e}", self.id)))?;
        match self
            .http
            .post("authsign", wire::authenticated(&token, &request))
            .await
        {
            Err(CaError::Refused(m)) if m.contains("invalid token") => Err(CaError::Refused(
                format!("the CA {} does not accept the auth_key: {m}", self.id),
            )),
            Err(CaError::Unavailable(m)) => Err(CaError::Unavailable(m)),
            Ok(_) | Err(CaError::Refused(_)) => match &self.certdb {
                // The certificate database answers a lookup (of a serial no CA issues).
                Some(db) => db.by_serial("0").await.map(|_| ()).map_err(|e| {
                    CaError::Unavailable(format!(
                        "the certificate database of the CA {} (certdb_url) could not be read: {e}",
                        self.id
                    ))
                }),
                None => Ok(()),
            },
        }
    }

    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        let request = with_serial(&self.sign_request(order)?, order)?.into_bytes();
        let token = wire::token(&self.auth_key, &request)
            .map_err(|e| CaError::Unavailable(format!("HMAC for the CA {}: {e}", self.id)))?;
        let body = wire::authenticated(&token, &request);
        let result = match self.http.post("authsign", body).await {
            Err(CaError::Unavailable(m)) if is_duplicate(&m) => {
                // Found by `find_issued` before the next attempt, when CFSSL's database is
                // given (not here: what a lookup finds is told apart from an answer).
                let looked = match self.certdb {
                    Some(_) => {
                        "; the next attempt looks it up in the CA's certificate database \
                                (certdb_url) first"
                    }
                    None => "",
                };
                return Err(CaError::Unavailable(format!(
                    "the CA {} already holds a certificate with serial {} (hex), the serial \
                     reserved for this request: an earlier attempt was signed and its answer did \
                     not reach Vouch; no second certificate is made. Put that certificate in the \
                     issuance journal (docs/OPERATIONS.md, \"Upstream CAs\") or cancel the request \
                     ({m}){looked}",
                    self.id,
                    hex::encode(order.serial.as_bytes())
                )));
            }
            other => other?,
        };
        let pem = result
            .get("certificate")
            .and_then(|c| c.as_str())
            .ok_or_else(|| {
                CaError::Unavailable(format!("the CA {} answered without a certificate", self.id))
            })?;
        let cert = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|e| {
            CaError::Unavailable(format!(
                "the CA {} sent an unreadable certificate: {e}",
                self.id
            ))
        })?;
        cert.to_der().map_err(|e| {
            CaError::Unavailable(format!(
                "the CA {} sent an unreadable certificate: {e}",
                self.id
            ))
        })
    }

    /// With `certdb_url`: the certificate CFSSL signed under the reserved serial, if any.
    /// A database that cannot be read does not stop the retry (logged as a warning): CFSSL
    /// refuses a second certificate under the reserved serial anyway
    /// (`ClientProvidesSerialNumbers`). One that CFSSL no longer holds as good (an admin
    /// revoked it there) is not delivered, and the request fails: the serial reserved for it is
    /// spent at the CA, so no attempt can succeed.
    async fn find_issued(&self, order: &IssueOrder) -> Result<Option<Vec<u8>>, CaError> {
        match self.look_up(order).await {
            Ok(Some((der, status))) if status == "good" => Ok(Some(der)),
            Ok(Some((_, status))) => Err(CaError::Refused(format!(
                "the CA {} holds the certificate it signed for this request under the reserved \
                 serial {} (hex), and its status there is \"{status}\": it is not delivered, and \
                 the request cannot be completed with that serial (submit a new one)",
                self.id,
                hex::encode(order.serial.as_bytes())
            ))),
            Ok(None) => Ok(None),
            Err(CaError::Unavailable(e) | CaError::Refused(e)) => {
                tracing::warn!(ca = %self.id, error = %e, "asking the CA again");
                Ok(None)
            }
        }
    }

    fn check(&self, order: &IssueOrder) -> Result<(), CaError> {
        self.sign_request(order).map(|_| ())
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
        // With `certdb_url` a retry looks the serial up before it signs: two calls.
        match self.certdb {
            Some(_) => self.timeout * 2,
            None => self.timeout,
        }
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
        // CFSSL records the revocation time itself (its database's CURRENT_TIMESTAMP).
        let decimal = openssl::bn::BigNum::from_hex_str(serial)
            .and_then(|n| n.to_dec_str().map(|s| s.to_string()))
            .map_err(|_| CaError::Refused(format!("{serial} is not a hex serial")))?;
        match self.revoke_with(&decimal, &self.key_id, reason).await {
            Err(CaError::Refused(m)) if !self.key_id.is_empty() && m.contains("not found") => {
                self.revoke_with(&decimal, "", reason).await
            }
            other => other,
        }
    }
}
