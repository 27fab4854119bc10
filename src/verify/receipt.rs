//! Receipts: a CMS SignedData over the canonical JSON of a verification's answer, signed by a
//! receipt-signing certificate that Vouch's CA issued for a key held in memory only (renewed
//! before it expires, like the OCSP responder's). Anyone can check one with `openssl cms -verify
//! -CAfile root.pem` (or `vouch receipt verify`).

use crate::ca::UpstreamCa;
use crate::error::{Error, Result};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long a receipt-signing certificate is valid.
pub const SIGNER_VALIDITY: Duration = Duration::days(7);
/// How long before its notAfter it is replaced.
pub const SIGNER_RENEW_BEFORE: Duration = Duration::days(1);

/// The receipt signer in use.
pub(crate) struct ReceiptSigner {
    key: PKey<Private>,
    cert: X509,
    chain: Stack<X509>,
    /// Its certificate's notAfter.
    pub(crate) not_after: OffsetDateTime,
}

impl ReceiptSigner {
    /// The signer for the key (PKCS#8 DER) and certificate the CA issued, with the CA chain
    /// (issuing CA first) carried in every receipt.
    pub(crate) fn new(
        key: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        not_after: OffsetDateTime,
    ) -> Result<Self> {
        let key = PKey::private_key_from_pkcs8(key).map_err(Error::internal)?;
        let cert_x = X509::from_der(cert).map_err(Error::internal)?;
        let mut stack = Stack::new().map_err(Error::internal)?;
        for der in chain {
            stack
                .push(X509::from_der(der).map_err(Error::internal)?)
                .map_err(Error::internal)?;
        }
        Ok(ReceiptSigner {
            key,
            cert: cert_x,
            chain: stack,
            not_after,
        })
    }

    /// Sign `content` (attached, binary, with signed attributes): the receipt, DER.
    pub(crate) fn sign(&self, content: &[u8]) -> Result<Vec<u8>> {
        let cms = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            Some(&self.chain),
            Some(content),
            CMSOptions::BINARY,
        )
        .map_err(Error::internal)?;
        cms.to_der().map_err(Error::internal)
    }
}

/// The receipt signer, issued on first use and renewed before it expires; one per RA.
#[derive(Default)]
pub(crate) struct Receipts {
    state: tokio::sync::Mutex<Option<Arc<ReceiptSigner>>>,
}

impl Receipts {
    /// The signer to use at `now`, and the new certificate (DER) when one was issued now.
    pub(crate) async fn signer(
        &self,
        ca: &dyn UpstreamCa,
        now: OffsetDateTime,
    ) -> Result<(Arc<ReceiptSigner>, Option<Vec<u8>>)> {
        let mut state = self.state.lock().await;
        if let Some(s) = state.as_ref() {
            let due = now + SIGNER_RENEW_BEFORE >= s.not_after;
            let cannot_extend = s.not_after >= ca.max_not_after();
            if now < s.not_after && (!due || cannot_extend) {
                return Ok((s.clone(), None));
            }
        }
        let not_after = (now + SIGNER_VALIDITY).min(ca.max_not_after());
        let (key, cert) = ca
            .issue_receipt_signer(now - Duration::minutes(5), not_after)
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        let chain: Vec<Vec<u8>> = ca.chain().iter().map(|c| c.der.clone()).collect();
        let signer = Arc::new(ReceiptSigner::new(&key, &cert, &chain, not_after)?);
        *state = Some(signer.clone());
        Ok((signer, Some(cert)))
    }
}

/// Check a receipt (DER or PEM) against a root certificate (PEM): the signature, the chain to the
/// root and the receipt purpose of the signer's certificate. Returns the signed JSON.
pub fn verify_receipt(receipt: &[u8], root_pem: &[u8]) -> Result<serde_json::Value> {
    let bad = |m: &str| Error::refused("receipt_invalid", m.to_string());
    let mut cms = if receipt.starts_with(b"-----BEGIN") {
        CmsContentInfo::from_pem(receipt)
    } else {
        CmsContentInfo::from_der(receipt)
    }
    .map_err(|_| bad("not a CMS SignedData"))?;
    let mut store = openssl::x509::store::X509StoreBuilder::new().map_err(Error::internal)?;
    for root in X509::stack_from_pem(root_pem).map_err(|_| bad("the root file is not PEM"))? {
        store.add_cert(root).map_err(Error::internal)?;
    }
    let store = store.build();
    let mut out = Vec::new();
    cms.verify(None, Some(&store), None, Some(&mut out), CMSOptions::BINARY)
        .map_err(|_| bad("the receipt's signature or chain does not verify"))?;
    // The signer must hold the receipt purpose: a certificate that merely chains to the root
    // (a subscriber's, say) cannot sign receipts.
    let sd =
        crate::verify::cms::read(&cms.to_der().map_err(Error::internal)?).map_err(|e| bad(&e.0))?;
    let signer = sd.signers.first().ok_or_else(|| bad("no signer"))?;
    let cert = crate::verify::cms::find_certificate(&signer.sid, &sd.certificates)
        .ok_or_else(|| bad("the signer's certificate is not in the receipt"))?;
    if !has_receipt_purpose(&cert.to_der().map_err(Error::internal)?) {
        return Err(bad("the signer's certificate is not for receipts"));
    }
    serde_json::from_slice(&out).map_err(|_| bad("the signed content is not JSON"))
}

/// Whether a certificate's extendedKeyUsage names the receipt purpose.
pub fn has_receipt_purpose(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let wanted = crate::ca::RECEIPT_SIGNING_EKU;
    cert.extensions()
        .iter()
        .any(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::ExtendedKeyUsage(eku) => {
                eku.other.iter().any(|oid| oid.as_bytes() == wanted)
            }
            _ => false,
        })
}
