//! CMS SignedData from subscribers (e.g. `openssl cms -sign -signer cert.pem -inkey key.pem`):
//! read it in any of OpenSSL's three encodings and check who signed it.

use crate::error::{Error, Result};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::stack::Stack;
use openssl::x509::X509;

/// Largest signed statement accepted.
pub const MAX_CMS_BYTES: usize = 32 * 1024;

fn bad() -> Error {
    Error::invalid(
        "bad_cms",
        "the body is not a CMS SignedData (DER, PEM or S/MIME)",
    )
}

/// Parse DER, PEM (`-----BEGIN CMS-----`) or S/MIME.
pub fn parse(body: &[u8]) -> Result<CmsContentInfo> {
    if body.is_empty() || body.len() > MAX_CMS_BYTES {
        return Err(bad());
    }
    if body.first() == Some(&0x30) {
        return CmsContentInfo::from_der(body).map_err(|_| bad());
    }
    // PEM and S/MIME are 7-bit text. OpenSSL copies the bytes of a bad S/MIME header into its
    // error data, and rust-openssl (0.10.82) panics reading error data that is not UTF-8, so other
    // bytes are refused before OpenSSL sees them.
    if !body.is_ascii() {
        return Err(bad());
    }
    if body.starts_with(b"-----BEGIN") {
        return CmsContentInfo::from_pem(body).map_err(|_| bad());
    }
    CmsContentInfo::smime_read_cms(body).map_err(|_| bad())
}

/// The signed content, with the signature checked against the signer certificate the CMS itself
/// carries. This says nothing about who signed; see [`signed_by`].
pub fn content(body: &[u8]) -> Result<Vec<u8>> {
    let mut cms = parse(body)?;
    let mut out = Vec::new();
    cms.verify(
        None,
        None,
        None,
        Some(&mut out),
        CMSOptions::NO_SIGNER_CERT_VERIFY,
    )
    .map_err(|_| Error::refused("cms_signature_invalid", "the CMS signature does not verify"))?;
    Ok(out)
}

/// True if the CMS is signed by the key of `cert` (looked up only among the certificates given,
/// not those the CMS carries).
pub fn signed_by(body: &[u8], cert_der: &[u8]) -> Result<bool> {
    let mut cms = parse(body)?;
    let cert = X509::from_der(cert_der).map_err(Error::internal)?;
    let mut certs = Stack::new().map_err(Error::internal)?;
    certs.push(cert).map_err(Error::internal)?;
    let flags = CMSOptions::NOINTERN | CMSOptions::NO_SIGNER_CERT_VERIFY;
    Ok(cms.verify(Some(&certs), None, None, None, flags).is_ok())
}
