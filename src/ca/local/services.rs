//! What only the embedded CA does: sign the CRLs Vouch publishes, and issue the certificates of
//! Vouch's own services (the delegated OCSP responder, the receipt signer).

use super::{key_identifier, LocalCa};
use crate::ca::{CaError, CrlOrder, PublishingCa};
use async_trait::async_trait;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

#[async_trait]
impl PublishingCa for LocalCa {
    async fn sign_crl(&self, order: &CrlOrder) -> Result<Vec<u8>, CaError> {
        self.sign_crl_now(order)
    }

    async fn issue_ocsp_responder(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Unavailable(format!("OCSP key: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            DnValue::Utf8String("Vouch OCSP Responder".into()),
        );
        params.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        params.not_before = not_before;
        params.not_after = not_after.min(self.issuing_not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.der_bytes()));
        // id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): relying parties need not check this certificate.
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
                vec![0x05, 0x00],
            ));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Unavailable(format!("signing OCSP responder: {e}")))?;
        let pkcs8 = Zeroizing::new(key.serialize_der());
        let mut key = key;
        key.zeroize();
        Ok((pkcs8, cert.der().to_vec()))
    }

    async fn issue_receipt_signer(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Unavailable(format!("receipt key: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            DnValue::Utf8String("Vouch Verification Receipts".into()),
        );
        params.serial_number = Some(SerialNumber::from_slice(
            crate::x509::serial::Serial::random().as_bytes(),
        ));
        params.not_before = not_before;
        params.not_after = not_after.min(self.issuing_not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.der_bytes()));
        // extendedKeyUsage: Vouch's receipt purpose (a UUID arc, beyond rcgen's u64 arcs) and
        // id-kp-emailProtection.
        let mut purposes = crate::x509::der::tlv(0x06, &crate::ca::RECEIPT_SIGNING_EKU);
        purposes.extend_from_slice(&crate::x509::der::tlv(
            0x06,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04],
        ));
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 37],
                crate::x509::der::tlv(0x30, &purposes),
            ));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Unavailable(format!("signing the receipt signer: {e}")))?;
        let pkcs8 = Zeroizing::new(key.serialize_der());
        let mut key = key;
        key.zeroize();
        Ok((pkcs8, cert.der().to_vec()))
    }
}
