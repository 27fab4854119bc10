//! Certificate signing requests. The RA uses a CSR for one thing only: proof that the applicant
//! holds the private key. Its subject and requested extensions are ignored; the profile and the
//! vetted subscriber record decide what is certified.

use crate::error::{Error, Result};
use crate::x509::key::CheckedKey;
use base64::Engine;
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

const PEM_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/// The DER inside a PEM CSR, read strictly (RFC 7468 §2, without explanatory text).
///
/// Written here rather than with the `pem` crate (which [`crate::x509::pem_encode`] uses): its
/// reader is lenient where this one must refuse, and would answer other errors. It skips text
/// before and after the block, accepts RFC 1421 headers, and reads everything before a blank
/// line as headers, so a request whose base64 has a blank line in it (accepted here, as
/// whitespace) would be refused as a bad header; each refusal below names what is wrong in the
/// applicant's terms.
fn pem_body(pem: &str) -> Result<Vec<u8>> {
    let bad = |msg: String| Error::invalid("bad_csr", msg);
    let text = pem.trim_start();
    let label = PEM_LABELS
        .into_iter()
        .find(|l| {
            text.strip_prefix("-----BEGIN ")
                .and_then(|t| t.strip_prefix(l))
                .is_some_and(|t| t.starts_with("-----"))
        })
        .ok_or_else(|| {
            bad(
                "csr must be one PEM \"CERTIFICATE REQUEST\" block, starting with \
                 -----BEGIN CERTIFICATE REQUEST-----"
                    .into(),
            )
        })?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body_and_rest = &text[begin.len()..];
    let at = body_and_rest
        .find(&end)
        .ok_or_else(|| bad(format!("the PEM block has no {end} line")))?;
    let body = &body_and_rest[..at];
    let after = &body_and_rest[at + end.len()..];
    if body.contains("-----") {
        return Err(bad(
            "the PEM block holds another BEGIN or END line; send exactly one request".into(),
        ));
    }
    let after_trimmed = after.trim_start();
    if after_trimmed.starts_with("-----BEGIN") {
        return Err(bad(
            "more than one PEM block; send exactly one CERTIFICATE REQUEST".into(),
        ));
    }
    if !after_trimmed.is_empty() {
        return Err(bad(format!(
            "{} bytes of text after the {end} line; send the PEM block alone",
            after_trimmed.len()
        )));
    }
    if body.contains(':') {
        return Err(bad(
            "PEM headers (such as Proc-Type) are not accepted in a CSR".into(),
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if let Some(c) = b64
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
    {
        return Err(bad(format!(
            "the PEM body contains {c:?}, which is not base64"
        )));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .map_err(|e| bad(format!("the PEM body is not valid base64: {e}")))?;
    if der.is_empty() {
        return Err(bad("the PEM block is empty".into()));
    }
    Ok(der)
}

/// A CSR whose signature verified with its own key and whose key passed the key rules. Only
/// [`CheckedCsr::from_pem`] and [`CheckedCsr::from_der`] build one, so holding a `CheckedCsr`
/// means the checks ran.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    der: Vec<u8>,
    key: CheckedKey,
}

impl CheckedCsr {
    /// A PEM request, checked as sent: one CERTIFICATE REQUEST block (or the older NEW
    /// CERTIFICATE REQUEST label), nothing but whitespace around it, a body of strict base64,
    /// and DER with nothing after the request. The request is then the decoded bytes.
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.len() > MAX_CSR_PEM_BYTES {
            return Err(Error::invalid(
                "bad_csr",
                format!("CSR larger than {MAX_CSR_PEM_BYTES} bytes"),
            ));
        }
        let der = pem_body(pem)?;
        Self::from_der(&der)
    }

    /// A DER request, checked: well-formed PKCS#10 v1 with nothing after it, a SHA-2 signature
    /// that verifies with the request's own key, and a key that passes [`CheckedKey::from_spki`].
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let req = X509Req::from_der(der)
            .map_err(|_| Error::invalid("bad_csr", "csr is not a well-formed PKCS#10 request"))?;
        Self::check(&req, der)
    }

    /// The request as received (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The request's public key, checked.
    pub fn key(&self) -> &CheckedKey {
        &self.key
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
            return Err(Error::invalid(
                "bad_csr",
                format!(
                    "{} trailing bytes after the CSR's DER; send the request alone",
                    rest.len()
                ),
            ));
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
        assert_eq!(csr.key().bits(), 384);
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
                assert!(CheckedKey::from_spki(csr.key().spki_der()).is_ok());
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

    fn refusal(pem: &str) -> String {
        let err = CheckedCsr::from_pem(pem).unwrap_err();
        assert_eq!(err.code(), "bad_csr", "{err}");
        err.to_string()
    }

    /// The PEM is checked as sent, not as OpenSSL re-encodes what it managed to read.
    #[test]
    fn pem_is_checked_as_sent() {
        let pem = csr_pem(&ec_key(Nid::X9_62_PRIME256V1), MessageDigest::sha256());
        let der = X509Req::from_pem(pem.as_bytes()).unwrap().to_der().unwrap();
        // Whitespace around the block, CRLF line ends and other line lengths are fine.
        assert!(CheckedCsr::from_pem(&format!("\n  {pem}\n\n")).is_ok());
        assert!(CheckedCsr::from_pem(&pem.replace('\n', "\r\n")).is_ok());
        let one_line = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let accepted = CheckedCsr::from_pem(&one_line).unwrap();
        assert_eq!(accepted.der, der);
        let new_label = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert!(CheckedCsr::from_pem(&new_label).is_ok());

        let msg = refusal(&format!("{pem}trailing junk"));
        assert!(msg.contains("13 bytes of text after the -----END"), "{msg}");
        let msg = refusal(&format!("{pem}{pem}"));
        assert!(msg.contains("more than one PEM block"), "{msg}");
        let other = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(refusal(&format!("{pem}\n{other}")).contains("more than one PEM block"));
        let msg = refusal(&pem.replace("-----END CERTIFICATE REQUEST-----", ""));
        assert!(
            msg.contains("no -----END CERTIFICATE REQUEST----- line"),
            "{msg}"
        );
        let mismatched = pem.replace("END CERTIFICATE REQUEST", "END CERTIFICATE");
        assert!(refusal(&mismatched).contains("no -----END"));
        let msg = refusal(&pem.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1));
        assert!(msg.contains("PEM headers"), "{msg}");
        let (first, rest) = pem.split_once('\n').unwrap();
        let msg = refusal(&format!("{first}\n*{}", &rest[1..]));
        assert!(msg.contains("'*', which is not base64"), "{msg}");

        // DER with bytes after the request, wrapped in a clean PEM block.
        let mut padded = der.clone();
        padded.extend_from_slice(&[0, 0]);
        let msg = refusal(&crate::x509::pem_encode("CERTIFICATE REQUEST", &padded));
        assert!(
            msg.contains("2 trailing bytes after the CSR's DER"),
            "{msg}"
        );

        // Base64 with stray padding.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{b64}=\n-----END CERTIFICATE REQUEST-----\n"
        );
        assert!(refusal(&pem).contains("not valid base64"));
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
