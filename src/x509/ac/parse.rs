//! Reading an attribute certificate, whoever made it, on the strict DER reader: every field the
//! checker needs, and the extensions it does not know, so that an unknown critical one refuses the
//! certificate.

use super::encode::{
    OID_AUTHORITY_INFO_ACCESS, OID_AUTHORITY_KEY_ID, OID_CRL_DISTRIBUTION_POINTS, OID_GROUP,
    OID_NO_REV_AVAIL, OID_ROLE, OID_TARGET_INFORMATION,
};
use crate::x509::der::{positive_integer, DerError, Reader};
use time::OffsetDateTime;

/// Largest attribute certificate read.
pub const MAX_AC_BYTES: usize = 16 * 1024;

/// The holder named by baseCertificateID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseCertificateId {
    /// The directoryNames among the issuer GeneralNames, DER.
    pub issuer_names: Vec<Vec<u8>>,
    /// The serial's INTEGER content octets.
    pub serial: Vec<u8>,
}

/// An attribute certificate as read.
#[derive(Debug, Clone)]
pub struct AttributeCertificate {
    /// The serial's INTEGER content octets.
    pub serial: Vec<u8>,
    /// The holder's identity certificate, when the holder is given by baseCertificateID.
    pub holder: Option<BaseCertificateId>,
    /// The v2Form issuerName's directoryName, DER.
    pub issuer_name: Option<Vec<u8>>,
    /// The signature AlgorithmIdentifier, DER.
    pub signature_algorithm: Vec<u8>,
    /// notBeforeTime.
    pub not_before: OffsetDateTime,
    /// notAfterTime.
    pub not_after: OffsetDateTime,
    /// roleName URIs of the role attribute.
    pub role_uris: Vec<String>,
    /// The group attribute's string values.
    pub groups: Vec<String>,
    /// targetName URIs; None when there is no targetInformation (any target).
    pub target_uris: Option<Vec<String>>,
    /// targetGroup URIs (a group of targets: whether an application belongs to one is the
    /// relying party's knowledge, so they never match a target here).
    pub target_group_uris: Vec<String>,
    /// Whether noRevAvail is present.
    pub no_rev_avail: bool,
    /// cRLDistributionPoints URIs.
    pub crl_urls: Vec<String>,
    /// authorityKeyIdentifier's keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// Dotted OIDs of critical extensions this reader does not know.
    pub unknown_critical: Vec<String>,
    /// The signed AttributeCertificateInfo, DER.
    pub tbs: Vec<u8>,
    /// The signature (the BIT STRING's octets).
    pub signature: Vec<u8>,
}

impl AttributeCertificate {
    /// The serial as lowercase hex without leading zeros (how the RA names serials).
    pub fn serial_hex(&self) -> String {
        hex_serial(&self.serial)
    }
}

/// An INTEGER's content octets as lowercase hex with no leading zero digits.
pub fn hex_serial(content: &[u8]) -> String {
    let hex = hex::encode(content);
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, DerError> {
    Err(DerError(msg.into()))
}

/// A dotted OID from its content octets.
pub fn oid_string(content: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        } else if i == content.len() - 1 || value > u64::MAX >> 7 {
            return format!("bad OID {}", hex::encode(content));
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5755 4.2.6: UTC, seconds, no fractions).
fn generalized_time(content: &[u8], what: &str) -> Result<OffsetDateTime, DerError> {
    if content.len() != 15 || content[14] != b'Z' || !content[..14].iter().all(u8::is_ascii_digit) {
        return bad(format!("{what}: not a GeneralizedTime YYYYMMDDHHMMSSZ"));
    }
    let n = |a: usize, b: usize| -> u32 {
        content[a..b]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let month = u8::try_from(n(4, 6))
        .ok()
        .and_then(|m| time::Month::try_from(m).ok());
    let date =
        month.and_then(|m| time::Date::from_calendar_date(n(0, 4) as i32, m, n(6, 8) as u8).ok());
    let clock = time::Time::from_hms(n(8, 10) as u8, n(10, 12) as u8, n(12, 14) as u8).ok();
    match (date, clock) {
        (Some(d), Some(t)) => Ok(d.with_time(t).assume_utc()),
        _ => bad(format!("{what}: not a valid date and time")),
    }
}

/// The URIs among GeneralNames' contents.
fn uris(content: &[u8], what: &str) -> Result<Vec<String>, DerError> {
    let mut r = Reader::new(content);
    let mut out = Vec::new();
    while !r.is_empty() {
        let name = r.any()?;
        if name.tag == 0x86 {
            out.push(ia5(name.content, what)?);
        }
    }
    Ok(out)
}

fn ia5(content: &[u8], what: &str) -> Result<String, DerError> {
    if !content.is_ascii() {
        return bad(format!("{what}: IA5String holds a non-ASCII octet"));
    }
    Ok(String::from_utf8_lossy(content).into_owned())
}

/// The directoryName contents among GeneralNames' contents.
fn directory_names(content: &[u8]) -> Result<Vec<Vec<u8>>, DerError> {
    let mut r = Reader::new(content);
    let mut out = Vec::new();
    while !r.is_empty() {
        let name = r.any()?;
        if name.tag == 0xa4 {
            let mut inner = Reader::new(name.content);
            let dn = inner.any()?;
            inner.finish("directoryName")?;
            if dn.tag != 0x30 {
                return bad("directoryName is not a Name");
            }
            out.push(dn.whole.to_vec());
        }
    }
    Ok(out)
}

/// Read an attribute certificate (DER). Anything that is not strict DER of the RFC 5755 shape is
/// refused with what was wrong.
pub fn parse(der: &[u8]) -> Result<AttributeCertificate, DerError> {
    if der.len() > MAX_AC_BYTES {
        return bad(format!("larger than {MAX_AC_BYTES} bytes"));
    }
    let mut outer = Reader::new(der);
    let cert = outer.read(0x30, "AttributeCertificate")?;
    outer.finish("AttributeCertificate")?;
    let mut cert = Reader::new(cert);
    let info = cert.any()?;
    if info.tag != 0x30 {
        return bad("acinfo is not a SEQUENCE");
    }
    let outer_alg = cert.any()?;
    let bits = cert.read(0x03, "signatureValue")?;
    cert.finish("AttributeCertificate")?;
    let signature = match bits.split_first() {
        Some((0, sig)) => sig.to_vec(),
        _ => return bad("signatureValue has unused bits"),
    };

    let mut r = Reader::new(info.content);
    if r.read(0x02, "version")? != [1] {
        return bad("version is not v2");
    }
    let holder = holder(r.read(0x30, "holder")?)?;
    let issuer_name = issuer(&mut r)?;
    let alg = r.any()?;
    if alg.tag != 0x30 || alg.whole != outer_alg.whole {
        return bad("the signature algorithms inside and outside differ");
    }
    let serial = r.read(0x02, "serialNumber")?.to_vec();
    positive_integer(&serial, "serialNumber")?;
    if serial.len() > 20 {
        return bad("serialNumber longer than 20 octets");
    }
    let mut validity = Reader::new(r.read(0x30, "attrCertValidityPeriod")?);
    let not_before = generalized_time(validity.read(0x18, "notBeforeTime")?, "notBeforeTime")?;
    let not_after = generalized_time(validity.read(0x18, "notAfterTime")?, "notAfterTime")?;
    validity.finish("attrCertValidityPeriod")?;
    let mut ac = AttributeCertificate {
        serial,
        holder,
        issuer_name,
        signature_algorithm: alg.whole.to_vec(),
        not_before,
        not_after,
        role_uris: Vec::new(),
        groups: Vec::new(),
        target_uris: None,
        target_group_uris: Vec::new(),
        no_rev_avail: false,
        crl_urls: Vec::new(),
        authority_key_id: None,
        unknown_critical: Vec::new(),
        tbs: info.whole.to_vec(),
        signature,
    };
    attributes(r.read(0x30, "attributes")?, &mut ac)?;
    r.optional(0x03)?; // issuerUniqueID
    if let Some(exts) = r.optional(0x30)? {
        extensions(exts, &mut ac)?;
    }
    r.finish("acinfo")?;
    Ok(ac)
}

/// Holder ::= SEQUENCE { baseCertificateID [0], entityName [1], objectDigestInfo [2] }, each
/// optional; only baseCertificateID names a certificate here.
fn holder(content: &[u8]) -> Result<Option<BaseCertificateId>, DerError> {
    let mut r = Reader::new(content);
    let base = r.optional(0xa0)?;
    r.optional(0xa1)?;
    r.optional(0xa2)?;
    r.finish("holder")?;
    let Some(base) = base else {
        return Ok(None);
    };
    // IssuerSerial ::= SEQUENCE { issuer GeneralNames, serial, issuerUID OPTIONAL }.
    let mut base = Reader::new(base);
    let issuer_names = directory_names(base.read(0x30, "baseCertificateID issuer")?)?;
    let serial = base.read(0x02, "baseCertificateID serial")?.to_vec();
    positive_integer(&serial, "baseCertificateID serial")?;
    base.optional(0x03)?;
    base.finish("baseCertificateID")?;
    Ok(Some(BaseCertificateId {
        issuer_names,
        serial,
    }))
}

/// AttCertIssuer: v2Form [0] V2Form with issuerName only (RFC 5755 4.2.3: v1Form, and the
/// baseCertificateID and objectDigestInfo of V2Form, MUST NOT be used).
fn issuer(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, DerError> {
    let issuer = r.any()?;
    if issuer.tag != 0xa0 {
        return bad("issuer is not v2Form");
    }
    let mut v2 = Reader::new(issuer.content);
    let names = v2.read(0x30, "v2Form issuerName")?;
    v2.finish("v2Form (only issuerName may be present)")?;
    Ok(directory_names(names)?.into_iter().next())
}

fn attributes(content: &[u8], ac: &mut AttributeCertificate) -> Result<(), DerError> {
    let mut r = Reader::new(content);
    if r.is_empty() {
        return bad("attributes: at least one is required (RFC 5755 4.2.7)");
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    while !r.is_empty() {
        let mut attr = Reader::new(r.read(0x30, "Attribute")?);
        let oid = attr.read(0x06, "attribute type")?;
        let mut values = Reader::new(attr.read(0x31, "attribute values")?);
        attr.finish("Attribute")?;
        if seen.contains(&oid) {
            return bad(format!("attribute {} appears twice", oid_string(oid)));
        }
        seen.push(oid);
        if values.is_empty() {
            return bad("an attribute without values");
        }
        let mut previous: &[u8] = &[];
        while !values.is_empty() {
            let value = values.any()?;
            // DER SET OF: the encodings in ascending order (X.690 11.6).
            if value.whole < previous {
                return bad("attribute values are not in DER order");
            }
            previous = value.whole;
            if oid == OID_ROLE {
                ac.role_uris.extend(role(value.content, value.tag)?);
            } else if oid == OID_GROUP {
                ac.groups.extend(ietf_strings(value.content, value.tag)?);
            }
        }
    }
    Ok(())
}

/// RoleSyntax { roleAuthority [0] GeneralNames OPTIONAL, roleName [1] GeneralName }.
fn role(content: &[u8], tag: u8) -> Result<Option<String>, DerError> {
    if tag != 0x30 {
        return bad("role value is not a RoleSyntax");
    }
    let mut r = Reader::new(content);
    r.optional(0xa0)?;
    let mut name = Reader::new(r.read(0xa1, "roleName")?);
    r.finish("RoleSyntax")?;
    let general = name.any()?;
    name.finish("roleName")?;
    Ok(match general.tag {
        0x86 => Some(ia5(general.content, "roleName")?),
        _ => None,
    })
}

/// IetfAttrSyntax { policyAuthority [0] OPTIONAL, values SEQUENCE OF CHOICE }: the strings.
fn ietf_strings(content: &[u8], tag: u8) -> Result<Vec<String>, DerError> {
    if tag != 0x30 {
        return bad("group value is not an IetfAttrSyntax");
    }
    let mut r = Reader::new(content);
    r.optional(0xa0)?;
    let mut values = Reader::new(r.read(0x30, "IetfAttrSyntax values")?);
    r.finish("IetfAttrSyntax")?;
    let mut out = Vec::new();
    while !values.is_empty() {
        let v = values.any()?;
        match v.tag {
            0x0c => out.push(
                std::str::from_utf8(v.content)
                    .map_err(|_| DerError("group: UTF8String is not UTF-8".into()))?
                    .to_string(),
            ),
            0x04 | 0x06 => {}
            _ => return bad("group value of an unknown type"),
        }
    }
    Ok(out)
}

fn extensions(content: &[u8], ac: &mut AttributeCertificate) -> Result<(), DerError> {
    let mut r = Reader::new(content);
    let mut seen: Vec<&[u8]> = Vec::new();
    while !r.is_empty() {
        let mut ext = Reader::new(r.read(0x30, "Extension")?);
        let oid = ext.read(0x06, "extnID")?;
        let critical = match ext.optional(0x01)? {
            Some([0xff]) => true,
            Some(_) => return bad("critical must be TRUE when present (DER)"),
            None => false,
        };
        let value = ext.read(0x04, "extnValue")?;
        ext.finish("Extension")?;
        if seen.contains(&oid) {
            return bad(format!("extension {} appears twice", oid_string(oid)));
        }
        seen.push(oid);
        if oid == OID_TARGET_INFORMATION {
            let (names, groups) = targets(value)?;
            ac.target_uris = Some(names);
            ac.target_group_uris = groups;
        } else if oid == OID_NO_REV_AVAIL {
            if value != [0x05, 0x00] {
                return bad("noRevAvail is not NULL");
            }
            ac.no_rev_avail = true;
        } else if oid == OID_AUTHORITY_KEY_ID {
            let mut aki = Reader::new(Reader::new(value).read(0x30, "authorityKeyIdentifier")?);
            ac.authority_key_id = aki.optional(0x80)?.map(<[u8]>::to_vec);
        } else if oid == OID_CRL_DISTRIBUTION_POINTS {
            ac.crl_urls = crl_urls(value)?;
        } else if oid == OID_AUTHORITY_INFO_ACCESS {
            // Known and harmless: where the AA's certificate is.
        } else if critical {
            ac.unknown_critical.push(oid_string(oid));
        }
    }
    Ok(())
}

/// SEQUENCE OF Targets; Target ::= CHOICE { targetName [0], targetGroup [1], targetCert [2] }:
/// the targetName URIs, and the targetGroup URIs.
fn targets(value: &[u8]) -> Result<(Vec<String>, Vec<String>), DerError> {
    let mut outer = Reader::new(value);
    let all = outer.read(0x30, "targetInformation")?;
    outer.finish("targetInformation")?;
    let mut all = Reader::new(all);
    let (mut names, mut groups) = (Vec::new(), Vec::new());
    while !all.is_empty() {
        let mut targets = Reader::new(all.read(0x30, "Targets")?);
        while !targets.is_empty() {
            let target = targets.any()?;
            match target.tag {
                0xa0 => names.extend(uris(target.content, "targetName")?),
                0xa1 => groups.extend(uris(target.content, "targetGroup")?),
                _ => {}
            }
        }
    }
    Ok((names, groups))
}

fn crl_urls(value: &[u8]) -> Result<Vec<String>, DerError> {
    let mut outer = Reader::new(value);
    let mut points = Reader::new(outer.read(0x30, "cRLDistributionPoints")?);
    outer.finish("cRLDistributionPoints")?;
    let mut out = Vec::new();
    while !points.is_empty() {
        let mut point = Reader::new(points.read(0x30, "DistributionPoint")?);
        if let Some(name) = point.optional(0xa0)? {
            if let Some(full) = Reader::new(name).optional(0xa0)? {
                out.extend(uris(full, "fullName")?);
            }
        }
    }
    Ok(out)
}
