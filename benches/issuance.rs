//! Issuance throughput: raw embedded-CA signing, and end-to-end approve -> issued over HTTP with
//! concurrent clients (durable commits, audit included), on SQLite or on PostgreSQL with one or
//! more instances sharing the database (each instance its own RA, store, writer and HTTP server;
//! clients spread their calls over the instances).
//!
//! cargo bench --bench issuance                      # SQLite, defaults
//! VOUCH_BENCH_REQUESTS=20000 VOUCH_BENCH_CLIENTS=64 cargo bench --bench issuance
//! VOUCH_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 cargo bench --bench issuance
//! VOUCH_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 VOUCH_BENCH_INSTANCES=2 cargo bench --bench issuance
//! VOUCH_BENCH_PG_OPTIONS=sslmode=disable ...         # without TLS to the database

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vouch::ca::local::{CaOptions, LocalCa};
use vouch::ca::IssueOrder;
use vouch::clock::{SharedClock, SystemClock};
use vouch::datadir::DataDir;
use vouch::x509::profile::{ExtendedKeyUsage, KeyUsage};
use vouch::x509::serial::Serial;
use vouch::x509::subject::{DnAttr, SubjectSpec};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn csr_pem() -> String {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "bench").unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

fn raw_signing(ca: Arc<LocalCa>, n: usize, threads: usize) -> f64 {
    let spki = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
    .public_key_to_der()
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let order = IssueOrder {
        csr_der: Vec::new(),
        serial: Serial::random(),
        spki_der: spki,
        subject: SubjectSpec {
            dn: vec![(DnAttr::CommonName, "Bench Person".into())],
            emails: vec!["b@example.org".into()],
        },
        not_before: now,
        not_after: now + time::Duration::days(365),
        key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::NonRepudiation],
        extended_key_usage: vec![ExtendedKeyUsage::EmailProtection],
        crl_urls: vec!["http://127.0.0.1:8080/crl/issuing.crl".into()],
        ca_issuers_urls: vec!["http://127.0.0.1:8080/ca/issuing.pem".into()],
        ocsp_urls: vec!["http://127.0.0.1:8080/ocsp".into()],
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let ca = ca.clone();
            let mut order = order.clone();
            s.spawn(move || {
                for _ in 0..n / threads {
                    order.serial = Serial::random();
                    std::hint::black_box(ca.sign(&order).unwrap());
                }
            });
        }
    });
    n as f64 / start.elapsed().as_secs_f64()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.post(url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn main() {
    let requests = env_usize("VOUCH_BENCH_REQUESTS", 5000);
    let clients = env_usize("VOUCH_BENCH_CLIENTS", 32);
    let sign_n = env_usize("VOUCH_BENCH_SIGN", 20000);
    let instances = env_usize("VOUCH_BENCH_INSTANCES", 1).max(1);
    let postgres = std::env::var("VOUCH_BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    assert!(
        instances == 1 || postgres.is_some(),
        "several instances need a shared PostgreSQL database (VOUCH_BENCH_POSTGRES)"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut data = DataDir::new(dir.path().join("data"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A fresh database for the run, dropped at the end.
    let pg_name = format!("vouch_bench_{}", std::process::id());
    if let Some(server) = &postgres {
        rt.block_on(pg_admin(server, &format!("CREATE DATABASE {pg_name}")));
        data = data.with_database(vouch::store::Database::Postgres(format!(
            "{server}/{pg_name}"
        )));
    }
    let engine = match &postgres {
        Some(_) => format!("PostgreSQL, {instances} instance(s)"),
        None => "SQLite".to_string(),
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let admin = rt
        .block_on(vouch::app::init(&data, &CaOptions::default(), &clock))
        .unwrap()
        .unwrap()
        .to_string();

    let ca = Arc::new(LocalCa::load(&data.ca_dir()).unwrap());
    let one = raw_signing(ca.clone(), sign_n, 1);
    let two = raw_signing(ca, sign_n, 2);
    println!("raw embedded-CA signing (P-256 issuing key, P-256 subject): {one:.0}/s on 1 thread, {two:.0}/s on 2 threads");

    rt.block_on(async {
        let mut servers = Vec::new();
        for _ in 0..instances {
            let (_, server) = vouch::app::start(&data, clock.clone(), Default::default(), "127.0.0.1:0".parse().unwrap(), None, Default::default()).await.unwrap();
            servers.push(server);
        }
        let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| format!("http://{}/api/v1", s.addr)).collect());
        let base = bases[0].clone();
        let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
        let mut tokens = Vec::new();
        for (name, role) in [("clerk", "clerk"), ("approver", "approver")] {
            let (_, b) = post(&client, format!("{base}/operators"), &admin, Some(json!({"name": name, "roles": [role]}))).await;
            tokens.push(b["token"].as_str().unwrap().to_string());
        }
        let (clerk, approver) = (Arc::new(tokens[0].clone()), Arc::new(tokens[1].clone()));
        let (_, sub) = post(&client, format!("{base}/subscribers"), &clerk, Some(json!({"kind": "person", "name": "Bench Person",
            "email": "bench@example.org", "identifiers": [{"type": "national-id", "number": "1", "issuer": "X", "valid_until": "2099-01-01"}]}))).await;
        let sub = sub["id"].as_str().unwrap().to_string();

        let csrs: Vec<String> = (0..requests).map(|_| csr_pem()).collect();
        let csrs = Arc::new(csrs);
        let next = Arc::new(AtomicUsize::new(0));
        let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(requests)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, bases, clerk, sub, csrs, next, ids) = (client.clone(), bases.clone(), clerk.clone(), sub.clone(), csrs.clone(), next.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= csrs.len() {
                        break;
                    }
                    let body = json!({"subscriber_id": sub, "profile": "person-signing", "csr": csrs[i]});
                    let base = &bases[i % bases.len()];
                    let (status, b) = post(&client, format!("{base}/requests"), &clerk, Some(body)).await;
                    assert_eq!(status, 201, "{b}");
                    ids.lock().unwrap().push(b["id"].as_str().unwrap().to_string());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let submit_rate = requests as f64 / start.elapsed().as_secs_f64();
        println!("[{engine}] submit (CSR checks + pending request + audit) over HTTP, {clients} clients: {submit_rate:.0} requests/s");

        let ids = Arc::new(std::mem::take(&mut *ids.lock().unwrap()));
        let next = Arc::new(AtomicUsize::new(0));
        let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(requests)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, bases, approver, ids, next, latencies) = (client.clone(), bases.clone(), approver.clone(), ids.clone(), next.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ids.len() {
                        break;
                    }
                    let t = Instant::now();
                    let base = &bases[i % bases.len()];
                    let (status, b) = post(&client, format!("{base}/requests/{}/approve", ids[i]), &approver, None).await;
                    assert_eq!((status, b["status"].as_str()), (200, Some("issued")), "{b}");
                    latencies.lock().unwrap().push(t.elapsed());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "[{engine}] approve -> issued over HTTP, {clients} clients, {requests} requests: {:.0} certificates/s (p50 {:.1} ms, p99 {:.1} ms)",
            requests as f64 / elapsed.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
        for server in servers {
            server.shutdown().await;
        }
        let _ = Duration::ZERO;
    });
    if let Some(server) = &postgres {
        rt.block_on(pg_admin(
            server,
            &format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"),
        ));
    }
}

async fn pg_admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server}: {e}"));
    sqlx::query(sql).execute(&mut c).await.unwrap();
}
