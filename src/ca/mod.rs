//! The upstream CA boundary. The RA decides *what* to certify and hands the CA an [`IssueOrder`];
//! adapters (the embedded `local` CA, the `cfssl` remote signer, a `cmp` server) turn it into a
//! signed certificate.
//! [`UpstreamCa`] is what every CA does (issue, revoke); [`PublishingCa`] is what only the embedded
//! CA does (CRLs, the OCSP responder's and the receipt signer's certificates).

pub mod aa;
pub mod cfssl;
pub mod cmp;
pub mod files;
pub mod key;
pub mod local;
pub mod remote_crl;
pub mod remote_ocsp;
pub mod root;
pub mod standby;
pub mod upstream_config;
pub mod upstreams;

use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use crate::x509::subject::SubjectSpec;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Everything a CA needs to sign one end-entity certificate. The serial is reserved by the RA and
/// recorded before the CA is called.
#[derive(Debug, Clone)]
pub struct IssueOrder {
    /// The serial the RA reserved and recorded; also the order's idempotency key: every attempt
    /// at one request carries the same.
    pub serial: Serial,
    /// The canonical SubjectPublicKeyInfo to certify, DER.
    pub spki_der: Vec<u8>,
    /// The subscriber's CSR as received (DER), for a CA that signs CSRs (a remote one: see
    /// [`UpstreamCa::picks_serial`]); empty for the embedded CA, which certifies `spki_der`.
    pub csr_der: Vec<u8>,
    /// The subject DN and subjectAltName entries.
    pub subject: SubjectSpec,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// keyUsage bits.
    pub key_usage: Vec<KeyUsage>,
    /// extendedKeyUsage purposes.
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
    /// The CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The revoked and held certificates.
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
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// The chain above issued certificates: the issuing CA first, then up to the root. Never empty:
/// it is built from the issuing CA's certificate and those above it, so `chain[0]`,
/// [`CaChain::issuing`] and [`CaChain::root`] always name a certificate. It reads as a slice
/// (`iter()`, indexing) through `Deref`.
#[derive(Debug, Clone)]
pub struct CaChain(Vec<CaCertificate>);

impl CaChain {
    /// The chain of `issuing` and the certificates `above` it, nearest first.
    pub fn new(issuing: CaCertificate, above: Vec<CaCertificate>) -> CaChain {
        let mut certs = Vec::with_capacity(1 + above.len());
        certs.push(issuing);
        certs.extend(above);
        CaChain(certs)
    }

    /// The issuing CA's certificate.
    pub fn issuing(&self) -> &CaCertificate {
        // Never empty: `new` always puts the issuing certificate first.
        &self.0[0]
    }

    /// The last certificate: the root (the issuing CA itself when nothing is above it).
    pub fn root(&self) -> &CaCertificate {
        // Never empty: `new` always puts the issuing certificate first.
        &self.0[self.0.len() - 1]
    }

    /// The same chain with the issuing CA's certificate replaced by `der` (a re-issue: same id,
    /// key and subject).
    pub fn with_issuing_der(&self, der: Vec<u8>) -> CaChain {
        let mut next = self.clone();
        next.0[0].der = der;
        next
    }
}

impl std::ops::Deref for CaChain {
    type Target = [CaCertificate];
    fn deref(&self) -> &[CaCertificate] {
        &self.0
    }
}

/// What keeps a certificate a CA handed over (see [`UpstreamCa::issue_kept`]): Err with why not.
pub type Keep<'a> = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync + 'a;

/// How an upstream CA says no.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The order itself cannot be signed (e.g. a key the CA cannot encode).
    #[error("order refused by the CA: {0}")]
    Refused(String),
    /// The CA failed; the same order may be retried.
    #[error("CA unavailable: {0}")]
    Unavailable(String),
}

/// One interface to any CA that signs for the RA: the embedded CA, or a remote one (CFSSL, CMP).
/// Issuance and revocation only: what only a CA whose keys Vouch holds can do is in
/// [`PublishingCa`].
#[async_trait]
pub trait UpstreamCa: Send + Sync + 'static {
    /// Id of the CA (stored with each certificate it issues as `ca_id`; the embedded CA's is
    /// also used in URLs).
    fn issuing_id(&self) -> &str;
    /// Sign one certificate; returns its DER. A remote CA may choose the serial and validity
    /// itself (see [`UpstreamCa::picks_serial`]); the RA checks what comes back against `order`.
    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError>;
    /// As [`UpstreamCa::issue`], with `keep` called on the certificate as soon as the CA has
    /// handed it over, before the adapter tells the CA it is accepted (CMP's certConf): the RA
    /// keeps it in the issuance journal there, so that a confirmation that fails or a process
    /// that dies after it cannot lose a certificate the CA counts as issued. A `keep` that fails
    /// makes the adapter reject the certificate (CMP: certConf with a failure) and answer
    /// `Unavailable`. An adapter with no confirmation step signs with `issue` (the default),
    /// and the caller keeps the answer itself.
    async fn issue_kept(&self, order: &IssueOrder, _keep: &Keep<'_>) -> Result<Vec<u8>, CaError> {
        self.issue(order).await
    }
    /// The certificate an earlier attempt at `order` made, if the CA can look it up by the
    /// order's idempotency key (its reserved `serial`, the same for every attempt at one
    /// request; a CMP adapter may key its transaction on it). Asked before a retry, so that an
    /// attempt whose answer was lost is recovered rather than signed again. A CA without such a
    /// lookup says None (CFSSL reads its certificate database when `certdb_url` gives it; see
    /// docs/OPERATIONS.md for the journal and the serial that stand in for it otherwise).
    async fn find_issued(&self, _order: &IssueOrder) -> Result<Option<Vec<u8>>, CaError> {
        Ok(None)
    }
    /// The checks `issue` would make on `order` before signing (encodings, names), without
    /// signing: run when a request is submitted, so that a request the CA would refuse is refused
    /// then, not after its approval. `Refused` only; a CA that cannot check locally says Ok.
    fn check(&self, _order: &IssueOrder) -> Result<(), CaError> {
        Ok(())
    }
    /// The chain above issued certificates: the issuing CA first, then up to the root. Never
    /// empty ([`CaChain`] cannot be): callers may take `chain()[0]` or `chain().issuing()`. The
    /// issuing CA's certificate may be re-issued (same key and subject) while running.
    fn chain(&self) -> std::sync::Arc<CaChain>;
    /// Latest notAfter an issued certificate may have (the issuing CA's own notAfter).
    fn max_not_after(&self) -> OffsetDateTime;
    /// Whether the CA picks the serial and the validity itself (a remote CA): then the
    /// certificate is recorded under the serial it carries, and its validity must lie inside the
    /// order's instead of matching it. The embedded CA signs exactly the order: false.
    fn picks_serial(&self) -> bool {
        false
    }
    /// The longest one call to [`UpstreamCa::issue_kept`] can take before the adapter gives up
    /// (its timeouts and polling). Another attempt at the same order is not started before
    /// twice this has passed, by any instance sharing the database.
    fn attempt_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }
    /// Tell the CA that the certificate `serial` (lowercase hex, as stored) it issued is revoked
    /// (or on hold, with [`Reason::CertificateHold`]) since `time`. The RA's own record is already
    /// changed; a CA whose status the RA publishes itself (the embedded CA) has nothing to do.
    async fn revoke(
        &self,
        serial: &str,
        reason: Reason,
        time: OffsetDateTime,
    ) -> Result<(), CaError>;
    /// Check that the CA accepts Vouch's credentials, where connecting does not show it (run by
    /// `vouch upstream check`); signs nothing. Nothing to check by default.
    async fn check_credentials(&self) -> Result<(), CaError> {
        Ok(())
    }
    /// Where the CA publishes its CRL (`crl_url` in `upstream.toml`), read for the status of the
    /// certificates it issued; None: not read (the embedded CA, whose status Vouch keeps itself).
    fn crl_source(&self) -> Option<&remote_crl::CrlSource> {
        None
    }
    /// Where the CA answers OCSP requests (`ocsp_url` in `upstream.toml`), asked for the status
    /// of a certificate it issued when Vouch reports it; None: not asked.
    fn ocsp_source(&self) -> Option<&remote_ocsp::OcspSource> {
        None
    }
    /// Why the CA has not been reached since the service started (it serves from the chain kept
    /// at an earlier start: [`standby`]); None once it has been, and for the embedded CA.
    fn unreached(&self) -> Option<String> {
        None
    }
    /// Tell the CA that the hold on `serial` is lifted. A CA that cannot lift a hold says
    /// `Refused`, and the RA keeps the hold.
    async fn release(&self, _serial: &str) -> Result<(), CaError> {
        Err(CaError::Refused(format!(
            "the CA {} cannot release a certificate from hold",
            self.issuing_id()
        )))
    }
}

/// What only a CA whose keys Vouch holds can do: sign the CRLs Vouch publishes, and issue the
/// certificates of Vouch's own services (the delegated OCSP responder, the receipt signer).
/// Only the embedded CA implements it; Vouch's CRL and OCSP answers cover its certificates only.
#[async_trait]
pub trait PublishingCa: UpstreamCa {
    /// Sign a CRL for the issuing CA; returns its DER.
    async fn sign_crl(&self, order: &CrlOrder) -> Result<Vec<u8>, CaError>;
    /// Issue a delegated OCSP responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) for
    /// a fresh key; returns the key (PKCS#8 DER) and the certificate (DER).
    async fn issue_ocsp_responder(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CaError>;
    /// Issue the certificate that signs verification receipts (extendedKeyUsage
    /// [`RECEIPT_SIGNING_EKU`], and emailProtection so that `openssl cms -verify` accepts it
    /// without `-purpose any`) for a fresh P-256 key; returns the key (PKCS#8 DER) and the
    /// certificate (DER).
    async fn issue_receipt_signer(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CaError>;
}

/// The extendedKeyUsage purpose of Vouch's receipt-signing certificates,
/// 2.25.176954097262662576915638773024967759201 (a UUID OID, X.667), as DER content octets.
pub const RECEIPT_SIGNING_EKU: [u8; 20] = [
    0x69, 0x82, 0x8a, 0xa0, 0x8f, 0xa5, 0xb2, 0xe4, 0xca, 0x92, 0xc3, 0x97, 0xe9, 0xd4, 0xdb, 0xcc,
    0xad, 0xe8, 0xaa, 0x61,
];
