//! Relying parties Vouch did not write check the whole chain, as Windows, Java and NSS do by
//! default: the JDK's PKIX validator (OCSP preferred, and CRLs only), NSS `vfychain`, GnuTLS
//! `certtool` and `openssl verify -crl_check_all` all say VALID for a fresh certificate, REVOKED
//! after its revocation and refuse every certificate once the issuing CA is revoked; pkilint checks
//! the issuing CA certificate and the root's ARL. The harness (tests/common/relying.rs) is first
//! checked on a chain made here and served from a tiny HTTP server, so that a failure below is
//! Vouch's, not the harness's.
//!
//! Needs Java 17 (`javac`), `libnss3-tools`, `gnutls-bin`, `openssl` and the venv with pkilint;
//! scripts/test.sh installs them. A missing tool fails the test.

mod common;

use common::relying::*;
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The harness on a chain made here (rcgen), with CRLs served over HTTP on 127.0.0.1.

/// A tiny HTTP/1.1 server on 127.0.0.1 answering GET for the paths in `files` (404 otherwise);
/// its thread stops when it is dropped.
struct FileServer {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl FileServer {
    fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (files.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = answer(stream, &f);
                }
            }
        });
        FileServer {
            base: format!("http://{addr}"),
            files,
            stop,
            addr,
        }
    }

    fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), body);
    }

    fn remove(&self, path: &str) {
        self.files.lock().unwrap().remove(path);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(mut stream: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let body = files.lock().unwrap().get(&path).cloned();
    match body {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
        }
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    stream.flush()
}

/// A root, an intermediate with a CDP (and the same intermediate without one), a leaf with a
/// CDP, and the CRLs to sign, made with rcgen.
struct HandMade {
    root: PathBuf,
    intermediate: PathBuf,
    bare_intermediate: PathBuf,
    leaf: PathBuf,
    root_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    int_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

const INT_SERIAL: u64 = 0x1111;
const LEAF_SERIAL: u64 = 0x2222;

impl HandMade {
    fn new(dir: &Path, base: &str) -> HandMade {
        use rcgen::{
            BasicConstraints, CertificateParams, CrlDistributionPoint, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let now = time::OffsetDateTime::now_utc();
        let params = |cn: &str, serial: u64| {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.serial_number = Some(serial.into());
            p.not_before = now - time::Duration::days(1);
            p.not_after = now + time::Duration::days(30);
            p.use_authority_key_identifier_extension = true;
            p
        };
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };

        let root_key = KeyPair::generate().unwrap();
        let mut root = params("Relying Test Root", 1);
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.use_authority_key_identifier_extension = false;
        let root_pem = root.self_signed(&root_key).unwrap().pem();
        let root_issuer = Issuer::new(root, root_key);

        let int_key = KeyPair::generate().unwrap();
        let mut int = params("Relying Test Issuing", INT_SERIAL);
        int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut bare = int.clone();
        bare.serial_number = Some((INT_SERIAL + 1).into());
        int.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![format!("{base}/root.crl")],
        }];
        let int_pem = int.signed_by(&int_key, &root_issuer).unwrap().pem();
        let bare_pem = bare.signed_by(&int_key, &root_issuer).unwrap().pem();
        let int_issuer = Issuer::new(int, int_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = params("Relying Test Leaf", LEAF_SERIAL);
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        leaf.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![format!("{base}/int.crl")],
        }];
        let leaf_pem = leaf.signed_by(&leaf_key, &int_issuer).unwrap().pem();

        HandMade {
            root: write("root.pem", root_pem),
            intermediate: write("int.pem", int_pem),
            bare_intermediate: write("int-bare.pem", bare_pem),
            leaf: write("leaf.pem", leaf_pem),
            root_issuer,
            int_issuer,
        }
    }
}

/// A DER CRL signed by `issuer` listing `revoked` serials with reason keyCompromise.
fn crl(issuer: &rcgen::Issuer<'_, rcgen::KeyPair>, number: u64, revoked: &[u64]) -> Vec<u8> {
    use rcgen::{
        CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams,
    };
    let now = time::OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(1),
        crl_number: number.into(),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: (*s).into(),
                revocation_time: now - time::Duration::minutes(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap()
    .der()
    .to_vec()
}

/// The validators follow the distribution point of every certificate in the path: a chain whose
/// intermediate names its CRL passes, a revoked leaf or a revoked intermediate is refused, and an
/// intermediate without a CDP, or whose CRL cannot be fetched, is refused by every chain-wide
/// validator except certtool (which accepts a certificate it has no CRL for). This is the state a
/// Vouch chain must reach.
#[tokio::test]
async fn the_harness_checks_the_status_of_every_certificate_in_the_path() {
    let server = FileServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = HandMade::new(d, &server.base);
    let (root, int, bare, leaf) = (
        &pki.root,
        &pki.intermediate,
        &pki.bare_intermediate,
        &pki.leaf,
    );
    let chain = [leaf.as_path(), int.as_path()];
    server.put("/root.crl", crl(&pki.root_issuer, 1, &[]));
    server.put("/int.crl", crl(&pki.int_issuer, 1, &[]));

    // Good: every validator, each CRL fetched from the CDP URLs.
    assert_eq!(cdp_urls(int), vec![format!("{}/root.crl", server.base)]);
    assert_all_valid(&every_validator(root, &chain, d).await);
    // pkilint_ca is exercised on Vouch's issuing CA below (it takes seconds).
    let arl = d.join("root.crl");
    std::fs::write(&arl, crl(&pki.root_issuer, 1, &[INT_SERIAL])).unwrap();
    pkilint_crl(&arl, CrlKind::Arl);

    // An intermediate without a CDP: whole-chain checking cannot learn its status.
    let bare_chain = [leaf.as_path(), bare.as_path()];
    assert!(cdp_urls(bare).is_empty());
    let leaf_crls = fetch_crls(&[leaf.as_path()], d).await;
    let (ocsp, crl_only, nss, openssl, gnutls, ee_only) = tokio::join!(
        jdk(JdkMode::Ocsp, root, &bare_chain),
        jdk(JdkMode::Crl, root, &bare_chain),
        vfychain(root, &bare_chain),
        openssl_verify(root, &bare_chain, &leaf_crls),
        certtool(root, &bare_chain, &leaf_crls),
        jdk(JdkMode::EeOnly, root, &bare_chain),
    );
    for refused in [ocsp, crl_only, nss, openssl] {
        refused.assert_refused();
    }
    // certtool has no CRL for the intermediate and does not mind: fetch_crls is what refuses.
    gnutls.assert_valid();
    // Checking the end entity only, the JDK is satisfied: the defect the issue describes.
    ee_only.assert_valid();

    // The intermediate's CRL cannot be fetched (404): the fetching validators refuse.
    server.remove("/root.crl");
    let (ocsp, crl_only, nss) = tokio::join!(
        jdk(JdkMode::Ocsp, root, &chain),
        jdk(JdkMode::Crl, root, &chain),
        vfychain(root, &chain),
    );
    for refused in [ocsp, crl_only, nss] {
        refused.assert_refused();
    }
    server.put("/root.crl", crl(&pki.root_issuer, 2, &[]));

    // The leaf revoked: every validator says so, the JDK with the reason.
    server.put("/int.crl", crl(&pki.int_issuer, 2, &[LEAF_SERIAL]));
    assert_all_revoked(&every_validator(root, &chain, d).await, "keyCompromise");

    // The intermediate revoked by the root, the leaf not: every validator refuses the leaf.
    server.put("/int.crl", crl(&pki.int_issuer, 3, &[]));
    server.put("/root.crl", crl(&pki.root_issuer, 3, &[INT_SERIAL]));
    assert_all_revoked(&every_validator(root, &chain, d).await, "keyCompromise");
    // The end entity alone is still good: only a whole-chain check sees the intermediate.
    jdk(JdkMode::EeOnly, root, &chain).await.assert_valid();
}

// ---------------------------------------------------------------------------------------------
// Vouch's chain.

/// A test app with one issued certificate, its chain saved in a temporary directory.
struct Issued {
    app: TestApp,
    dir: tempfile::TempDir,
    root: PathBuf,
    issuing: PathBuf,
    leaf: PathBuf,
    serial: String,
}

impl Issued {
    async fn new() -> Issued {
        let app = TestApp::spawn().await;
        let (clerk, approver) = app.clerk_and_approver().await;
        let dir = tempfile::tempdir().unwrap();
        let (root, issuing) = app.save_ca_certs(dir.path()).await;
        let serial = app.issue(&clerk, &approver, &p256_csr()).await;
        let (status, cert) = app
            .get(&clerk, &format!("/api/v1/certificates/{serial}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{cert}");
        let leaf = dir.path().join("leaf.pem");
        std::fs::write(&leaf, cert["pem"].as_str().unwrap()).unwrap();
        Issued {
            app,
            dir,
            root,
            issuing,
            leaf,
            serial,
        }
    }

    fn chain(&self) -> [&Path; 2] {
        [self.leaf.as_path(), self.issuing.as_path()]
    }

    async fn revoke(&self, reason: &str) {
        let revoker = self.app.operator("revoker1", &["revoker"]).await;
        let (status, body) = self
            .app
            .post(
                &revoker,
                &format!("/api/v1/certificates/{}/revoke", self.serial),
                json!({ "reason": reason }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "revoked", "{body}");
    }
}

/// Checking the end entity only, the JDK gets VALID and then REVOKED with the reason, from the
/// OCSP responder (and, CRL preferred, it would from the CRL): the issuing CA's certificate is not
/// looked at. This passes without the issuing CA publishing its status.
#[tokio::test]
async fn the_jdk_checking_the_end_entity_only_sees_valid_then_revoked() {
    let t = Issued::new().await;
    assert_eq!(ocsp_urls(&t.leaf), vec![t.app.url("/ocsp")]);
    assert_eq!(cdp_urls(&t.leaf), vec![t.app.url("/crl/issuing.crl")]);
    jdk(JdkMode::EeOnly, &t.root, &t.chain())
        .await
        .assert_valid();
    t.revoke("keyCompromise").await;
    jdk(JdkMode::EeOnly, &t.root, &t.chain())
        .await
        .assert_revoked_with("keyCompromise");
    t.app.stop().await;
}

/// A fresh certificate is VALID for every relying party checking the whole chain, and REVOKED
/// (the JDK giving the reason, from OCSP and from the CRL) once revoked.
#[tokio::test]
async fn every_relying_party_accepts_a_fresh_certificate_and_refuses_it_revoked() {
    let t = Issued::new().await;
    let d = t.dir.path();
    assert_all_valid(&every_validator(&t.root, &t.chain(), d).await);
    t.revoke("keyCompromise").await;
    assert_all_revoked(
        &every_validator(&t.root, &t.chain(), d).await,
        "keyCompromise",
    );
    t.app.stop().await;
}

/// The issuing CA certificate names the root's ARL and the root certificate (DER and PEM) and
/// passes pkilint as a CA certificate; the ARL those URLs lead to passes pkilint as an ARL.
#[tokio::test]
async fn the_issuing_ca_names_the_arl_and_the_root_and_both_pass_pkilint() {
    let t = Issued::new().await;
    let d = t.dir.path();
    pkilint_ca(&t.issuing);
    assert_eq!(cdp_urls(&t.issuing), vec![t.app.url("/crl/root.crl")]);
    let arls = fetch_crls(&[t.issuing.as_path()], d).await;
    for arl in &arls {
        pkilint_crl(arl, CrlKind::Arl);
        let crl = openssl::x509::X509Crl::from_pem(&std::fs::read(arl).unwrap()).unwrap();
        let root = openssl::x509::X509::from_pem(&std::fs::read(&t.root).unwrap()).unwrap();
        assert!(
            crl.verify(&root.public_key().unwrap()).unwrap(),
            "the ARL is signed by the root"
        );
    }
    // caIssuers: the root certificate, DER (.cer, as Windows fetches it) and PEM.
    let urls = ca_issuers_urls(&t.issuing);
    assert!(
        urls.contains(&t.app.url("/ca/root.cer")) && urls.contains(&t.app.url("/ca/root.pem")),
        "{urls:?}"
    );
    let root = openssl::x509::X509::from_pem(&std::fs::read(&t.root).unwrap()).unwrap();
    for url in urls {
        let body = fetch(&t.app.client, &url).await;
        let cert = if url.ends_with(".cer") {
            openssl::x509::X509::from_der(&body)
        } else {
            openssl::x509::X509::from_pem(&body)
        }
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(cert.to_der().unwrap(), root.to_der().unwrap(), "{url}");
    }
    t.app.stop().await;
}

/// `vouch ca revoke-issuing` (run against the test app's data directory and database) puts the
/// issuing CA on the root's ARL; the running server publishes it, and every relying party then
/// refuses a certificate that was valid.
#[tokio::test]
async fn a_revoked_issuing_ca_is_refused_by_every_relying_party() {
    let t = Issued::new().await;
    let d = t.dir.path();
    assert_all_valid(&every_validator(&t.root, &t.chain(), d).await);

    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["ca", "revoke-issuing", "--data-dir"])
        .arg(t.app.data.root())
        .args(["--reason", "keyCompromise"])
        .env_remove("VOUCH_DATABASE_URL");
    if let Some(db) = &t.app.pg {
        cmd.arg("--database-url").arg(db.url());
    }
    let out = cmd.output().await.expect("run vouch ca revoke-issuing");
    assert!(
        out.status.success(),
        "vouch ca revoke-issuing: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The server publishes the new ARL shortly; wait for it, with a deadline.
    let issuing = openssl::x509::X509::from_pem(&std::fs::read(&t.issuing).unwrap()).unwrap();
    let serial = issuing.serial_number().to_bn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let der = fetch(&t.app.client, &t.app.url("/crl/root.crl")).await;
        let arl = openssl::x509::X509Crl::from_der(&der).expect("a DER ARL");
        let listed = arl.get_revoked().is_some_and(|revoked| {
            revoked
                .iter()
                .any(|r| r.serial_number().to_bn().unwrap() == serial)
        });
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the served ARL does not list the issuing CA ({serial}) 20 s after revoke-issuing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_all_revoked(
        &every_validator(&t.root, &t.chain(), d).await,
        "keyCompromise",
    );
    t.app.stop().await;
}
