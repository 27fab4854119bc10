//! Subject public key checks: which key types the RA accepts, and the facts about a key that
//! policy needs (type, size, fingerprint).
//!
//! A key has many encodings: an EC point compressed or uncompressed, an RSA AlgorithmIdentifier
//! with or without its NULL parameters, INTEGERs with leading zeros, lengths in long form. The RA
//! compares keys by *value*: every key is re-encoded in one canonical form (EC: named curve and
//! uncompressed point; RSA: minimal modulus and exponent with NULL parameters), and that form is
//! what is hashed for the key's identity (block list, key-compromise propagation, self-revocation,
//! duplicate checks) and what issued certificates carry.

use crate::error::{Error, Result};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use serde::Deserialize;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The key types the RA accepts, by their names in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// ECDSA on P-256.
    #[serde(rename = "ec-p256")]
    EcP256,
    /// ECDSA on P-384.
    #[serde(rename = "ec-p384")]
    EcP384,
    /// RSA.
    #[serde(rename = "rsa")]
    Rsa,
}

impl KeyType {
    /// The name in profiles (`ec-p256`, `ec-p384`, `rsa`).
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
    key_type: KeyType,
    /// Modulus size for RSA, field size for EC.
    bits: u32,
    /// The canonical SubjectPublicKeyInfo, DER (see the module documentation), whatever encoding
    /// the key arrived in.
    spki_der: Vec<u8>,
    /// SHA-256 of the canonical SubjectPublicKeyInfo: the key's identity for blocking and reuse
    /// checks.
    fingerprint: String,
}

/// Largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: u32 = 8192;

impl CheckedKey {
    /// Check a SubjectPublicKeyInfo: ECDSA P-256/P-384 with a valid point, or RSA of at least 2048
    /// bits (a multiple of 8, at most 8192) with e = 65537.
    pub fn from_spki(spki_der: &[u8]) -> Result<Self> {
        match decode(spki_der)? {
            Decoded::Ec { nid, point } => {
                // decode() admits only these two curves.
                let (key_type, bits) = if nid == Nid::SECP384R1 {
                    (KeyType::EcP384, 384)
                } else {
                    (KeyType::EcP256, 256)
                };
                Ok(CheckedKey::canonical(
                    key_type,
                    bits,
                    ec_canonical(nid, &point)?,
                ))
            }
            Decoded::Rsa { modulus, exponent } => {
                let malformed = || Error::invalid("bad_csr", "malformed RSA public key");
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
                super::weak::check_rsa_modulus(&modulus)?;
                Ok(CheckedKey::canonical(
                    KeyType::Rsa,
                    bits,
                    rsa_canonical(&modulus, &exponent)?,
                ))
            }
            Decoded::Other(what) => Err(Error::refused(
                "unsupported_key_type",
                format!("{what} keys are not accepted; use ECDSA P-256/P-384 or RSA"),
            )),
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Modulus size for RSA, field size for EC.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The canonical SubjectPublicKeyInfo, DER (see the module documentation), whatever encoding
    /// the key arrived in.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Lowercase hex SHA-256 of the canonical SubjectPublicKeyInfo: the key's identity for
    /// blocking and reuse checks.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn canonical(key_type: KeyType, bits: u32, spki_der: Vec<u8>) -> Self {
        let fingerprint = super::sha256_hex(&spki_der);
        CheckedKey {
            key_type,
            bits,
            spki_der,
            fingerprint,
        }
    }
}

/// The identity of any public key the RA can re-encode (EC on a named curve, RSA), whether or not
/// its policy would accept it: the SHA-256 of its canonical SubjectPublicKeyInfo. Keys of other
/// types (Ed25519, DSA, ...) have one encoding, and are hashed as given. Used where a key is named
/// rather than certified: blocking a key by its public key, re-keying stored fingerprints.
pub fn identity(spki_der: &[u8]) -> Result<String> {
    Ok(super::sha256_hex(&canonical_spki(spki_der)?))
}

/// The canonical SubjectPublicKeyInfo of any key [`identity`] knows, without policy checks.
pub fn canonical_spki(spki_der: &[u8]) -> Result<Vec<u8>> {
    Ok(match decode(spki_der)? {
        Decoded::Ec { nid, point } => ec_canonical(nid, &point)?,
        Decoded::Rsa { modulus, exponent } => rsa_canonical(&modulus, &exponent)?,
        Decoded::Other(_) => spki_der.to_vec(),
    })
}

/// What a SubjectPublicKeyInfo holds, read leniently (any encoding of the same value).
enum Decoded {
    Ec {
        nid: Nid,
        point: Vec<u8>,
    },
    /// Magnitudes without leading zeros.
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    Other(String),
}

fn decode(spki_der: &[u8]) -> Result<Decoded> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| Error::invalid("bad_csr", format!("malformed SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::invalid(
            "bad_csr",
            "trailing bytes after SubjectPublicKeyInfo",
        ));
    }
    if spki.subject_public_key.unused_bits != 0 {
        return Err(Error::invalid(
            "bad_csr",
            "the public key BIT STRING has unused bits",
        ));
    }
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| Error::refused("unsupported_curve", "EC key without a named curve"))?;
        let nid = if curve == OID_EC_P256 {
            Nid::X9_62_PRIME256V1
        } else if curve == OID_NIST_EC_P384 {
            Nid::SECP384R1
        } else {
            return Err(Error::refused(
                "unsupported_curve",
                format!("EC curve {curve} is not accepted; use P-256 or P-384"),
            ));
        };
        Ok(Decoded::Ec {
            nid,
            point: spki.subject_public_key.data.to_vec(),
        })
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        let malformed = || Error::invalid("bad_csr", "malformed RSA public key");
        // RFC 3279 2.3.1: the parameters MUST be NULL; many encoders leave them out.
        match &spki.algorithm.parameters {
            None => {}
            Some(p) if p.tag() == Tag::Null && p.data.is_empty() => {}
            Some(_) => {
                return Err(Error::invalid(
                    "bad_csr",
                    "RSA key algorithm parameters must be NULL",
                ))
            }
        }
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(malformed());
        };
        // A DER INTEGER with its top bit set is negative: no modulus or exponent is.
        if rsa.modulus.first().is_some_and(|b| b & 0x80 != 0)
            || rsa.exponent.first().is_some_and(|b| b & 0x80 != 0)
        {
            return Err(Error::invalid(
                "bad_csr",
                "RSA modulus or exponent is negative",
            ));
        }
        Ok(Decoded::Rsa {
            modulus: strip_zeros(rsa.modulus).to_vec(),
            exponent: strip_zeros(rsa.exponent).to_vec(),
        })
    } else {
        let id = PKey::public_key_from_der(spki_der).map(|k| k.id()).ok();
        let _ = openssl::error::ErrorStack::get();
        Ok(Decoded::Other(match id {
            Some(Id::ED25519) => "Ed25519".to_string(),
            Some(Id::ED448) => "Ed448".to_string(),
            Some(Id::DSA) => "DSA".to_string(),
            _ => format!("algorithm {alg}"),
        }))
    }
}

/// The canonical SubjectPublicKeyInfo of an EC key: named curve, uncompressed point. The point
/// must be valid; the hybrid form is refused (RFC 5480 2.2: MUST NOT be used).
fn ec_canonical(nid: Nid, point: &[u8]) -> Result<Vec<u8>> {
    if matches!(point.first(), Some(0x06 | 0x07)) {
        return Err(Error::refused(
            "invalid_ec_point",
            "the EC public key uses the hybrid point form, which RFC 5480 forbids; send it uncompressed",
        ));
    }
    let group = EcGroup::from_curve_name(nid).map_err(Error::internal)?;
    let point = check_ec_point(&group, point)?;
    let key = EcKey::from_public_key(&group, &point).map_err(Error::internal)?;
    let mut ctx = BigNumContext::new().map_err(Error::internal)?;
    // The group was made from its curve name, so it is written as a named curve; the conversion
    // form of a new key is uncompressed. Check both rather than rely on defaults.
    let uncompressed = point
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .map_err(Error::internal)?;
    let der = PKey::from_ec_key(key)
        .and_then(|k| k.public_key_to_der())
        .map_err(Error::internal)?;
    if !der.ends_with(&uncompressed) {
        return Err(Error::internal("EC key was not re-encoded uncompressed"));
    }
    Ok(der)
}

/// The canonical SubjectPublicKeyInfo of an RSA key: rsaEncryption with NULL parameters, minimal
/// INTEGERs, DER lengths.
fn rsa_canonical(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let n = BigNum::from_slice(modulus).map_err(Error::internal)?;
    let e = BigNum::from_slice(exponent).map_err(Error::internal)?;
    openssl::rsa::Rsa::from_public_components(n, e)
        .and_then(PKey::from_rsa)
        .and_then(|k| k.public_key_to_der())
        .map_err(Error::internal)
}

/// The point must decode (OpenSSL checks that it lies on the curve) and not be the point at
/// infinity. P-256 and P-384 have cofactor 1, so every such point has the full prime order and no
/// further (costly) order check is needed.
fn check_ec_point(group: &EcGroup, point: &[u8]) -> Result<EcPoint> {
    let invalid = || {
        Error::refused(
            "invalid_ec_point",
            "the EC public key is not a valid point on its curve",
        )
    };
    let mut ctx = BigNumContext::new().map_err(Error::internal)?;
    let point = EcPoint::from_bytes(group, point, &mut ctx).map_err(|_| {
        let _ = openssl::error::ErrorStack::get();
        invalid()
    })?;
    if point.is_infinity(group) {
        return Err(invalid());
    }
    Ok(point)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// A DER TLV; `long` writes the length with a needless extra octet (0x83 0x00 + two bytes).
    pub(crate) fn tlv(tag: u8, content: &[u8], long: bool) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if long {
            out.extend_from_slice(&[0x83, 0x00, (n >> 8) as u8, n as u8]);
        } else if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend_from_slice(&[0x81, n as u8]);
        } else {
            out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    /// An RSA SPKI for (n, e) in several encodings.
    pub(crate) fn rsa_spki(n: &[u8], e: &[u8], null: bool, zeros: usize, long: bool) -> Vec<u8> {
        let mut modulus = vec![0u8; zeros];
        if n[0] & 0x80 != 0 {
            modulus.push(0);
        }
        modulus.extend_from_slice(n);
        let ints = [tlv(0x02, &modulus, long), tlv(0x02, e, false)].concat();
        let mut bits = vec![0u8];
        bits.extend(tlv(0x30, &ints, long));
        let mut alg = tlv(0x06, OID_RSA, false);
        if null {
            alg.extend_from_slice(&[0x05, 0x00]);
        }
        let body = [tlv(0x30, &alg, false), tlv(0x03, &bits, long)].concat();
        tlv(0x30, &body, long)
    }

    /// A P-256 SPKI carrying `point` as given.
    pub(crate) fn p256_spki(point: &[u8]) -> Vec<u8> {
        let alg = [tlv(0x06, OID_EC, false), tlv(0x06, OID_P256, false)].concat();
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        tlv(
            0x30,
            &[tlv(0x30, &alg, false), tlv(0x03, &bits, false)].concat(),
            false,
        )
    }

    fn p256_point(key: &EcKey<openssl::pkey::Private>, form: PointConversionForm) -> Vec<u8> {
        let mut ctx = BigNumContext::new().unwrap();
        key.public_key()
            .to_bytes(key.group(), form, &mut ctx)
            .unwrap()
    }

    #[test]
    fn an_ec_key_has_one_identity_in_every_point_form() {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let plain = PKey::from_ec_key(key.clone())
            .unwrap()
            .public_key_to_der()
            .unwrap();
        let canonical = CheckedKey::from_spki(&plain).unwrap();
        assert_eq!(
            canonical.spki_der, plain,
            "OpenSSL's default form is the canonical one"
        );
        let compressed = p256_spki(&p256_point(&key, PointConversionForm::COMPRESSED));
        assert_ne!(compressed, plain);
        let k = CheckedKey::from_spki(&compressed).unwrap();
        assert_eq!(k.spki_der, plain);
        assert_eq!(k.fingerprint, canonical.fingerprint);
        assert_eq!(identity(&compressed).unwrap(), canonical.fingerprint);
        // The hybrid form is refused outright (RFC 5480).
        let hybrid = p256_spki(&p256_point(&key, PointConversionForm::HYBRID));
        let err = CheckedKey::from_spki(&hybrid).unwrap_err();
        assert_eq!(err.code(), "invalid_ec_point");
        assert!(err.to_string().contains("hybrid"), "{err}");
    }

    #[test]
    fn an_rsa_key_has_one_identity_in_every_encoding() {
        let rsa = Rsa::generate(2048).unwrap();
        let (n, e) = (rsa.n().to_vec(), rsa.e().to_vec());
        let plain = PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap();
        assert_eq!(
            rsa_spki(&n, &e, true, 0, false),
            plain,
            "the helper's DER is OpenSSL's"
        );
        let canonical = CheckedKey::from_spki(&plain).unwrap();
        for (null, long) in [(false, false), (true, true), (false, true)] {
            let variant = rsa_spki(&n, &e, null, 0, long);
            assert_ne!(variant, plain);
            let k = CheckedKey::from_spki(&variant)
                .unwrap_or_else(|err| panic!("null={null} long={long}: {err}"));
            assert_eq!(k.spki_der, plain, "null={null} long={long}");
            assert_eq!(k.fingerprint, canonical.fingerprint);
            assert_eq!(identity(&variant).unwrap(), canonical.fingerprint);
        }
        // Leading zero octets make an INTEGER that BER and DER both forbid (X.690 8.3.2).
        let padded = rsa_spki(&n, &e, true, 2, false);
        assert_eq!(
            CheckedKey::from_spki(&padded).unwrap_err().code(),
            "bad_csr"
        );
        // Parameters other than NULL are not an encoding of the same key.
        let mut odd = rsa_spki(&n, &e, true, 0, false);
        let at = odd.windows(2).position(|w| w == [0x05, 0x00]).unwrap();
        odd[at] = 0x04; // an empty OCTET STRING in place of NULL
        assert_eq!(CheckedKey::from_spki(&odd).unwrap_err().code(), "bad_csr");
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
