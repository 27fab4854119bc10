//! Receipts: a CMS SignedData over the canonical JSON of a verification's answer, signed by a
//! receipt-signing certificate that Vouch's CA issued for a key held in memory only (renewed
//! before it expires, like the OCSP responder's). Anyone can check one with `openssl cms -verify
//! -CAfile root.pem` (or `vouch receipt verify`).

use crate::ca::PublishingCa;
use crate::error::{Error, Result};
use crate::x509::crl::time_digits;
use crate::x509::der::{push_tlv, set_of, tlv, uint};
use openssl::x509::X509;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long a receipt-signing certificate is valid.
pub const SIGNER_VALIDITY: Duration = Duration::days(7);
/// How long before its notAfter it is replaced.
pub const SIGNER_RENEW_BEFORE: Duration = Duration::days(1);

/// The receipt signer in use.
pub(crate) struct ReceiptSigner {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    /// The signer's IssuerAndSerialNumber, DER.
    issuer_and_serial: Vec<u8>,
    /// The certificates every receipt carries (the signer's, then the CA chain), DER.
    certificates: Vec<Vec<u8>>,
    /// Its certificate's notAfter.
    pub(crate) not_after: OffsetDateTime,
}

const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_CONTENT_TYPE: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_SIGNING_TIME: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const OID_SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_ECDSA_SHA256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// RFC 5652 11.3: signingTime as UTCTime through 2049, GeneralizedTime from 2050.
fn signing_time(t: OffsetDateTime) -> Vec<u8> {
    if t.year() < 2050 {
        tlv(0x17, &time_digits(t, false))
    } else {
        tlv(0x18, &time_digits(t, true))
    }
}

fn attribute(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
    let mut body = tlv(0x06, oid);
    body.extend_from_slice(&set_of(vec![value]));
    tlv(0x30, &body)
}

impl ReceiptSigner {
    /// The signer for the P-256 key (PKCS#8 DER) and certificate the CA issued, with the CA
    /// chain (issuing CA first) carried in every receipt.
    pub(crate) fn new(
        key: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        not_after: OffsetDateTime,
    ) -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            key,
            &rng,
        )
        .map_err(|e| Error::internal(format!("receipt key: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| Error::internal(format!("receipt certificate: {e}")))?;
        let mut ias = parsed.issuer().as_raw().to_vec();
        push_tlv(&mut ias, 0x02, parsed.raw_serial());
        let mut certificates = vec![cert.to_vec()];
        certificates.extend(chain.iter().cloned());
        Ok(ReceiptSigner {
            key,
            rng,
            issuer_and_serial: tlv(0x30, &ias),
            certificates,
            not_after,
        })
    }

    /// Sign `content` at `now`: a CMS SignedData (RFC 5652; content attached, signed attributes
    /// contentType, signingTime and messageDigest, ecdsa-with-SHA256), DER. Built here and
    /// signed with ring: OpenSSL's CMS API, and even its bare ECDSA, spend more on looking their
    /// algorithms up than on signing.
    pub(crate) fn sign(&self, content: &[u8], now: OffsetDateTime) -> Result<Vec<u8>> {
        use sha2::Digest;
        let sha256 = tlv(0x30, &tlv(0x06, &OID_SHA256));
        let digest = sha2::Sha256::digest(content);
        let attrs = set_of(vec![
            attribute(&OID_CONTENT_TYPE, tlv(0x06, &OID_DATA)),
            attribute(&OID_SIGNING_TIME, signing_time(now)),
            attribute(&OID_MESSAGE_DIGEST, tlv(0x04, &digest)),
        ]);
        let signature = self
            .key
            .sign(&self.rng, &attrs)
            .map_err(|_| Error::internal("receipt signature: the key refused to sign"))?
            .as_ref()
            .to_vec();
        let mut signed_attrs = attrs;
        signed_attrs[0] = 0xa0; // [0] IMPLICIT SET OF
        let mut info = uint(1);
        info.extend_from_slice(&self.issuer_and_serial);
        info.extend_from_slice(&sha256);
        info.extend_from_slice(&signed_attrs);
        info.extend_from_slice(&tlv(0x30, &tlv(0x06, &OID_ECDSA_SHA256)));
        push_tlv(&mut info, 0x04, &signature);
        let mut certs = set_of(self.certificates.clone());
        certs[0] = 0xa0; // [0] IMPLICIT CertificateSet
        let mut encap = tlv(0x06, &OID_DATA);
        push_tlv(&mut encap, 0xa0, &tlv(0x04, content));
        let mut sd = uint(1);
        sd.extend_from_slice(&set_of(vec![sha256]));
        push_tlv(&mut sd, 0x30, &encap);
        sd.extend_from_slice(&certs);
        sd.extend_from_slice(&set_of(vec![tlv(0x30, &info)]));
        let mut ci = tlv(0x06, &OID_SIGNED_DATA);
        push_tlv(&mut ci, 0xa0, &tlv(0x30, &sd));
        Ok(tlv(0x30, &ci))
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
        ca: &dyn PublishingCa,
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
/// root and the receipt purpose of the signer's certificate, all as of the time the receipt was
/// signed (its signingTime attribute): a receipt outlives its signer's week-long certificate.
/// Returns the signed JSON.
///
/// Everything is checked here, on the one certificate that names the signer exactly (by issuer
/// and serial bytes, or key identifier): OpenSSL's CMS verification picks its own signer
/// certificate (issuer names compared canonically, certificates in their stored order), so a
/// receipt could make it verify the signature with one certificate while the purpose is read
/// from another.
pub fn verify_receipt(receipt: &[u8], root_pem: &[u8]) -> Result<serde_json::Value> {
    use crate::verify::cms;
    let bad = |m: &str| Error::refused("receipt_invalid", m.to_string());
    let trimmed = receipt.trim_ascii();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        pem::parse(trimmed)
            .map_err(|_| bad("not PEM"))?
            .into_contents()
    } else {
        receipt.to_vec()
    };
    let sd = cms::parse(&der).map_err(|e| bad(&format!("not a DER CMS SignedData: {}", e.0)))?;
    let [signer] = sd.signers.as_slice() else {
        return Err(bad("a receipt has exactly one signer"));
    };
    let content = sd
        .content
        .as_deref()
        .ok_or_else(|| bad("the receipt has no content"))?;
    let signed_at = signer
        .signing_time
        .ok_or_else(|| bad("the receipt has no signing time"))?;
    let matching: Vec<&Vec<u8>> = sd
        .certificates
        .iter()
        .filter(|c| cms::find_certificate(&signer.sid, std::slice::from_ref(*c)).is_some())
        .collect();
    let [cert_der] = matching.as_slice() else {
        return Err(bad(
            "the receipt names its signer's certificate no or several times",
        ));
    };
    let cert = X509::from_der(cert_der).map_err(|_| bad("the signer's certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|_| bad("the signer's certificate"))?;
    // The signer must hold the receipt purpose: a certificate that merely chains to the root
    // (a subscriber's, say) cannot sign receipts.
    if !has_receipt_purpose(cert_der) {
        return Err(bad("the signer's certificate is not for receipts"));
    }
    let spki = parsed.public_key().raw;
    cms::check_signature(signer, &sd.content_type, content, spki).map_err(|p| {
        bad(&format!(
            "the receipt's signature does not hold ({})",
            p.code()
        ))
    })?;
    let mut store = openssl::x509::store::X509StoreBuilder::new().map_err(Error::internal)?;
    for root in X509::stack_from_pem(root_pem).map_err(|_| bad("the root file is not PEM"))? {
        store.add_cert(root).map_err(Error::internal)?;
    }
    let mut param = openssl::x509::verify::X509VerifyParam::new().map_err(Error::internal)?;
    param.set_time(signed_at.unix_timestamp());
    store.set_param(&param).map_err(Error::internal)?;
    let store = store.build();
    let mut untrusted = openssl::stack::Stack::new().map_err(Error::internal)?;
    for other in sd.certificates.iter().filter(|c| *c != *cert_der) {
        if let Ok(c) = X509::from_der(other) {
            untrusted.push(c).map_err(Error::internal)?;
        }
    }
    let mut ctx = openssl::x509::X509StoreContext::new().map_err(Error::internal)?;
    let chained = ctx
        .init(&store, &cert, &untrusted, |c| c.verify_cert())
        .unwrap_or(false);
    cms::clear_openssl_errors();
    if !chained {
        return Err(bad("the signer's certificate does not chain to the root"));
    }
    serde_json::from_slice(content).map_err(|_| bad("the signed content is not JSON"))
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

#[cfg(test)]
mod tests {
    #[test]
    fn signing_time_is_utc_time_until_2049() {
        use time::macros::datetime;
        let (utc, gen) = (
            super::signing_time(datetime!(2049-12-31 23:59:59 UTC)),
            super::signing_time(datetime!(2050-01-01 00:00:00 UTC)),
        );
        assert_eq!(utc, [&[0x17, 13][..], b"491231235959Z"].concat());
        assert_eq!(gen, [&[0x18, 15][..], b"20500101000000Z"].concat());
        // The verifier reads both back.
        for der in [utc, gen] {
            let mut r = crate::x509::der::Reader::new(&der);
            assert!(crate::verify::cms::time_value(r.any().unwrap()).is_ok());
        }
    }
}
