//! DER-level work: CSR checks, certificate profiles, serial numbers and subject names, CRLs and
//! OCSP. Depends on crypto crates only.

pub mod ac;
pub mod aia;
pub mod certificate;
pub mod cms;
pub mod crl;
pub mod csr;
pub mod der;
pub mod freshness;
pub mod key;
pub mod ocsp;
pub mod profile;
pub mod revocation;
pub mod serial;
pub mod signature;
pub mod subject;
pub mod weak;

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Key identifier by RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey BIT STRING's value.
pub fn key_identifier(subject_public_key: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(subject_public_key)[..20].to_vec()
}

/// PEM-encode one DER object: RFC 7468 lines of 64 characters, each ending in `\n`.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

#[cfg(test)]
mod tests {
    /// The encoding the RA wrote before it used the `pem` crate: the same bytes must come out.
    fn by_hand(label: &str, der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    #[test]
    fn pem_lines_are_64_characters_with_lf() {
        for n in [0, 1, 2, 3, 47, 48, 49, 96, 1000] {
            let der: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            assert_eq!(
                super::pem_encode("CERTIFICATE", &der),
                by_hand("CERTIFICATE", &der),
                "{n} bytes"
            );
        }
    }
}
