//! Valid inputs for the mutator, made fresh by OpenSSL (the library and the `openssl` command),
//! once per test binary.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509ReqBuilder, X509};
use std::path::Path;
use std::process::Command;

pub fn ec_key(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_text("O", "Vouch fuzz").unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

/// A certificate for `key`, issued by `issuer` (self-signed when None).
pub fn cert(
    cn: &str,
    serial: u32,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    let (issuer_name, signer) = match issuer {
        Some((c, k)) => (c.subject_name().to_owned().unwrap(), k),
        None => (name(cn), key),
    };
    b.set_issuer_name(&issuer_name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if issuer.is_none() {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

pub struct CsrSeeds {
    /// DER requests, each valid and accepted or refused for a reason other than its encoding.
    pub der: Vec<Vec<u8>>,
    /// Every key that signed one of them: an accepted request must carry one of these.
    pub keys: Vec<PKey<Private>>,
}

fn csr(key: &PKey<Private>, md: MessageDigest, extensions: bool) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(key).unwrap();
    b.set_subject_name(&name("applicant")).unwrap();
    if extensions {
        let mut exts = Stack::new().unwrap();
        exts.push(
            SubjectAlternativeName::new()
                .email("a@example.org")
                .dns("a.example.org")
                .build(&b.x509v3_context(None))
                .unwrap(),
        )
        .unwrap();
        exts.push(KeyUsage::new().digital_signature().build().unwrap())
            .unwrap();
        b.add_extensions(&exts).unwrap();
    }
    b.sign(key, md).unwrap();
    b.build().to_der().unwrap()
}

pub fn csrs(dir: &Path) -> CsrSeeds {
    let p256 = ec_key(Nid::X9_62_PRIME256V1);
    let p384 = ec_key(Nid::SECP384R1);
    let rsa = rsa_key(2048);
    let mut der = vec![
        csr(&p256, MessageDigest::sha256(), false),
        csr(&p256, MessageDigest::sha256(), true),
        csr(&p384, MessageDigest::sha384(), true),
        csr(&rsa, MessageDigest::sha256(), false),
    ];
    // RSASSA-PSS, whose parameters the RA reads itself.
    let key_path = dir.join("csr-rsa.pem");
    std::fs::write(&key_path, rsa.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-new", "-subj", "/CN=pss", "-outform", "DER"])
        .args(["-sigopt", "rsa_padding_mode:pss", "-sha256", "-key"])
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    der.push(out.stdout);
    CsrSeeds {
        der,
        keys: vec![p256, p384, rsa],
    }
}

/// An issuing CA and two certificates it issued, as files and objects.
pub struct Pki {
    pub ca: X509,
    pub ca_key: PKey<Private>,
    pub leaves: Vec<X509>,
    pub leaf_key: PKey<Private>,
}

pub fn pki(dir: &Path) -> Pki {
    let ca_key = ec_key(Nid::X9_62_PRIME256V1);
    let ca = cert("Fuzz Issuing CA", 1, &ca_key, None);
    let leaf_key = ec_key(Nid::X9_62_PRIME256V1);
    let leaves = vec![
        cert("leaf one", 0x1000_0001, &leaf_key, Some((&ca, &ca_key))),
        cert("leaf two", 0x7fff_fffe, &leaf_key, Some((&ca, &ca_key))),
    ];
    std::fs::write(dir.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join("leaf-key.pem"),
        leaf_key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    signer(dir);
    for (i, l) in leaves.iter().enumerate() {
        std::fs::write(dir.join(format!("leaf{i}.pem")), l.to_pem().unwrap()).unwrap();
    }
    Pki {
        ca,
        ca_key,
        leaves,
        leaf_key,
    }
}

/// A self-signed certificate and key to sign OCSP requests with (signer.pem, signer-key.pem).
pub fn signer(dir: &Path) {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    std::fs::write(
        dir.join("signer.pem"),
        cert("requestor", 5, &key, None).to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("signer-key.pem"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
}

/// OCSP requests as `openssl ocsp` writes them: with and without a nonce, SHA-1 and SHA-256
/// CertIDs, one and two certificates, unsigned and signed. `dir` holds ca.pem, leaf0.pem,
/// leaf1.pem, and signer.pem with signer-key.pem.
pub fn ocsp_requests(dir: &Path) -> Vec<Vec<u8>> {
    let variants: &[&[&str]] = &[
        &["-cert", "leaf0.pem"],
        &["-cert", "leaf0.pem", "-no_nonce"],
        &["-sha256", "-cert", "leaf0.pem", "-cert", "leaf1.pem"],
        &[
            "-cert",
            "leaf1.pem",
            "-signer",
            "signer.pem",
            "-signkey",
            "signer-key.pem",
        ],
    ];
    variants
        .iter()
        .enumerate()
        .map(|(i, args)| {
            let out = format!("req{i}.der");
            let status = Command::new("openssl")
                .current_dir(dir)
                .args(["ocsp", "-issuer", "ca.pem", "-reqout", &out])
                .args(*args)
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
            std::fs::read(dir.join(out)).unwrap()
        })
        .collect()
}

/// A self-revocation statement.
pub const STATEMENT: &[u8] =
    br#"{"serial":"1000000000000000000000000000000a","reason":"keyCompromise","time":"2026-11-28T10:00:00Z"}"#;

/// CMS SignedData over [`STATEMENT`] by the first leaf: DER (with and without signed attributes),
/// PEM and S/MIME.
pub fn cms(dir: &Path, pki: &Pki) -> Vec<Vec<u8>> {
    let leaf = &pki.leaves[0];
    let sign = |flags: CMSOptions| {
        CmsContentInfo::sign(
            Some(leaf),
            Some(&pki.leaf_key),
            None,
            Some(STATEMENT),
            flags,
        )
        .unwrap()
    };
    let with_attrs = sign(CMSOptions::BINARY);
    let no_attrs = sign(CMSOptions::BINARY | CMSOptions::NOATTR);
    std::fs::write(dir.join("statement.json"), STATEMENT).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-in",
            "statement.json",
        ])
        .args(["-signer", "leaf0.pem", "-inkey", "leaf-key.pem"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec![
        with_attrs.to_der().unwrap(),
        no_attrs.to_der().unwrap(),
        with_attrs.to_pem().unwrap(),
        out.stdout,
    ]
}
