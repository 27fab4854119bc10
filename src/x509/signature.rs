//! Checking a signature with the SubjectPublicKeyInfo read from a certificate's DER, for the
//! verification API's hot path: ECDSA on P-256 and P-384 (the keys Vouch issues for) through
//! ring, which takes the public point as it is, with no per-call algorithm or decoder lookups
//! (OpenSSL 3 spends more on those, and on the locks around them, than on a P-256 verification).
//! Every other key (RSA, other curves, a compressed point) goes through OpenSSL as before.

use crate::x509::der::Reader;
use openssl::hash::MessageDigest;
use sha2::Digest;

/// The SHA-2 digests accepted in signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The same digest, for OpenSSL.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        }
    }
}

const OID_EC_PUBLIC_KEY: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: [u8; 5] = [0x2b, 0x81, 0x04, 0x00, 0x22];

/// The named curve's OID and the uncompressed public point of an EC SubjectPublicKeyInfo, or
/// None for any other key.
fn ec_point(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut outer = Reader::new(spki);
    let mut seq = Reader::new(outer.read(0x30, "SubjectPublicKeyInfo").ok()?);
    outer.finish("SubjectPublicKeyInfo").ok()?;
    let mut alg = Reader::new(seq.read(0x30, "algorithm").ok()?);
    if alg.read(0x06, "algorithm").ok()? != OID_EC_PUBLIC_KEY {
        return None;
    }
    let curve = alg.read(0x06, "namedCurve").ok()?;
    alg.finish("algorithm").ok()?;
    let bits = seq.read(0x03, "subjectPublicKey").ok()?;
    seq.finish("SubjectPublicKeyInfo").ok()?;
    match bits {
        [0, point @ ..] if point.first() == Some(&0x04) => Some((curve, point)),
        _ => None,
    }
}

/// Whether `signature` (as the signature algorithm encodes it: an ECDSA-Sig-Value in DER, or an
/// RSA PKCS#1 v1.5 block) over `message` holds for the key `spki` (SubjectPublicKeyInfo, DER)
/// with the digest `hash`.
pub fn verify(spki: &[u8], hash: HashAlg, message: &[u8], signature: &[u8]) -> bool {
    use ring::signature as rs;
    if let Some((curve, point)) = ec_point(spki) {
        let alg: Option<&'static rs::EcdsaVerificationAlgorithm> = match (curve, hash) {
            (c, HashAlg::Sha256) if c == OID_P256 => Some(&rs::ECDSA_P256_SHA256_ASN1),
            (c, HashAlg::Sha384) if c == OID_P256 => Some(&rs::ECDSA_P256_SHA384_ASN1),
            (c, HashAlg::Sha256) if c == OID_P384 => Some(&rs::ECDSA_P384_SHA256_ASN1),
            (c, HashAlg::Sha384) if c == OID_P384 => Some(&rs::ECDSA_P384_SHA384_ASN1),
            _ => None,
        };
        if let Some(alg) = alg {
            return rs::UnparsedPublicKey::new(alg, point)
                .verify(message, signature)
                .is_ok();
        }
    }
    let ok = openssl::pkey::PKey::public_key_from_der(spki)
        .and_then(|key| {
            openssl::sign::Verifier::new(hash.message_digest(), &key)?
                .verify_oneshot(signature, message)
        })
        .unwrap_or(false);
    // A failed verification can leave entries on this thread's OpenSSL error queue that the next
    // OpenSSL user there (the database's TLS) would take for its own.
    let _ = openssl::error::ErrorStack::get();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;

    fn sign(key: &PKey<openssl::pkey::Private>, md: MessageDigest, msg: &[u8]) -> Vec<u8> {
        let mut s = openssl::sign::Signer::new(md, key).unwrap();
        s.sign_oneshot_to_vec(msg).unwrap()
    }

    /// Signatures OpenSSL made are accepted, and a changed message, signature or key refused,
    /// on every path: ring (P-256, P-384), OpenSSL (RSA, P-256 with SHA-512, compressed point).
    #[test]
    fn agrees_with_openssl_on_every_key_kind() {
        let ec = |nid| {
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
                .unwrap()
        };
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let cases = [
            (ec(Nid::X9_62_PRIME256V1), HashAlg::Sha256),
            (ec(Nid::X9_62_PRIME256V1), HashAlg::Sha384),
            (ec(Nid::X9_62_PRIME256V1), HashAlg::Sha512),
            (ec(Nid::SECP384R1), HashAlg::Sha384),
            (ec(Nid::SECP384R1), HashAlg::Sha256),
            (rsa, HashAlg::Sha256),
        ];
        let other = ec(Nid::X9_62_PRIME256V1).public_key_to_der().unwrap();
        for (key, hash) in cases {
            let spki = key.public_key_to_der().unwrap();
            let sig = sign(&key, hash.message_digest(), b"the form");
            assert!(verify(&spki, hash, b"the form", &sig), "{hash:?}");
            assert!(!verify(&spki, hash, b"the forn", &sig), "{hash:?}");
            let mut bent = sig.clone();
            let last = bent.len() - 1;
            bent[last] ^= 1;
            assert!(!verify(&spki, hash, b"the form", &bent), "{hash:?}");
            assert!(!verify(&other, hash, b"the form", &sig), "{hash:?}");
        }
        // The same P-256 key with its point compressed: OpenSSL's path, same answer.
        let key =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let pkey = PKey::from_ec_key(key.clone()).unwrap();
        let sig = sign(&pkey, MessageDigest::sha256(), b"x");
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let compressed = key
            .public_key()
            .to_bytes(
                key.group(),
                openssl::ec::PointConversionForm::COMPRESSED,
                &mut ctx,
            )
            .unwrap();
        let uncompressed = pkey.public_key_to_der().unwrap();
        let point_at = uncompressed.len() - 65;
        let mut spki = uncompressed[..point_at].to_vec();
        spki.extend_from_slice(&compressed);
        // Fix the lengths: BIT STRING and the outer SEQUENCE shrink by 32.
        spki[1] -= 32;
        spki[point_at - 2] -= 32;
        assert!(ec_point(&spki).is_none());
        assert!(verify(&spki, HashAlg::Sha256, b"x", &sig));
        assert!(!verify(&spki, HashAlg::Sha256, b"y", &sig));
    }

    #[test]
    fn garbage_keys_are_refused() {
        for spki in [&b""[..], b"\x30\x00", b"\x30\x03\x02\x01\x00", &[0u8; 91]] {
            assert!(!verify(
                spki,
                HashAlg::Sha256,
                b"x",
                b"\x30\x06\x02\x01\x01\x02\x01\x01"
            ));
        }
    }
}
