//! Weak-key science checked against tools we did not write (badkeys and roca-detect from PyPI,
//! the openssl CLI), and admin-imported blocklists end to end: `vouch keys import-blocklist`, then
//! a request for a listed key is refused.

mod common;

use common::{csr_for, ec_key, rsa_key, run, venv_bin, TestApp, BIN};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use vouch::x509::key::CheckedKey;
use vouch::x509::weak::{debian_weak_key_hash, rsa_modulus_weakness};

fn prime(bits: i32) -> BigNum {
    let mut p = BigNum::new().unwrap();
    p.generate_prime(bits, false, None, None).unwrap();
    p
}

fn mul(a: &BigNumRef, b: &BigNumRef) -> BigNum {
    let mut r = BigNum::new().unwrap();
    r.checked_mul(a, b, &mut BigNumContext::new().unwrap())
        .unwrap();
    r
}

/// The first prime at or above p + 2^log2_distance.
fn prime_after(p: &BigNumRef, log2_distance: i32) -> BigNum {
    let mut ctx = BigNumContext::new().unwrap();
    let mut d = BigNum::new().unwrap();
    d.set_bit(log2_distance).unwrap();
    let mut q = BigNum::new().unwrap();
    q.checked_add(p, &d).unwrap();
    if !q.is_odd() {
        q.add_word(1).unwrap();
    }
    while !q.is_prime(64, &mut ctx).unwrap() {
        q.add_word(2).unwrap();
    }
    q
}

fn public_key(n: BigNum) -> PKey<Public> {
    let rsa = Rsa::from_public_components(n, BigNum::from_u32(65537).unwrap()).unwrap();
    PKey::from_rsa(rsa).unwrap()
}

fn testdata(name: &str) -> BigNum {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pki/testdata/roca")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.lines().next().unwrap().trim();
    match text.strip_prefix("0x") {
        Some(hex) => BigNum::from_hex_str(hex).unwrap(),
        None => BigNum::from_dec_str(text).unwrap(),
    }
}

/// Keys that are fine, and keys with each weakness, a few right at the edge of a check.
fn sample_keys() -> Vec<(&'static str, PKey<Public>)> {
    let p = prime(1024);
    let big = prime(2030);
    let generated = |bits| PKey::public_key_from_der(&rsa_key(bits).public_key_to_der().unwrap());
    vec![
        ("good-2048", generated(2048).unwrap()),
        ("good-3072", generated(3072).unwrap()),
        // 2019 or 2020 bits: the hex modulus starts with a zero nibble that Debian's hash drops.
        ("odd-size", public_key(mul(&prime(1010), &prime(1010)))),
        (
            "fermat-next-prime",
            public_key(mul(&p, &prime_after(&p, 1))),
        ),
        (
            "fermat-2^515-apart",
            public_key(mul(&p, &prime_after(&p, 515))),
        ),
        (
            "fermat-2^519-apart",
            public_key(mul(&p, &prime_after(&p, 519))),
        ),
        ("square", public_key(mul(&p, &p))),
        (
            "factor-3",
            public_key(mul(&BigNum::from_u32(3).unwrap(), &big)),
        ),
        (
            "factor-65537",
            public_key(mul(&BigNum::from_u32(65537).unwrap(), &big)),
        ),
        (
            "factor-65539",
            public_key(mul(&BigNum::from_u32(65539).unwrap(), &big)),
        ),
        ("roca-2048", public_key(testdata("mod03.txt"))),
        ("roca-4096", public_key(testdata("mod09.txt"))),
        ("clean-2048", public_key(testdata("mod04.txt"))),
        ("per-prime-only", public_key(testdata("per-prime-only.txt"))),
    ]
}

fn write_pems(dir: &Path, keys: &[(&str, PKey<Public>)]) -> Vec<PathBuf> {
    keys.iter()
        .map(|(name, key)| {
            let path = dir.join(format!("{name}.pem"));
            std::fs::write(&path, key.public_key_to_pem().unwrap()).unwrap();
            path
        })
        .collect()
}

fn our_verdict(key: &PKey<Public>) -> BTreeSet<String> {
    let n = key.rsa().unwrap().n().to_vec();
    rsa_modulus_weakness(&n)
        .unwrap()
        .map(|w| w.check().to_string())
        .into_iter()
        .collect()
}

#[test]
fn badkeys_and_roca_detect_agree_with_our_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let keys = sample_keys();
    let files = write_pems(dir.path(), &keys);
    let ours: BTreeMap<String, BTreeSet<String>> = keys
        .iter()
        .map(|(name, key)| (format!("{name}.pem"), our_verdict(key)))
        .collect();
    // Every kind of verdict is represented, so agreement means something.
    let kinds: BTreeSet<&String> = ours.values().flatten().collect();
    assert_eq!(kinds.len(), 3, "{ours:?}");
    assert!(ours.values().filter(|v| v.is_empty()).count() >= 5);

    // badkeys, offline checks only (its blocklist data cannot be fetched here).
    let out = Command::new(venv_bin("badkeys"))
        .args(["-j", "-a", "-c", "fermat,smallfactors,roca"])
        .args(&files)
        .output()
        .expect("run badkeys");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs = BTreeMap::new();
    let mut spki = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let file = Path::new(v["where"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let checks: BTreeSet<String> = v["results"].as_object().unwrap().keys().cloned().collect();
        spki.insert(file.clone(), v["spkisha256"].as_str().unwrap().to_string());
        theirs.insert(file, checks);
    }
    assert_eq!(theirs, ours, "badkeys (left) and vouch (right) disagree");

    // badkeys names keys by the SHA-256 of their SubjectPublicKeyInfo, as our blocklist does.
    for (name, key) in &keys[..2] {
        let checked = CheckedKey::from_spki(&key.public_key_to_der().unwrap()).unwrap();
        assert_eq!(spki[&format!("{name}.pem")], checked.fingerprint());
    }

    // roca-detect prints one JSON line per fingerprinted key, and a summary on stderr.
    let out = Command::new(venv_bin("roca-detect"))
        .args(&files)
        .output()
        .expect("run roca-detect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("Records tested: {}", files.len())),
        "{stderr}"
    );
    let marked: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["marked"] == true)
        .map(|v| v["fname"].as_str().unwrap().to_string())
        .map(|f| {
            Path::new(&f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let our_roca: BTreeSet<String> = ours
        .iter()
        .filter(|(_, v)| v.contains("roca"))
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(marked, our_roca);
    assert_eq!(marked.len(), 2);
}

#[test]
fn weak_rsa_keys_are_refused_by_the_key_rules() {
    for (name, key) in sample_keys() {
        let der = key.public_key_to_der().unwrap();
        let bits = key.bits();
        let weak = !our_verdict(&key).is_empty();
        match CheckedKey::from_spki(&der) {
            Ok(_) => assert!(!weak && bits >= 2048 && bits % 8 == 0, "{name}"),
            Err(e) => {
                assert_eq!(e.code(), "weak_key", "{name}");
                assert!(weak || bits < 2048 || bits % 8 != 0, "{name}: {e}");
            }
        }
    }
    let roca = public_key(testdata("mod03.txt"))
        .public_key_to_der()
        .unwrap();
    let err = CheckedKey::from_spki(&roca).unwrap_err();
    assert!(err.to_string().contains("ROCA"), "{err}");
}

/// The Debian openssl-blacklist hash as Debian's own recipe computes it:
/// `openssl rsa -noout -modulus | sha1sum | cut -c 21-40`.
fn debian_hash_by_openssl(pem: &Path) -> String {
    let (ok, out) = run(Command::new("sh").arg("-c").arg(format!(
        "openssl rsa -pubin -noout -modulus -in '{}' | openssl dgst -sha1 -r",
        pem.display()
    )));
    assert!(ok, "{out}");
    out[20..40].to_string()
}

#[test]
fn debian_hash_matches_the_openssl_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let keys = sample_keys();
    let files = write_pems(dir.path(), &keys);
    for ((name, key), file) in keys.iter().zip(&files) {
        let n = key.rsa().unwrap().n().to_vec();
        let bits = key.bits();
        assert_eq!(
            debian_weak_key_hash(&n, bits),
            format!("debian-rsa-{bits}:{}", debian_hash_by_openssl(file)),
            "{name}"
        );
    }
}

/// `vouch keys import-blocklist FILE …` on the app's database, run off the async runtime so the
/// in-process server keeps answering meanwhile.
async fn import(app: &TestApp, file: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "import-blocklist", "--data-dir"])
        .arg(app.data.root())
        .arg(file)
        .args(extra);
    if let Some(pg) = &app.pg {
        cmd.args(["--database-url", &pg.url()]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run vouch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn imported_blocklists_refuse_listed_keys_at_submission_and_approval() {
    let app = TestApp::spawn().await;
    let clerk = app.operator("clerk1", &["clerk"]).await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let dir = tempfile::tempdir().unwrap();
    let csr = |key: &PKey<openssl::pkey::Private>| csr_for(key, MessageDigest::sha256(), "x");
    let (spki_listed, debian_listed, ec_listed, free) = (
        rsa_key(2048),
        rsa_key(2048),
        ec_key(Nid::X9_62_PRIME256V1),
        rsa_key(2048),
    );

    // The SPKI list: one key as hex, the EC key as base64, with comments and a blank line.
    let sha =
        |k: &PKey<openssl::pkey::Private>| openssl::sha::sha256(&k.public_key_to_der().unwrap());
    let spki_file = dir.path().join("spki.txt");
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(sha(&ec_listed))
    };
    std::fs::write(
        &spki_file,
        format!(
            "# compromised keys\n\n{}\n{b64} # the EC one\n",
            hex::encode(sha(&spki_listed))
        ),
    )
    .unwrap();
    // The Debian list for 2048-bit keys, its line computed with Debian's openssl recipe.
    let pem = dir.path().join("debian.pem");
    std::fs::write(&pem, debian_listed.public_key_to_pem().unwrap()).unwrap();
    let debian_file = dir.path().join("blacklist.RSA-2048");
    std::fs::write(
        &debian_file,
        format!(
            "# test list\n00005890bc78bcbee3ca\n{}\n",
            debian_hash_by_openssl(&pem)
        ),
    )
    .unwrap();

    // A dry run changes nothing: the key is still accepted.
    let (code, out, err) = import(&app, &spki_file, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 entries (spki-sha256)"), "{out}");
    assert!(
        out.contains("dry run: 2 would be added, 0 already listed"),
        "{out}"
    );
    let (status, pending) = app
        .submit(&clerk, &sub, "person-signing", &csr(&spki_listed))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");

    let (code, out, err) = import(&app, &spki_file, &["--apply"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("imported: 2 added, 0 already listed; the blocklist holds 2 entries"),
        "{out}"
    );
    // The request submitted before the import cannot be approved now.
    let approver = app.operator("approver1", &["approver"]).await;
    let path = format!(
        "/api/v1/requests/{}/approve",
        pending["id"].as_str().unwrap()
    );
    let (status, body) = app.post_empty(&approver, &path).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_key")),
        "{body}"
    );
    let (code, out, err) = import(&app, &debian_file, &["--format", "debian", "--apply"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 entries (debian-rsa-2048)"), "{out}");
    assert!(out.contains("2 added"), "{out}");
    // Importing the same file again adds nothing.
    let (code, out, _) = import(&app, &spki_file, &["--apply"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("0 added, 2 already listed; the blocklist holds 4 entries"),
        "{out}"
    );

    for (what, key) in [
        ("spki", &spki_listed),
        ("debian", &debian_listed),
        ("ec", &ec_listed),
    ] {
        let (status, body) = app.submit(&clerk, &sub, "person-signing", &csr(key)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(body["error"], "weak_key", "{what}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("blocklist"),
            "{what}: {body}"
        );
    }
    let (status, body) = app
        .submit(&clerk, &sub, "person-signing", &csr(&free))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A file with a bad line is refused whole, naming the line.
    let bad_file = dir.path().join("bad.txt");
    std::fs::write(&bad_file, format!("{}\nnot a hash\n", "ab".repeat(32))).unwrap();
    let (code, out, err) = import(&app, &bad_file, &["--apply"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("line 2: expected a SHA-256"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    // A Debian list needs its key size.
    let (code, _, err) = import(&app, &spki_file, &["--format", "debian"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("blacklist.RSA-<bits>"), "{err}");

    // One audit event per import, with the counts and the file's SHA-256; refusals are audited.
    let entries = app.audit_entries().await;
    let imports: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "blocklist.imported")
        .collect();
    assert_eq!(imports.len(), 3, "{imports:?}");
    let spki_sha = hex::encode(openssl::sha::sha256(&std::fs::read(&spki_file).unwrap()));
    assert_eq!(imports[0]["details"]["file_sha256"], spki_sha.as_str());
    assert_eq!(imports[0]["details"]["added"], 2);
    assert_eq!(imports[0]["details"]["format"], "spki-sha256");
    assert_eq!(
        imports[0]["target"],
        format!("spki.txt sha256:{spki_sha}").as_str()
    );
    assert_eq!(imports[2]["details"]["already_listed"], 2);
    let refused = entries
        .iter()
        .filter(|e| e["action"] == "request.refused" && e["details"]["error"] == "weak_key")
        .count();
    assert_eq!(refused, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_list_of_100000_hashes_imports_in_one_batched_transaction() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let mut text = String::from("# generated\n");
    for i in 0u32..100_000 {
        text.push_str(&hex::encode(openssl::sha::sha256(&i.to_be_bytes())));
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let started = std::time::Instant::now();
    let (code, out, err) = import(&app, &file, &["--apply"]).await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported: 100000 added"), "{out}");
    eprintln!("imported 100,000 entries in {took:?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    app.stop().await;
}
