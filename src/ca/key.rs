//! The embedded CA's keys: which algorithm they use, the options a new CA is made with, and the
//! holder that wipes a key's encoding when it is dropped.

use crate::x509::crl;
use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};
use std::str::FromStr;
use zeroize::Zeroize;

/// Algorithm of the CA keys generated at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKeyAlgorithm {
    /// ECDSA on P-256, signing with SHA-256.
    P256,
    /// ECDSA on P-384, signing with SHA-384.
    P384,
}

impl FromStr for CaKeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ec-p256" => Ok(CaKeyAlgorithm::P256),
            "p384" | "p-384" | "ec-p384" => Ok(CaKeyAlgorithm::P384),
            other => Err(format!(
                "unknown CA key algorithm {other:?} (use p256 or p384)"
            )),
        }
    }
}

impl CaKeyAlgorithm {
    /// The rcgen signature algorithm of keys of this kind.
    pub(crate) fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            CaKeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CaKeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// How `vouch init` makes a new CA.
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// Algorithm of the root and issuing keys.
    pub algorithm: CaKeyAlgorithm,
    /// Organisation named in the CA certificates.
    pub organisation: String,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            algorithm: CaKeyAlgorithm::P256,
            organisation: "Vouch".to_string(),
        }
    }
}

/// A CA private key that wipes its encoding when dropped.
pub(crate) struct CaKey(pub(crate) KeyPair);

impl Drop for CaKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaKey([secret])")
    }
}

/// How a CA key signs CRLs (encoded here, not by rcgen).
pub(crate) fn crl_algorithm(key: &KeyPair) -> crate::error::Result<crl::SignatureAlgorithm> {
    if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Ok(crl::SignatureAlgorithm::EcdsaSha256)
    } else if key.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Ok(crl::SignatureAlgorithm::EcdsaSha384)
    } else {
        Err(crate::error::Error::internal(
            "CA keys must be ECDSA P-256 or P-384",
        ))
    }
}
