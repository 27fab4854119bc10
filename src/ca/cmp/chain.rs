//! The CA chain of a CMP server: the issuing CA is the lowest CA certificate the server publishes
//! (the caCerts of its genp, else the CA certificates among the genp's extraCerts), followed by
//! those above it up to a configured trust anchor; when the server publishes none, the trust
//! anchor itself is the issuing CA.

use crate::ca::{CaCertificate, CaChain, CaError};
use openssl::x509::X509;

/// Longest chain accepted.
const MAX_DEPTH: usize = 8;

fn is_ca(cert: &X509) -> bool {
    let Ok(der) = cert.to_der() else {
        return false;
    };
    x509_parser::parse_x509_certificate(&der).is_ok_and(|(_, c)| {
        c.basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
    })
}

fn same_name(a: &openssl::x509::X509NameRef, b: &openssl::x509::X509NameRef) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(x), Ok(y)) if x == y)
}

/// The chain of the CA `id` from the server's `published` certificates (DER) and the `anchors`.
pub fn build(id: &str, published: &[Vec<u8>], anchors: &[Vec<u8>]) -> Result<CaChain, CaError> {
    let refuse = |m: String| CaError::Refused(format!("the CA {id}: {m}"));
    let parse = |d: &Vec<u8>| X509::from_der(d).map_err(|e| refuse(format!("a certificate: {e}")));
    let anchors: Vec<X509> = anchors.iter().map(parse).collect::<Result<_, _>>()?;
    let mut pool: Vec<X509> = Vec::new();
    for d in published {
        let c = parse(d)?;
        if is_ca(&c) {
            pool.push(c);
        }
    }
    if anchors.is_empty() {
        return Err(refuse("no trust anchor is configured".into()));
    }
    // The lowest: a published CA certificate that issued none of the others.
    let issuing = pool
        .iter()
        .find(|c| {
            !pool.iter().any(|o| {
                !same_name(o.subject_name(), c.subject_name())
                    && same_name(o.issuer_name(), c.subject_name())
            })
        })
        .cloned()
        .unwrap_or_else(|| anchors[0].clone());
    let mut chain = vec![issuing];
    while let Some(current) = chain.last() {
        if anchors
            .iter()
            .any(|a| a.to_der().ok() == current.to_der().ok())
        {
            break;
        }
        if chain.len() >= MAX_DEPTH {
            return Err(refuse(format!("its chain is longer than {MAX_DEPTH}")));
        }
        let issuer = current.issuer_name();
        let next = anchors
            .iter()
            .chain(pool.iter())
            .find(|c| {
                same_name(c.subject_name(), issuer) && c.to_der().ok() != current.to_der().ok()
            })
            .cloned();
        match next {
            Some(n) => chain.push(n),
            None => {
                return Err(refuse(format!(
                    "the CA certificate {} does not chain to `trust_anchor_file`",
                    super::protection::name_text(current.subject_name())
                )))
            }
        }
    }
    let mut certs = chain.into_iter().map(|c| {
        c.to_der().map(|der| CaCertificate {
            id: id.to_string(),
            der,
        })
    });
    let first = certs
        .next()
        .ok_or_else(|| refuse("no CA certificate".into()))?
        .map_err(|e| refuse(e.to_string()))?;
    let above = certs
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(e.to_string()))?;
    Ok(CaChain::new(first, above))
}
