//! The upstream CA boundary. The RA decides *what* to certify and hands the CA an [`IssueOrder`];
//! adapters (the embedded `local` CA today; remote CAs later) turn it into a signed certificate.

pub mod local;
pub mod root;

use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use crate::x509::serial::Serial;
use crate::x509::subject::SubjectSpec;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Everything a CA needs to sign one end-entity certificate. The serial is reserved by the RA and
/// recorded before the CA is called.
#[derive(Debug, Clone)]
pub struct IssueOrder {
    pub serial: Serial,
    pub spki_der: Vec<u8>,
    pub subject: SubjectSpec,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_usage: Vec<KeyUsage>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// CRL Distribution Point URLs.
    pub crl_urls: Vec<String>,
    /// Authority Information Access caIssuers URLs (where the issuing CA certificate is served).
    pub ca_issuers_urls: Vec<String>,
    /// Authority Information Access OCSP responder URLs.
    pub ocsp_urls: Vec<String>,
}

pub use crate::x509::crl::{CrlEntry, CrlRemoval};

/// A CRL for the issuing CA: a full CRL, or a delta CRL when `delta_base` is set.
#[derive(Debug, Clone)]
pub struct CrlOrder {
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub entries: Vec<CrlEntry>,
    /// removeFromCRL entries (delta CRLs only).
    pub removed: Vec<CrlRemoval>,
    /// The base CRL number of a delta CRL (deltaCRLIndicator).
    pub delta_base: Option<u64>,
    /// Where the delta CRL is published (freshestCRL), for a full CRL.
    pub freshest_urls: Vec<String>,
}

/// A CA certificate the RA publishes.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    /// Short stable id used in URLs (`/ca/{id}.pem`).
    pub id: String,
    pub der: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The order itself cannot be signed (e.g. a key the CA cannot encode).
    #[error("order refused by the CA: {0}")]
    Refused(String),
    /// The CA failed; the same order may be retried.
    #[error("CA unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait UpstreamCa: Send + Sync + 'static {
    /// Id of the issuing CA (used in URLs and stored with each certificate).
    fn issuing_id(&self) -> &str;
    /// Sign one certificate; returns its DER.
    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError>;
    /// The checks `issue` would make on `order` before signing (encodings, names), without
    /// signing: run when a request is submitted, so that a request the CA would refuse is refused
    /// then, not after its approval. `Refused` only; a CA that cannot check locally says Ok.
    fn check(&self, _order: &IssueOrder) -> Result<(), CaError> {
        Ok(())
    }
    /// The chain above issued certificates: the issuing CA first, then up to the root. The
    /// issuing CA's certificate may be re-issued (same key and subject) while running.
    fn chain(&self) -> std::sync::Arc<Vec<CaCertificate>>;
    /// Latest notAfter an issued certificate may have (the issuing CA's own notAfter).
    fn max_not_after(&self) -> OffsetDateTime;
    /// Sign a CRL for the issuing CA; returns its DER.
    async fn sign_crl(&self, order: &CrlOrder) -> Result<Vec<u8>, CaError>;
    /// Issue a delegated OCSP responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) for
    /// a fresh key; returns the key (PKCS#8 DER) and the certificate (DER).
    async fn issue_ocsp_responder(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CaError>;
}
