//! The Authority Information Access extension (RFC 5280 4.2.2.1), DER-encoded by hand: rcgen has
//! no builder for it.

use super::der::tlv;

/// id-ad-ocsp, 1.3.6.1.5.5.7.48.1
const OCSP: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// id-ad-caIssuers, 1.3.6.1.5.5.7.48.2
const CA_ISSUERS: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// `AuthorityInfoAccessSyntax`: one AccessDescription per URL, OCSP first, each location a
/// uniformResourceIdentifier GeneralName.
pub fn encode(ocsp_urls: &[String], ca_issuers_urls: &[String]) -> Vec<u8> {
    let mut seq = Vec::new();
    let all = ocsp_urls
        .iter()
        .map(|u| (&OCSP, u))
        .chain(ca_issuers_urls.iter().map(|u| (&CA_ISSUERS, u)));
    for (method, url) in all {
        let mut desc = tlv(0x06, method);
        desc.extend(tlv(0x86, url.as_bytes()));
        seq.extend(tlv(0x30, &desc));
    }
    tlv(0x30, &seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn parses_back_as_aia() {
        let der = encode(
            &[],
            &[
                "http://ra.example/ca/issuing.pem".into(),
                format!("http://{}/x", "a".repeat(200)),
            ],
        );
        let (_, aia) = x509_parser::extensions::AuthorityInfoAccess::from_der(&der).unwrap();
        let urls: Vec<String> = aia
            .accessdescs
            .iter()
            .map(|d| match &d.access_location {
                x509_parser::extensions::GeneralName::URI(u) => u.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(urls[0], "http://ra.example/ca/issuing.pem");
        assert_eq!(urls[1].len(), 209);
        let both = encode(
            &["http://ra.example/ocsp".into()],
            &["http://ra.example/ca/issuing.pem".into()],
        );
        let (_, both) = x509_parser::extensions::AuthorityInfoAccess::from_der(&both).unwrap();
        let methods: Vec<String> = both
            .accessdescs
            .iter()
            .map(|d| d.access_method.to_id_string())
            .collect();
        assert_eq!(methods, vec!["1.3.6.1.5.5.7.48.1", "1.3.6.1.5.5.7.48.2"]);
        assert!(aia
            .accessdescs
            .iter()
            .all(|d| d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2"));
    }
}
