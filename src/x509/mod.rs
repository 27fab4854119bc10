//! DER-level work: CSR checks, certificate profiles, serial numbers and subject names. Depends on
//! crypto crates only.

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

/// PEM-encode one DER object.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
