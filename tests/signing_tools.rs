//! The signing tools of tests/common/signing.rs on their own, without Vouch: the documents they
//! make are what `openssl cms` and asn1crypto say they are, and OpenSSL verifies them.

mod common;

use common::signing::{
    add_timestamp, cms_print, cms_show, cms_sign, cms_verify_content_with_openssl,
    cms_verify_with_openssl, csr_pem, foreign_signer, foreign_signer_with_key, p256_key_pem,
    rsa_key_pem, signature_sha256, signer_index, timestamp_tokens, ts_token_text,
    ts_verify_with_openssl, ForeignCa, SignOptions, Signer, Tsa, TIMESTAMP_ATTR, TSA_POLICY,
};
use openssl::x509::{X509Req, X509};
use serde_json::Value;
use std::sync::OnceLock;

const CONTENT: &[u8] = b"Purchase order 4711\r\nline two, CRLF and a lone LF\n\x00binary\xff";

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const SMIME_CAPABILITIES: &str = "1.2.840.113549.1.9.15";

/// A P-256 signer under a root of its own: (signer, root).
fn p256_signer() -> &'static (Signer, String) {
    static S: OnceLock<(Signer, String)> = OnceLock::new();
    S.get_or_init(|| foreign_signer("Alice P-256"))
}

/// An RSA 2048 signer under a root of its own: (signer, root).
fn rsa_signer() -> &'static (Signer, String) {
    static S: OnceLock<(Signer, String)> = OnceLock::new();
    S.get_or_init(|| foreign_signer_with_key("Bob RSA", &rsa_key_pem(2048)))
}

fn tsa() -> &'static Tsa {
    static T: OnceLock<Tsa> = OnceLock::new();
    T.get_or_init(|| Tsa::new("Test TSA"))
}

fn signers_of(cms: &[u8]) -> Vec<Value> {
    cms_show(cms)["signers"]
        .as_array()
        .expect("signers")
        .clone()
}

fn ski(cert_pem: &str) -> String {
    let cert = X509::from_pem(cert_pem.as_bytes()).expect("certificate");
    hex::encode(
        cert.subject_key_id()
            .expect("subjectKeyIdentifier")
            .as_slice(),
    )
}

#[test]
fn attached_p256_carries_the_content_and_the_default_signed_attributes() {
    let (signer, root) = p256_signer();
    let cms = cms_sign(CONTENT, &[signer], &SignOptions::default());

    assert_eq!(
        cms_verify_content_with_openssl(&cms, None, root, &[]).expect("verifies"),
        CONTENT,
        "-binary: the content is signed and returned byte for byte"
    );
    let (_, other_root) = foreign_signer("Someone else");
    assert!(!cms_verify_with_openssl(&cms, None, &other_root));

    let print = cms_print(&cms);
    assert!(print.contains("eContentType: pkcs7-data"), "{print}");
    assert!(!print.contains("eContent: <ABSENT>"), "{print}");
    assert!(print.contains("d.issuerAndSerialNumber:"), "{print}");
    assert!(print.contains("subject: CN=Alice P-256"), "{print}");

    let signers = signers_of(&cms);
    assert_eq!(signers.len(), 1);
    let s = &signers[0];
    assert_eq!(s["sid"]["type"], "issuer_and_serial_number");
    assert_eq!(s["digest_algorithm"], SHA256);
    assert_eq!(s["signature_algorithm"], ECDSA_SHA256);
    assert_eq!(
        s["signed_attrs"],
        serde_json::json!([
            CONTENT_TYPE,
            SIGNING_TIME,
            MESSAGE_DIGEST,
            SMIME_CAPABILITIES
        ])
    );
    assert_eq!(s["unsigned_attrs"], Value::Null);

    // A changed byte of the encapsulated content breaks the signature.
    let at = cms
        .windows(CONTENT.len())
        .position(|w| w == CONTENT)
        .expect("the content is in the DER");
    let mut tampered = cms.clone();
    tampered[at] ^= 1;
    assert!(!cms_verify_with_openssl(&tampered, None, root));
}

#[test]
fn attached_rsa_names_rsa_encryption_as_the_signature_algorithm() {
    let (signer, root) = rsa_signer();
    let cms = cms_sign(CONTENT, &[signer], &SignOptions::default());
    assert!(cms_verify_with_openssl(&cms, None, root));
    let s = &signers_of(&cms)[0];
    assert_eq!(s["signature_algorithm"], RSA_ENCRYPTION);
    assert_eq!(s["digest_algorithm"], SHA256);
    let print = cms_print(&cms);
    assert!(
        print
            .contains("algorithm: rsaEncryption (1.2.840.113549.1.1.1)\n          parameter: NULL"),
        "{print}"
    );
}

#[test]
fn detached_has_no_econtent_and_needs_the_content() {
    let (signer, root) = p256_signer();
    let opts = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    let cms = cms_sign(CONTENT, &[signer], &opts);
    let print = cms_print(&cms);
    assert!(print.contains("eContent: <ABSENT>"), "{print}");
    assert!(cms_verify_with_openssl(&cms, Some(CONTENT), root));
    assert!(!cms_verify_with_openssl(&cms, Some(b"other content"), root));
    assert!(!cms_verify_with_openssl(&cms, None, root));
}

#[test]
fn keyid_identifies_the_signer_by_subject_key_identifier() {
    for (signer, root) in [p256_signer(), rsa_signer()] {
        let opts = SignOptions {
            keyid: true,
            ..SignOptions::default()
        };
        let cms = cms_sign(CONTENT, &[signer], &opts);
        assert!(cms_verify_with_openssl(&cms, None, root));
        let s = &signers_of(&cms)[0];
        assert_eq!(s["sid"]["type"], "subject_key_identifier");
        assert_eq!(s["sid"]["key_id"], ski(&signer.cert_pem));
        let print = cms_print(&cms);
        assert!(print.contains("d.subjectKeyIdentifier:"), "{print}");
        // SignedData and SignerInfo are version 3 with a subjectKeyIdentifier (RFC 5652 5.1, 5.3).
        assert!(print.contains("d.signedData: \n    version: 3"), "{print}");
        assert!(
            print.contains("signerInfos:\n        version: 3"),
            "{print}"
        );
    }
}

#[test]
fn noattr_signs_the_content_without_signed_attributes() {
    for (signer, root) in [p256_signer(), rsa_signer()] {
        let opts = SignOptions {
            noattr: true,
            ..SignOptions::default()
        };
        let cms = cms_sign(CONTENT, &[signer], &opts);
        assert!(cms_verify_with_openssl(&cms, None, root));
        assert_eq!(signers_of(&cms)[0]["signed_attrs"], Value::Null);
        let print = cms_print(&cms);
        assert!(
            print.contains("signedAttrs:\n          <ABSENT>"),
            "{print}"
        );
    }
}

#[test]
fn two_signers_give_two_signer_infos_and_both_certificates() {
    let (p256, p256_root) = p256_signer();
    let (rsa, rsa_root) = rsa_signer();
    let opts = SignOptions {
        md: Some("sha384"),
        ..SignOptions::default()
    };
    let cms = cms_sign(CONTENT, &[p256, rsa], &opts);
    let both_roots = format!("{p256_root}{rsa_root}");
    assert!(cms_verify_with_openssl(&cms, None, &both_roots));
    assert!(
        !cms_verify_with_openssl(&cms, None, p256_root),
        "every signer must chain"
    );

    let signers = signers_of(&cms);
    assert_eq!(signers.len(), 2);
    let at_p256 = signer_index(&cms, &p256.cert_pem).expect("the P-256 signer");
    let at_rsa = signer_index(&cms, &rsa.cert_pem).expect("the RSA signer");
    assert_ne!(at_p256, at_rsa);
    assert_eq!(signers[at_p256]["digest_algorithm"], SHA384);
    assert_eq!(signers[at_p256]["signature_algorithm"], ECDSA_SHA384);
    assert_eq!(signers[at_rsa]["digest_algorithm"], SHA384);
    assert_eq!(signers[at_rsa]["signature_algorithm"], RSA_ENCRYPTION);

    // OpenSSL sorts the SignerInfos (DER SET OF), whatever the order of the signers given.
    let reversed = cms_sign(CONTENT, &[rsa, p256], &opts);
    assert_eq!(signer_index(&reversed, &p256.cert_pem), Some(at_p256));

    let print = cms_print(&cms);
    let certificates = &print[print.find("certificates:").expect("certificates")
        ..print.find("signerInfos:").expect("signerInfos")];
    assert!(certificates.contains("subject: CN=Alice P-256"), "{print}");
    assert!(certificates.contains("subject: CN=Bob RSA"), "{print}");
}

#[test]
fn without_certs_the_verifier_must_be_given_the_signer_certificate() {
    let (signer, root) = p256_signer();
    let opts = SignOptions {
        certs: false,
        ..SignOptions::default()
    };
    let cms = cms_sign(CONTENT, &[signer], &opts);
    assert!(cms_print(&cms).contains("certificates:\n      <ABSENT>"));
    assert!(!cms_verify_with_openssl(&cms, None, root));
    assert_eq!(
        cms_verify_content_with_openssl(&cms, None, root, &[&signer.cert_pem]).expect("verifies"),
        CONTENT
    );
}

#[test]
fn a_timestamp_over_the_signature_lands_in_the_unsigned_attributes() {
    let (p256, p256_root) = p256_signer();
    let (rsa, rsa_root) = rsa_signer();
    let roots = format!("{p256_root}{rsa_root}");
    let cms = cms_sign(CONTENT, &[p256, rsa], &SignOptions::default());
    let tsa = tsa();

    let at_rsa = signer_index(&cms, &rsa.cert_pem).expect("the RSA signer");
    let at_p256 = 1 - at_rsa;
    let digest = signature_sha256(&cms, at_rsa);

    let stamped = add_timestamp(&cms, tsa, at_rsa);
    let at_rsa = signer_index(&stamped, &rsa.cert_pem).expect("the RSA signer");
    let at_p256_now = signer_index(&stamped, &p256.cert_pem).expect("the P-256 signer");

    // (a) The signed parts are untouched: OpenSSL still verifies the document.
    assert!(cms_verify_with_openssl(&stamped, None, &roots));
    assert_eq!(signature_sha256(&stamped, at_rsa), digest);

    // (b) OpenSSL parses the token; it covers SHA-256 of the signature value and verifies.
    let tokens = timestamp_tokens(&stamped, at_rsa);
    assert_eq!(tokens.len(), 1);
    let text = ts_token_text(&tokens[0]);
    assert_eq!(text.hash_algorithm, "sha256", "{}", text.text);
    assert_eq!(text.message_imprint, digest, "{}", text.text);
    assert!(ts_verify_with_openssl(&tokens[0], &digest, &tsa.root_pem()));
    assert!(!ts_verify_with_openssl(
        &tokens[0],
        &signature_sha256(&cms, at_p256),
        &tsa.root_pem()
    ));
    assert!(!ts_verify_with_openssl(&tokens[0], &digest, p256_root));

    // (c) asn1crypto sees the attribute on that SignerInfo only.
    let signers = signers_of(&stamped);
    assert_eq!(signers[at_p256_now]["unsigned_attrs"], Value::Null);
    let attrs = signers[at_rsa]["unsigned_attrs"]
        .as_array()
        .expect("unsigned attrs");
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0]["oid"], TIMESTAMP_ATTR);
    assert_eq!(attrs[0]["name"], "signature_time_stamp_token");
    let ts = &signers[at_rsa]["timestamps"][0];
    assert_eq!(ts["message_imprint"], hex::encode(&digest));
    assert_eq!(ts["hash_algorithm"], SHA256);
    assert_eq!(ts["policy"], TSA_POLICY);

    // The other signer too: each SignerInfo gets its own token.
    let both = add_timestamp(&stamped, tsa, at_p256_now);
    assert!(cms_verify_with_openssl(&both, None, &roots));
    for s in signers_of(&both) {
        assert_eq!(s["timestamps"][0]["message_imprint"], s["signature_sha256"]);
    }
    let at_rsa_both = signer_index(&both, &rsa.cert_pem).expect("the RSA signer");
    assert_eq!(
        timestamp_tokens(&both, at_rsa_both),
        tokens,
        "the first token is kept"
    );

    // A second timestamp on the same SignerInfo is a second attribute beside the first.
    let twice = add_timestamp(&stamped, tsa, at_rsa);
    let at_rsa_twice = signer_index(&twice, &rsa.cert_pem).expect("the RSA signer");
    let again = timestamp_tokens(&twice, at_rsa_twice);
    assert_eq!(again.len(), 2);
    assert!(again.contains(&tokens[0]));
    assert!(cms_verify_with_openssl(&twice, None, &roots));
}

#[test]
fn a_detached_signature_without_attributes_takes_a_timestamp_too() {
    let (signer, root) = rsa_signer();
    let opts = SignOptions {
        detached: true,
        noattr: true,
        keyid: true,
        ..SignOptions::default()
    };
    let cms = cms_sign(CONTENT, &[signer], &opts);
    let tsa = Tsa::with_clock_precision("Precise TSA", 3);
    let stamped = add_timestamp(&cms, &tsa, 0);
    assert!(cms_verify_with_openssl(&stamped, Some(CONTENT), root));
    let token = &timestamp_tokens(&stamped, 0)[0];
    assert!(ts_verify_with_openssl(
        token,
        &signature_sha256(&stamped, 0),
        &tsa.root_pem()
    ));
    let print = cms_print(&stamped);
    assert!(print.contains("eContent: <ABSENT>"), "{print}");
    assert!(print.contains("id-smime-aa-timeStampToken"), "{print}");
}

#[test]
fn keys_requests_and_foreign_certificates() {
    let p256 = p256_key_pem();
    assert!(p256.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = openssl::pkey::PKey::private_key_from_pem(p256.as_bytes()).expect("P-256 key");
    assert_eq!(
        key.ec_key().expect("EC").group().curve_name(),
        Some(openssl::nid::Nid::X9_62_PRIME256V1)
    );

    let csr = csr_pem(&p256, "Odd/Name+With=Specials");
    let req = X509Req::from_pem(csr.as_bytes()).expect("CSR");
    assert!(req.verify(&req.public_key().expect("key")).expect("verify"));
    let cn = req
        .subject_name()
        .entries()
        .next()
        .expect("CN")
        .data()
        .to_string()
        .expect("UTF-8");
    assert_eq!(cn, "Odd/Name+With=Specials");

    let ca = ForeignCa::new("Foreign Test Root");
    let signer = ca.issue("Carol", &p256);
    let cert = X509::from_pem(signer.cert_pem.as_bytes()).expect("certificate");
    let root = X509::from_pem(ca.root_pem.as_bytes()).expect("root");
    assert!(cert
        .verify(&root.public_key().expect("key"))
        .expect("verify"));
    assert!(cert.public_key().expect("key").public_eq(&key));
    let text = String::from_utf8(cert.to_text().expect("text")).expect("UTF-8");
    assert!(
        text.contains(
            "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation"
        ),
        "{text}"
    );
    assert!(cms_verify_with_openssl(
        &cms_sign(CONTENT, &[&signer], &SignOptions::default()),
        None,
        &ca.root_pem
    ));
}
