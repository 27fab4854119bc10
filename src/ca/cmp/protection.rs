//! Message protection (RFC 4210 5.1.3, algorithms of RFC 9481): Vouch signs its requests with the
//! RA's key (the RA's certificate first in extraCerts, its subjectKeyIdentifier as senderKID) or
//! MACs them with a password-based MAC (PBM: SHA-256 one-way function, HMAC-SHA256, a fresh salt
//! per message). Every answer's protection is checked: a signature against the pinned server
//! certificate, or against a certificate of its extraCerts that chains to the trust anchor and
//! whose subject is the answer's sender; a PBM with the shared secret.

use super::message::{oid, Algorithm, Received};
use crate::x509::der::{tlv, DerError, Reader};
use der::asn1::ObjectIdentifier;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

/// id-PasswordBasedMac (RFC 4210 5.1.3.1).
const PBM: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113533.7.66.13");
/// The iterations of the one-way function in the PBMs Vouch makes.
const PBM_ITERATIONS: u64 = 10_000;
/// Most iterations accepted in a CA's PBM (a bound on the work an answer can ask for; OpenSSL
/// refuses more than this too).
const MAX_PBM_ITERATIONS: u64 = 100_000;
/// Fewest iterations accepted in a CA's PBM.
const MIN_PBM_ITERATIONS: u64 = 100;

/// A digest by its constructor.
type Digest = fn() -> MessageDigest;

/// Digests by OID (one-way functions of a PBM).
const DIGESTS: [(&str, Digest); 4] = [
    ("1.3.14.3.2.26", MessageDigest::sha1),
    ("2.16.840.1.101.3.4.2.1", MessageDigest::sha256),
    ("2.16.840.1.101.3.4.2.2", MessageDigest::sha384),
    ("2.16.840.1.101.3.4.2.3", MessageDigest::sha512),
];

/// HMACs by OID (the MAC of a PBM): hmac-sha1 (RFC 3370's and PKCS #5's), hmacWithSHA2.
const HMACS: [(&str, Digest); 5] = [
    ("1.3.6.1.5.5.8.1.2", MessageDigest::sha1),
    ("1.2.840.113549.2.7", MessageDigest::sha1),
    ("1.2.840.113549.2.9", MessageDigest::sha256),
    ("1.2.840.113549.2.10", MessageDigest::sha384),
    ("1.2.840.113549.2.11", MessageDigest::sha512),
];

/// Signature algorithms accepted on answers (and used on requests): OID, digest (None: EdDSA),
/// key type.
const SIGNATURES: [(&str, Option<Digest>, Id); 7] = [
    ("1.2.840.10045.4.3.2", Some(MessageDigest::sha256), Id::EC),
    ("1.2.840.10045.4.3.3", Some(MessageDigest::sha384), Id::EC),
    ("1.2.840.10045.4.3.4", Some(MessageDigest::sha512), Id::EC),
    (
        "1.2.840.113549.1.1.11",
        Some(MessageDigest::sha256),
        Id::RSA,
    ),
    (
        "1.2.840.113549.1.1.12",
        Some(MessageDigest::sha384),
        Id::RSA,
    ),
    (
        "1.2.840.113549.1.1.13",
        Some(MessageDigest::sha512),
        Id::RSA,
    ),
    ("1.3.101.112", None, Id::ED25519),
];

fn lookup<T: Copy>(table: &[(&str, T)], alg: &[u8]) -> Option<T> {
    table
        .iter()
        .find(|(o, _)| ObjectIdentifier::new(o).is_ok_and(|o| o.as_bytes() == alg))
        .map(|(_, t)| *t)
}

/// How Vouch protects its requests.
pub enum Protector {
    /// A signature by the RA's key.
    Signature {
        /// The RA's private key.
        key: PKey<Private>,
        /// The RA's certificate, DER (first of extraCerts).
        cert: Vec<u8>,
        /// The signature AlgorithmIdentifier, DER.
        alg: Vec<u8>,
        /// The digest (None: Ed25519).
        digest: Option<MessageDigest>,
    },
    /// A password-based MAC with the shared secret.
    Pbm {
        /// The shared secret.
        secret: Zeroizing<Vec<u8>>,
    },
}

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protector::Signature { .. } => "Protector::Signature",
            Protector::Pbm { .. } => "Protector::Pbm",
        })
    }
}

impl Protector {
    /// Signature protection with the RA's `key` and certificate `cert` (DER). The algorithm
    /// follows the key: ECDSA with SHA-256 (P-256) or SHA-384 (P-384, P-521), RSA with SHA-256,
    /// Ed25519.
    pub fn signature(key: PKey<Private>, cert: Vec<u8>) -> Result<Protector, String> {
        let (alg, digest) = signature_algorithm(&key)?;
        let x = X509::from_der(&cert).map_err(|e| e.to_string())?;
        let public = x.public_key().map_err(|e| e.to_string())?;
        if !public.public_eq(&key) {
            return Err("the RA certificate does not certify the RA key".into());
        }
        Ok(Protector::Signature {
            key,
            cert,
            alg,
            digest,
        })
    }

    /// The protectionAlg for the next message (a PBM's carries a fresh salt).
    pub fn algorithm(&self) -> Vec<u8> {
        match self {
            Protector::Signature { alg, .. } => alg.clone(),
            Protector::Pbm { .. } => {
                let mut salt = [0u8; 16];
                rand::Rng::fill(&mut rand::thread_rng(), &mut salt);
                pbm_algorithm(&salt, PBM_ITERATIONS)
            }
        }
    }

    /// The RA's certificate for extraCerts (signature protection only).
    pub fn extra_certs(&self) -> Vec<Vec<u8>> {
        match self {
            Protector::Signature { cert, .. } => vec![cert.clone()],
            Protector::Pbm { .. } => Vec::new(),
        }
    }

    /// The protection of `part` (a ProtectedPart whose header carries `alg`, from
    /// [`Protector::algorithm`]).
    pub fn protect(&self, alg: &[u8], part: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Protector::Signature { key, digest, .. } => sign_with(key, *digest, part),
            Protector::Pbm { secret } => {
                let mut r = Reader::new(alg);
                let content = r.read(0x30, "protectionAlg").map_err(|e| e.0)?;
                let a = Algorithm::parse(content).map_err(|e| e.0)?;
                pbm_mac(secret, &a, part)
            }
        }
    }
}

/// The signature AlgorithmIdentifier (DER) Vouch signs with by `key`, and its digest (None:
/// Ed25519): ECDSA with SHA-256 (P-256) or SHA-384 (P-384, P-521), RSA with SHA-256, Ed25519.
fn signature_algorithm(key: &PKey<Private>) -> Result<(Vec<u8>, Option<MessageDigest>), String> {
    let (name, digest) = match key.id() {
        Id::EC => {
            if key.bits() > 256 {
                ("1.2.840.10045.4.3.3", Some(MessageDigest::sha384()))
            } else {
                ("1.2.840.10045.4.3.2", Some(MessageDigest::sha256()))
            }
        }
        Id::RSA => ("1.2.840.113549.1.1.11", Some(MessageDigest::sha256())),
        Id::ED25519 => ("1.3.101.112", None),
        other => return Err(format!("keys of type {other:?} cannot sign CMP messages")),
    };
    let o = ObjectIdentifier::new(name).map_err(|e| e.to_string())?;
    let mut alg = oid(&o);
    if key.id() == Id::RSA {
        alg.extend_from_slice(&[0x05, 0x00]);
    }
    Ok((tlv(0x30, &alg), digest))
}

/// `data` signed by `key`: the AlgorithmIdentifier (DER) and the signature value (a CRMF
/// proof of possession, RFC 4211 4.1).
pub fn sign(key: &PKey<Private>, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (alg, digest) = signature_algorithm(key)?;
    Ok((alg, sign_with(key, digest, data)?))
}

/// `data` signed by `key` with `digest` (None: Ed25519, which hashes itself).
fn sign_with(
    key: &PKey<Private>,
    digest: Option<MessageDigest>,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let mut signer = match digest {
        Some(d) => openssl::sign::Signer::new(d, key),
        None => openssl::sign::Signer::new_without_digest(key),
    }
    .map_err(|e| e.to_string())?;
    signer.sign_oneshot_to_vec(data).map_err(|e| e.to_string())
}

/// The AlgorithmIdentifier of a PBM with SHA-256, HMAC-SHA256, `salt` and `iterations`.
fn pbm_algorithm(salt: &[u8], iterations: u64) -> Vec<u8> {
    let owf = tlv(
        0x30,
        &oid(&ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1")),
    );
    let mac = tlv(
        0x30,
        &oid(&ObjectIdentifier::new_unwrap("1.2.840.113549.2.9")),
    );
    let params = tlv(
        0x30,
        &[
            tlv(0x04, salt),
            owf,
            crate::x509::der::uint(iterations),
            mac,
        ]
        .concat(),
    );
    tlv(0x30, &[oid(&PBM), params].concat())
}

/// The PBM of `part` under `secret` with the parameters of `alg` (RFC 4210 5.1.3.1): the key is
/// the one-way function applied `iterationCount` times to secret || salt, the MAC an HMAC with it.
fn pbm_mac(secret: &[u8], alg: &Algorithm, part: &[u8]) -> Result<Vec<u8>, String> {
    if !alg.is(&PBM) {
        return Err("the protection is not a password-based MAC".into());
    }
    let params = alg.params.as_deref().ok_or("the PBM has no parameters")?;
    let parse = || -> Result<(Vec<u8>, Algorithm, u64, Algorithm), DerError> {
        let mut outer = Reader::new(params);
        let mut r = Reader::new(outer.read(0x30, "PBMParameter")?);
        outer.finish("PBMParameter")?;
        let salt = r.read(0x04, "salt")?.to_vec();
        let owf = Algorithm::parse(r.read(0x30, "owf")?)?;
        let count = r.read(0x02, "iterationCount")?;
        let mac = Algorithm::parse(r.read(0x30, "mac")?)?;
        r.finish("PBMParameter")?;
        if count.is_empty() || count.len() > 4 || count[0] & 0x80 != 0 {
            return Err(DerError("iterationCount out of range".into()));
        }
        let n = count.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        Ok((salt, owf, n, mac))
    };
    let (salt, owf, iterations, mac) = parse().map_err(|e| e.0)?;
    if !(MIN_PBM_ITERATIONS..=MAX_PBM_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "the PBM's iterationCount {iterations} is not between {MIN_PBM_ITERATIONS} and \
             {MAX_PBM_ITERATIONS}"
        ));
    }
    if salt.len() > 128 {
        return Err("the PBM's salt is over 128 bytes".into());
    }
    let owf = lookup(&DIGESTS, &owf.oid).ok_or("the PBM's one-way function is not supported")?();
    let hmac = lookup(&HMACS, &mac.oid).ok_or("the PBM's MAC is not supported")?();
    let mut key = secret_digest(owf, &[secret, &salt])?;
    for _ in 1..iterations {
        key = secret_digest(owf, &[&key])?;
    }
    let pkey = PKey::hmac(&key).map_err(|e| e.to_string())?;
    let mut signer = openssl::sign::Signer::new(hmac, &pkey).map_err(|e| e.to_string())?;
    signer.sign_oneshot_to_vec(part).map_err(|e| e.to_string())
}

/// The digest with `md` of the concatenation of `parts`, where the parts or the digest are secret
/// (the PBM's secret and its keys): hashed part by part, so that no unzeroized copy of secret ||
/// salt is made, and finished straight into the zeroized result (openssl's `DigestBytes` is
/// `Copy`: each move of one would leave an unwiped copy of the key behind).
fn secret_digest(
    md: openssl::hash::MessageDigest,
    parts: &[&[u8]],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let alg = openssl::md::Md::from_nid(md.type_()).ok_or("an unknown digest")?;
    let mut ctx = openssl::md_ctx::MdCtx::new().map_err(e)?;
    ctx.digest_init(alg).map_err(e)?;
    for part in parts {
        ctx.digest_update(part).map_err(e)?;
    }
    let mut out = Zeroizing::new(vec![0u8; alg.size()]);
    let n = ctx.digest_final(&mut out).map_err(e)?;
    out.truncate(n);
    Ok(out)
}

/// How Vouch checks the CA's answers.
pub enum Checker {
    /// A signature by the CA's CMP server.
    Signature {
        /// Certificates the server's certificate must chain to.
        anchors: Vec<X509>,
        /// The server's own certificate, when pinned: then only it may sign.
        pinned: Option<X509>,
    },
    /// A PBM with the shared secret.
    Pbm {
        /// The shared secret.
        secret: Zeroizing<Vec<u8>>,
    },
}

impl Checker {
    /// Check `msg`'s protection; the error says what is wrong.
    pub fn check(&self, msg: &Received) -> Result<(), String> {
        let alg = msg
            .protection_alg
            .as_ref()
            .ok_or("the answer has no protectionAlg")?;
        let value = msg
            .protection
            .as_deref()
            .ok_or("the answer is not protected")?;
        match self {
            Checker::Pbm { secret } => {
                let want = pbm_mac(secret, alg, &msg.protected_part)?;
                if want.len() != value.len() || !openssl::memcmp::eq(&want, value) {
                    return Err(
                        "its password-based MAC does not verify with the shared secret \
                                (wrong secret?)"
                            .into(),
                    );
                }
                Ok(())
            }
            Checker::Signature { anchors, pinned } => {
                if alg.is(&PBM) {
                    return Err(
                        "it is protected by a password-based MAC, but Vouch expects the \
                                CA's signature (protection = \"signature\")"
                            .into(),
                    );
                }
                let (digest, key_type) = lookup(&SIGNATURES.map(|(o, d, k)| (o, (d, k))), &alg.oid)
                    .ok_or("its signature algorithm is not supported")?;
                let signer = match pinned {
                    Some(cert) => cert.clone(),
                    None => chained_signer(msg, anchors)?,
                };
                let key = signer.public_key().map_err(|e| e.to_string())?;
                if key.id() != key_type {
                    return Err("its signature algorithm does not match the signer's key".into());
                }
                let mut verifier = match digest {
                    Some(d) => openssl::sign::Verifier::new(d(), &key),
                    None => openssl::sign::Verifier::new_without_digest(&key),
                }
                .map_err(|e| e.to_string())?;
                let ok = verifier
                    .verify_oneshot(value, &msg.protected_part)
                    .unwrap_or(false);
                if !ok {
                    return Err(format!(
                        "its signature does not verify with the key of {}",
                        name_text(signer.subject_name())
                    ));
                }
                let subject = signer.subject_name().to_der().map_err(|e| e.to_string())?;
                if msg.sender != super::message::directory_name(&subject) {
                    return Err(format!(
                        "its sender is not {}, the subject of the certificate that signed it",
                        name_text(signer.subject_name())
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The certificate among `msg`'s extraCerts (or the anchors) whose subject is the sender, checked to chain to `anchors` now, with the other extraCerts as
/// intermediates.
fn chained_signer(msg: &Received, anchors: &[X509]) -> Result<X509, String> {
    let certs: Vec<X509> = msg
        .extra_certs
        .iter()
        .filter_map(|d| X509::from_der(d).ok())
        .collect();
    let candidate = certs
        .iter()
        .chain(anchors.iter())
        .find(|c| {
            c.subject_name()
                .to_der()
                .is_ok_and(|s| super::message::directory_name(&s) == msg.sender)
        })
        .ok_or("none of its extraCerts is the certificate of its sender")?;
    let build = || -> Result<bool, openssl::error::ErrorStack> {
        let mut store = openssl::x509::store::X509StoreBuilder::new()?;
        for a in anchors {
            store.add_cert(a.clone())?;
        }
        let store = store.build();
        let mut untrusted = openssl::stack::Stack::new()?;
        for c in &certs {
            untrusted.push(c.clone())?;
        }
        let mut ctx = openssl::x509::X509StoreContext::new()?;
        ctx.init(&store, candidate, &untrusted, |c| c.verify_cert())
    };
    match build() {
        Ok(true) => Ok(candidate.clone()),
        Ok(false) => Err(format!(
            "the certificate of its sender, {}, does not chain to the trust anchor",
            name_text(candidate.subject_name())
        )),
        Err(e) => Err(format!("its signer's chain cannot be checked: {e}")),
    }
}

/// A name for messages, as OpenSSL prints it.
pub fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pbm_is_the_iterated_hash_then_hmac() {
        // One iteration: key = SHA-256(secret || salt).
        let alg = pbm_algorithm(b"salt", 100);
        let a = Algorithm::parse(Reader::new(&alg).read(0x30, "a").unwrap()).unwrap();
        let mac = pbm_mac(b"secret", &a, b"part").unwrap();
        let mut key = openssl::sha::sha256(b"secretsalt");
        for _ in 1..100 {
            key = openssl::sha::sha256(&key);
        }
        let pkey = PKey::hmac(&key).unwrap();
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        assert_eq!(mac, s.sign_oneshot_to_vec(b"part").unwrap());
        // The iteration count an answer may ask for is bounded.
        let big = pbm_algorithm(b"salt", MAX_PBM_ITERATIONS + 1);
        let a = Algorithm::parse(Reader::new(&big).read(0x30, "a").unwrap()).unwrap();
        assert!(pbm_mac(b"secret", &a, b"part")
            .unwrap_err()
            .contains("iterationCount"));
    }
}
