//! Building an attribute certificate's `AttributeCertificateInfo` (the bytes the AA signs) and the
//! signed certificate. The forms are listed in the module doc of [`super`].

use crate::x509::crl::{distribution_points, extension, time_digits, SignatureAlgorithm};
use crate::x509::der::{push_tlv, set_of, tlv, uint};
use crate::x509::serial::Serial;
use time::OffsetDateTime;

/// 2.5.4.72, id-at-role.
pub const OID_ROLE: [u8; 3] = [0x55, 0x04, 0x48];
/// 1.3.6.1.5.5.7.10.4, id-aca-group.
pub const OID_GROUP: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0a, 0x04];
/// 2.5.29.55, id-ce-targetInformation.
pub const OID_TARGET_INFORMATION: [u8; 3] = [0x55, 0x1d, 0x37];
/// 2.5.29.56, id-ce-noRevAvail.
pub const OID_NO_REV_AVAIL: [u8; 3] = [0x55, 0x1d, 0x38];
/// 2.5.29.35, id-ce-authorityKeyIdentifier.
pub const OID_AUTHORITY_KEY_ID: [u8; 3] = [0x55, 0x1d, 0x23];
/// 2.5.29.31, id-ce-cRLDistributionPoints.
pub const OID_CRL_DISTRIBUTION_POINTS: [u8; 3] = [0x55, 0x1d, 0x1f];
/// 1.3.6.1.5.5.7.1.1, id-pe-authorityInfoAccess.
pub const OID_AUTHORITY_INFO_ACCESS: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];

/// How relying parties learn that an attribute certificate was revoked.
#[derive(Debug, Clone, Copy)]
pub enum AcRevocation<'a> {
    /// Short-lived: no revocation information (noRevAvail).
    NoRevAvail,
    /// Listed on the AC CRL at these URLs (cRLDistributionPoints).
    Crl(&'a [String]),
}

/// Everything in one attribute certificate.
#[derive(Debug, Clone)]
pub struct AcContent<'a> {
    /// How the AA key signs.
    pub algorithm: SignatureAlgorithm,
    /// The AC's serial.
    pub serial: &'a Serial,
    /// The holder certificate's issuer Name, DER.
    pub holder_issuer_der: &'a [u8],
    /// The holder certificate's serial: the INTEGER's content octets.
    pub holder_serial: &'a [u8],
    /// The AA's subject Name, DER.
    pub issuer_name_der: &'a [u8],
    /// The AA's key identifier (authorityKeyIdentifier).
    pub key_id: &'a [u8],
    /// notBeforeTime.
    pub not_before: OffsetDateTime,
    /// notAfterTime.
    pub not_after: OffsetDateTime,
    /// roleName URIs, one role attribute value each.
    pub role_uris: &'a [String],
    /// Group names (an IetfAttrSyntax value); none leaves the attribute out.
    pub groups: &'a [String],
    /// targetName URIs (targetInformation).
    pub target_uris: &'a [String],
    /// noRevAvail or where the AC CRL is.
    pub revocation: AcRevocation<'a>,
}

fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
    tlv(0x18, &time_digits(t, true))
}

/// GeneralNames holding one directoryName.
fn directory_names(name_der: &[u8]) -> Vec<u8> {
    tlv(0x30, &tlv(0xa4, name_der))
}

fn attribute(oid: &[u8], values: Vec<Vec<u8>>) -> Vec<u8> {
    let mut body = tlv(0x06, oid);
    body.extend_from_slice(&set_of(values));
    tlv(0x30, &body)
}

/// The DER of the AttributeCertificateInfo: what the AA signs.
pub fn tbs(c: &AcContent<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(&uint(1)); // v2
                                      // Holder: baseCertificateID [0] IMPLICIT IssuerSerial { issuer GeneralNames, serial }.
    let mut issuer_serial = directory_names(c.holder_issuer_der);
    push_tlv(&mut issuer_serial, 0x02, c.holder_serial);
    push_tlv(&mut body, 0x30, &tlv(0xa0, &issuer_serial));
    // AttCertIssuer: v2Form [0] IMPLICIT V2Form { issuerName GeneralNames }.
    push_tlv(&mut body, 0xa0, &directory_names(c.issuer_name_der));
    body.extend_from_slice(&c.algorithm.identifier());
    push_tlv(&mut body, 0x02, c.serial.as_bytes());
    let mut validity = generalized_time(c.not_before);
    validity.extend_from_slice(&generalized_time(c.not_after));
    push_tlv(&mut body, 0x30, &validity);

    let mut attributes = Vec::new();
    // RoleSyntax { roleName [1] GeneralName }: the tag of a CHOICE is explicit.
    let roles = c
        .role_uris
        .iter()
        .map(|uri| tlv(0x30, &tlv(0xa1, &tlv(0x86, uri.as_bytes()))))
        .collect();
    attributes.extend_from_slice(&attribute(&OID_ROLE, roles));
    if !c.groups.is_empty() {
        // IetfAttrSyntax { values SEQUENCE OF UTF8String }.
        let mut strings = Vec::new();
        for g in c.groups {
            push_tlv(&mut strings, 0x0c, g.as_bytes());
        }
        let value = tlv(0x30, &tlv(0x30, &strings));
        attributes.extend_from_slice(&attribute(&OID_GROUP, vec![value]));
    }
    push_tlv(&mut body, 0x30, &attributes);

    let mut exts = Vec::new();
    extension(
        &mut exts,
        &OID_AUTHORITY_KEY_ID,
        false,
        &tlv(0x30, &tlv(0x80, c.key_id)),
    );
    // SEQUENCE OF Targets, one Targets; Target targetName [0] GeneralName (explicit).
    let mut targets = Vec::new();
    for uri in c.target_uris {
        push_tlv(&mut targets, 0xa0, &tlv(0x86, uri.as_bytes()));
    }
    extension(
        &mut exts,
        &OID_TARGET_INFORMATION,
        true,
        &tlv(0x30, &tlv(0x30, &targets)),
    );
    match c.revocation {
        AcRevocation::NoRevAvail => extension(&mut exts, &OID_NO_REV_AVAIL, false, &[0x05, 0x00]),
        // GeneralNames cannot be empty: without a URL (no public URL known) there is no pointer.
        AcRevocation::Crl([]) => {}
        AcRevocation::Crl(urls) => extension(
            &mut exts,
            &OID_CRL_DISTRIBUTION_POINTS,
            false,
            &distribution_points(urls),
        ),
    }
    // Extensions, untagged in an AttributeCertificateInfo.
    push_tlv(&mut body, 0x30, &exts);
    tlv(0x30, &body)
}

/// The AttributeCertificate: info, algorithm, signature (the same shape as a certificate or CRL).
pub fn assemble(tbs: &[u8], algorithm: SignatureAlgorithm, signature: &[u8]) -> Vec<u8> {
    crate::x509::crl::assemble(tbs, algorithm, signature)
}
