//! Relying parties Vouch did not write, as a relying party runs them: the JDK's PKIX validator
//! (`tests/relying/PkixCheck.java`), NSS `vfychain`, GnuTLS `certtool` and `openssl verify`, each
//! checking the revocation status of every certificate in the path, plus pkilint for CA
//! certificates and CRLs. docs/ARCHITECTURE.md ("Relying parties") lists the flags and what each
//! tool does when revocation information is missing.
//!
//! The validators run in child processes off the async runtime (`spawn_blocking`), since the JDK
//! and NSS fetch OCSP responses and CRLs from a server that may run on the test's own runtime. A
//! missing tool fails the test with the Debian package to install; nothing is skipped.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What a relying party decided about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Refused as revoked: the JDK gives the RFC 5280 reason (`keyCompromise`), the others their
    /// own message (they do not print the reason).
    Revoked(String),
    /// Refused for any other reason (no revocation information, a bad signature, ...).
    Invalid(String),
}

/// A validator's verdict with everything it printed, shown by the `assert_*` methods on failure.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub tool: String,
    pub verdict: Verdict,
    pub output: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?}\n----- output -----\n{}\n------------------",
            self.tool,
            self.verdict,
            self.output.trim_end()
        )
    }
}

impl Outcome {
    #[track_caller]
    pub fn assert_valid(&self) {
        assert_eq!(self.verdict, Verdict::Valid, "expected VALID from {self}");
    }

    /// Refused as revoked (any reason).
    #[track_caller]
    pub fn assert_revoked(&self) {
        assert!(
            matches!(self.verdict, Verdict::Revoked(_)),
            "expected REVOKED from {self}"
        );
    }

    /// Refused as revoked with this RFC 5280 reason (the JDK reports it; the others do not).
    #[track_caller]
    pub fn assert_revoked_with(&self, reason: &str) {
        assert_eq!(
            self.verdict,
            Verdict::Revoked(reason.to_string()),
            "expected REVOKED {reason} from {self}"
        );
    }

    /// Refused, for whatever reason.
    #[track_caller]
    pub fn assert_refused(&self) {
        assert_ne!(
            self.verdict,
            Verdict::Valid,
            "expected a refusal from {self}"
        );
    }
}

/// How the JDK's `PKIXRevocationChecker` is set up (see PkixCheck.java).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JdkMode {
    /// Every certificate; OCSP preferred, the CRL where a certificate names no responder (the
    /// JDK's default options).
    Ocsp,
    /// Every certificate; CRLs only (PREFER_CRLS + NO_FALLBACK).
    Crl,
    /// The end entity only (ONLY_END_ENTITY), OCSP preferred: a diagnostic, not a relying party
    /// to satisfy.
    EeOnly,
}

impl JdkMode {
    fn arg(self) -> &'static str {
        match self {
            JdkMode::Ocsp => "ocsp",
            JdkMode::Crl => "crl",
            JdkMode::EeOnly => "ee-only",
        }
    }
}

/// The JDK's PKIX validator on `chain` (end entity first) under the trust anchor `root`.
pub async fn jdk(mode: JdkMode, root: &Path, chain: &[&Path]) -> Outcome {
    let (root, chain) = owned(root, chain);
    off_runtime(move || {
        let classes = pkix_check_classes();
        let out = output(
            Command::new("java")
                .arg("-cp")
                .arg(classes)
                .arg("PkixCheck")
                .arg(mode.arg())
                .arg(&root)
                .args(&chain),
            "default-jdk-headless",
        );
        let line = out.stdout.lines().last().unwrap_or("").to_string();
        let verdict = if line == "VALID" && out.success {
            Verdict::Valid
        } else if let Some(reason) = line.strip_prefix("REVOKED ") {
            Verdict::Revoked(reason.to_string())
        } else if let Some(message) = line.strip_prefix("INVALID ") {
            Verdict::Invalid(message.to_string())
        } else {
            panic!("PkixCheck printed no verdict:\n{}", out.all)
        };
        Outcome {
            tool: format!("JDK PKIX ({})", mode.arg()),
            verdict,
            output: out.all,
        }
    })
    .await
}

/// PkixCheck.java compiled once per test binary, into a directory of its own under the target
/// directory (directories left by test processes that have ended are removed first).
fn pkix_check_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pkixcheck");
        std::fs::create_dir_all(&base).expect("create the PkixCheck directory");
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/relying/PkixCheck.java");
        let out = output(
            Command::new("javac")
                .args(["--release", "17", "-Xlint:all", "-Werror", "-d"])
                .arg(&dir)
                .arg(&source),
            "default-jdk-headless",
        );
        assert!(out.success, "javac {}:\n{}", source.display(), out.all);
        dir
    })
}

/// NSS `vfychain` in PKIX mode (`-pp`) for an email signer (`-u 4`), the root imported into a
/// fresh NSS database as a trusted CA. Revocation is checked for the leaf (`-g leaf`) and for
/// every CA certificate (`-g chain`) by OCSP and CRL, fetched from the URLs in the certificates
/// (`-f` also fetches missing issuers), and `-h requireFreshInfo` makes a certificate with no
/// fresh status from either method fail. NSS reports that failure as SEC_ERROR_REVOKED_CERTIFICATE
/// (-8180), the same as a real revocation: it comes out as `Revoked` here too.
pub async fn vfychain(root: &Path, chain: &[&Path]) -> Outcome {
    let (root, chain) = owned(root, chain);
    off_runtime(move || {
        let db_dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sql:{}", db_dir.path().display());
        let out = output(
            Command::new("certutil").args(["-N", "--empty-password", "-d", &db]),
            "libnss3-tools",
        );
        assert!(out.success, "certutil -N:\n{}", out.all);
        let out = output(
            Command::new("certutil")
                .args(["-A", "-d", &db, "-n", "root", "-t", "C,C,C", "-a", "-i"])
                .arg(&root),
            "libnss3-tools",
        );
        assert!(out.success, "certutil -A:\n{}", out.all);
        let mut cmd = Command::new("vfychain");
        cmd.args(["-d", &db, "-pp", "-u", "4", "-f"]);
        for test in ["leaf", "chain"] {
            cmd.args([
                "-g",
                test,
                "-h",
                "requireFreshInfo",
                "-m",
                "ocsp",
                "-m",
                "crl",
            ]);
        }
        for cert in &chain {
            cmd.arg("-a").arg(cert);
        }
        let out = output(&mut cmd, "libnss3-tools");
        let verdict = if out.success && out.all.contains("Chain is good!") {
            Verdict::Valid
        } else if let Some(line) = out.all.lines().find(|l| l.contains("ERROR -8180")) {
            Verdict::Revoked(line.trim().to_string())
        } else {
            Verdict::Invalid(first_line_with(&out.all, "ERROR"))
        };
        Outcome {
            tool: "NSS vfychain".into(),
            verdict,
            output: out.all,
        }
    })
    .await
}

/// GnuTLS `certtool --verify --verify-profile medium` on the chain (one PEM file, end entity
/// first) with the CRLs given (one PEM file). certtool checks each certificate against a CRL of
/// its issuer when one is loaded, and accepts a certificate for which none is: pass the CRLs of
/// the whole chain ([`fetch_crls`] refuses a CA certificate that names none).
pub async fn certtool(root: &Path, chain: &[&Path], crls: &[PathBuf]) -> Outcome {
    let (root, chain) = owned(root, chain);
    let crls = crls.to_vec();
    off_runtime(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain_file = concat_pem(dir.path(), "chain.pem", &chain);
        let mut cmd = Command::new("certtool");
        cmd.args([
            "--verify",
            "--verify-profile",
            "medium",
            "--load-ca-certificate",
        ])
        .arg(&root)
        .arg("--infile")
        .arg(&chain_file);
        if !crls.is_empty() {
            cmd.arg("--load-crl")
                .arg(concat_pem(dir.path(), "crls.pem", &crls));
        }
        let out = output(&mut cmd, "gnutls-bin");
        let line = first_line_with(&out.all, "Chain verification output:");
        let verdict = if out.success && line.contains("Verified. The certificate is trusted.") {
            Verdict::Valid
        } else if line.contains("revoked") {
            Verdict::Revoked(line)
        } else {
            Verdict::Invalid(line)
        };
        Outcome {
            tool: "GnuTLS certtool".into(),
            verdict,
            output: out.all,
        }
    })
    .await
}

/// `openssl verify -crl_check_all` on the leaf (`chain[0]`), the CA certificates as untrusted
/// intermediates and each CRL as `-CRLfile`. OpenSSL wants a CRL for every certificate below
/// the trust anchor and fails with "unable to get certificate CRL" where there is none.
pub async fn openssl_verify(root: &Path, chain: &[&Path], crls: &[PathBuf]) -> Outcome {
    let (root, chain) = owned(root, chain);
    let crls = crls.to_vec();
    off_runtime(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-crl_check_all", "-CAfile"]).arg(&root);
        if chain.len() > 1 {
            cmd.arg("-untrusted")
                .arg(concat_pem(dir.path(), "untrusted.pem", &chain[1..]));
        }
        for crl in &crls {
            cmd.arg("-CRLfile").arg(crl);
        }
        let out = output(cmd.arg(&chain[0]), "openssl");
        let verdict = if out.success && out.all.contains(": OK") {
            Verdict::Valid
        } else if out.all.contains("certificate revoked") {
            Verdict::Revoked(first_line_with(&out.all, "certificate revoked"))
        } else {
            Verdict::Invalid(first_line_with(&out.all, "error"))
        };
        Outcome {
            tool: "openssl verify".into(),
            verdict,
            output: out.all,
        }
    })
    .await
}

/// The URIs in a certificate's cRLDistributionPoints (read by `openssl x509 -ext`).
pub fn cdp_urls(cert: &Path) -> Vec<String> {
    extension_uris(cert, "crlDistributionPoints", "URI:")
}

/// The caIssuers URIs in a certificate's authorityInfoAccess.
pub fn ca_issuers_urls(cert: &Path) -> Vec<String> {
    extension_uris(cert, "authorityInfoAccess", "CA Issuers - URI:")
}

/// The OCSP URIs in a certificate's authorityInfoAccess.
pub fn ocsp_urls(cert: &Path) -> Vec<String> {
    extension_uris(cert, "authorityInfoAccess", "OCSP - URI:")
}

fn extension_uris(cert: &Path, ext: &str, prefix: &str) -> Vec<String> {
    let out = output(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", ext, "-in"])
            .arg(cert),
        "openssl",
    );
    assert!(out.success, "openssl x509 -ext {ext}:\n{}", out.all);
    out.all
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .map(|u| u.trim().to_string())
        .collect()
}

/// Download, as a relying party does, the CRL at every distribution point named by each
/// certificate of `chain` into `dir` (PEM, one file per URL); panics if a certificate names
/// none, since then no relying party can learn its status from a CRL.
pub async fn fetch_crls(chain: &[&Path], dir: &Path) -> Vec<PathBuf> {
    let crls = fetch_chain_crls(chain, dir).await;
    if let Some(cert) = crls.missing.first() {
        panic!("{}", no_cdp(cert));
    }
    crls.files
}

/// The CRLs the certificates of a chain name, and the certificates that name none.
pub struct ChainCrls {
    pub files: Vec<PathBuf>,
    pub missing: Vec<PathBuf>,
}

/// [`fetch_crls`], listing the certificates that name no distribution point instead of
/// panicking. Only URLs on 127.0.0.1 are fetched; an answer other than a DER CRL panics.
pub async fn fetch_chain_crls(chain: &[&Path], dir: &Path) -> ChainCrls {
    let client = reqwest::Client::new();
    let mut crls = ChainCrls {
        files: Vec::new(),
        missing: Vec::new(),
    };
    for cert in chain {
        let urls = cdp_urls(cert);
        if urls.is_empty() {
            crls.missing.push(cert.to_path_buf());
        }
        for url in urls {
            let der = fetch(&client, &url).await;
            let crl = openssl::x509::X509Crl::from_der(&der).unwrap_or_else(|e| {
                panic!("{url} (named by {}): not a DER CRL: {e}", cert.display())
            });
            let path = dir.join(format!("crl-{}.pem", crls.files.len()));
            std::fs::write(&path, crl.to_pem().unwrap()).unwrap();
            crls.files.push(path);
        }
    }
    crls
}

fn no_cdp(cert: &Path) -> String {
    format!(
        "{} names no CRL distribution point, so no relying party can fetch its CRL",
        cert.display()
    )
}

/// GET a URL on 127.0.0.1 (tests talk to no other address); panics on anything but 200.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Vec<u8> {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "{url}: tests fetch only from 127.0.0.1"
    );
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    let body = resp.bytes().await.expect("body").to_vec();
    assert!(
        status.is_success(),
        "GET {url}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Every chain-wide validator on `chain` (end entity first), run at once: the JDK with OCSP
/// preferred and with CRLs only, NSS vfychain (these fetch what they need themselves), and GnuTLS
/// certtool and openssl verify with the CRLs named by the chain's distribution points, downloaded
/// into `dir`.
pub async fn every_validator(root: &Path, chain: &[&Path], dir: &Path) -> Vec<Outcome> {
    let (ocsp, crl, nss, (gnutls, openssl)) = tokio::join!(
        jdk(JdkMode::Ocsp, root, chain),
        jdk(JdkMode::Crl, root, chain),
        vfychain(root, chain),
        async {
            let crls = fetch_chain_crls(chain, dir).await;
            let (mut gnutls, openssl) = tokio::join!(
                certtool(root, chain, &crls.files),
                openssl_verify(root, chain, &crls.files)
            );
            // certtool accepts a certificate it has no CRL for; a relying party that learns
            // status from CRLs cannot.
            if let (Verdict::Valid, Some(cert)) = (&gnutls.verdict, crls.missing.first()) {
                gnutls.verdict = Verdict::Invalid(format!(
                    "{} (certtool itself accepts the chain without that CRL)",
                    no_cdp(cert)
                ));
            }
            (gnutls, openssl)
        }
    );
    vec![ocsp, crl, nss, gnutls, openssl]
}

/// Every outcome VALID.
#[track_caller]
pub fn assert_all_valid(outcomes: &[Outcome]) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.verdict != Verdict::Valid)
        .map(|o| o.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "expected VALID from all:\n{}",
        failed.join("\n")
    );
}

/// Every outcome REVOKED, the JDK's with `reason`.
#[track_caller]
pub fn assert_all_revoked(outcomes: &[Outcome], reason: &str) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| match &o.verdict {
            Verdict::Revoked(r) => o.tool.starts_with("JDK") && r != reason,
            _ => true,
        })
        .map(|o| o.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "expected REVOKED from all (the JDK: {reason}):\n{}",
        failed.join("\n")
    );
}

/// pkilint `lint_pkix_cert` on a CA certificate (PEM or DER): no ERROR or FATAL finding.
#[track_caller]
pub fn pkilint_ca(cert: &Path) {
    let out = output(
        Command::new(super::venv_bin("lint_pkix_cert"))
            .arg("lint")
            .arg(cert),
        "pkilint (scripts/test.sh installs it in the venv)",
    );
    assert_lint_clean("lint_pkix_cert", cert, &out.all);
    let out = output(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "basicConstraints", "-in"])
            .arg(cert),
        "openssl",
    );
    assert!(
        out.all.contains("CA:TRUE"),
        "{} is not a CA certificate:\n{}",
        cert.display(),
        out.all
    );
}

/// Which kind of CRL pkilint is told it lints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// A CRL of end-entity certificates.
    Crl,
    /// An authority revocation list: the CA certificates a root revoked.
    Arl,
}

/// pkilint `lint_crl -t CRL|ARL -p PKIX` on a CRL (PEM or DER): no ERROR or FATAL finding.
#[track_caller]
pub fn pkilint_crl(crl: &Path, kind: CrlKind) {
    let kind = match kind {
        CrlKind::Crl => "CRL",
        CrlKind::Arl => "ARL",
    };
    let out = output(
        Command::new(super::venv_bin("lint_crl"))
            .args(["lint", "-t", kind, "-p", "PKIX"])
            .arg(crl),
        "pkilint (scripts/test.sh installs it in the venv)",
    );
    assert_lint_clean(&format!("lint_crl -t {kind}"), crl, &out.all);
}

/// pkilint exits non-zero for any finding; only ERROR and FATAL findings (or a crash) fail, and
/// the whole report, warnings included, is shown then.
#[track_caller]
fn assert_lint_clean(tool: &str, file: &Path, report: &str) {
    assert!(
        !report.contains("(ERROR)") && !report.contains("(FATAL)") && !report.contains("Traceback"),
        "{tool} {}:\n{report}",
        file.display()
    );
}

/// A finished child process.
struct Output {
    success: bool,
    stdout: String,
    /// stdout then stderr.
    all: String,
}

/// Run a tool; a tool that is not installed fails the test, naming its package.
fn output(cmd: &mut Command, package: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): install {package} (scripts/test.sh does)",
            cmd.get_program()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Output {
        success: out.status.success(),
        stdout,
        all,
    }
}

fn first_line_with(text: &str, needle: &str) -> String {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or(text.lines().last().unwrap_or(""))
        .trim()
        .to_string()
}

/// The files concatenated into `dir/name`, each converted to PEM if it was DER.
fn concat_pem(dir: &Path, name: &str, files: &[PathBuf]) -> PathBuf {
    let mut all = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if bytes.starts_with(b"-----BEGIN") {
            all.extend_from_slice(&bytes);
            if !bytes.ends_with(b"\n") {
                all.push(b'\n');
            }
        } else if let Ok(cert) = openssl::x509::X509::from_der(&bytes) {
            all.extend_from_slice(&cert.to_pem().unwrap());
        } else {
            let crl = openssl::x509::X509Crl::from_der(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{}: neither PEM, a certificate nor a CRL: {e}",
                    file.display()
                )
            });
            all.extend_from_slice(&crl.to_pem().unwrap());
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, all).unwrap();
    path
}

fn owned(root: &Path, chain: &[&Path]) -> (PathBuf, Vec<PathBuf>) {
    assert!(!chain.is_empty(), "a path needs at least the end entity");
    (
        root.to_path_buf(),
        chain.iter().map(|p| p.to_path_buf()).collect(),
    )
}

async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
