//! Fuzz targets for everything Vouch reads from the network and everything it encodes by hand,
//! run by proptest on the stable toolchain.
//!
//! Parsers (CSR, OCSP request, CMS self-revocation, the JSON API bodies) get valid inputs made by
//! OpenSSL and mutated by a DER-aware mutator (tests/fuzz/mutate.rs), plus arbitrary bytes. They
//! must never panic, never take long, and either refuse with a typed error or return a value that
//! keeps its type's promises. Encoders (CRL, OCSP response) get arbitrary typed content and must
//! produce what OpenSSL, x509-parser and the strict `der` crate read back to the same content.
//!
//! `cargo test --test fuzz` runs a short smoke of each target with a fixed seed. Longer runs:
//! `VOUCH_FUZZ_CASES=200000 cargo test --release --test fuzz -- --nocapture` (that many cases per
//! target, a fresh random seed each run; `VOUCH_FUZZ_SEED=n` repeats one), or
//! `VOUCH_FUZZ_SECONDS=300 ...` (rounds of fresh seeds until each target has run that long). A
//! failure prints the smallest input proptest found; each one is kept below as a regression test
//! with its exact input.

mod common;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/seeds.rs"]
mod seeds;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Req, X509};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::time::{Duration, Instant};
use vouch::error::Error;
use vouch::x509::csr::CheckedCsr;
use vouch::x509::key::CheckedKey;

/// The slowest a single input may be handled in (debug build, shared machine): anything near it is
/// a complexity bug, not noise.
const SLOW: Duration = Duration::from_secs(2);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Cases per round: the smoke default, or `VOUCH_FUZZ_CASES`.
fn cases(smoke: u32) -> u32 {
    env_u64("VOUCH_FUZZ_CASES").map_or(smoke, |n| n.min(u32::MAX as u64) as u32)
}

/// A long run (`VOUCH_FUZZ_CASES` or `VOUCH_FUZZ_SECONDS` set) rather than the smoke.
fn long_run() -> bool {
    env_u64("VOUCH_FUZZ_CASES").is_some() || env_u64("VOUCH_FUZZ_SECONDS").is_some()
}

/// A runner for round `round`: fixed seed for the smoke (so CI is repeatable), random for long
/// runs unless `VOUCH_FUZZ_SEED` is given. Failures are reported, not written to a file: they
/// become the regression tests at the end of this file.
fn runner(name: &str, smoke: u32, round: u64) -> TestRunner {
    let config = Config {
        cases: cases(smoke),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let seed: u64 = match env_u64("VOUCH_FUZZ_SEED") {
        Some(s) => s.wrapping_add(round),
        None if long_run() => {
            let mut b = [0u8; 8];
            openssl::rand::rand_bytes(&mut b).unwrap();
            u64::from_le_bytes(b)
        }
        None => 0x0076_6f75_6368, // "vouch"
    };
    eprintln!(
        "fuzz {name}: round {round}, {} cases, VOUCH_FUZZ_SEED={seed}",
        config.cases
    );
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// Run one target and report its figures (shown with `--nocapture`). One round of
/// `VOUCH_FUZZ_CASES` (or the smoke's count); with `VOUCH_FUZZ_SECONDS`, rounds with fresh seeds
/// until that time is spent.
fn run<S: Strategy>(
    name: &str,
    smoke: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let budget = env_u64("VOUCH_FUZZ_SECONDS").map(Duration::from_secs);
    let start = Instant::now();
    let slowest = std::cell::Cell::new(Duration::ZERO);
    let mut total = 0u64;
    for round in 0.. {
        let mut runner = runner(name, smoke, round);
        let result = runner.run(&strategy, |v| {
            let t = Instant::now();
            let r = test(v);
            let took = t.elapsed();
            slowest.set(slowest.get().max(took));
            prop_assert!(took < SLOW, "one input took {took:?}");
            r
        });
        if let Err(e) = result {
            panic!("fuzz {name}: {e}");
        }
        total += runner.config().cases as u64;
        if budget.is_none_or(|b| start.elapsed() >= b) {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {total} cases in {:.1?}, slowest input {:.1?}",
        start.elapsed(),
        slowest.get()
    );
}

/// How often each outcome came up in a target (printed with `--nocapture`): shows how deep the
/// mutated inputs get, e.g. how many reach the CSR signature check.
#[derive(Default)]
struct Tally(std::sync::Mutex<std::collections::BTreeMap<String, u32>>);

impl Tally {
    fn add(&self, outcome: impl Into<String>) {
        *self.0.lock().unwrap().entry(outcome.into()).or_insert(0) += 1;
    }

    fn print(&self, name: &str) {
        eprintln!("fuzz {name}: outcomes {:?}", self.0.lock().unwrap());
    }
}

/// Errors a parser may answer with for bad input: typed, never internal or database errors.
fn typed(e: &Error) -> bool {
    !matches!(e, Error::Internal(_) | Error::Database(_))
}

/// Mutation plans: which seed, tree mutations, byte damage.
fn plan(seeds: usize) -> impl Strategy<Value = (usize, Vec<u64>, Vec<u64>)> {
    (
        0..seeds,
        prop::collection::vec(any::<u64>(), 0..5),
        // Byte damage in a third of the cases: most of it stops a strict DER parser at once.
        prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(any::<u64>(), 1..3)],
    )
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// CSR intake
// ---------------------------------------------------------------------------------------------

/// What an accepted CSR must be: a request OpenSSL and x509-parser both read, signed by the key it
/// carries, a key that passes the key rules again, and one of the keys that signed a seed (a
/// mutation cannot make a signature for a key nobody holds).
fn check_csr(
    result: vouch::error::Result<CheckedCsr>,
    keys: &[PKey<Private>],
    tally: &Tally,
) -> Result<(), TestCaseError> {
    tally.add(match &result {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    });
    match result {
        Err(e) => prop_assert!(typed(&e), "untyped error: {e:?}"),
        Ok(csr) => {
            let req = X509Req::from_der(csr.der()).expect("accepted CSR re-parses");
            let key = req.public_key().unwrap();
            prop_assert!(
                req.verify(&key).unwrap(),
                "accepted CSR's signature verifies"
            );
            let again = CheckedKey::from_spki(csr.key().spki_der());
            prop_assert!(again.is_ok(), "accepted key re-checks: {:?}", again.err());
            prop_assert!(
                keys.iter().any(|k| k.public_eq(&key)),
                "an accepted CSR carries a key that signed a seed"
            );
        }
    }
    // A failure must not leave reasons in OpenSSL's per-thread error queue (they would surface in
    // the thread's next OpenSSL call, e.g. a TLS read).
    let left = openssl::error::ErrorStack::get();
    prop_assert!(left.errors().is_empty(), "OpenSSL error queue left: {left}");
    Ok(())
}

#[test]
fn csr_der() {
    let dir = tempdir();
    let seeds = seeds::csrs(dir.path());
    for s in &seeds.der {
        // The seeds themselves: accepted, or refused on policy (never on their encoding).
        if let Err(e) = CheckedCsr::from_der(s) {
            assert_ne!(e.code(), "bad_csr", "{e}");
        }
    }
    let donors: Vec<_> = seeds.der.iter().map(|d| mutate::parse(d)).collect();
    let tally = Tally::default();
    run(
        "csr_der",
        1000,
        plan(seeds.der.len()),
        |(i, tree, bytes)| {
            let input = mutate::mutate(&seeds.der[i], &tree, &bytes, &donors);
            check_csr(CheckedCsr::from_der(&input), &seeds.keys, &tally)
        },
    );
    tally.print("csr_der");
    run(
        "csr_der_bytes",
        1000,
        prop::collection::vec(any::<u8>(), 0..400),
        |input| check_csr(CheckedCsr::from_der(&input), &seeds.keys, &Tally::default()),
    );
}

/// PEM framing around mutated requests: labels, line lengths, whitespace, base64 damage.
#[test]
fn csr_pem() {
    use base64::Engine;
    let dir = tempdir();
    let seeds = seeds::csrs(dir.path());
    let donors: Vec<_> = seeds.der.iter().map(|d| mutate::parse(d)).collect();
    let labels = [
        "CERTIFICATE REQUEST",
        "NEW CERTIFICATE REQUEST",
        "CERTIFICATE",
        "PRIVATE KEY",
        "",
    ];
    let tally = Tally::default();
    let strategy = (
        plan(seeds.der.len()),
        prop_oneof![6 => Just(0), 1 => 0..labels.len()],
        prop_oneof![6 => Just(None), 1 => (0..labels.len()).prop_map(Some)],
        prop_oneof![Just(64usize), Just(76), 1..200usize],
        any::<u64>(),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(any::<u64>(), 1..3)],
    );
    run(
        "csr_pem",
        1000,
        strategy,
        |((i, tree, bytes), begin, end, width, ws, damage)| {
            let der = mutate::mutate(&seeds.der[i], &tree, &bytes, &donors);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            let mut body = String::new();
            for chunk in b64.as_bytes().chunks(width) {
                body.push_str(std::str::from_utf8(chunk).unwrap());
                body.push_str(if ws & 1 == 0 { "\n" } else { "\r\n" });
            }
            let lead = ["", "  \n", "\t", "junk\n"][(ws >> 1) as usize % 4];
            let mut pem = format!(
                "{lead}-----BEGIN {}-----\n{body}-----END {}-----\n",
                labels[begin],
                labels[end.unwrap_or(begin)]
            );
            for d in damage {
                let mut r = mutate::Rng::new(d);
                let mut raw = pem.into_bytes();
                if !raw.is_empty() {
                    let p = r.below(raw.len());
                    match r.below(3) {
                        0 => raw[p] = b"=-\n A/+\0\xff"[r.below(9)],
                        1 => {
                            raw.remove(p);
                        }
                        _ => raw.insert(p, b"=-\n A/+"[r.below(7)]),
                    }
                }
                pem = String::from_utf8_lossy(&raw).into_owned();
            }
            check_csr(CheckedCsr::from_pem(&pem), &seeds.keys, &tally)
        },
    );
    tally.print("csr_pem");
}

// ---------------------------------------------------------------------------------------------
// OCSP requests
// ---------------------------------------------------------------------------------------------

#[test]
fn ocsp_request() {
    use vouch::x509::ocsp::{parse, IssuerHashes, MAX_REQUESTS};
    let dir = tempdir();
    let pki = seeds::pki(dir.path());
    let seeds = seeds::ocsp_requests(dir.path());
    let issuer = IssuerHashes::from_cert_der(&pki.ca.to_der().unwrap()).unwrap();
    for s in &seeds {
        let q = parse(s, &issuer).expect("a request from openssl parses");
        assert!(
            q.questions.iter().all(|q| q.ours),
            "openssl's CertIDs name our issuer"
        );
    }
    // `ours` exactly when the CertID's hashes are those of our issuer, computed here by OpenSSL.
    let name_der = pki.ca.subject_name().to_der().unwrap();
    let key_bits = {
        let ec = pki.ca.public_key().unwrap().ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        ec.public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .unwrap()
    };
    let hashes = |oid: &str| match oid {
        "1.3.14.3.2.26" => Some((
            openssl::sha::sha1(&name_der).to_vec(),
            openssl::sha::sha1(&key_bits).to_vec(),
        )),
        "2.16.840.1.101.3.4.2.1" => Some((
            openssl::sha::sha256(&name_der).to_vec(),
            openssl::sha::sha256(&key_bits).to_vec(),
        )),
        _ => None,
    };
    let donors: Vec<_> = seeds.iter().map(|d| mutate::parse(d)).collect();
    let tally = Tally::default();
    let check = |input: &[u8]| -> Result<(), TestCaseError> {
        let parsed = parse(input, &issuer);
        tally.add(match &parsed {
            None => "malformed",
            Some(q) if q.questions.iter().all(|q| q.ours) => "parsed, ours",
            Some(_) => "parsed, not all ours",
        });
        if let Some(q) = parsed {
            prop_assert!(!q.questions.is_empty() && q.questions.len() <= MAX_REQUESTS);
            for question in &q.questions {
                let id = &question.cert_id;
                prop_assert_eq!(&question.serial, &hex::encode(id.serial_number.as_bytes()));
                let matches = hashes(&id.hash_algorithm.oid.to_string()).is_some_and(|(n, k)| {
                    n == id.issuer_name_hash.as_bytes() && k == id.issuer_key_hash.as_bytes()
                });
                prop_assert_eq!(question.ours, matches);
            }
            if let Some(n) = &q.nonce {
                prop_assert!(n.len() <= input.len());
            }
        }
        Ok(())
    };
    run(
        "ocsp_request",
        1500,
        plan(seeds.len()),
        |(i, tree, bytes)| check(&mutate::mutate(&seeds[i], &tree, &bytes, &donors)),
    );
    tally.print("ocsp_request");
    run(
        "ocsp_request_bytes",
        1000,
        prop::collection::vec(any::<u8>(), 0..300),
        |input| check(&input),
    );
}

// ---------------------------------------------------------------------------------------------
// CMS self-revocation statements
// ---------------------------------------------------------------------------------------------

#[test]
fn cms_statement() {
    use vouch::x509::cms;
    let dir = tempdir();
    let pki = seeds::pki(dir.path());
    let seeds = seeds::cms(dir.path(), &pki);
    let signer = pki.leaves[0].to_der().unwrap();
    let other = pki.ca.to_der().unwrap();
    for s in &seeds {
        assert_eq!(cms::content(s).unwrap(), seeds::STATEMENT);
        assert!(cms::signed_by(s, &signer).unwrap());
        assert!(!cms::signed_by(s, &other).unwrap());
    }
    let donors: Vec<_> = seeds.iter().map(|d| mutate::parse(d)).collect();
    let tally = Tally::default();
    let check = |input: &[u8]| -> Result<(), TestCaseError> {
        let content = cms::content(input);
        tally.add(match &content {
            Ok(_) => "content verified",
            Err(e) => e.code(),
        });
        if let Err(e) = &content {
            prop_assert!(typed(e), "untyped error: {e:?}");
        }
        match cms::signed_by(input, &signer) {
            Err(e) => prop_assert!(typed(&e), "untyped error: {e:?}"),
            // Signed by our key: the content is the one statement that key ever signed.
            // Signed by our key: the content is the one statement that key ever signed. (The
            // content may still be refused: `content` checks the signature with the certificate
            // the CMS carries, which is not signed and may be damaged.)
            Ok(true) => {
                if let Ok(c) = &content {
                    prop_assert_eq!(c.as_slice(), seeds::STATEMENT);
                }
            }
            Ok(false) => {}
        }
        // Never "signed by" a certificate whose key signed nothing.
        prop_assert!(!cms::signed_by(input, &other).unwrap_or(false));
        let left = openssl::error::ErrorStack::get();
        prop_assert!(left.errors().is_empty(), "OpenSSL error queue left: {left}");
        Ok(())
    };
    // The DER seeds through the tree mutator; PEM and S/MIME through byte damage only.
    let der_seeds = 2;
    run("cms_der", 1000, plan(der_seeds), |(i, tree, bytes)| {
        check(&mutate::mutate(&seeds[i], &tree, &bytes, &donors))
    });
    tally.print("cms_der");
    run(
        "cms_text",
        500,
        (2..seeds.len(), prop::collection::vec(any::<u64>(), 1..4)),
        |(i, ops)| {
            let mut input = seeds[i].clone();
            for op in ops {
                if input.is_empty() {
                    break;
                }
                let mut r = mutate::Rng::new(op);
                let p = r.below(input.len());
                match r.below(3) {
                    0 => input[p] ^= 1 << r.below(8),
                    1 => input.truncate(p),
                    _ => input.insert(p, b"\n=-A:\r"[r.below(6)]),
                }
            }
            check(&input)
        },
    );
    run(
        "cms_bytes",
        500,
        prop::collection::vec(any::<u8>(), 0..300),
        |input| check(&input),
    );
}

// ---------------------------------------------------------------------------------------------
// The CRL encoder
// ---------------------------------------------------------------------------------------------

mod crl {
    use super::*;
    use time::OffsetDateTime;
    use vouch::x509::crl::{assemble, tbs, CrlContent, CrlEntry, CrlRemoval, SignatureAlgorithm};
    use vouch::x509::revocation::Reason;
    use vouch::x509::serial::Serial;

    pub const REASONS: [Reason; 9] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::CaCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
        Reason::AaCompromise,
    ];

    /// Seconds since the epoch: mostly near now, also across the UTCTime/GeneralizedTime switch
    /// (1950, 2050) and anywhere from 1970 to 9999.
    pub fn when() -> impl Strategy<Value = i64> {
        prop_oneof![
            1_700_000_000i64..1_900_000_000,
            Just(2_524_607_999i64), // 2049-12-31 23:59:59
            Just(2_524_608_000i64), // 2050-01-01 00:00:00
            Just(0i64),
            0i64..253_402_300_800,
        ]
    }

    /// Any serial `Serial::parse` accepts: 16 bytes as hex.
    pub fn serial() -> impl Strategy<Value = Serial> {
        prop_oneof![
            4 => any::<[u8; 16]>().prop_map(|mut b| { b[0] = 0x10 + b[0] % 0x70; b }),
            1 => any::<[u8; 16]>(),
        ]
        .prop_filter_map("Serial::parse", |b| Serial::parse(&hex::encode(b)))
    }

    pub fn entry() -> impl Strategy<Value = CrlEntry> {
        (serial(), when(), 0..REASONS.len(), prop::option::of(when())).prop_map(
            |(serial, at, r, inv)| CrlEntry {
                serial,
                revoked_at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
                reason: REASONS[r],
                invalidity_date: inv.map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap()),
            },
        )
    }

    pub fn removal() -> impl Strategy<Value = CrlRemoval> {
        (serial(), when()).prop_map(|(serial, at)| CrlRemoval {
            serial,
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
        })
    }

    #[derive(Debug, Clone)]
    pub struct Input {
        pub sha384: bool,
        pub cn: String,
        pub key_id: Vec<u8>,
        pub number: u64,
        pub this_update: i64,
        pub next_update: i64,
        pub entries: Vec<CrlEntry>,
        pub removed: Vec<CrlRemoval>,
        pub delta_base: Option<u64>,
        pub urls: Vec<String>,
    }

    pub fn input() -> impl Strategy<Value = Input> {
        (
            any::<bool>(),
            "[A-Za-z0-9 .-]{1,64}",
            prop::collection::vec(any::<u8>(), 1..33),
            any::<u64>(),
            when(),
            when(),
            prop::collection::vec(entry(), 0..24),
            prop::collection::vec(removal(), 0..6),
            prop::option::of(any::<u64>()),
            prop::collection::vec("http://[a-z0-9.-]{1,30}/[A-Za-z0-9/._~%-]{0,200}", 0..3),
        )
            .prop_map(
                |(
                    sha384,
                    cn,
                    key_id,
                    number,
                    this_update,
                    next_update,
                    entries,
                    removed,
                    delta_base,
                    urls,
                )| Input {
                    sha384,
                    cn,
                    key_id,
                    number,
                    this_update,
                    next_update,
                    entries,
                    removed,
                    delta_base,
                    urls,
                },
            )
    }

    /// One expected entry: serial (unsigned big-endian, no leading zeros), revocation time,
    /// reasonCode (None when absent), invalidity date.
    pub type Row = (Vec<u8>, i64, Option<u8>, Option<i64>);

    pub fn unsigned(bytes: &[u8]) -> Vec<u8> {
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    }

    pub fn expected(i: &Input) -> Vec<Row> {
        let mut rows: Vec<Row> = i
            .entries
            .iter()
            .map(|e| {
                (
                    unsigned(e.serial.as_bytes()),
                    e.revoked_at.unix_timestamp(),
                    (e.reason != Reason::Unspecified).then(|| e.reason.code()),
                    e.invalidity_date.map(|t| t.unix_timestamp()),
                )
            })
            .chain(i.removed.iter().map(|r| {
                (
                    unsigned(r.serial.as_bytes()),
                    r.at.unix_timestamp(),
                    Some(8),
                    None,
                )
            }))
            .collect();
        rows.sort();
        rows
    }

    pub fn encode(i: &Input, key: &PKey<Private>) -> (Vec<u8>, Vec<u8>) {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", &i.cn).unwrap();
        let name = name.build().to_der().unwrap();
        let algorithm = if i.sha384 {
            SignatureAlgorithm::EcdsaSha384
        } else {
            SignatureAlgorithm::EcdsaSha256
        };
        let content = CrlContent {
            algorithm,
            issuer_name_der: &name,
            key_id: &i.key_id,
            number: i.number,
            this_update: OffsetDateTime::from_unix_timestamp(i.this_update).unwrap(),
            next_update: OffsetDateTime::from_unix_timestamp(i.next_update).unwrap(),
            entries: &i.entries,
            removed: &i.removed,
            delta_base: i.delta_base,
            freshest_urls: &i.urls,
            attribute_certs: None,
        };
        let tbs = tbs(&content);
        let md = if i.sha384 {
            MessageDigest::sha384()
        } else {
            MessageDigest::sha256()
        };
        let mut signer = openssl::sign::Signer::new(md, key).unwrap();
        let sig = signer.sign_oneshot_to_vec(&tbs).unwrap();
        (assemble(&tbs, algorithm, &sig), name)
    }
}

/// The CRL encoder writes DER by hand: whatever it is given, OpenSSL, x509-parser and the `der`
/// crate (strict DER: minimal lengths and integers, sorted nothing else) must all read the same
/// CRL back, with its signature.
#[test]
fn crl_encoder() {
    use crl::*;
    let key = seeds::ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
    run("crl_encoder", 300, input(), |i| check_crl(&i, &key));
}

fn check_crl(i: &crl::Input, key: &PKey<Private>) -> Result<(), TestCaseError> {
    use crl::*;
    use der::{Decode, Encode};
    use openssl::asn1::Asn1Time;
    use openssl::x509::X509Crl;
    use x509_parser::prelude::FromDer;
    let (der, name) = encode(i, key);
    let want = expected(i);

    // Strict DER: decodes and re-encodes to the same bytes.
    let strict = x509_cert::crl::CertificateList::from_der(&der);
    prop_assert!(strict.is_ok(), "der crate: {:?}", strict.err());
    prop_assert_eq!(
        strict.unwrap().to_der().unwrap(),
        der.clone(),
        "not canonical DER"
    );

    // x509-parser.
    let parsed = x509_parser::revocation_list::CertificateRevocationList::from_der(&der);
    prop_assert!(parsed.is_ok(), "x509-parser: {:?}", parsed.as_ref().err());
    let (rest, crl) = parsed.unwrap();
    prop_assert!(rest.is_empty());
    prop_assert_eq!(crl.version().map(|v| v.0), Some(1));
    prop_assert_eq!(crl.tbs_cert_list.issuer.as_raw(), name.as_slice());
    prop_assert_eq!(crl.last_update().timestamp(), i.this_update);
    prop_assert_eq!(
        crl.next_update().map(|t| t.timestamp()),
        Some(i.next_update)
    );
    prop_assert_eq!(
        crl.crl_number().map(|n| n.to_bytes_be()),
        Some(x509_parser::num_bigint::BigUint::from(i.number).to_bytes_be())
    );
    let mut got: Vec<Row> = Vec::new();
    for r in crl.iter_revoked_certificates() {
        got.push((
            unsigned(&r.user_certificate.to_bytes_be()),
            r.revocation_date.timestamp(),
            r.reason_code().map(|(_, c)| c.0),
            r.invalidity_date().map(|(_, t)| t.timestamp()),
        ));
    }
    got.sort();
    prop_assert_eq!(&got, &want, "x509-parser entries");
    let delta = crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27");
    prop_assert_eq!(delta.is_some(), i.delta_base.is_some());
    if let (Some(d), Some(base)) = (delta, i.delta_base) {
        prop_assert!(d.critical);
        let want = vouch::x509::der::uint(base);
        prop_assert_eq!(d.value, want.as_slice());
    }
    let freshest = crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.46");
    prop_assert_eq!(freshest.is_some(), !i.urls.is_empty());
    if let Some(f) = freshest {
        let (_, points) = x509_parser::extensions::CRLDistributionPoints::from_der(f.value)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut uris = Vec::new();
        for p in points.iter() {
            if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
                &p.distribution_point
            {
                for n in names {
                    if let x509_parser::extensions::GeneralName::URI(u) = n {
                        uris.push(u.to_string());
                    }
                }
            }
        }
        prop_assert_eq!(&uris, &i.urls);
    }

    // OpenSSL: parses, the signature verifies, the same entries.
    let crl = X509Crl::from_der(&der);
    prop_assert!(crl.is_ok(), "openssl: {:?}", crl.as_ref().err());
    let crl = crl.unwrap();
    prop_assert!(crl.verify(key).unwrap(), "signature verifies");
    let same_time = |t: &openssl::asn1::Asn1TimeRef, unix: i64| {
        Asn1Time::from_unix(unix)
            .ok()
            .and_then(|want| t.diff(&want).ok())
            .is_some_and(|d| d.days == 0 && d.secs == 0)
    };
    prop_assert!(same_time(crl.last_update(), i.this_update), "thisUpdate");
    prop_assert!(
        crl.next_update()
            .is_some_and(|t| same_time(t, i.next_update)),
        "nextUpdate"
    );
    let mut got: Vec<Row> = Vec::new();
    if let Some(revoked) = crl.get_revoked() {
        for r in revoked {
            let bn = r.serial_number().to_bn().unwrap();
            prop_assert!(!bn.is_negative(), "negative serial in the CRL");
            let at = want
                .iter()
                .map(|w| w.1)
                .find(|t| same_time(r.revocation_date(), *t));
            prop_assert!(at.is_some(), "revocation date {}", r.revocation_date());
            let reason = r
                .extension::<openssl::x509::ReasonCode>()
                .unwrap()
                .map(|(_, e)| e.get_i64().unwrap() as u8);
            got.push((unsigned(&bn.to_vec()), at.unwrap(), reason, None));
        }
    }
    got.sort();
    let want_no_inv: Vec<Row> = {
        let mut w: Vec<Row> = want.iter().map(|r| (r.0.clone(), r.1, r.2, None)).collect();
        w.sort();
        w
    };
    prop_assert_eq!(&got, &want_no_inv, "openssl entries");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The OCSP response encoder
// ---------------------------------------------------------------------------------------------

#[test]
fn ocsp_response_encoder() {
    use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspRevokedStatus};
    use openssl::stack::Stack;
    use openssl::x509::extension::ExtendedKeyUsage;
    use openssl::x509::store::X509StoreBuilder;
    use time::OffsetDateTime;
    use vouch::x509::ocsp::{parse, IssuerHashes, Responder, Status};

    let dir = tempdir();
    let pki = seeds::pki(dir.path());
    let requests = seeds::ocsp_requests(dir.path());
    let issuer = IssuerHashes::from_cert_der(&pki.ca.to_der().unwrap()).unwrap();
    // A delegated responder certificate, as the RA issues one.
    let responder_key = seeds::ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
    let responder_cert = {
        let mut b = openssl::x509::X509Builder::new().unwrap();
        let base = seeds::cert("responder", 9, &responder_key, Some((&pki.ca, &pki.ca_key)));
        b.set_version(2).unwrap();
        b.set_serial_number(base.serial_number()).unwrap();
        b.set_subject_name(base.subject_name()).unwrap();
        b.set_issuer_name(pki.ca.subject_name()).unwrap();
        b.set_pubkey(&responder_key).unwrap();
        b.set_not_before(base.not_before()).unwrap();
        b.set_not_after(base.not_after()).unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .other("OCSPSigning")
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&pki.ca_key, MessageDigest::sha256()).unwrap();
        b.build()
    };
    let pkcs8 = zeroize::Zeroizing::new(responder_key.private_key_to_pkcs8().unwrap());
    let responder = Responder::new(
        &pkcs8,
        &responder_cert.to_der().unwrap(),
        OffsetDateTime::now_utc() + time::Duration::days(7),
    )
    .unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(pki.ca.clone()).unwrap();
    let store = store.build();
    let certs = Stack::<X509>::new().unwrap();
    // Which leaves each seed request asks about, and with which hash.
    let asked: Vec<(Vec<usize>, MessageDigest)> = vec![
        (vec![0], MessageDigest::sha1()),
        (vec![0], MessageDigest::sha1()),
        (vec![0, 1], MessageDigest::sha256()),
        (vec![1], MessageDigest::sha1()),
    ];
    let status = prop_oneof![
        Just(None),
        Just(Some(None)),
        (
            crl::when().prop_filter("from 1970", |t| *t >= 0),
            0..crl::REASONS.len()
        )
            .prop_map(|(t, r)| Some(Some((t, r)))),
    ];
    let strategy = (
        0..requests.len(),
        prop::collection::vec(status, 2),
        crl::when().prop_filter("from 1970", |t| *t >= 0),
        crl::when().prop_filter("from 1970", |t| *t >= 0),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    );
    run(
        "ocsp_response_encoder",
        200,
        strategy,
        |(r, statuses, now, next, nonce)| {
            let mut query = parse(&requests[r], &issuer).unwrap();
            query.nonce = nonce.clone();
            let statuses: Vec<Status> = statuses
                .iter()
                .map(|s| match s {
                    None => Status::Good,
                    Some(None) => Status::Unknown,
                    Some(Some((t, reason))) => Status::Revoked {
                        at: OffsetDateTime::from_unix_timestamp(*t).unwrap(),
                        reason: crl::REASONS[*reason],
                    },
                })
                .collect();
            let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
            let der = responder
                .respond(&query, &statuses, at(now), at(next))
                .map_err(|e| TestCaseError::fail(format!("respond: {e}")))?;
            let resp = OcspResponse::from_der(&der).unwrap();
            prop_assert_eq!(resp.status(), openssl::ocsp::OcspResponseStatus::SUCCESSFUL);
            let basic = resp.basic().unwrap();
            let verified = basic.verify(&certs, &store, OcspFlag::empty());
            prop_assert!(verified.is_ok(), "openssl verify: {:?}", verified.err());
            let (leaves, md) = &asked[r];
            let same = |t: &openssl::asn1::Asn1GeneralizedTimeRef, unix: i64| {
                openssl::asn1::Asn1Time::from_unix(unix)
                    .unwrap()
                    .to_string()
                    == t.to_string()
            };
            for (k, leaf) in leaves.iter().enumerate() {
                let id = OcspCertId::from_cert(*md, &pki.leaves[*leaf], &pki.ca).unwrap();
                let found = basic.find_status(&id);
                prop_assert!(found.is_some(), "status for question {k}");
                let found = found.unwrap();
                prop_assert!(same(found.this_update, now), "thisUpdate");
                prop_assert!(
                    found.next_update().is_some_and(|t| same(t, next)),
                    "nextUpdate"
                );
                match &statuses[k] {
                    Status::Good => prop_assert_eq!(found.status, OcspCertStatus::GOOD),
                    Status::Unknown => prop_assert_eq!(found.status, OcspCertStatus::UNKNOWN),
                    Status::Revoked { at, reason } => {
                        prop_assert_eq!(found.status, OcspCertStatus::REVOKED);
                        prop_assert_eq!(
                            found.reason,
                            OcspRevokedStatus::from_raw(reason.code() as i32)
                        );
                        prop_assert!(found
                            .revocation_time
                            .is_some_and(|t| same(t, at.unix_timestamp())));
                    }
                }
            }
            // The nonce is echoed, byte for byte.
            let echoed = {
                use der::Decode;
                let resp = x509_ocsp::OcspResponse::from_der(&der).unwrap();
                let bytes = resp.response_bytes.unwrap();
                let basic =
                    x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
                basic
                    .tbs_response_data
                    .response_extensions
                    .unwrap_or_default()
                    .iter()
                    .find(|e| e.extn_id.to_string() == "1.3.6.1.5.5.7.48.1.2")
                    .map(|e| e.extn_value.as_bytes().to_vec())
            };
            match &nonce {
                None => prop_assert!(echoed.is_none()),
                Some(n) => {
                    let want =
                        der::Encode::to_der(&der::asn1::OctetString::new(n.clone()).unwrap())
                            .unwrap();
                    prop_assert_eq!(echoed, Some(want));
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTP API: JSON bodies, query strings, OCSP over HTTP, through the real router in process
// ---------------------------------------------------------------------------------------------

mod http {
    use super::mutate::Rng;
    use serde_json::{json, Value};

    /// Values a hostile client puts where a field is.
    pub fn nasty(r: &mut Rng) -> Value {
        match r.below(22) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(-1),
            3 => json!(i64::MAX),
            4 => json!(u64::MAX),
            5 => json!(1.5e308),
            6 => json!(""),
            7 => json!("x".repeat(1 + r.below(70_000))),
            8 => json!("\u{0}\u{1}\u{7f}"),
            9 => json!("é😀\u{202e}\u{feff}"),
            10 => json!("../../etc/passwd"),
            11 => json!("' OR 1=1; --"),
            12 => json!("%_\\"),
            13 => json!("2026-13-45"),
            14 => json!("9999-12-31T23:59:59Z"),
            15 => json!("0000-01-01T00:00:00+14:00"),
            16 => json!([]),
            17 => json!({}),
            18 => {
                let mut v = json!("deep");
                for _ in 0..r.below(200) {
                    v = json!([v]);
                }
                v
            }
            19 => json!(
                ["clerk", "approver", "revoker", "admin", "aa", "auditor", "verifier"][r.below(7)]
            ),
            20 => json!(
                [
                    "keyCompromise",
                    "certificateHold",
                    "removeFromCRL",
                    "unspecified"
                ][r.below(4)]
            ),
            _ => json!(
                "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
            ),
        }
    }

    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }

    fn nth<'a>(v: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
        if *k == 0 {
            return Some(v);
        }
        *k -= 1;
        match v {
            Value::Array(a) => a.iter_mut().find_map(|c| nth(c, k)),
            Value::Object(o) => o.values_mut().find_map(|c| nth(c, k)),
            _ => None,
        }
    }

    /// One structural mutation of a JSON value.
    pub fn mutate(v: &mut Value, seed: u64) {
        let mut r = Rng::new(seed);
        let mut k = r.below(count(v));
        let Some(target) = nth(v, &mut k) else {
            return;
        };
        match (r.below(5), target) {
            // Drop a field.
            (0, Value::Object(o)) if !o.is_empty() => {
                let key = o.keys().nth(r.below(o.len())).cloned().unwrap();
                o.remove(&key);
            }
            // Add an unknown (or a real) field.
            (1, Value::Object(o)) => {
                let key = ["extra", "id", "status", "roles", "__proto__", ""][r.below(6)];
                o.insert(key.to_string(), nasty(&mut r));
            }
            // Grow an array.
            (2, Value::Array(a)) => {
                let n = 1 + r.below(40);
                let item = a.first().cloned().unwrap_or(Value::Null);
                a.extend(std::iter::repeat_n(item, n));
            }
            // Replace whatever is there.
            (_, t) => *t = nasty(&mut r),
        }
    }

    /// Damage to the JSON text itself.
    pub fn damage(text: &mut Vec<u8>, seed: u64) {
        let mut r = Rng::new(seed);
        if text.is_empty() {
            text.push(b'{');
            return;
        }
        let p = r.below(text.len());
        match r.below(5) {
            0 => text.truncate(p),
            1 => text.insert(p, b"{}[],:\"\\\x00\xff"[r.below(10)]),
            2 => text[p] ^= 1 << r.below(8),
            // A duplicated key.
            3 => {
                if let Some(q) = text.iter().position(|b| *b == b',') {
                    let field = text[1..q].to_vec();
                    let mut at = q + 1;
                    for b in field.iter().rev() {
                        text.insert(at, *b);
                    }
                    at += field.len();
                    text.insert(at, b',');
                }
            }
            _ => {
                let tail = text.split_off(p);
                text.extend_from_slice(b"\\u0000\\ud800");
                text.extend_from_slice(&tail);
            }
        }
    }

    /// Percent-encode everything but unreserved characters.
    pub fn query_value(v: &Value) -> String {
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let s: String = s.chars().take(300).collect();
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

#[test]
fn http_api() {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(common::TestApp::spawn());
    let (clerk, approver) = rt.block_on(app.clerk_and_approver());
    let revoker = rt.block_on(app.operator("revoker1", &["revoker"]));
    let auditor = rt.block_on(app.operator("auditor1", &["auditor"]));
    let sub = rt.block_on(app.person(&clerk, "Li Wei", "2099-12-31"));
    let pending = rt.block_on(app.pending(&clerk));
    let serials: Vec<String> = (0..3)
        .map(|_| rt.block_on(app.issue(&clerk, &approver, &common::p256_csr())))
        .collect();
    let key_pem = String::from_utf8(
        seeds::ec_key(openssl::nid::Nid::X9_62_PRIME256V1)
            .public_key_to_pem()
            .unwrap(),
    )
    .unwrap();
    let router = vouch::api::router(app.ra.clone());

    // Valid requests for every JSON body the API takes.
    let identifier = json!({"type": "passport", "number": "E12345678", "issuer": "Exit-Entry Administration",
                            "valid_until": "2099-12-31", "document_sha256": "ab".repeat(32)});
    let templates: Vec<(String, &str, Value)> = vec![
        (
            "/api/v1/subscribers".into(),
            &clerk,
            json!({"kind": "person", "name": "Wang Fang", "email": "w@example.org", "organisation": "City",
                "identifiers": [identifier.clone()]}),
        ),
        (
            format!("/api/v1/subscribers/{sub}/identifiers"),
            &clerk,
            identifier.clone(),
        ),
        (
            "/api/v1/requests".into(),
            &clerk,
            json!({"subscriber_id": sub, "profile": "person-signing", "csr": common::p256_csr()}),
        ),
        (
            format!("/api/v1/requests/{pending}/reject"),
            &approver,
            json!({"reason": "documents do not match"}),
        ),
        (
            format!("/api/v1/certificates/{}/revoke", serials[0]),
            &revoker,
            json!({"reason": "superseded", "invalidity_date": "2026-01-01T00:00:00Z", "comment": "replaced"}),
        ),
        (
            format!("/api/v1/certificates/{}/hold", serials[1]),
            &revoker,
            json!({"comment": "lost card"}),
        ),
        (
            format!("/api/v1/certificates/{}/release", serials[1]),
            &revoker,
            json!({"comment": "found"}),
        ),
        (
            "/api/v1/revocations/rev_0/reject".into(),
            &revoker,
            json!({"reason": "no"}),
        ),
        (
            "/api/v1/blocked-keys".into(),
            &revoker,
            json!({"key_sha256": "cd".repeat(32), "public_key_pem": key_pem, "reason": "weak"}),
        ),
        (
            "/api/v1/operators".into(),
            &app.admin,
            json!({"name": "clerk9", "roles": ["clerk"]}),
        ),
    ];
    // (path, token, parameters)
    type QueryTemplate<'a> = (&'a str, &'a str, Vec<(&'a str, Value)>);
    let queries: Vec<QueryTemplate> = vec![
        (
            "/api/v1/subscribers",
            &clerk,
            vec![("q", json!("Li")), ("limit", json!(10))],
        ),
        (
            "/api/v1/requests",
            &clerk,
            vec![
                ("status", json!("pending")),
                ("subscriber_id", json!(sub)),
                ("limit", json!(5)),
            ],
        ),
        (
            "/api/v1/audit",
            &auditor,
            vec![("after", json!(0)), ("limit", json!(50))],
        ),
    ];

    let send = |req: Request<Body>| -> (StatusCode, Option<String>, Vec<u8>) {
        rt.block_on(async {
            let resp = tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(req))
                .await
                .expect("answered within 10 s")
                .unwrap();
            let status = resp.status();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, ct, body.to_vec())
        })
    };
    // Every answer: a status below 500 and JSON, with an error code when it is an error.
    let check = |what: &str, status: StatusCode, body: &[u8]| -> Result<(), TestCaseError> {
        prop_assert!(
            status.as_u16() < 500,
            "{what}: {status} {}",
            String::from_utf8_lossy(body)
        );
        let v: Result<Value, _> = serde_json::from_slice(body);
        prop_assert!(
            v.is_ok(),
            "{what}: {status}, not JSON: {}",
            String::from_utf8_lossy(body)
        );
        if status.as_u16() >= 400 {
            let v = v.unwrap();
            prop_assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{what}: {v}"
            );
        }
        Ok(())
    };

    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    run(
        "http_json",
        400,
        (
            0..templates.len(),
            prop::collection::vec(any::<u64>(), 0..4),
            prop::collection::vec(any::<u64>(), 0..2),
            prop_oneof![8 => Just("application/json"), 1 => Just("text/plain"), 1 => Just("")],
        ),
        |(t, ops, damage, ct)| {
            let (path, token, body) = &templates[t];
            let mut body = body.clone();
            for op in ops {
                http::mutate(&mut body, op);
            }
            let mut text = serde_json::to_vec(&body).unwrap();
            for d in damage {
                http::damage(&mut text, d);
            }
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(path.as_str())
                .header("authorization", format!("Bearer {token}"));
            if !ct.is_empty() {
                req = req.header("content-type", ct);
            }
            let (status, _, out) = send(req.body(Body::from(text.clone())).unwrap());
            *seen.lock().unwrap().entry(status.as_u16()).or_insert(0) += 1;
            check(
                &format!("POST {path} {}", String::from_utf8_lossy(&text)),
                status,
                &out,
            )
        },
    );

    eprintln!("fuzz http_json: statuses {:?}", seen.lock().unwrap());
    run(
        "http_query",
        200,
        (0..queries.len(), prop::collection::vec(any::<u64>(), 0..4)),
        |(q, ops)| {
            let (path, token, params) = &queries[q];
            let mut params: Vec<(String, Value)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            for op in ops {
                let mut r = mutate::Rng::new(op);
                match r.below(3) {
                    0 if !params.is_empty() => {
                        let i = r.below(params.len());
                        params[i].1 = http::nasty(&mut r);
                    }
                    1 if !params.is_empty() => {
                        let i = r.below(params.len());
                        let p = params[i].clone();
                        params.push(p);
                    }
                    _ => params.push(("x%zz".into(), http::nasty(&mut r))),
                }
            }
            let qs: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", http::query_value(v)))
                .collect();
            let uri = format!("{path}?{}", qs.join("&"));
            let req = Request::builder()
                .uri(uri.as_str())
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let (status, _, out) = send(req);
            check(&format!("GET {uri}"), status, &out)
        },
    );

    // OCSP over HTTP, with requests about the certificates this app issued.
    let dir = tempdir();
    let (_, issuing) = rt.block_on(app.save_ca_certs(dir.path()));
    std::fs::copy(&issuing, dir.path().join("ca.pem")).unwrap();
    for (i, s) in serials.iter().take(2).enumerate() {
        let (_, v) = rt.block_on(app.get(&clerk, &format!("/api/v1/certificates/{s}")));
        std::fs::write(
            dir.path().join(format!("leaf{i}.pem")),
            v["pem"].as_str().unwrap(),
        )
        .unwrap();
    }
    seeds::signer(dir.path());
    let requests = seeds::ocsp_requests(dir.path());
    let donors: Vec<_> = requests.iter().map(|d| mutate::parse(d)).collect();
    run(
        "http_ocsp",
        400,
        (plan(requests.len()), any::<bool>()),
        |((i, tree, bytes), get)| {
            use base64::Engine;
            let der = mutate::mutate(&requests[i], &tree, &bytes, &donors);
            let req = if get {
                let b64 = base64::engine::general_purpose::URL_SAFE.encode(&der);
                Request::builder()
                    .uri(format!("/ocsp/{b64}"))
                    .body(Body::empty())
            } else {
                Request::builder()
                    .method(Method::POST)
                    .uri("/ocsp")
                    .header("content-type", "application/ocsp-request")
                    .body(Body::from(der.clone()))
            }
            .unwrap();
            let (status, ct, out) = send(req);
            if get && der.is_empty() {
                // `GET /ocsp/` names no request: the router's JSON 404.
                return check("GET /ocsp/", status, &out);
            }
            prop_assert_eq!(status, StatusCode::OK, "{}", hex::encode(&der));
            prop_assert_eq!(ct.as_deref(), Some("application/ocsp-response"));
            let resp = openssl::ocsp::OcspResponse::from_der(&out);
            prop_assert!(resp.is_ok(), "not an OCSP response: {}", hex::encode(&out));
            Ok(())
        },
    );
    rt.block_on(app.stop());
}

// ---------------------------------------------------------------------------------------------
// Regressions: every failure the targets found, with its exact input
// ---------------------------------------------------------------------------------------------

/// crl_encoder found `Serial(80000000000000000000000000000000)` written into the CRL as a negative
/// INTEGER (OpenSSL read it as -2^127; x509-parser and the `der` crate accepted it silently), so a
/// relying party would not have matched the entry to the certificate. `Serial::parse` now refuses
/// serials `Serial::random` cannot make; the extremes it can make encode right.
#[test]
fn regression_crl_serial_sign() {
    use vouch::x509::serial::Serial;
    assert!(Serial::parse("80000000000000000000000000000000").is_none());
    assert!(Serial::parse("00100000000000000000000000000000").is_none());
    let key = seeds::ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
    let entry = |hex: &str| vouch::x509::crl::CrlEntry {
        serial: Serial::parse(hex).unwrap(),
        revoked_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        reason: vouch::x509::revocation::Reason::Unspecified,
        invalidity_date: None,
    };
    let input = crl::Input {
        sha384: false,
        cn: " ".into(),
        key_id: vec![0],
        number: 0,
        this_update: 1_700_000_000,
        next_update: 1_700_000_000,
        entries: vec![
            entry("10000000000000000000000000000000"),
            entry("7fffffffffffffffffffffffffffffff"),
        ],
        removed: vec![],
        delta_base: None,
        urls: vec![],
    };
    check_crl(&input, &key).unwrap();
}

/// http_json found that a body over the 64 KiB limit on the endpoints that read raw bytes (hold,
/// release, self-revocation) was answered with axum's plain-text 413 ("Failed to buffer the request
/// body: length limit exceeded"), not the JSON error every other answer is; and on `POST /ocsp`
/// with that text instead of an OCSP response. The input was `{"comment": "lost card", "id":
/// "x" * 65,536+}` to `/hold`.
#[test]
fn regression_oversized_raw_bodies() {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(common::TestApp::spawn());
    let revoker = rt.block_on(app.operator("revoker1", &["revoker"]));
    let router = vouch::api::router(app.ra.clone());
    let big = format!(r#"{{"comment":"lost card","id":"{}"}}"#, "x".repeat(70_000));
    let send = |path: &str, token: Option<&str>, body: &str| {
        let mut req = Request::builder().method(Method::POST).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Body::from(body.to_string())).unwrap();
        rt.block_on(async {
            let resp = router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let ct = resp.headers().get("content-type").cloned();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, ct, body)
        })
    };
    let serial = "1".repeat(32);
    for path in [
        format!("/api/v1/certificates/{serial}/hold"),
        format!("/api/v1/certificates/{serial}/release"),
        "/api/v1/revocations/by-key".to_string(),
    ] {
        let (status, _, body) = send(&path, Some(&revoker), &big);
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{path}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(v["error"], "payload_too_large", "{path}");
    }
    let (status, ct, body) = send("/ocsp", None, &big);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.unwrap(), "application/ocsp-response");
    let resp = openssl::ocsp::OcspResponse::from_der(&body).unwrap();
    assert_eq!(
        resp.status(),
        openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
    );
    rt.block_on(app.stop());
}

/// cms_text found that an S/MIME body with a byte that is not UTF-8 in a header panicked inside
/// rust-openssl (openssl-0.10.82 src/error.rs:133, `str::from_utf8(..).unwrap()` on the error data
/// OpenSSL attached, which quotes the header), reachable without a token through
/// `POST /api/v1/revocations/by-key`. The fuzzer's input was a flipped bit in the seed's
/// Content-Type; these are the smallest bodies that did it.
#[test]
fn regression_smime_header_not_utf8() {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;
    let bodies: [&[u8]; 3] = [
        b"MIME-Version: 1.0\nContent-Type: application/x\xffpkcs7-mime\n\nAAAA\n",
        b"MIME-Version: 1.0\nContent-Type: text/plai\xff\n\nAAAA\n",
        b"-----BEGIN CMS-----\n\xff\n-----END CMS-----\n",
    ];
    for body in bodies {
        let e = vouch::x509::cms::parse(body).err().expect("refused");
        assert_eq!(e.code(), "bad_cms");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(common::TestApp::spawn());
    let router = vouch::api::router(app.ra.clone());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/revocations/by-key")
        .body(Body::from(bodies[0].to_vec()))
        .unwrap();
    let (status, body) = rt.block_on(async {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body)
    });
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "bad_cms");
    rt.block_on(app.stop());
}
