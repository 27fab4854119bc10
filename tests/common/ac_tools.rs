//! RFC 5755 attribute certificates as tools Vouch did not write read and write them: Bouncy Castle
//! (`tests/attributes/AcTool.java`, on the Debian jars in /usr/share/java) and Python asn1crypto
//! with cryptography (`tests/attributes/ac_check.py`, in the venv made by scripts/test.sh). The
//! header of each file lists the keys it prints.
//!
//! Every function runs a child process and blocks until it ends (a JVM start is about half a
//! second): from an async test whose runtime must keep serving meanwhile, call them inside
//! `tokio::task::spawn_blocking`. A missing tool fails the test with the package to install;
//! nothing is skipped.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The exit status both tools use for "could not parse the attribute certificate".
const PARSE_FAILURE: i32 = 2;

const BC_PACKAGES: &str = "libbcprov-java libbcpkix-java libbcutil-java";

/// Bouncy Castle's reading of an AC (`AcTool check`): `version` (Bouncy Castle's number, 2 for
/// a v2 AC), `serial`, `signature` (`valid`/`invalid`, under the AA certificate `aa_pem`),
/// `holder_match` (against the certificate `holder_pem`), `valid_at` (at `at_epoch`),
/// `not_before`, `not_after`, `issuer`, `roles`, `groups`, `targets`, `target_info_critical`,
/// `no_rev_avail`, `crl_urls`, `critical_extensions` and the others AcTool.java lists. Panics,
/// with what AcTool printed, if Bouncy Castle cannot parse the AC.
#[track_caller]
pub fn bc_check(
    ac_der: &[u8],
    aa_pem: &str,
    holder_pem: &str,
    at_epoch: i64,
) -> BTreeMap<String, String> {
    bc_try_check(ac_der, aa_pem, holder_pem, at_epoch)
        .unwrap_or_else(|e| panic!("Bouncy Castle cannot parse the attribute certificate:\n{e}"))
}

/// [`bc_check`], with `Err` (AcTool's message) where Bouncy Castle cannot parse the AC or one of
/// the attributes and extensions AcTool decodes; anything else going wrong still panics.
pub fn bc_try_check(
    ac_der: &[u8],
    aa_pem: &str,
    holder_pem: &str,
    at_epoch: i64,
) -> Result<BTreeMap<String, String>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ac = write(dir.path(), "ac.der", ac_der);
    let aa = write(dir.path(), "aa.pem", aa_pem.as_bytes());
    let holder = write(dir.path(), "holder.pem", holder_pem.as_bytes());
    let out = run(
        java()
            .arg("check")
            .arg(&ac)
            .arg(&aa)
            .arg(&holder)
            .arg(at_epoch.to_string()),
        "default-jdk-headless",
    );
    if out.code == Some(PARSE_FAILURE) {
        return Err(out.all);
    }
    assert!(out.code == Some(0), "AcTool check failed:\n{}", out.all);
    let mut fields = BTreeMap::new();
    for line in out.stdout.lines() {
        let (key, value) = line.split_once('=').unwrap_or_else(|| {
            panic!("AcTool check printed {line:?}, not key=value:\n{}", out.all)
        });
        fields.insert(key.to_string(), value.to_string());
    }
    Ok(fields)
}

/// An AC made by Bouncy Castle (`AcTool make`), DER: holder the baseCertificateID of
/// `holder_pem`, issuer (v2Form) the subject of `aa_pem`, one role attribute (roleName URI
/// `role_uri`), a critical targetInformation naming the URI `target_uri`, a non-critical
/// noRevAvail and an authorityKeyIdentifier, valid from `not_before` to `not_after` (epoch
/// seconds), serial `serial_hex`, signed with `aa_key_pem` (PKCS#8 or SEC1 PEM; ECDSA with the
/// hash of the curve's size, SHA-256 with RSA, or Ed25519).
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn bc_make(
    aa_key_pem: &str,
    aa_pem: &str,
    holder_pem: &str,
    role_uri: &str,
    target_uri: &str,
    not_before: i64,
    not_after: i64,
    serial_hex: &str,
) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write(dir.path(), "aa.key", aa_key_pem.as_bytes());
    let aa = write(dir.path(), "aa.pem", aa_pem.as_bytes());
    let holder = write(dir.path(), "holder.pem", holder_pem.as_bytes());
    let ac = dir.path().join("ac.der");
    let out = run(
        java()
            .arg("make")
            .arg(&key)
            .arg(&aa)
            .arg(&holder)
            .arg(&ac)
            .arg(role_uri)
            .arg(target_uri)
            .arg(not_before.to_string())
            .arg(not_after.to_string())
            .arg(serial_hex),
        "default-jdk-headless",
    );
    assert!(out.code == Some(0), "AcTool make failed:\n{}", out.all);
    std::fs::read(&ac).unwrap_or_else(|e| panic!("AcTool make wrote no {}: {e}", ac.display()))
}

/// asn1crypto's and cryptography's reading of an AC (`ac_check.py`): one JSON object with
/// `version` (the DER INTEGER, 1 for v2), `serial`, `holder`, `issuer`, `signature_algorithm`,
/// `not_before`, `not_after` (and `*_text`, the GeneralizedTime as encoded), `attributes`,
/// `roles`, `groups`, `extensions`, `targets`, `target_info_critical`, `no_rev_avail`,
/// `crl_urls`, `authority_key_identifier`, `critical_extensions`, `signature_valid` (under the
/// AA certificate `aa_pem`) and the others ac_check.py lists. Panics, with what it printed, if
/// asn1crypto cannot parse the AC.
#[track_caller]
pub fn py_check(ac_der: &[u8], aa_pem: &str) -> serde_json::Value {
    py_try_check(ac_der, aa_pem)
        .unwrap_or_else(|e| panic!("asn1crypto cannot parse the attribute certificate:\n{e}"))
}

/// [`py_check`], with `Err` (ac_check.py's message) where asn1crypto cannot parse the AC;
/// anything else going wrong still panics.
pub fn py_try_check(ac_der: &[u8], aa_pem: &str) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ac = write(dir.path(), "ac.der", ac_der);
    let aa = write(dir.path(), "aa.pem", aa_pem.as_bytes());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attributes/ac_check.py");
    let out = run(
        Command::new(venv_python()).arg(&script).arg(&ac).arg(&aa),
        "the venv of scripts/test.sh (asn1crypto, cryptography)",
    );
    if out.code == Some(PARSE_FAILURE) {
        return Err(out.all);
    }
    assert!(out.code == Some(0), "ac_check.py failed:\n{}", out.all);
    Ok(serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("ac_check.py printed no JSON ({e}):\n{}", out.all)))
}

/// The Bouncy Castle jars for `java -cp`: bcprov and bcpkix, and bcutil where it is a jar of its
/// own (Bouncy Castle 1.69 on: bcpkix needs it), from /usr/share/java (Debian's
/// libbcprov-java, libbcpkix-java, libbcutil-java).
pub fn bc_classpath() -> &'static OsString {
    static CP: OnceLock<OsString> = OnceLock::new();
    CP.get_or_init(|| {
        let dir = Path::new("/usr/share/java");
        let mut jars = Vec::new();
        for (name, required) in [("bcprov", true), ("bcpkix", true), ("bcutil", false)] {
            match find_jar(dir, name) {
                Some(jar) => jars.push(jar),
                None if required => panic!(
                    "no {name} jar in {}: install {BC_PACKAGES} (scripts/test.sh does)",
                    dir.display()
                ),
                None => {}
            }
        }
        std::env::join_paths(jars).expect("classpath")
    })
}

/// `/usr/share/java/NAME.jar` (Debian's version-less link), else the newest-looking
/// `NAME-*.jar` (e.g. bcprov-1.72.jar, bcprov-jdk18on-1.78.jar).
fn find_jar(dir: &Path, name: &str) -> Option<PathBuf> {
    let link = dir.join(format!("{name}.jar"));
    if link.is_file() {
        return Some(link);
    }
    let prefix = format!("{name}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jar"))
                && p.is_file()
        })
        .collect();
    found.sort_by_key(|p| version_key(p));
    found.pop()
}

/// The numbers in a jar's file name, for ordering versions (1.9 before 1.72).
fn version_key(path: &Path) -> Vec<u64> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// `java -cp <AcTool classes>:<Bouncy Castle> AcTool`.
fn java() -> Command {
    let mut cp = OsString::from(ac_tool_classes());
    cp.push(":");
    cp.push(bc_classpath());
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(cp).arg("AcTool");
    cmd
}

/// AcTool.java compiled once per test binary.
fn ac_tool_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| compile_java("actool", "tests/attributes/AcTool.java"))
}

/// `source` (a path in the repository) compiled against Bouncy Castle into a directory of its own
/// under the target directory, `<name>/<pid>` (directories left by test processes that have ended
/// are removed first); call it once per test binary. The `path` lint is off: bcprov's manifest
/// puts jars on its Class-Path that Debian does not install (javax.mail and others), and javac
/// warns about each.
pub fn compile_java(name: &str, source: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&base).expect("create the classes directory");
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let out = run(
        Command::new("javac")
            .args(["--release", "17", "-Xlint:all,-path", "-Werror", "-cp"])
            .arg(bc_classpath())
            .arg("-d")
            .arg(&dir)
            .arg(&source),
        "default-jdk-headless",
    );
    assert!(
        out.code == Some(0),
        "javac {}:\n{}",
        source.display(),
        out.all
    );
    dir
}

/// The venv's python: `$VOUCH_TEST_VENV`, else `<repo>/.venv` (made by scripts/test.sh).
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("VOUCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let bin = venv.join("bin").join("python");
    assert!(
        bin.exists(),
        "{} not found: run scripts/test.sh (it creates the venv with asn1crypto and cryptography)",
        bin.display()
    );
    bin
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A finished child process.
struct Output {
    code: Option<i32>,
    stdout: String,
    /// stdout then stderr.
    all: String,
}

/// Run a tool; one that is not installed fails the test, naming its package.
fn run(cmd: &mut Command, package: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): install {package} (scripts/test.sh does)",
            cmd.get_program()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Output {
        code: out.status.code(),
        stdout,
        all,
    }
}
