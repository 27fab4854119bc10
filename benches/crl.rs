//! Cost of building and signing a full CRL with 100,000 and 1,000,000 entries, and whether the
//! server keeps answering meanwhile (the longest /healthz round trip during the build).
//!
//! cargo bench --bench crl
//! VOUCH_BENCH_CRL_SIZES=10000,100000 cargo bench --bench crl

use sqlx::ConnectOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vouch::ca::local::CaOptions;
use vouch::clock::{SharedClock, SystemClock};
use vouch::datadir::DataDir;

async fn fill(db: &std::path::Path, n: u64) {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO certificates (serial, request_id, subscriber_id, ca_id, profile, subject, key_sha256, not_before, \
             not_after, der, status, issued_at, revoked_at, revocation_reason) \
         SELECT printf('1%031x', i), 'req_' || i, 'sub', 'issuing', 'person-signing', 'CN=x', 'k' || i, $2, $2 + 86400, \
             x'00', 'revoked', $2, $2, CASE i % 3 WHEN 0 THEN 'keyCompromise' WHEN 1 THEN 'superseded' ELSE 'unspecified' END \
         FROM n",
    )
    .bind(n as i64)
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
}

fn main() {
    let sizes: Vec<u64> = std::env::var("VOUCH_BENCH_CRL_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for n in sizes {
            let dir = tempfile::tempdir().unwrap();
            let data = DataDir::new(dir.path().join("data"));
            let clock: SharedClock = Arc::new(SystemClock);
            vouch::app::init(&data, &CaOptions::default(), &clock).await.unwrap();
            let t = Instant::now();
            fill(&data.database(), n).await;
            let fill_time = t.elapsed();
            let (ra, server) = vouch::app::start(&data, clock, Default::default(), "127.0.0.1:0".parse().unwrap(), None, Default::default()).await.unwrap();
            let url = format!("http://{}/healthz", server.addr);
            let done = Arc::new(AtomicBool::new(false));
            let probe = {
                let done = done.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut worst = Duration::ZERO;
                    while !done.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        client.get(&url).send().await.unwrap();
                        worst = worst.max(t.elapsed());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    worst
                })
            };
            let t = Instant::now();
            let der = ra.crl("issuing").await.unwrap();
            let build = t.elapsed();
            done.store(true, Ordering::Relaxed);
            let worst = probe.await.unwrap();
            let t = Instant::now();
            let cached = ra.crl("issuing").await.unwrap();
            let again = t.elapsed();
            assert_eq!(der, cached);
            // One status change (a revoked certificate released, as another process would do it:
            // row stamped, counter moved), then the next CRLs: the full list is the last one plus
            // the change, not a new read of every row.
            {
                use sqlx::ConnectOptions;
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(data.database())
                    .connect()
                    .await
                    .unwrap();
                sqlx::query("UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL, \
                     status_version = (SELECT version + 1 FROM status_counter), status_changed_at = 0 \
                     WHERE serial = printf('1%031x', 7)")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                sqlx::query("UPDATE status_counter SET version = version + 1")
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            ra.observe_status_changes().await.unwrap();
            let t = Instant::now();
            let after = ra.crl("issuing").await.unwrap();
            let rebuild = t.elapsed();
            assert_ne!(after, der);
            let delta = ra.delta_crl("issuing").await.unwrap();
            println!(
                "CRL with {n} entries after one status change: {:.2} s to build and sign the full and delta CRLs (delta {} bytes)",
                rebuild.as_secs_f64(),
                delta.len()
            );
            println!(
                "CRL with {n} entries: {:.2} s to build and sign ({:.1} MB DER; {:.1} s to insert the rows); \
                 cached: {:.3} ms; slowest /healthz meanwhile: {:.1} ms",
                build.as_secs_f64(),
                der.len() as f64 / 1e6,
                fill_time.as_secs_f64(),
                again.as_secs_f64() * 1e3,
                worst.as_secs_f64() * 1e3
            );
            server.shutdown().await;
        }
    });
}
