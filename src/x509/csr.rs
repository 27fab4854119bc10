//! Certificate signing requests. The RA uses a CSR for one thing only: proof that the applicant
//! holds the private key. Its subject and requested extensions are ignored; the profile and the
//! vetted subscriber record decide what is certified.

use crate::error::{Error, Result};
use crate::x509::key::CheckedKey;
use openssl::x509::X509Req;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Version;

/// Upper bound on a PEM CSR: an RSA-8192 request with some attributes fits in well under this.
pub const MAX_CSR_PEM_BYTES: usize = 16 * 1024;

/// Signature algorithms accepted on CSRs (SHA-2 family; no MD5 or SHA-1).
const ACCEPTED_SIGNATURE_OIDS: &[&str] = &[
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
    "1.2.840.10045.4.3.4",   // ecdsa-with-SHA512
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.113549.1.1.10", // RSASSA-PSS
];

/// RSASSA-PSS names its hashes in parameters that default to SHA-1: require SHA-2 for both the
/// message hash and MGF1.
fn check_pss_hashes(alg: &x509_parser::x509::AlgorithmIdentifier<'_>) -> Result<()> {
    use x509_parser::signature_algorithm::SignatureAlgorithm;
    let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(alg) else {
        return Ok(());
    };
    let weak = || {
        Error::refused(
            "weak_signature_algorithm",
            "RSASSA-PSS must use SHA-256, SHA-384 or SHA-512 for the hash and MGF1",
        )
    };
    let hash = params.hash_algorithm_oid().to_id_string();
    if ![
        "2.16.840.1.101.3.4.2.1",
        "2.16.840.1.101.3.4.2.2",
        "2.16.840.1.101.3.4.2.3",
    ]
    .contains(&hash.as_str())
    {
        return Err(weak());
    }
    // MGF1's parameter is an AlgorithmIdentifier naming its hash; it must be the same SHA-2.
    let hash_oid = params.hash_algorithm_oid().as_bytes().to_vec();
    let mgf_ok = params
        .mask_gen_algorithm_raw()
        .and_then(|m| m.parameters.as_ref())
        .is_some_and(|p| {
            p.data
                .windows(hash_oid.len())
                .any(|w| w == hash_oid.as_slice())
        });
    if !mgf_ok {
        return Err(weak());
    }
    Ok(())
}

/// A CSR whose signature verified with its own key and whose key passed the key rules.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    pub der: Vec<u8>,
    pub key: CheckedKey,
}

impl CheckedCsr {
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.len() > MAX_CSR_PEM_BYTES {
            return Err(Error::invalid(
                "bad_csr",
                format!("CSR larger than {MAX_CSR_PEM_BYTES} bytes"),
            ));
        }
        let trimmed = pem.trim_start();
        if !trimmed.starts_with("-----BEGIN CERTIFICATE REQUEST-----")
            && !trimmed.starts_with("-----BEGIN NEW CERTIFICATE REQUEST-----")
        {
            return Err(Error::invalid(
                "bad_csr",
                "csr must be a PEM \"CERTIFICATE REQUEST\"",
            ));
        }
        let req = X509Req::from_pem(trimmed.as_bytes())
            .map_err(|_| Error::invalid("bad_csr", "csr is not a well-formed PKCS#10 request"))?;
        let der = req
            .to_der()
            .map_err(|_| Error::invalid("bad_csr", "csr could not be re-encoded"))?;
        Self::check(&req, &der)
    }

    pub fn from_der(der: &[u8]) -> Result<Self> {
        let req = X509Req::from_der(der)
            .map_err(|_| Error::invalid("bad_csr", "csr is not a well-formed PKCS#10 request"))?;
        Self::check(&req, der)
    }

    /// `req` and `der` are the same request, parsed by OpenSSL and as bytes.
    fn check(req: &X509Req, der: &[u8]) -> Result<Self> {
        let (rest, parsed) =
            x509_parser::certification_request::X509CertificationRequest::from_der(der).map_err(
                |e| {
                    Error::invalid(
                        "bad_csr",
                        format!("csr is not a well-formed PKCS#10 request: {e}"),
                    )
                },
            )?;
        if !rest.is_empty() {
            return Err(Error::invalid("bad_csr", "trailing bytes after the CSR"));
        }
        if parsed.certification_request_info.version != X509Version(0) {
            return Err(Error::invalid("bad_csr", "CSR version must be v1 (0)"));
        }
        let sig_oid = parsed.signature_algorithm.algorithm.to_id_string();
        if !ACCEPTED_SIGNATURE_OIDS.contains(&sig_oid.as_str()) {
            return Err(Error::refused(
                "weak_signature_algorithm",
                format!("CSR signature algorithm {sig_oid} is not accepted (use SHA-2 with ECDSA or RSA)"),
            ));
        }
        check_pss_hashes(&parsed.signature_algorithm)?;
        let key = CheckedKey::from_spki(parsed.certification_request_info.subject_pki.raw)?;
        // The key OpenSSL decoded while parsing the request: no second decode.
        let pkey = req
            .public_key()
            .map_err(|_| Error::invalid("bad_csr", "the CSR public key could not be decoded"))?;
        let verified = req.verify(&pkey);
        // A signature that does not verify answers Ok(false) and leaves OpenSSL's reasons in this
        // thread's error queue. Left there, they surface in the next OpenSSL call on the thread,
        // such as a TLS read of the database connection, as that call's failure.
        let _ = openssl::error::ErrorStack::get();
        match verified {
            Ok(true) => Ok(CheckedCsr {
                der: der.to_vec(),
                key,
            }),
            _ => Err(Error::refused(
                "csr_signature_invalid",
                "the CSR signature does not verify with its public key",
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::X509ReqBuilder;

    pub fn ec_key(nid: Nid) -> PKey<Private> {
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
            .unwrap()
    }

    pub fn csr_pem(key: &PKey<Private>, md: MessageDigest) -> String {
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_pubkey(key).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ignored").unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.sign(key, md).unwrap();
        String::from_utf8(b.build().to_pem().unwrap()).unwrap()
    }

    #[test]
    fn accepts_p384_key_signed_with_sha256() {
        let csr = CheckedCsr::from_pem(&csr_pem(&ec_key(Nid::SECP384R1), MessageDigest::sha256()))
            .unwrap();
        assert_eq!(csr.key.bits, 384);
    }

    #[test]
    fn refuses_bad_signature() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let pem = csr_pem(&key, MessageDigest::sha256());
        let req = X509Req::from_pem(pem.as_bytes()).unwrap();
        let mut der = req.to_der().unwrap();
        // The signature is the last element: flip a byte inside it.
        let n = der.len();
        der[n - 5] ^= 0x40;
        assert_eq!(
            CheckedCsr::from_der(&der).unwrap_err().code(),
            "csr_signature_invalid"
        );
        // Nothing is left in OpenSSL's error queue to break this thread's next TLS read.
        let left = openssl::error::ErrorStack::get();
        assert!(left.errors().is_empty(), "{left}");
    }

    #[test]
    fn refuses_sha1() {
        let pem = csr_pem(&ec_key(Nid::X9_62_PRIME256V1), MessageDigest::sha1());
        assert_eq!(
            CheckedCsr::from_pem(&pem).unwrap_err().code(),
            "weak_signature_algorithm"
        );
    }

    /// Mutated requests (bit flips, truncations, insertions) are refused with a typed error and
    /// never panic; the few that still verify are accepted only with a valid key.
    #[test]
    fn mutated_requests_never_panic() {
        let pem = csr_pem(&ec_key(Nid::X9_62_PRIME256V1), MessageDigest::sha256());
        let der = X509Req::from_pem(pem.as_bytes()).unwrap().to_der().unwrap();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut m = der.clone();
            match next() % 3 {
                0 => {
                    let i = (next() as usize) % m.len();
                    m[i] ^= 1 << (next() % 8);
                }
                1 => m.truncate((next() as usize) % m.len()),
                _ => {
                    let i = (next() as usize) % m.len();
                    m.insert(i, next() as u8);
                }
            }
            if let Ok(csr) = CheckedCsr::from_der(&m) {
                assert!(CheckedKey::from_spki(&csr.key.spki_der).is_ok());
            }
        }
    }

    /// RSASSA-PSS CSRs as `openssl req -sigopt rsa_padding_mode:pss` makes them.
    #[test]
    fn pss_needs_sha2_throughout() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        std::fs::write(&key, rsa.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let pss_csr = |digest: &str| {
            let out = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-subj",
                    "/CN=x",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    digest,
                    "-key",
                ])
                .arg(&key)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert!(CheckedCsr::from_pem(&pss_csr("-sha256")).is_ok());
        assert_eq!(
            CheckedCsr::from_pem(&pss_csr("-sha1")).unwrap_err().code(),
            "weak_signature_algorithm"
        );
    }

    #[test]
    fn refuses_garbage_and_oversize() {
        assert_eq!(CheckedCsr::from_pem("hello").unwrap_err().code(), "bad_csr");
        let junk = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(CheckedCsr::from_pem(junk).unwrap_err().code(), "bad_csr");
        let big = "x".repeat(MAX_CSR_PEM_BYTES + 1);
        assert_eq!(CheckedCsr::from_pem(&big).unwrap_err().code(), "bad_csr");
    }
}
