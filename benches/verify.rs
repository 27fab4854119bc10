//! Verification throughput over HTTP with concurrent clients: a 2 KB detached submission signed
//! with P-256 (the signer's and the issuing CA's certificates in the CMS), checked for signature,
//! chain, status at the signing time, with a signed receipt and an audit entry each; then the
//! same with a role check through an attribute certificate. In the same run: the machine's
//! limit (`openssl speed -seconds 3 ecdsap256`, verifications per second times cores) and
//! `openssl cms -verify` in a loop on the same document.
//!
//! cargo bench --bench verify
//! VOUCH_BENCH_VERIFICATIONS=20000 VOUCH_BENCH_CLIENTS=64 cargo bench --bench verify

use base64::Engine;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use vouch::ca::local::CaOptions;
use vouch::clock::{SharedClock, SystemClock};
use vouch::datadir::DataDir;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let req = match body {
        Some(b) => client.post(format!("{base}{path}")).json(&b),
        None => client.post(format!("{base}{path}")),
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// CPU seconds (user and system) this process has used, from /proc/self/stat (clock ticks of
/// 10 ms: enough over runs of seconds).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// One run's figures.
struct Rate {
    per_second: f64,
    /// CPU time of the whole process (server and its clients) per verification, microseconds:
    /// what the rate would be on idle cores, whatever else runs on the machine.
    cpu_us: f64,
}

/// Verifications per second with `clients` concurrent clients, each posting `body`.
async fn run(base: &str, token: &str, body: Value, n: usize, clients: usize) -> Rate {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let body = Arc::new(body);
    let done = Arc::new(AtomicUsize::new(0));
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
            let (body, done) = (body.clone(), done.clone());
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::SeqCst) < n {
                    let resp = client
                        .post(format!("{base}/api/v1/verify"))
                        .bearer_auth(&token)
                        .json(&*body)
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success());
                    let v: Value = resp.json().await.unwrap();
                    assert_eq!(v["decision"], "accept", "{v}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Rate {
        per_second: n as f64 / start.elapsed().as_secs_f64(),
        cpu_us: (cpu_seconds() - cpu) * 1e6 / n as f64,
    }
}

/// P-256 verifications per second on one core, by `openssl speed`.
fn openssl_speed_verify() -> f64 {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "3", "ecdsap256"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  44000.0  15000.0": the last is verify/s.
    text.lines()
        .find(|l| l.contains("ecdsa (nistp256)"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `openssl cms -verify` of the same detached document, `n` runs in 2 parallel loops.
fn openssl_cms_loop(dir: &std::path::Path, n: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..n / 2 {
                    let ok = std::process::Command::new("openssl")
                        .current_dir(dir)
                        .args([
                            "cms",
                            "-verify",
                            "-inform",
                            "DER",
                            "-in",
                            "doc.der",
                            "-content",
                            "content.bin",
                            "-binary",
                            "-CAfile",
                            "root.pem",
                            "-purpose",
                            "any",
                            "-out",
                            "/dev/null",
                        ])
                        .stderr(std::process::Stdio::null())
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "openssl cms -verify failed");
                }
            });
        }
    });
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = env_usize("VOUCH_BENCH_VERIFICATIONS", 5000);
    let clients = env_usize("VOUCH_BENCH_CLIENTS", 32);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let clock: SharedClock = Arc::new(SystemClock);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt
        .block_on(vouch::app::init(&data, &CaOptions::default(), &clock))
        .unwrap()
        .unwrap()
        .to_string();
    rt.block_on(async {
        let (_, server) = vouch::app::start(
            &data,
            clock.clone(),
            Default::default(),
            "127.0.0.1:0".parse().unwrap(),
            None,
            Default::default(),
        )
        .await
        .unwrap();
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::new();
        let op = |name: &str, role: &str| {
            let body = json!({"name": name, "roles": [role]});
            let (client, base, admin) = (&client, &base, &admin);
            async move {
                call(client, base, admin, "/api/v1/operators", Some(body)).await["token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let (clerk, approver) = (op("clerk", "clerk").await, op("approver", "approver").await);
        let (verifier, aa) = (op("app", "verifier").await, op("aa", "aa").await);
        // The signer: a person-signing certificate for a P-256 key held here.
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut req = X509ReqBuilder::new().unwrap();
        req.set_pubkey(&key).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "bench").unwrap();
        req.set_subject_name(&name.build()).unwrap();
        req.sign(&key, MessageDigest::sha256()).unwrap();
        let csr = String::from_utf8(req.build().to_pem().unwrap()).unwrap();
        let sub = call(&client, &base, &clerk, "/api/v1/subscribers", Some(json!({
            "kind": "person", "name": "Bench Signer", "identifiers": [{"type": "national-id",
            "number": "110101199003070011", "issuer": "PSB", "valid_until": "2099-12-31"}]}))).await;
        let r = call(&client, &base, &clerk, "/api/v1/requests", Some(json!({
            "subscriber_id": sub["id"], "profile": "person-signing", "csr": csr}))).await;
        let id = r["id"].as_str().unwrap();
        let issued =
            call(&client, &base, &approver, &format!("/api/v1/requests/{id}/approve"), None).await;
        let serial = issued["serial"].as_str().unwrap().to_string();
        let cert: Value = client
            .get(format!("{base}/api/v1/certificates/{serial}"))
            .bearer_auth(&clerk)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cert = X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap();
        let issuing_pem = client.get(format!("{base}/ca/issuing.pem")).send().await.unwrap();
        let issuing = X509::from_pem(&issuing_pem.bytes().await.unwrap()).unwrap();
        let root_pem = client.get(format!("{base}/ca/root.pem")).send().await.unwrap();
        let root_pem = root_pem.bytes().await.unwrap();
        // 2 KB of content, detached, the issuing CA certificate carried too.
        let content: Vec<u8> = (0..2048).map(|i| b"abcdefghij"[i % 10]).collect();
        let mut chain = Stack::new().unwrap();
        chain.push(issuing).unwrap();
        let cms = CmsContentInfo::sign(
            Some(&cert),
            Some(&key),
            Some(&chain),
            Some(&content),
            CMSOptions::DETACHED | CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap();
        std::fs::write(dir.path().join("doc.der"), &cms).unwrap();
        std::fs::write(dir.path().join("content.bin"), &content).unwrap();
        std::fs::write(dir.path().join("root.pem"), &root_pem).unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let plain = json!({"cms": b64(&cms), "content": b64(&content)});
        let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        call(&client, &base, &aa, "/api/v1/attribute-certificates", Some(json!({
            "holder_serial": serial, "roles": ["approver"], "targets": ["permits"],
            "not_after": not_after}))).await;
        let with_role = json!({"cms": b64(&cms), "content": b64(&content),
            "policy": {"role": "approver", "application": "permits"}});
        // Warm up (the receipt signer is issued on first use).
        run(&base, &verifier, plain.clone(), 200, clients).await;
        let rate = run(&base, &verifier, plain, n, clients).await;
        let role_rate = run(&base, &verifier, with_role, n, clients).await;
        let speed = openssl_speed_verify();
        let limit = speed * cores as f64;
        let loop_rate = openssl_cms_loop(dir.path(), 400);
        println!("verifications: {n} per run, {clients} clients, {cores} cores");
        println!(
            "verify (signature, chain, status, receipt, audit): {:.0}/s, {:.0} µs CPU each",
            rate.per_second, rate.cpu_us
        );
        println!(
            "verify with a role check (AC):                     {:.0}/s, {:.0} µs CPU each",
            role_rate.per_second, role_rate.cpu_us
        );
        println!(
            "machine limit: openssl speed ecdsap256 verify {speed:.0}/s x {cores} cores = {limit:.0}/s; \
             at about 3 P-256 operations per verification, {:.0}/s; Vouch reaches {:.0}% of that",
            limit / 3.0,
            100.0 * rate.per_second / (limit / 3.0)
        );
        println!("openssl cms -verify in a loop (2 at a time, a process each): {loop_rate:.0}/s");
        server.shutdown().await;
    });
}
