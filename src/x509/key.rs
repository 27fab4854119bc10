//! Subject public key checks: which key types the RA accepts, and the facts about a key that
//! policy needs (type, size, fingerprint).

use crate::error::{Error, Result};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use serde::Deserialize;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "rsa")]
    Rsa,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa => "rsa",
        }
    }
}

/// A public key that passed the RA's key rules. Only [`CheckedKey::from_spki`] builds one.
#[derive(Debug, Clone)]
pub struct CheckedKey {
    pub key_type: KeyType,
    /// Modulus size for RSA, field size for EC.
    pub bits: u32,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// SHA-256 of the SubjectPublicKeyInfo DER: the key's identity for blocking and reuse checks.
    pub fingerprint: String,
}

pub const RSA_MAX_BITS: u32 = 8192;

impl CheckedKey {
    /// Check a SubjectPublicKeyInfo: ECDSA P-256/P-384 with a valid point, or RSA of at least 2048
    /// bits (a multiple of 8, at most 8192) with e = 65537.
    pub fn from_spki(spki_der: &[u8]) -> Result<Self> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
            Error::invalid("bad_csr", format!("malformed SubjectPublicKeyInfo: {e}"))
        })?;
        if !rest.is_empty() {
            return Err(Error::invalid(
                "bad_csr",
                "trailing bytes after SubjectPublicKeyInfo",
            ));
        }
        let alg = &spki.algorithm.algorithm;
        let fingerprint = super::sha256_hex(spki_der);
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or_else(|| {
                    Error::refused("unsupported_curve", "EC key without a named curve")
                })?;
            let (key_type, nid, bits) = if curve == OID_EC_P256 {
                (KeyType::EcP256, Nid::X9_62_PRIME256V1, 256)
            } else if curve == OID_NIST_EC_P384 {
                (KeyType::EcP384, Nid::SECP384R1, 384)
            } else {
                return Err(Error::refused(
                    "unsupported_curve",
                    format!("EC curve {curve} is not accepted; use P-256 or P-384"),
                ));
            };
            check_ec_point(nid, &spki.subject_public_key.data)?;
            Ok(CheckedKey {
                key_type,
                bits,
                spki_der: spki_der.to_vec(),
                fingerprint,
            })
        } else if *alg == OID_PKCS1_RSAENCRYPTION {
            let malformed = || Error::invalid("bad_csr", "malformed RSA public key");
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(malformed());
            };
            let modulus = strip_zeros(rsa.modulus);
            let exponent = strip_zeros(rsa.exponent);
            let bits = match modulus.first() {
                Some(first) => (modulus.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
                None => return Err(malformed()),
            };
            if bits < 2048 {
                return Err(Error::refused(
                    "weak_key",
                    format!("RSA key of {bits} bits; at least 2048 required"),
                ));
            }
            if bits > RSA_MAX_BITS {
                return Err(Error::refused(
                    "unsupported_key_size",
                    format!("RSA key of {bits} bits; at most {RSA_MAX_BITS}"),
                ));
            }
            if bits % 8 != 0 {
                return Err(Error::refused(
                    "weak_key",
                    format!("RSA modulus of {bits} bits is not a multiple of 8"),
                ));
            }
            if exponent != [0x01, 0x00, 0x01] {
                return Err(Error::refused(
                    "weak_key",
                    "RSA public exponent must be 65537",
                ));
            }
            if modulus.last().is_some_and(|b| b & 1 == 0) {
                return Err(Error::refused("weak_key", "RSA modulus is even"));
            }
            super::weak::check_rsa_modulus(modulus)?;
            Ok(CheckedKey {
                key_type: KeyType::Rsa,
                bits,
                spki_der: spki_der.to_vec(),
                fingerprint,
            })
        } else {
            let id = PKey::public_key_from_der(spki_der).map(|k| k.id()).ok();
            let what = match id {
                Some(Id::ED25519) => "Ed25519".to_string(),
                Some(Id::ED448) => "Ed448".to_string(),
                Some(Id::DSA) => "DSA".to_string(),
                _ => format!("algorithm {alg}"),
            };
            Err(Error::refused(
                "unsupported_key_type",
                format!("{what} keys are not accepted; use ECDSA P-256/P-384 or RSA"),
            ))
        }
    }
}

/// The point must decode (OpenSSL checks that it lies on the curve) and not be the point at
/// infinity. P-256 and P-384 have cofactor 1, so every such point has the full prime order and no
/// further (costly) order check is needed.
fn check_ec_point(nid: Nid, point: &[u8]) -> Result<()> {
    let invalid = || {
        Error::refused(
            "invalid_ec_point",
            "the EC public key is not a valid point on its curve",
        )
    };
    let group = EcGroup::from_curve_name(nid).map_err(Error::internal)?;
    let mut ctx = BigNumContext::new().map_err(Error::internal)?;
    let point = EcPoint::from_bytes(&group, point, &mut ctx).map_err(|_| invalid())?;
    if point.is_infinity(&group) {
        return Err(invalid());
    }
    Ok(())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::EcKey;
    use openssl::rsa::Rsa;

    fn ec_spki(nid: Nid) -> Vec<u8> {
        let group = EcGroup::from_curve_name(nid).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap())
            .unwrap()
            .public_key_to_der()
            .unwrap()
    }

    #[test]
    fn accepts_p256_and_p384() {
        let k = CheckedKey::from_spki(&ec_spki(Nid::X9_62_PRIME256V1)).unwrap();
        assert_eq!((k.key_type, k.bits), (KeyType::EcP256, 256));
        let k = CheckedKey::from_spki(&ec_spki(Nid::SECP384R1)).unwrap();
        assert_eq!((k.key_type, k.bits), (KeyType::EcP384, 384));
        assert_eq!(k.fingerprint.len(), 64);
    }

    #[test]
    fn refuses_other_curves() {
        let err = CheckedKey::from_spki(&ec_spki(Nid::SECP256K1)).unwrap_err();
        assert_eq!(err.code(), "unsupported_curve");
        let err = CheckedKey::from_spki(&ec_spki(Nid::SECP521R1)).unwrap_err();
        assert_eq!(err.code(), "unsupported_curve");
    }

    #[test]
    fn refuses_a_point_off_the_curve() {
        let mut spki = ec_spki(Nid::X9_62_PRIME256V1);
        // Flip a bit in the last byte of the Y coordinate: the point leaves the curve.
        let last = spki.len() - 1;
        spki[last] ^= 0x01;
        assert_eq!(
            CheckedKey::from_spki(&spki).unwrap_err().code(),
            "invalid_ec_point"
        );
    }

    #[test]
    fn rsa_rules() {
        let ok = PKey::from_rsa(Rsa::generate(2048).unwrap())
            .unwrap()
            .public_key_to_der()
            .unwrap();
        assert_eq!(CheckedKey::from_spki(&ok).unwrap().bits, 2048);
        let weak = PKey::from_rsa(Rsa::generate(1024).unwrap())
            .unwrap()
            .public_key_to_der()
            .unwrap();
        assert_eq!(CheckedKey::from_spki(&weak).unwrap_err().code(), "weak_key");
        let e3 = {
            let e = openssl::bn::BigNum::from_u32(3).unwrap();
            let rsa = Rsa::generate_with_e(2048, &e).unwrap();
            PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap()
        };
        assert_eq!(CheckedKey::from_spki(&e3).unwrap_err().code(), "weak_key");
    }

    #[test]
    fn refuses_the_point_at_infinity() {
        let mut spki = ec_spki(Nid::X9_62_PRIME256V1);
        // Re-encode the BIT STRING as the single octet 0x00 (the point at infinity).
        let n = spki.len();
        let prefix = n - 65 - 3;
        spki.truncate(prefix);
        spki.extend_from_slice(&[0x03, 0x02, 0x00, 0x00]);
        spki[1] = (spki.len() - 2) as u8;
        assert_eq!(
            CheckedKey::from_spki(&spki).unwrap_err().code(),
            "invalid_ec_point"
        );
    }

    #[test]
    fn refuses_ed25519() {
        let k = PKey::generate_ed25519()
            .unwrap()
            .public_key_to_der()
            .unwrap();
        assert_eq!(
            CheckedKey::from_spki(&k).unwrap_err().code(),
            "unsupported_key_type"
        );
    }
}
