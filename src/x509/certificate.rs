//! Reading an X.509 certificate's DER for the few facts the RA compares and records: its serial
//! number, its SubjectPublicKeyInfo and its notAfter. The RA checks what a CA returned against
//! what it ordered, and fingerprints keys, without parsing DER itself.

use x509_parser::prelude::FromDer;

/// What the RA reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The serial number's content octets, as encoded.
    pub serial: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// notAfter, in Unix seconds.
    pub not_after: i64,
    /// Whether bytes follow the certificate's DER.
    pub trailing_bytes: bool,
}

/// A certificate that could not be parsed; says why, in the parser's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parse the DER certificate at the start of `der`.
pub fn read(der: &[u8]) -> Result<CertificateInfo, ParseError> {
    let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| ParseError(e.to_string()))?;
    Ok(CertificateInfo {
        serial: cert.raw_serial().to_vec(),
        spki: cert.public_key().raw.to_vec(),
        not_after: cert.validity().not_after.timestamp(),
        trailing_bytes: !rest.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_and_trailing_bytes_are_noticed() {
        assert!(read(b"not a certificate").is_err());
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = openssl::pkey::PKey::from_ec_key(key).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        let serial = openssl::bn::BigNum::from_u32(0x1234).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::from_unix(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::from_unix(86_400).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let cert = b.build();
        let mut der = cert.to_der().unwrap();
        let info = read(&der).unwrap();
        assert_eq!(info.serial, vec![0x12, 0x34]);
        assert_eq!(info.spki, key.public_key_to_der().unwrap());
        assert_eq!(info.not_after, 86_400);
        assert!(!info.trailing_bytes);
        der.push(0);
        assert!(read(&der).unwrap().trailing_bytes);
    }
}
