//! Interop: CSRs made by `openssl req` are issued, and what Vouch issues is checked by tools we did
//! not write: `openssl verify`, pkilint and Python `cryptography`.
//!
//! Needs the Python venv made by `scripts/test.sh` (pkilint, cryptography); set VOUCH_TEST_VENV to
//! use another one. The test fails, rather than skips, when a tool is missing.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// `openssl req` makes a key and CSR; returns the CSR PEM.
fn openssl_csr(dir: &Path, name: &str, newkey: &[&str]) -> String {
    let csr = dir.join(format!("{name}.csr"));
    let (ok, text) = run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-nodes",
            "-subj",
            "/CN=chosen by the applicant",
        ])
        .args(newkey)
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&csr));
    assert!(ok, "openssl req: {text}");
    std::fs::read_to_string(csr).unwrap()
}

/// pkilint exits non-zero for any finding; only ERROR and FATAL findings fail the test.
fn pkilint(tool: &str, args: &[&str], file: &Path) {
    let (_, text) = run(Command::new(venv_bin(tool)).args(args).arg(file));
    assert!(
        !text.contains("(ERROR)") && !text.contains("(FATAL)") && !text.contains("Traceback"),
        "{tool} {}:\n{text}",
        file.display()
    );
}

const PY_CHECK: &str = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
root = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
csr = x509.load_pem_x509_csr(open(sys.argv[4], "rb").read())
cert.verify_directly_issued_by(issuing)
issuing.verify_directly_issued_by(root)
root.verify_directly_issued_by(root)
assert csr.is_signature_valid
spki = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
assert spki(cert.public_key()) == spki(csr.public_key()), "certified key differs from the CSR key"
assert cert.serial_number > 0 and cert.serial_number.bit_length() >= 64
ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
assert cn == "Li Wei", cn
print("ok", format(cert.serial_number, "x"))
"#;

#[tokio::test]
async fn openssl_csrs_are_issued_and_pass_independent_checks() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (root, issuing) = app.save_ca_certs(d).await;
    let cases: [(&str, &[&str]); 3] = [
        (
            "p256",
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-sha256",
            ],
        ),
        // P-384 key in a CSR signed with SHA-256: the certificate must still carry the P-384 key.
        (
            "p384-sha256",
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-sha256",
            ],
        ),
        ("rsa2048", &["-newkey", "rsa:2048", "-sha256"]),
    ];
    for (name, newkey) in cases {
        let csr = openssl_csr(d, name, newkey);
        let serial = app.issue(&clerk, &approver, &csr).await;
        let (_, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        let cert_path = d.join(format!("{name}.pem"));
        std::fs::write(&cert_path, cert["pem"].as_str().unwrap()).unwrap();
        let chain_path = d.join(format!("{name}-chain.pem"));
        std::fs::write(&chain_path, cert["chain_pem"].as_str().unwrap()).unwrap();

        let (ok, text) = run(Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&issuing)
            .arg(&cert_path));
        assert!(ok && text.contains(": OK"), "{name}: {text}");
        // The chain_pem served with the certificate is a usable chain too.
        let (ok, text) = run(Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&chain_path)
            .args(["-purpose", "smimesign"])
            .arg(&cert_path));
        assert!(ok, "{name} (smimesign): {text}");
        let (ok, text) = run(Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(&cert_path));
        assert!(
            ok && text
                .trim()
                .eq_ignore_ascii_case(&format!("serial={serial}")),
            "{name}: {text} vs {serial}"
        );

        pkilint("lint_pkix_cert", &["lint"], &cert_path);
        let (ok, text) = run(Command::new(venv_bin("python"))
            .arg("-c")
            .arg(PY_CHECK)
            .arg(&cert_path)
            .arg(&issuing)
            .arg(&root)
            .arg(d.join(format!("{name}.csr"))));
        assert!(ok && text.starts_with("ok"), "{name}: {text}");
    }
    pkilint("lint_pkix_cert", &["lint"], &issuing);
    pkilint("lint_pkix_cert", &["lint"], &root);
    app.stop().await;
}
