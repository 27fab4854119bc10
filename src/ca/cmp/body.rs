//! The PKIBody alternatives Vouch sends (p10cr, ir/cr with CRMF, certConf, pollReq, rr, genm)
//! and reads (ip/cp, pollRep, rp, pkiconf, genp, error), each encoded or read strictly here.

use super::message::{oid, BodyType};
use super::status::{free_text, StatusInfo};
use crate::ca::IssueOrder;
use crate::x509::der::{push_tlv, tlv, DerError, Reader};
use crate::x509::profile::{ExtendedKeyUsage, KeyUsage};
use crate::x509::subject::{DnAttr, SubjectSpec};
use der::asn1::ObjectIdentifier;

/// id-it-caCerts (RFC 9480 4.3): ask the CA for its certificates.
pub const CA_CERTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.4.17");
/// The certReqId of Vouch's ir and cr (one request per message).
pub const CERT_REQ_ID: u8 = 0;
/// The PKIFailureInfo bit Vouch sets when it rejects a certificate in its certConf
/// (badCertTemplate: the certificate is not what was asked for).
const BAD_CERT_TEMPLATE: usize = 19;

fn oid_str(dotted: &'static str) -> Vec<u8> {
    // The dotted strings are constants below, checked by the tests; a bad one encodes empty.
    ObjectIdentifier::new(dotted)
        .map(|o| oid(&o))
        .unwrap_or_default()
}

/// A Name (RDNSequence) for `subject`: one attribute per RDN, UTF8String (PrintableString for
/// serialNumber), most significant first.
pub fn name(subject: &SubjectSpec) -> Vec<u8> {
    let mut rdns = Vec::new();
    for (attr, value) in &subject.dn {
        let (o, tag) = match attr {
            DnAttr::CommonName => ("2.5.4.3", 0x0c),
            DnAttr::Organisation => ("2.5.4.10", 0x0c),
            DnAttr::SerialNumber => ("2.5.4.5", 0x13),
        };
        let atv = tlv(0x30, &[oid_str(o), tlv(tag, value.as_bytes())].concat());
        push_tlv(&mut rdns, 0x31, &atv);
    }
    tlv(0x30, &rdns)
}

/// p10cr: the subscriber's CSR as it signed it.
pub fn p10cr(csr_der: &[u8]) -> Vec<u8> {
    BodyType::P10cr.wrap(csr_der)
}

fn extension(o: &'static str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut c = oid_str(o);
    if critical {
        c.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    push_tlv(&mut c, 0x04, value);
    tlv(0x30, &c)
}

/// The extensions the order asks for: keyUsage (critical), extendedKeyUsage, subjectAltName
/// e-mail addresses, and the CRL and AIA URLs when the order has any.
fn extensions(order: &IssueOrder) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if !order.key_usage.is_empty() {
        let mut bits = 0u8;
        for k in &order.key_usage {
            bits |= 0x80
                >> match k {
                    KeyUsage::DigitalSignature => 0,
                    KeyUsage::NonRepudiation => 1,
                    KeyUsage::KeyEncipherment => 2,
                    KeyUsage::DataEncipherment => 3,
                    KeyUsage::KeyAgreement => 4,
                };
        }
        let unused = bits.trailing_zeros() as u8;
        out.push(extension("2.5.29.15", true, &tlv(0x03, &[unused, bits])));
    }
    if !order.extended_key_usage.is_empty() {
        let purposes: Vec<u8> = order
            .extended_key_usage
            .iter()
            .flat_map(|e| {
                oid_str(match e {
                    ExtendedKeyUsage::ServerAuth => "1.3.6.1.5.5.7.3.1",
                    ExtendedKeyUsage::ClientAuth => "1.3.6.1.5.5.7.3.2",
                    ExtendedKeyUsage::CodeSigning => "1.3.6.1.5.5.7.3.3",
                    ExtendedKeyUsage::EmailProtection => "1.3.6.1.5.5.7.3.4",
                    ExtendedKeyUsage::TimeStamping => "1.3.6.1.5.5.7.3.8",
                })
            })
            .collect();
        out.push(extension("2.5.29.37", false, &tlv(0x30, &purposes)));
    }
    if !order.subject.emails.is_empty() {
        let names: Vec<u8> = order
            .subject
            .emails
            .iter()
            .flat_map(|e| tlv(0x81, e.as_bytes()))
            .collect();
        out.push(extension("2.5.29.17", false, &tlv(0x30, &names)));
    }
    if !order.crl_urls.is_empty() {
        let points: Vec<u8> = order
            .crl_urls
            .iter()
            .flat_map(|u| {
                // DistributionPoint { distributionPoint [0] { fullName [0] { URI [6] } } }
                tlv(0x30, &tlv(0xa0, &tlv(0xa0, &tlv(0x86, u.as_bytes()))))
            })
            .collect();
        out.push(extension("2.5.29.31", false, &tlv(0x30, &points)));
    }
    if !order.ocsp_urls.is_empty() || !order.ca_issuers_urls.is_empty() {
        let aia = crate::x509::aia::encode(&order.ocsp_urls, &order.ca_issuers_urls);
        out.push(extension("1.3.6.1.5.5.7.1.1", false, &aia));
    }
    out
}

/// ir or cr (`kind`): one CertReqMsg whose template is the approved order (subject, validity,
/// the key, the profile's extensions), with proof of possession raVerified: the subscriber's CSR
/// signature covers the CSR, not this CertRequest, so it cannot serve as a CRMF signature POP;
/// the RA checked the CSR's signature when the request was submitted (RFC 4210 5.2.8.4).
pub fn cert_request(kind: BodyType, order: &IssueOrder) -> Vec<u8> {
    let ra_verified = [0x80, 0x00];
    let msg = tlv(0x30, &[cert_req(order), ra_verified.to_vec()].concat());
    kind.wrap(&tlv(0x30, &msg))
}

/// ir or cr (`kind`) for a key the RA holds itself (`key`, whose public key is the order's):
/// the proof of possession is `key`'s signature over the CertRequest (POPOSigningKey without
/// poposkInput, as the template names the subject and the key; RFC 4211 4.1).
pub fn cert_request_signed(
    kind: BodyType,
    order: &IssueOrder,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> Result<Vec<u8>, String> {
    let request = cert_req(order);
    let (alg, signature) = super::protection::sign(key, &request)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    // signature [1] IMPLICIT POPOSigningKey { algorithmIdentifier, signature BIT STRING }
    let pop = tlv(0xa1, &[alg, tlv(0x03, &bits)].concat());
    let msg = tlv(0x30, &[request, pop].concat());
    Ok(kind.wrap(&tlv(0x30, &msg)))
}

/// The CertRequest of `order`: certReqId, and the template (validity, subject, key, the
/// profile's extensions).
fn cert_req(order: &IssueOrder) -> Vec<u8> {
    let mut template = Vec::new();
    let validity = [
        tlv(0xa0, &super::message::x509_time(order.not_before)),
        tlv(0xa1, &super::message::x509_time(order.not_after)),
    ]
    .concat();
    push_tlv(&mut template, 0xa4, &validity);
    push_tlv(&mut template, 0xa5, &name(&order.subject));
    // publicKey [6] IMPLICIT SubjectPublicKeyInfo: the SEQUENCE's content under tag [6].
    let mut spki = Reader::new(&order.spki_der);
    let spki_content = spki.read(0x30, "spki").unwrap_or_default();
    push_tlv(&mut template, 0xa6, spki_content);
    let exts = extensions(order);
    if !exts.is_empty() {
        push_tlv(&mut template, 0xa9, &exts.concat());
    }
    tlv(
        0x30,
        &[tlv(0x02, &[CERT_REQ_ID]), tlv(0x30, &template)].concat(),
    )
}

/// certConf for the certificate whose hash is `hash`, answered under `req_id` (INTEGER content
/// octets, as the CA gave it); `rejected`: why Vouch does not accept it.
pub fn cert_conf(hash: &[u8], req_id: &[u8], rejected: Option<&str>) -> Vec<u8> {
    let mut status = [tlv(0x04, hash), tlv(0x02, req_id)].concat();
    if let Some(why) = rejected {
        let bits = bit_string(BAD_CERT_TEMPLATE);
        let info = [
            tlv(0x02, &[2]),
            tlv(0x30, &tlv(0x0c, why.as_bytes())),
            tlv(0x03, &bits),
        ]
        .concat();
        push_tlv(&mut status, 0x30, &info);
    }
    BodyType::CertConf.wrap(&tlv(0x30, &tlv(0x30, &status)))
}

fn bit_string(bit: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] = 0x80 >> (bit % 8);
    let unused = (7 - bit % 8) as u8;
    [vec![unused], bytes].concat()
}

/// pollReq for `req_id` (INTEGER content octets).
pub fn poll_req(req_id: &[u8]) -> Vec<u8> {
    BodyType::PollReq.wrap(&tlv(0x30, &tlv(0x30, &tlv(0x02, req_id))))
}

/// rr for the certificate `serial` (INTEGER content octets) of `issuer` (a Name's DER), with
/// the CRLReason `reason` in crlEntryDetails.
pub fn rr(issuer: &[u8], serial: &[u8], reason: u8) -> Vec<u8> {
    let template = [tlv(0x81, serial), tlv(0xa3, issuer)].concat();
    let reason_ext = extension("2.5.29.21", false, &tlv(0x0a, &[reason]));
    let details = [tlv(0x30, &template), tlv(0x30, &reason_ext)].concat();
    BodyType::Rr.wrap(&tlv(0x30, &tlv(0x30, &details)))
}

/// genm asking for the CA certificates (id-it-caCerts, no value).
pub fn genm_ca_certs() -> Vec<u8> {
    BodyType::Genm.wrap(&tlv(0x30, &tlv(0x30, &oid(&CA_CERTS))))
}

/// One CertResponse.
#[derive(Debug)]
pub struct CertResponse {
    /// certReqId, INTEGER content octets.
    pub req_id: Vec<u8>,
    /// The status.
    pub status: StatusInfo,
    /// The certificate, DER (an encrypted one is refused when read).
    pub certificate: Option<Vec<u8>>,
}

/// Read an ip/cp (the CertRepMessage, whole TLV): its one response. caPubs are not used: the
/// chain comes from the genp at start.
pub fn cert_rep(body: &[u8]) -> Result<CertResponse, DerError> {
    let mut outer = Reader::new(body);
    let mut r = Reader::new(outer.read(0x30, "CertRepMessage")?);
    let _ca_pubs = r.optional(0xa1)?;
    let mut responses = Reader::new(r.read(0x30, "response")?);
    r.finish("CertRepMessage")?;
    let mut one = Reader::new(responses.read(0x30, "CertResponse")?);
    if !responses.is_empty() {
        return Err(DerError("more than one CertResponse to one request".into()));
    }
    let req_id = one.read(0x02, "certReqId")?.to_vec();
    let status = StatusInfo::parse(one.read(0x30, "status")?)?;
    let certificate = match one.optional(0x30)? {
        Some(pair) => {
            let mut p = Reader::new(pair);
            match p.any()? {
                t if t.tag == 0xa0 => {
                    let mut c = Reader::new(t.content);
                    let cert = c.any()?;
                    c.finish("certificate")?;
                    Some(cert.whole.to_vec())
                }
                _ => {
                    return Err(DerError(
                        "an encrypted certificate, which Vouch never asks for".into(),
                    ))
                }
            }
        }
        None => None,
    };
    Ok(CertResponse {
        req_id,
        status,
        certificate,
    })
}

/// Read a pollRep: (certReqId, checkAfter seconds, reason) of its first entry.
pub fn poll_rep(body: &[u8]) -> Result<(Vec<u8>, u64, String), DerError> {
    let mut outer = Reader::new(body);
    let mut list = Reader::new(outer.read(0x30, "PollRepContent")?);
    let mut one = Reader::new(list.read(0x30, "PollRep")?);
    let req_id = one.read(0x02, "certReqId")?.to_vec();
    let after = one.read(0x02, "checkAfter")?;
    if after.is_empty() || after.len() > 5 || after[0] & 0x80 != 0 {
        return Err(DerError("checkAfter out of range".into()));
    }
    let seconds = after.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let reason = match one.optional(0x30)? {
        Some(t) => free_text(t)?,
        None => String::new(),
    };
    Ok((req_id, seconds, reason))
}

/// Read an rp: the status of the one revocation asked for.
pub fn rev_rep(body: &[u8]) -> Result<StatusInfo, DerError> {
    let mut outer = Reader::new(body);
    let mut r = Reader::new(outer.read(0x30, "RevRepContent")?);
    let mut statuses = Reader::new(r.read(0x30, "status")?);
    StatusInfo::parse(statuses.read(0x30, "PKIStatusInfo")?)
}

/// Read an error message: its status, with errorCode and errorDetails added to the text.
pub fn error(body: &[u8]) -> Result<StatusInfo, DerError> {
    let mut outer = Reader::new(body);
    let mut r = Reader::new(outer.read(0x30, "ErrorMsgContent")?);
    let mut status = StatusInfo::parse(r.read(0x30, "pKIStatusInfo")?)?;
    let mut extra = Vec::new();
    if let Some(code) = r.optional(0x02)? {
        if code.len() <= 8 {
            let n = code.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b));
            extra.push(format!("errorCode {n}"));
        }
    }
    if let Some(details) = r.optional(0x30)? {
        let d = free_text(details)?;
        if !d.is_empty() {
            extra.push(d);
        }
    }
    if !extra.is_empty() {
        let joined = extra.join("; ");
        status.text = if status.text.is_empty() {
            joined
        } else {
            format!("{}; {joined}", status.text)
        };
    }
    Ok(status)
}

/// Read a genp: the certificates of its id-it-caCerts value, if it has one.
pub fn genp_ca_certs(body: &[u8]) -> Result<Vec<Vec<u8>>, DerError> {
    let mut outer = Reader::new(body);
    let mut list = Reader::new(outer.read(0x30, "GenRepContent")?);
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut itav = Reader::new(list.read(0x30, "InfoTypeAndValue")?);
        let o = itav.read(0x06, "infoType")?;
        if o == CA_CERTS.as_bytes() && !itav.is_empty() {
            let mut certs = Reader::new(itav.read(0x30, "caCerts")?);
            while !certs.is_empty() {
                out.push(certs.any()?.whole.to_vec());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_bits_and_names_encode() {
        assert_eq!(bit_string(19), vec![4, 0, 0, 0x10]);
        assert_eq!(bit_string(0), vec![7, 0x80]);
        let subject = SubjectSpec {
            dn: vec![(DnAttr::CommonName, "A".into())],
            emails: vec![],
        };
        assert_eq!(
            name(&subject),
            vec![
                0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'A'
            ]
        );
        assert_eq!(oid_str("2.5.29.21"), vec![0x06, 0x03, 0x55, 0x1d, 0x15]);
    }

    #[test]
    fn poll_and_revocation_answers_read() {
        let rep = tlv(
            0x30,
            &tlv(
                0x30,
                &[
                    tlv(0x02, &[0]),
                    tlv(0x02, &[5]),
                    tlv(0x30, &tlv(0x0c, b"busy")),
                ]
                .concat(),
            ),
        );
        assert_eq!(poll_rep(&rep).unwrap(), (vec![0], 5, "busy".to_string()));
        let rp = tlv(0x30, &tlv(0x30, &tlv(0x30, &tlv(0x02, &[0]))));
        assert!(rev_rep(&rp).unwrap().status.is_granted());
    }
}
