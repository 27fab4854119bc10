//! PKIMessage on the wire (RFC 4210 5.1, RFC 9480; the CMP module uses EXPLICIT tags): the
//! header Vouch sends, the message around a body and its protection, and a strict reading of the
//! CA's answer that keeps the exact bytes its protection covers.

use crate::x509::der::{push_tlv, tlv, DerError, Reader};
use der::asn1::ObjectIdentifier;
use time::OffsetDateTime;

/// pvno cmp2000: what Vouch sends (RFC 9483 3.1: cmp2021 only for EnvelopedData, unused here).
pub const PVNO_CMP2000: u8 = 2;
/// id-it-implicitConfirm (RFC 4210 5.1.1.1).
pub const IMPLICIT_CONFIRM: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.4.13");
/// Nonces and transaction ids are this long (RFC 9483 3.1: at least 128 bits).
pub const NONCE_BYTES: usize = 16;

/// The PKIBody alternatives Vouch sends or reads, by context tag number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyType {
    /// Initialization request.
    Ir = 0,
    /// Initialization response.
    Ip = 1,
    /// Certification request.
    Cr = 2,
    /// Certification response.
    Cp = 3,
    /// PKCS #10 certification request.
    P10cr = 4,
    /// Revocation request.
    Rr = 11,
    /// Revocation response.
    Rp = 12,
    /// Confirmation (of a certConf).
    PkiConf = 19,
    /// General message.
    Genm = 21,
    /// General response.
    Genp = 22,
    /// Error message.
    Error = 23,
    /// Certificate confirmation.
    CertConf = 24,
    /// Polling request.
    PollReq = 25,
    /// Polling response.
    PollRep = 26,
}

impl BodyType {
    fn from_number(n: u8) -> Option<BodyType> {
        use BodyType::*;
        [
            Ir, Ip, Cr, Cp, P10cr, Rr, Rp, PkiConf, Genm, Genp, Error, CertConf, PollReq, PollRep,
        ]
        .into_iter()
        .find(|b| *b as u8 == n)
    }

    /// The body's ASN.1 name.
    pub fn name(self) -> &'static str {
        match self {
            BodyType::Ir => "ir",
            BodyType::Ip => "ip",
            BodyType::Cr => "cr",
            BodyType::Cp => "cp",
            BodyType::P10cr => "p10cr",
            BodyType::Rr => "rr",
            BodyType::Rp => "rp",
            BodyType::PkiConf => "pkiconf",
            BodyType::Genm => "genm",
            BodyType::Genp => "genp",
            BodyType::Error => "error",
            BodyType::CertConf => "certConf",
            BodyType::PollReq => "pollReq",
            BodyType::PollRep => "pollRep",
        }
    }

    /// The body's [n] EXPLICIT tag around `content` (the alternative's own encoding).
    pub fn wrap(self, content: &[u8]) -> Vec<u8> {
        tlv(0xa0 | self as u8, content)
    }
}

/// What Vouch puts in the header of one request.
pub struct Outgoing<'a> {
    /// sender, a GeneralName (DER).
    pub sender: &'a [u8],
    /// recipient, a GeneralName (DER).
    pub recipient: &'a [u8],
    /// protectionAlg, an AlgorithmIdentifier (DER).
    pub protection_alg: &'a [u8],
    /// senderKID.
    pub sender_kid: Option<&'a [u8]>,
    /// transactionID.
    pub transaction_id: &'a [u8],
    /// senderNonce.
    pub sender_nonce: &'a [u8],
    /// recipNonce: the CA's last senderNonce in this transaction.
    pub recip_nonce: Option<&'a [u8]>,
    /// Ask for implicit confirmation (generalInfo id-it-implicitConfirm).
    pub implicit_confirm: bool,
    /// messageTime.
    pub time: OffsetDateTime,
}

/// A GeneralName directoryName [4] (EXPLICIT: Name is a CHOICE) around a Name's DER.
pub fn directory_name(name_der: &[u8]) -> Vec<u8> {
    tlv(0xa4, name_der)
}

/// The NULL-DN as a GeneralName (RFC 4210 5.1.1: a sender or recipient without a name).
pub fn null_dn() -> Vec<u8> {
    directory_name(&tlv(0x30, &[]))
}

/// An OBJECT IDENTIFIER's DER.
pub fn oid(o: &ObjectIdentifier) -> Vec<u8> {
    tlv(0x06, o.as_bytes())
}

/// GeneralizedTime, whole seconds, UTC.
pub fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
    time_value(t, false)
}

/// A Time (RFC 5280 4.1.2.5): UTCTime from 1950 to 2049, else GeneralizedTime.
pub fn x509_time(t: OffsetDateTime) -> Vec<u8> {
    time_value(
        t,
        (1950..2050).contains(&t.to_offset(time::UtcOffset::UTC).year()),
    )
}

fn time_value(t: OffsetDateTime, utc_time: bool) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (year, tag) = if utc_time {
        (format!("{:02}", t.year() % 100), 0x17)
    } else {
        (format!("{:04}", t.year()), 0x18)
    };
    let text = format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(tag, text.as_bytes())
}

impl Outgoing<'_> {
    /// The PKIHeader's DER.
    pub fn header(&self) -> Vec<u8> {
        let mut c = tlv(0x02, &[PVNO_CMP2000]);
        c.extend_from_slice(self.sender);
        c.extend_from_slice(self.recipient);
        push_tlv(&mut c, 0xa0, &generalized_time(self.time));
        push_tlv(&mut c, 0xa1, self.protection_alg);
        if let Some(kid) = self.sender_kid {
            push_tlv(&mut c, 0xa2, &tlv(0x04, kid));
        }
        push_tlv(&mut c, 0xa4, &tlv(0x04, self.transaction_id));
        push_tlv(&mut c, 0xa5, &tlv(0x04, self.sender_nonce));
        if let Some(n) = self.recip_nonce {
            push_tlv(&mut c, 0xa6, &tlv(0x04, n));
        }
        if self.implicit_confirm {
            let itav = tlv(0x30, &[oid(&IMPLICIT_CONFIRM), vec![0x05, 0x00]].concat());
            push_tlv(&mut c, 0xa8, &tlv(0x30, &itav));
        }
        tlv(0x30, &c)
    }
}

/// ProtectedPart ::= SEQUENCE { header, body }: what the protection covers.
pub fn protected_part(header: &[u8], body: &[u8]) -> Vec<u8> {
    tlv(0x30, &[header, body].concat())
}

/// The whole PKIMessage: header, body, protection (a BIT STRING's bits) and extraCerts.
pub fn message(header: &[u8], body: &[u8], protection: &[u8], extra_certs: &[Vec<u8>]) -> Vec<u8> {
    let mut c = [header, body].concat();
    let mut bits = vec![0u8];
    bits.extend_from_slice(protection);
    push_tlv(&mut c, 0xa0, &tlv(0x03, &bits));
    if !extra_certs.is_empty() {
        push_tlv(&mut c, 0xa1, &tlv(0x30, &extra_certs.concat()));
    }
    tlv(0x30, &c)
}

/// An AlgorithmIdentifier as read: the OID's content octets and the parameters' DER, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algorithm {
    /// The OID's content octets.
    pub oid: Vec<u8>,
    /// The parameters, whole TLV.
    pub params: Option<Vec<u8>>,
}

impl Algorithm {
    /// Read from the content of the AlgorithmIdentifier SEQUENCE.
    pub fn parse(content: &[u8]) -> Result<Algorithm, DerError> {
        let mut r = Reader::new(content);
        let oid = r.read(0x06, "algorithm")?.to_vec();
        let params = if r.is_empty() {
            None
        } else {
            Some(r.any()?.whole.to_vec())
        };
        r.finish("AlgorithmIdentifier")?;
        Ok(Algorithm { oid, params })
    }

    /// Whether it is `o`.
    pub fn is(&self, o: &ObjectIdentifier) -> bool {
        self.oid == o.as_bytes()
    }
}

/// The CA's answer, read strictly, with the bytes its protection covers.
#[derive(Debug)]
pub struct Received {
    /// pvno.
    pub pvno: u8,
    /// sender, a GeneralName (whole TLV).
    pub sender: Vec<u8>,
    /// protectionAlg.
    pub protection_alg: Option<Algorithm>,
    /// senderKID.
    pub sender_kid: Option<Vec<u8>>,
    /// transactionID.
    pub transaction_id: Option<Vec<u8>>,
    /// senderNonce.
    pub sender_nonce: Option<Vec<u8>>,
    /// recipNonce.
    pub recip_nonce: Option<Vec<u8>>,
    /// Whether generalInfo grants implicit confirmation.
    pub implicit_confirm: bool,
    /// The body's type.
    pub body_type: BodyType,
    /// The body alternative's own encoding (inside the [n] tag), whole TLV.
    pub body: Vec<u8>,
    /// SEQUENCE { header, body } exactly as received.
    pub protected_part: Vec<u8>,
    /// The protection's bits.
    pub protection: Option<Vec<u8>>,
    /// extraCerts, each a certificate's DER.
    pub extra_certs: Vec<Vec<u8>>,
}

/// Read a PKIMessage (DER only: the protection is checked over the bytes as they came).
pub fn parse(bytes: &[u8]) -> Result<Received, DerError> {
    let mut outer = Reader::new(bytes);
    let content = outer.read(0x30, "PKIMessage")?;
    outer.finish("PKIMessage")?;
    let mut r = Reader::new(content);
    let header = r.any()?;
    if header.tag != 0x30 {
        return Err(DerError("PKIHeader: not a SEQUENCE".into()));
    }
    let body_tlv = r.any()?;
    let body_type = match body_tlv.tag {
        t if t & 0xe0 == 0xa0 => BodyType::from_number(t & 0x1f),
        _ => None,
    }
    .ok_or_else(|| {
        DerError(format!(
            "PKIBody: tag {:#04x} is not one Vouch reads",
            body_tlv.tag
        ))
    })?;
    let mut inner = Reader::new(body_tlv.content);
    let body = inner.any()?.whole.to_vec();
    inner.finish("PKIBody")?;
    let protection = match r.optional(0xa0)? {
        Some(p) => {
            let mut pr = Reader::new(p);
            let bits = pr.read(0x03, "PKIProtection")?;
            pr.finish("PKIProtection")?;
            match bits.split_first() {
                Some((0, rest)) => Some(rest.to_vec()),
                _ => return Err(DerError("PKIProtection: not whole octets".into())),
            }
        }
        None => None,
    };
    let mut extra_certs = Vec::new();
    if let Some(e) = r.optional(0xa1)? {
        let mut er = Reader::new(e);
        let mut certs = Reader::new(er.read(0x30, "extraCerts")?);
        er.finish("extraCerts")?;
        while !certs.is_empty() {
            let c = certs.any()?;
            if c.tag != 0x30 {
                return Err(DerError("extraCerts: not a certificate".into()));
            }
            extra_certs.push(c.whole.to_vec());
        }
    }
    r.finish("PKIMessage")?;
    let mut out = Received {
        pvno: 0,
        sender: Vec::new(),
        protection_alg: None,
        sender_kid: None,
        transaction_id: None,
        sender_nonce: None,
        recip_nonce: None,
        implicit_confirm: false,
        body_type,
        body,
        protected_part: protected_part(header.whole, body_tlv.whole),
        protection,
        extra_certs,
    };
    read_header(header.content, &mut out)?;
    Ok(out)
}

fn read_header(content: &[u8], out: &mut Received) -> Result<(), DerError> {
    let mut r = Reader::new(content);
    out.pvno = match r.read(0x02, "pvno")? {
        [v] => *v,
        _ => return Err(DerError("pvno: not a small integer".into())),
    };
    out.sender = r.any()?.whole.to_vec();
    let _recipient = r.any()?;
    let octets = |c: &[u8], what: &str| -> Result<Vec<u8>, DerError> {
        let mut x = Reader::new(c);
        let v = x.read(0x04, what)?.to_vec();
        x.finish(what)?;
        Ok(v)
    };
    while !r.is_empty() {
        let field = r.any()?;
        match field.tag {
            0xa0 | 0xa7 => {} // messageTime, freeText
            0xa1 => {
                let mut x = Reader::new(field.content);
                out.protection_alg = Some(Algorithm::parse(x.read(0x30, "protectionAlg")?)?);
                x.finish("protectionAlg")?;
            }
            0xa2 => out.sender_kid = Some(octets(field.content, "senderKID")?),
            0xa3 => {} // recipKID
            0xa4 => out.transaction_id = Some(octets(field.content, "transactionID")?),
            0xa5 => out.sender_nonce = Some(octets(field.content, "senderNonce")?),
            0xa6 => out.recip_nonce = Some(octets(field.content, "recipNonce")?),
            0xa8 => {
                let mut x = Reader::new(field.content);
                let mut infos = Reader::new(x.read(0x30, "generalInfo")?);
                x.finish("generalInfo")?;
                while !infos.is_empty() {
                    let mut itav = Reader::new(infos.read(0x30, "InfoTypeAndValue")?);
                    if itav.read(0x06, "infoType")? == IMPLICIT_CONFIRM.as_bytes() {
                        out.implicit_confirm = true;
                    }
                }
            }
            t => return Err(DerError(format!("PKIHeader: unexpected field {t:#04x}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_with_its_protected_part() {
        let sender = null_dn();
        let alg = tlv(0x30, &oid(&IMPLICIT_CONFIRM));
        let out = Outgoing {
            sender: &sender,
            recipient: &sender,
            protection_alg: &alg,
            sender_kid: Some(b"kid"),
            transaction_id: &[1; 16],
            sender_nonce: &[2; 16],
            recip_nonce: Some(&[3; 16]),
            implicit_confirm: true,
            time: OffsetDateTime::UNIX_EPOCH,
        };
        let header = out.header();
        let body = BodyType::PkiConf.wrap(&[0x05, 0x00]);
        let msg = message(&header, &body, &[9, 9], &[tlv(0x30, &[])]);
        let got = parse(&msg).unwrap();
        assert_eq!(got.pvno, 2);
        assert_eq!(got.body_type, BodyType::PkiConf);
        assert_eq!(got.body, vec![0x05, 0x00]);
        assert_eq!(got.transaction_id.as_deref(), Some(&[1u8; 16][..]));
        assert_eq!(got.sender_nonce.as_deref(), Some(&[2u8; 16][..]));
        assert_eq!(got.recip_nonce.as_deref(), Some(&[3u8; 16][..]));
        assert_eq!(got.sender_kid.as_deref(), Some(&b"kid"[..]));
        assert!(got.implicit_confirm);
        assert!(got.protection_alg.unwrap().is(&IMPLICIT_CONFIRM));
        assert_eq!(got.protection.as_deref(), Some(&[9u8, 9][..]));
        assert_eq!(got.protected_part, protected_part(&header, &body));
        assert_eq!(got.extra_certs.len(), 1);
        assert_eq!(
            generalized_time(OffsetDateTime::UNIX_EPOCH),
            tlv(0x18, b"19700101000000Z")
        );
        // Trailing bytes, an unknown body and BER lengths are refused.
        assert!(parse(&[msg.clone(), vec![0]].concat()).is_err());
        let odd = message(&header, &tlv(0xbe, &[5, 0]), &[], &[]);
        assert!(parse(&odd).is_err());
    }
}
