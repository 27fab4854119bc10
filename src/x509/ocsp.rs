//! OCSP (RFC 6960, RFC 5019 profile): parse requests, answer them with responses signed by a
//! delegated responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) issued by the CA.

use crate::error::{Error, Result};
use crate::x509::revocation::Reason;
use der::asn1::{GeneralizedTime, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::Certificate;
use x509_ocsp::builder::OcspResponseBuilder;
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, RevokedInfo, SingleResponse,
};
use zeroize::Zeroizing;

/// Largest OCSP request accepted (RFC 5019 requests are about 100 bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Most certificates asked about in one request.
pub const MAX_REQUESTS: usize = 16;

const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// What the RA knows about one serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked or on hold, since `at`, for `reason`.
    Revoked {
        /// When it was revoked or put on hold.
        at: OffsetDateTime,
        /// Why.
        reason: Reason,
    },
    /// Not a certificate this CA issued (or asked about under another issuer).
    Unknown,
}

/// One question in a request: which certificate, and whether it names our issuing CA.
#[derive(Debug, Clone)]
pub struct Question {
    /// The CertID as asked.
    pub cert_id: CertId,
    /// Lowercase hex of the serial's DER content octets.
    pub serial: String,
    /// Whether it names our issuing CA.
    pub ours: bool,
}

/// A parsed request: its questions and its nonce (echoed in the response).
#[derive(Debug, Clone)]
pub struct Query {
    /// What is asked, in order.
    pub questions: Vec<Question>,
    /// The request's nonce, if it sent one.
    pub nonce: Option<Vec<u8>>,
}

fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    match alg {
        SHA1 => Some(openssl::sha::sha1(data).to_vec()),
        SHA256 => Some(openssl::sha::sha256(data).to_vec()),
        _ => None,
    }
}

/// The issuer a CertID must name: hashes of its subject DER and of its public key bits.
pub struct IssuerHashes {
    name_der: Vec<u8>,
    key_bits: Vec<u8>,
}

impl IssuerHashes {
    /// The hashes of the issuing CA certificate `der`.
    pub fn from_cert_der(der: &[u8]) -> Result<Self> {
        let cert = Certificate::from_der(der).map_err(Error::internal)?;
        Ok(IssuerHashes {
            name_der: cert
                .tbs_certificate
                .subject
                .to_der()
                .map_err(Error::internal)?,
            key_bits: cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        })
    }

    fn matches(&self, id: &CertId) -> bool {
        let alg = id.hash_algorithm.oid.to_string();
        match (digest(&alg, &self.name_der), digest(&alg, &self.key_bits)) {
            (Some(n), Some(k)) => {
                n == id.issuer_name_hash.as_bytes() && k == id.issuer_key_hash.as_bytes()
            }
            _ => false,
        }
    }
}

/// Parse a DER OCSP request. Any failure is a malformed request.
pub fn parse(der: &[u8], issuer: &IssuerHashes) -> Option<Query> {
    if der.is_empty() || der.len() > MAX_REQUEST_BYTES {
        return None;
    }
    let req = OcspRequest::from_der(der).ok()?;
    let list = &req.tbs_request.request_list;
    if list.is_empty() || list.len() > MAX_REQUESTS {
        return None;
    }
    let questions = list
        .iter()
        .map(|r| Question {
            serial: hex::encode(r.req_cert.serial_number.as_bytes()),
            ours: issuer.matches(&r.req_cert),
            cert_id: r.req_cert.clone(),
        })
        .collect();
    Some(Query {
        questions,
        nonce: req.nonce().map(|n| n.0.as_bytes().to_vec()),
    })
}

fn gtime(t: OffsetDateTime) -> Result<OcspGeneralizedTime> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(Error::internal)?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(Error::internal)?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

fn crl_reason(r: Reason) -> CrlReason {
    match r {
        Reason::Unspecified => CrlReason::Unspecified,
        Reason::KeyCompromise => CrlReason::KeyCompromise,
        Reason::CaCompromise => CrlReason::CaCompromise,
        Reason::AffiliationChanged => CrlReason::AffiliationChanged,
        Reason::Superseded => CrlReason::Superseded,
        Reason::CessationOfOperation => CrlReason::CessationOfOperation,
        Reason::CertificateHold => CrlReason::CertificateHold,
        Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        Reason::AaCompromise => CrlReason::AaCompromise,
    }
}

/// A delegated responder: its key (zeroized on drop by the p256 crate) and certificate.
pub struct Responder {
    key: SigningKey,
    cert: Certificate,
    key_hash: Vec<u8>,
    /// When the responder's certificate expires.
    pub not_after: OffsetDateTime,
}

impl Responder {
    /// A responder from its key (PKCS#8 DER) and certificate (DER).
    pub fn new(
        pkcs8_der: &Zeroizing<Vec<u8>>,
        cert_der: &[u8],
        not_after: OffsetDateTime,
    ) -> Result<Self> {
        let key = SigningKey::from_pkcs8_der(pkcs8_der)
            .map_err(|e| Error::internal(format!("OCSP key: {e}")))?;
        let cert = Certificate::from_der(cert_der).map_err(Error::internal)?;
        let key_hash = openssl::sha::sha1(
            cert.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .to_vec();
        Ok(Responder {
            key,
            cert,
            key_hash,
            not_after,
        })
    }

    /// Sign a response to `query` with one status per question.
    pub fn respond(
        &self,
        query: &Query,
        statuses: &[Status],
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let key_hash = x509_ocsp::ResponderId::ByKey(
            OctetString::new(self.key_hash.clone()).map_err(Error::internal)?,
        );
        let mut builder = OcspResponseBuilder::new(key_hash);
        for (q, status) in query.questions.iter().zip(statuses) {
            let cert_status = match status {
                Status::Good => CertStatus::good(),
                Status::Unknown => CertStatus::unknown(),
                Status::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
                    revocation_time: gtime(*at)?,
                    revocation_reason: Some(crl_reason(*reason)),
                }),
            };
            builder = builder.with_single_response(
                SingleResponse::new(q.cert_id.clone(), cert_status, gtime(now)?)
                    .with_next_update(gtime(next_update)?),
            );
        }
        if let Some(n) = &query.nonce {
            let nonce = x509_ocsp::ext::Nonce::new(n.clone()).map_err(Error::internal)?;
            builder = builder
                .with_extension(nonce)
                .map_err(|e| Error::internal(format!("OCSP nonce: {e}")))?;
        }
        let mut key = self.key.clone();
        let resp: OcspResponse = builder
            .sign::<_, DerSignature>(&mut key, Some(vec![self.cert.clone()]), gtime(now)?)
            .map_err(|e| Error::internal(format!("signing OCSP response: {e}")))?;
        resp.to_der().map_err(Error::internal)
    }
}

/// `malformedRequest` (RFC 6960 4.2.1), unsigned.
pub fn malformed() -> Vec<u8> {
    OcspResponse::malformed_request()
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x01])
}
