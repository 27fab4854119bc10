//! A remote CA's CRL, read for the status of the certificates it issued (`crl_url` in
//! `upstream.toml`). The body may be the CRL in DER, in PEM, base64 DER (`cfssl gencrl`'s
//! output), or CFSSL's JSON envelope (`{"success": true, "result": "<base64 DER>"}`, what CFSSL's
//! `GET /api/v1/cfssl/crl` answers from 1.3 on). It is read at most [`MAX_CRL_BYTES`], with a
//! connect and a total timeout and no redirects, and is accepted only when it is a full CRL (no
//! deltaCRLIndicator) issued by the CA's issuing certificate (the issuer name matches) and its
//! signature verifies with that certificate's key; an indirect CRL (issuingDistributionPoint's
//! indirectCRL, or an entry's certificateIssuer), a CRL of CA or attribute certificates only, and
//! an unknown critical extension are refused. Its entries are applied only to certificates
//! [`issued_by`] that issuing certificate. What it says is applied by
//! `ra::upstream_status`.

use super::{CaChain, CaError};
use crate::x509::revocation::Reason;
use std::time::Duration;
use time::OffsetDateTime;

/// The CRL reason code removeFromCRL: an entry with it revokes nothing.
const REMOVE_FROM_CRL: u8 = 8;

/// Longest CRL body read, in bytes.
pub const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
/// How long reading a CRL may take in all.
pub const CRL_TIMEOUT: Duration = Duration::from_secs(60);

/// One certificate a remote CA's CRL lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRevocation {
    /// Its serial, lowercase hex without leading zeros (as stored).
    pub serial: String,
    /// The CRL entry's reason (unspecified when it gives none, or one Vouch does not record).
    pub reason: Reason,
    /// The CRL entry's revocationDate.
    pub revoked_at: OffsetDateTime,
    /// The CRL entry's invalidityDate, if it gives one.
    pub invalidity: Option<OffsetDateTime>,
}

/// A remote CA's CRL, checked.
#[derive(Debug, Clone)]
pub struct RemoteCrl {
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, if the CRL gives one.
    pub next_update: Option<OffsetDateTime>,
    /// The listed certificates.
    pub entries: Vec<RemoteRevocation>,
}

/// Where one remote CA publishes its CRL.
#[derive(Debug, Clone)]
pub struct CrlSource {
    url: url::Url,
    http: reqwest::Client,
}

impl CrlSource {
    /// The CRL at `url`, read for the CA `id`.
    pub fn new(id: &str, url: url::Url) -> Result<CrlSource, CaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(super::cfssl::CONNECT_TIMEOUT)
            .timeout(CRL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CaError::Unavailable(format!("HTTP client for the CA {id}'s CRL: {e}")))?;
        Ok(CrlSource { url, http })
    }

    /// The URL read.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Read the CRL and check it against `chain` (the CA `id`'s).
    pub async fn read(&self, id: &str, chain: &CaChain) -> Result<RemoteCrl, CaError> {
        let url = self.url.as_str();
        let mut response = self.http.get(self.url.clone()).send().await.map_err(|e| {
            CaError::Unavailable(format!(
                "the CA {id}'s CRL is unreachable at {url}: {}",
                super::cfssl::wire::without_url(e)
            ))
        })?;
        if !response.status().is_success() {
            return Err(CaError::Unavailable(format!(
                "the CA {id}'s CRL at {url}: HTTP {}",
                response.status().as_u16()
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CRL_BYTES as u64)
        {
            return Err(CaError::Unavailable(format!(
                "the CA {id}'s CRL at {url} is over {MAX_CRL_BYTES} bytes"
            )));
        }
        let body = super::cfssl::wire::read_bounded(&mut response, MAX_CRL_BYTES, id, url).await?;
        let der = decode(&body)
            .map_err(|e| CaError::Unavailable(format!("the CA {id}'s CRL at {url}: {e}")))?;
        checked(&der, &chain.issuing().der)
            .map_err(|e| CaError::Unavailable(format!("the CA {id}'s CRL at {url}: {e}")))
    }
}

/// The CRL's DER from a body in DER, PEM, base64 or CFSSL's JSON envelope.
pub fn decode(body: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine;
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| "neither DER, PEM, base64 nor JSON".to_string())?
        .trim();
    if text.starts_with("-----BEGIN") {
        let der = openssl::x509::X509Crl::from_pem(text.as_bytes())
            .and_then(|crl| crl.to_der())
            .map_err(|e| format!("unreadable PEM: {e}"));
        crate::verify::cms::clear_openssl_errors();
        return der;
    }
    let b64 = if text.starts_with('{') {
        let answer: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("unreadable JSON: {e}"))?;
        if answer.get("success").and_then(|s| s.as_bool()) != Some(true) {
            return Err("the CA answered success: false".into());
        }
        answer
            .get("result")
            .and_then(|r| r.as_str())
            .ok_or("the JSON answer has no result string")?
            .to_string()
    } else {
        text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
    };
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("unreadable base64: {e}"))
}

/// `der` as a full CRL of the CA whose certificate is `issuing_der`, its signature verified.
/// OpenSSL's error queue is emptied afterwards: a failed check leaves errors on this thread
/// that a later TLS call (a database connection) would otherwise take for its own.
pub fn checked(der: &[u8], issuing_der: &[u8]) -> Result<RemoteCrl, String> {
    let result = check(der, issuing_der);
    crate::verify::cms::clear_openssl_errors();
    result
}

fn check(der: &[u8], issuing_der: &[u8]) -> Result<RemoteCrl, String> {
    let issuing = openssl::x509::X509::from_der(issuing_der).map_err(|e| e.to_string())?;
    let crl = openssl::x509::X509Crl::from_der(der).map_err(|e| format!("not a CRL: {e}"))?;
    // Compared as OpenSSL compares names (its canonical form): a CA may encode the same name
    // with other string types than its certificate does (Go's crypto/x509 writes
    // PrintableString where the certificate has UTF8String).
    let same_issuer = crl
        .issuer_name()
        .try_cmp(issuing.subject_name())
        .is_ok_and(|o| o == std::cmp::Ordering::Equal);
    if !same_issuer {
        return Err("it is issued by another name than the CA's issuing certificate".into());
    }
    let key = issuing.public_key().map_err(|e| e.to_string())?;
    if !crl.verify(&key).unwrap_or(false) {
        return Err("its signature does not verify with the CA's issuing certificate".into());
    }
    let (rest, parsed) = x509_parser::parse_x509_crl(der).map_err(|e| format!("not a CRL: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the CRL".into());
    }
    if parsed
        .extensions()
        .iter()
        .any(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_DELTA_CRL_INDICATOR)
    {
        return Err("a delta CRL; give the full CRL's URL".into());
    }
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::oid_registry as oid;
    for ext in parsed.extensions() {
        if let ParsedExtension::IssuingDistributionPoint(idp) = ext.parsed_extension() {
            if idp.indirect_crl {
                return Err("an indirect CRL (it may list other CAs' certificates)".into());
            }
            if idp.only_contains_ca_certs || idp.only_contains_attribute_certs {
                return Err("a CRL of CA or attribute certificates only".into());
            }
        }
        let known = [
            oid::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
            oid::OID_X509_EXT_CRL_NUMBER,
            oid::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
            oid::OID_X509_EXT_FRESHEST_CRL,
            oid::OID_X509_EXT_ISSUER_ALT_NAME,
            oid::OID_PKIX_AUTHORITY_INFO_ACCESS,
        ];
        if ext.critical && !known.contains(&ext.oid) {
            return Err(format!("an unknown critical CRL extension {}", ext.oid));
        }
    }
    let time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| e.to_string())
    };
    let mut entries = Vec::new();
    for revoked in parsed.iter_revoked_certificates() {
        let raw = revoked.raw_serial();
        let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
        if raw.first().is_some_and(|b| b & 0x80 != 0) || raw[start..].len() > 20 {
            continue; // not a serial any certificate Vouch recorded can have
        }
        for ext in revoked.extensions() {
            if ext.oid == oid::OID_X509_EXT_ISSUER {
                return Err("an entry names another certificate issuer (indirect CRL)".into());
            }
            let known = [
                oid::OID_X509_EXT_REASON_CODE,
                oid::OID_X509_EXT_INVALIDITY_DATE,
                oid::OID_X509_EXT_HOLD_INSTRUCTION_CODE,
            ];
            if ext.critical && !known.contains(&ext.oid) {
                return Err(format!(
                    "an unknown critical CRL entry extension {}",
                    ext.oid
                ));
            }
        }
        let code = revoked.reason_code().map(|(_, c)| c.0).unwrap_or(0);
        let serial = crate::x509::ac::parse::hex_serial(&raw[start..]);
        if code == REMOVE_FROM_CRL {
            continue; // not a revocation (a delta CRL's word for a lifted hold)
        }
        let reason = Reason::from_code(code).unwrap_or_else(|| {
            tracing::warn!(%serial, code, "a CRL entry with a reason code Vouch does not know: taken as unspecified");
            Reason::Unspecified
        });
        entries.push(RemoteRevocation {
            serial,
            reason,
            revoked_at: time(revoked.revocation_date)?,
            invalidity: revoked
                .invalidity_date()
                .map(|(_, t)| time(t))
                .transpose()?,
        });
    }
    Ok(RemoteCrl {
        this_update: time(parsed.last_update())?,
        next_update: parsed.next_update().map(time).transpose()?,
        entries,
    })
}

/// Whether the certificate `cert_der` was issued by the CA certificate `issuing_der`: its issuer
/// is that certificate's subject, its authorityKeyIdentifier (if both give one) is that
/// certificate's subjectKeyIdentifier, and its signature verifies with that certificate's key. A
/// CRL of the CA speaks only for those (not, say, for a certificate of the CA's earlier key with
/// the same serial).
pub fn issued_by(cert_der: &[u8], issuing_der: &[u8]) -> bool {
    let check = || -> Option<bool> {
        let cert = openssl::x509::X509::from_der(cert_der).ok()?;
        let issuing = openssl::x509::X509::from_der(issuing_der).ok()?;
        let same_name = cert
            .issuer_name()
            .try_cmp(issuing.subject_name())
            .is_ok_and(|o| o == std::cmp::Ordering::Equal);
        let same_key_id = match (cert.authority_key_id(), issuing.subject_key_id()) {
            (Some(a), Some(s)) => a.as_slice() == s.as_slice(),
            _ => true,
        };
        let key = issuing.public_key().ok()?;
        Some(same_name && same_key_id && cert.verify(&key).unwrap_or(false))
    };
    let issued = check().unwrap_or(false);
    crate::verify::cms::clear_openssl_errors();
    issued
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_in_every_form_decode_to_the_same_der() {
        use base64::Engine;
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(decode(&der).unwrap(), der);
        assert_eq!(decode(format!("{b64}\n").as_bytes()).unwrap(), der);
        let json = format!("{{\"success\":true,\"result\":\"{b64}\",\"errors\":[]}}");
        assert_eq!(decode(json.as_bytes()).unwrap(), der);
        assert!(decode(b"{\"success\":false,\"result\":null}").is_err());
        assert!(decode(b"<html>not a crl</html>").is_err());
    }
}
