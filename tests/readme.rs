//! The README's walkthrough is a test: the README shows scripts/walkthrough.sh as it is, and the
//! script runs, against the built binary on a port its server picks (port 0: no port is chosen
//! and released beforehand, for another test to take), to a verified certificate and an
//! attribute certificate for its holder, then both revoked, and an intact audit log. Its failure
//! paths (a server that does not start, a directory that is not its own) are tested too.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const SCRIPT: &str = include_str!("../scripts/walkthrough.sh");

fn script_path() -> String {
    format!("{}/scripts/walkthrough.sh", env!("CARGO_MANIFEST_DIR"))
}

/// The README's walkthrough block: the first ```bash block.
fn readme_block() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```bash\n").expect("README has a bash block") + "```bash\n".len();
    let len = readme[start..].find("```").expect("bash block ends");
    readme[start..start + len].to_string()
}

/// Runs the script in `cwd` with the test binary as VOUCH. VOUCH_URL and VOUCH_DATA_DIR point
/// elsewhere, as a reader's environment might: the script must ignore them.
fn run(cwd: &Path, listen: &str, database_url: &str) -> Output {
    let mut cmd = Command::new("bash");
    if !database_url.is_empty() {
        cmd.env("WALKTHROUGH_DATABASE_URL", database_url);
    }
    cmd.arg(script_path())
        .current_dir(cwd)
        .env("VOUCH", env!("CARGO_BIN_EXE_vouch"))
        .env("WALKTHROUGH_LISTEN", listen)
        .env("VOUCH_URL", "http://127.0.0.1:9")
        .env("VOUCH_DATA_DIR", cwd.join("not-the-walkthrough"))
        .env_remove("VOUCH_DATABASE_URL")
        .output()
        .unwrap()
}

/// Each line with its runs of blanks made one space (the client aligns `key: value` columns).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn readme_shows_the_script_as_it_is() {
    assert_eq!(
        readme_block(),
        SCRIPT,
        "the README's walkthrough block and scripts/walkthrough.sh differ: copy the script into the README"
    );
    assert!(SCRIPT.contains("cargo build --release\n"), "no build step");
}

/// On SQLite by default; with `VOUCH_TEST_POSTGRES` set, the walkthrough runs with
/// `WALKTHROUGH_DATABASE_URL` pointing at a fresh PostgreSQL database.
#[tokio::test]
async fn readme_walkthrough_runs() {
    let pg = match common::postgres_server() {
        Some(server) => Some(common::PgDatabase::create(&server).await),
        None => None,
    };
    let url = pg.as_ref().map(|db| db.url()).unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "127.0.0.1:0", url.as_str());
    // The address the server bound, as it printed it (the script shows that line first).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let served = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Vouch RA serving at http://"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    // The script stopped its server before it ended: the port is free again.
    let freed = served
        .as_deref()
        .is_some_and(|addr| std::net::TcpListener::bind(addr).is_ok());
    let sqlite_file = dir.path().join("walkthrough/data/vouch.db");
    if let Some(db) = &pg {
        db.drop_database().await;
        assert!(
            !sqlite_file.exists(),
            "the walkthrough used PostgreSQL, not a SQLite file"
        );
    } else {
        assert!(
            sqlite_file.exists(),
            "the data directory is walkthrough/data"
        );
    }
    assert!(!dir.path().join("not-the-walkthrough").exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walkthrough failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let served = served.expect("the server says where it serves");
    assert!(freed, "the walkthrough's server still listens on {served}");
    let lines = lines(&stdout);
    let has = |l: &str| lines.iter().any(|x| x == l);
    let at = |l: &str| lines.iter().position(|x| x.starts_with(l));

    // The operators the admin made over the API, with their roles.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" alice clerk, approver false ")),
        "{stdout}"
    );
    // Four eyes: the clerk's own approval was refused with the API's code; bob's issued it.
    assert!(
        stderr.contains("vouch: self_approval: "),
        "{stderr}\n{stdout}"
    );
    assert!(has("status: issued"), "{stdout}");
    // OpenSSL verified the chain, with revocation checked on both levels, and the subject and
    // e-mail are the vetted ones, not the CSR's.
    assert!(has("li-wei.pem: OK"), "{stdout}");
    assert!(has("subject=CN = Li Wei"), "{stdout}");
    assert!(has("email:li.wei@example.org"), "{stdout}");
    // The issuing CRL was empty, the root's ARL too, then the new CRL lists the certificate.
    let entries: Vec<&String> = lines.iter().filter(|l| l.starts_with("entries:")).collect();
    assert_eq!(
        entries,
        ["entries: 0", "entries: 0", "entries: 1"],
        "{stdout}"
    );
    // OCSP said good, then, after the revocation, revoked with the reason.
    let good = lines.iter().position(|l| l == "good").expect(&stdout);
    assert!(
        has("status: revoked") && has("reason: keyCompromise"),
        "{stdout}"
    );
    let revoked = at("revoked (keyCompromise, ").expect(&stdout);
    assert!(good < revoked, "{stdout}");
    // The attribute certificate as OpenSSL read it: two GeneralizedTimes (its validity), the
    // role attribute with its group, the targeting extension, and the role and application
    // URIs in its DER.
    let asn1: Vec<&String> = lines.iter().filter(|l| l.contains(" prim: ")).collect();
    assert_eq!(
        asn1.iter()
            .filter(|l| l.contains(" GENERALIZEDTIME :"))
            .count(),
        2,
        "{stdout}"
    );
    for part in [
        " OBJECT :role",
        " UTF8STRING :planning-bureau",
        " OBJECT :X509v3 AC Targeting",
    ] {
        assert!(asn1.iter().any(|l| l.ends_with(part)), "{part}: {stdout}");
    }
    let role = at("urn:vouch:role:approver").expect(&stdout);
    assert_eq!(lines[role + 1], "urn:vouch:app:permits", "{stdout}");
    assert!(has("role_uris: urn:vouch:role:approver"), "{stdout}");
    // After the revocation, the auditor reads the AC revoked with its holder certificate.
    let ac_revoked = at("revocation_reason: keyCompromise").expect(&stdout);
    assert!(role < revoked && revoked < ac_revoked, "{stdout}");
    assert!(
        lines[revoked..ac_revoked]
            .iter()
            .any(|l| l == "status: revoked"),
        "{stdout}"
    );
    // OpenSSL refused the revoked certificate with the new CRL.
    assert!(
        format!("{stdout}{stderr}").contains("certificate revoked"),
        "{stdout}{stderr}"
    );
    // The auditor saw the revocation, the AC's with it, and the chain is intact.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" certificate.revoked ") && l.contains("keyCompromise")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" attribute.revoked ") && l.contains("with_holder")),
        "{stdout}"
    );
    assert!(at("audit log intact: ").is_some(), "{stdout}");
}

/// A server that cannot start (its port taken) ends the walkthrough at once, non-zero, with the
/// server's own message shown, instead of waiting for ever.
#[test]
fn walkthrough_stops_with_the_log_when_the_server_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = run(dir.path(), &listen, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("vouch serve did not start within 60 s"),
        "{stderr}"
    );
    assert!(stderr.contains("already in use"), "{stderr}");
}

/// A directory of that name that the walkthrough did not make is left alone.
#[test]
fn walkthrough_leaves_a_directory_that_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("walkthrough")).unwrap();
    std::fs::write(dir.path().join("walkthrough/notes.txt"), "mine").unwrap();
    let out = run(dir.path(), "127.0.0.1:0", "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not the walkthrough's"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("walkthrough/notes.txt")).unwrap(),
        "mine"
    );
}
