//! The console with 100,000 certificates: fills a fresh store, logs a console session in (password
//! and TOTP, as a browser does) and times every console page over HTTP, sequentially, one request
//! at a time: median and p99 of N requests per page.
//!
//! The store is filled through the store layer, with the rows and audit entries the issuance path
//! writes for each certificate: a subscriber with identity evidence (one per two certificates), a
//! request inserted pending and approved (approval row, intent, `pending -> approved -> issued`),
//! the certificate (really signed by the embedded CA, one fresh P-256 key each), and the audit
//! entries `subscriber.registered`, `request.submitted`, `request.approved`, `issuance.intent`,
//! `certificate.issued`, chained by the writer. The rows are spread over the two years before
//! now; every 40th certificate is revoked, every 100th subscriber has a rejected request, and the
//! newest 1,000 subscribers each have a pending one (the approvers' queue).
//!
//! cargo bench --bench console                          # SQLite, 100,000 certificates, N=100
//! VOUCH_BENCH_CERTS=20000 VOUCH_BENCH_N=50 cargo bench --bench console
//! VOUCH_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 cargo bench --bench console
//! VOUCH_BENCH_PG_OPTIONS=sslmode=disable ...           # without TLS to the database

#[path = "../tests/console/browser.rs"]
#[allow(dead_code)]
mod browser;

use browser::{base32_decode, Browser};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vouch::audit::{self, Action, Event};
use vouch::ca::local::{CaOptions, LocalCa};
use vouch::ca::IssueOrder;
use vouch::clock::{SharedClock, SystemClock};
use vouch::datadir::DataDir;
use vouch::ra::console::totp;
use vouch::ra::requests::Template;
use vouch::state::{CertificateStatus, RequestState};
use vouch::store::certificates::CertificateRow;
use vouch::store::job;
use vouch::store::requests::{IntentRow, NewRequest};
use vouch::store::subscribers::{EvidenceRow, SubscriberRow};
use vouch::x509::profile::{ExtendedKeyUsage, KeyUsage};
use vouch::x509::serial::Serial;
use vouch::x509::subject::{DnAttr, SubjectSpec};

const PASSWORD: &str = "bench console passphrase";
const GIVEN: [&str; 40] = [
    "Alice", "Bruno", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Karin", "Lucas", "Maria", "Nils", "Olga", "Pierre", "Quinn", "Rosa", "Sven", "Tara", "Ugo",
    "Vera", "Walter", "Xenia", "Yusuf", "Zoe", "Anton", "Berit", "Carlos", "Dora", "Emil", "Fiona",
    "Georg", "Hanna", "Ivan", "Julia", "Klaus", "Lena", "Marco", "Nora",
];
const FAMILY: [&str; 40] = [
    "Schmidt", "Dubois", "Rossi", "Garcia", "Novak", "Kowalski", "Jensen", "Silva", "Meyer",
    "Moreau", "Bianchi", "Lopez", "Horvat", "Nowak", "Larsen", "Santos", "Fischer", "Laurent",
    "Romano", "Martin", "Weber", "Bernard", "Greco", "Perez", "Varga", "Wojcik", "Nielsen",
    "Costa", "Wagner", "Petit", "Ricci", "Torres", "Toth", "Lewis", "Berg", "Pereira", "Becker",
    "Roux", "Conti", "Ruiz",
];
const XING: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const MING: [&str; 20] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn p256() -> PKey<openssl::pkey::Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn csr(cn: &str) -> (String, Vec<u8>) {
    let key = p256();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let req = b.build();
    (
        String::from_utf8(req.to_pem().unwrap()).unwrap(),
        req.to_der().unwrap(),
    )
}

/// Subscriber `i`'s name, e-mail address and evidence number.
fn person(i: usize) -> (String, String, String) {
    let number = format!("{:018}", 110_101_199_000_000_000u64 + i as u64);
    if i % 10 < 3 {
        let name = format!("{}{}", XING[i % 10], MING[(i / 10) % 20]);
        (name, format!("user{i}@example.cn"), number)
    } else {
        let (g, f) = (GIVEN[i % 40], FAMILY[(i / 40) % 40]);
        let email = format!("{}.{}{i}@example.org", g.to_lowercase(), f.to_lowercase());
        (format!("{g} {f}"), email, number)
    }
}

/// One certificate to store, signed, with its subscriber when it is the subscriber's first.
struct Item {
    index: usize,
    subscriber: Option<(SubscriberRow, EvidenceRow)>,
    subscriber_id: String,
    request_id: String,
    template_json: String,
    spki_der: Vec<u8>,
    cert: CertificateRow,
    pending: Option<(String, i64)>,
    rejected: Option<String>,
}

struct Ids {
    clerk: String,
    approver: String,
    ca_id: String,
    csr_der: Vec<u8>,
    start: i64,
    step: i64,
    now: i64,
}

fn make_item(ca: &LocalCa, ids: &Ids, i: usize, total: usize) -> Item {
    let s = i / 2;
    let (name, email, number) = person(s);
    let subscriber_id = format!("sub_{:032x}", s as u128 * 7919 + 1);
    let at = ids.start + i as i64 * ids.step;
    let subscriber = i.is_multiple_of(2).then(|| {
        (
            SubscriberRow {
                id: subscriber_id.clone(),
                kind: "person".into(),
                name: name.clone(),
                email: Some(email.clone()),
                organisation: None,
                created_by: ids.clerk.clone(),
                created_at: at,
            },
            EvidenceRow {
                doc_type: "national-id".into(),
                number,
                issuer: "Beijing PSB".into(),
                valid_until: "2035-01-01".into(),
                document_sha256: None,
                recorded_by: ids.clerk.clone(),
                recorded_at: at,
            },
        )
    });
    let subject = SubjectSpec {
        dn: vec![(DnAttr::CommonName, name)],
        emails: vec![email],
    };
    let template = Template {
        subject: subject.clone(),
        key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::NonRepudiation],
        extended_key_usage: vec![ExtendedKeyUsage::EmailProtection],
        validity_days: 365,
    };
    let key = p256();
    let spki_der = key.public_key_to_der().unwrap();
    let serial = Serial::random();
    let not_before = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
    let not_after = not_before + time::Duration::days(365);
    let order = IssueOrder {
        csr_der: Vec::new(),
        serial: serial.clone(),
        spki_der: spki_der.clone(),
        subject: subject.clone(),
        not_before,
        not_after,
        key_usage: template.key_usage.clone(),
        extended_key_usage: template.extended_key_usage.clone(),
        crl_urls: vec!["http://127.0.0.1:8080/crl/issuing.crl".into()],
        ca_issuers_urls: vec!["http://127.0.0.1:8080/ca/issuing.pem".into()],
        ocsp_urls: vec!["http://127.0.0.1:8080/ocsp".into()],
    };
    let der = ca.sign(&order).unwrap();
    let request_id = format!("req_{:032x}", i as u128 * 104_729 + 3);
    let cert = CertificateRow {
        serial: hex::encode(serial.as_bytes()),
        request_id: request_id.clone(),
        subscriber_id: subscriber_id.clone(),
        ca_id: ids.ca_id.clone(),
        profile: "person-signing".into(),
        subject: subject.display(),
        key_sha256: vouch::x509::key::identity(&spki_der).unwrap(),
        not_before: at,
        not_after: not_after.unix_timestamp(),
        der,
        status: CertificateStatus::Valid,
        issued_at: at,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
    };
    // The newest 1,000 subscribers wait in the approvers' queue; every 100th was refused once.
    let pending = (i.is_multiple_of(2) && i + 2000 >= total).then(|| {
        (
            format!("req_p{:031x}", i),
            ids.now - (total - i) as i64 * 30,
        )
    });
    let rejected = i.is_multiple_of(200).then(|| format!("req_r{:031x}", i));
    Item {
        index: i,
        subscriber,
        subscriber_id,
        request_id,
        template_json: serde_json::to_string(&template).unwrap(),
        spki_der,
        cert,
        pending,
        rejected,
    }
}

async fn store_items(ra: &vouch::ra::Ra, ids: Arc<Ids>, items: Vec<Item>) {
    let items = Arc::new(items);
    ra.store()
        .write(job!(|c, log| {
            use vouch::store::{certificates, requests, subscribers};
            for it in items.iter() {
                let at = it.cert.issued_at;
                let when = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
                if let Some((s, e)) = &it.subscriber {
                    subscribers::insert(c, s).await?;
                    subscribers::insert_evidence(c, &s.id, e).await?;
                    let ev = Event::new(Some(&ids.clerk), Action::SubscriberRegistered, Some(&s.id),
                        json!({"kind": "person", "name": s.name, "identifiers": 1}));
                    audit::record(log, when, ev);
                }
                let mut extra = Vec::new();
                if let Some(id) = &it.rejected {
                    extra.push((id.clone(), at, RequestState::Rejected));
                }
                if let Some((id, created)) = &it.pending {
                    extra.push((id.clone(), *created, RequestState::Pending));
                }
                for (id, created, state) in extra {
                    requests::insert(c, &NewRequest { id: &id, subscriber_id: &it.subscriber_id, profile: "person-signing",
                        csr_der: &ids.csr_der, spki_der: &it.spki_der, key_sha256: &it.cert.key_sha256,
                        template_json: &it.template_json, required_approvals: 1, requested_by: &ids.clerk,
                        created_at: created, expires_at: created.max(ids.now) + 7 * 86_400 }).await?;
                    let t = time::OffsetDateTime::from_unix_timestamp(created).unwrap();
                    audit::record(log, t, Event::new(Some(&ids.clerk), Action::RequestSubmitted, Some(&id),
                        json!({"subscriber": it.subscriber_id, "profile": "person-signing", "subject": it.cert.subject})));
                    if state == RequestState::Rejected {
                        requests::reject(c, &id, &ids.approver, "evidence does not match", created).await?;
                        audit::record(log, t, Event::new(Some(&ids.approver), Action::RequestRejected, Some(&id),
                            json!({"reason": "evidence does not match"})));
                    }
                }
                let rid = &it.request_id;
                requests::insert(c, &NewRequest { id: rid, subscriber_id: &it.subscriber_id, profile: "person-signing",
                    csr_der: &ids.csr_der, spki_der: &it.spki_der, key_sha256: &it.cert.key_sha256,
                    template_json: &it.template_json, required_approvals: 1, requested_by: &ids.clerk,
                    created_at: at, expires_at: at + 7 * 86_400 }).await?;
                audit::record(log, when, Event::new(Some(&ids.clerk), Action::RequestSubmitted, Some(rid),
                    json!({"subscriber": it.subscriber_id, "profile": "person-signing", "subject": it.cert.subject,
                    "key_sha256": it.cert.key_sha256, "key_type": "ec-p256", "key_bits": 256})));
                assert!(requests::add_approval_if_open(c, rid, &ids.approver, at, "2000-01-01").await?);
                audit::record(log, when, Event::new(Some(&ids.approver), Action::RequestApproved, Some(rid), json!({})));
                assert!(requests::transition(c, rid, RequestState::Pending, RequestState::Approved, at).await?);
                requests::insert_intent(c, &IntentRow { serial: it.cert.serial.clone(), request_id: rid.clone(),
                    key_sha256: it.cert.key_sha256.clone(), ca_id: ids.ca_id.clone(), not_before: at,
                    not_after: it.cert.not_after, created_at: at, attempts: 0 }, 0).await?;
                audit::record(log, when, Event::new(Some(&ids.approver), Action::IssuanceIntent, Some(rid),
                    json!({"serial": it.cert.serial})));
                assert!(requests::transition(c, rid, RequestState::Approved, RequestState::Issued, at).await?);
                certificates::insert(c, &it.cert).await?;
                audit::record(log, when, Event::new(None, Action::CertificateIssued, Some(&it.cert.serial),
                    json!({"request": rid, "subscriber": it.subscriber_id, "profile": "person-signing",
                    "subject": it.cert.subject, "ca": ids.ca_id})));
                if it.index % 40 == 39 {
                    let later = at + 86_400;
                    certificates::revoke(c, &it.cert.serial, "superseded", later, None).await?;
                    audit::record(log, time::OffsetDateTime::from_unix_timestamp(later).unwrap(),
                        Event::new(Some(&ids.approver), Action::CertificateRevoked, Some(&it.cert.serial),
                        json!({"reason": "superseded"})));
                }
            }
            Ok(())
        }))
        .await
        .unwrap();
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status} {body}");
    body
}

fn code_now(secret: &[u8]) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    format!("{:06}", totp::hotp(secret, totp::step_at(now) as u64, 6))
}

/// A console session of an operator with every role, through the TOTP enrolment.
async fn console_login(base: &str) -> Browser {
    let mut b = Browser::new(base);
    let page = b
        .submit(
            "/login",
            "/login",
            &[
                ("name", "bench-console"),
                ("password", PASSWORD),
                ("totp", ""),
            ],
        )
        .await;
    assert_eq!(page.location(), Some("/enrol"), "{}", page.body);
    let enrol = b.get("/enrol").await;
    let secret = base32_decode(&enrol.text_of("totp-secret").expect("the secret"));
    let ok = b
        .post(
            "/enrol",
            &[("totp", &code_now(&secret)), ("csrf", &enrol.csrf())],
        )
        .await;
    assert_eq!(ok.location(), Some("/"), "{}", ok.body);
    b
}

fn main() {
    let total = env_usize("VOUCH_BENCH_CERTS", 100_000).max(4000) / 2 * 2;
    let n = env_usize("VOUCH_BENCH_N", 100).max(1);
    let postgres = std::env::var("VOUCH_BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut data = DataDir::new(dir.path().join("data"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg_name = format!("vouch_bench_console_{}", std::process::id());
    if let Some(server) = &postgres {
        rt.block_on(pg_admin(server, &format!("CREATE DATABASE {pg_name}")));
        let options = std::env::var("VOUCH_BENCH_PG_OPTIONS").unwrap_or_default();
        let query = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        data = data.with_database(vouch::store::Database::Postgres(format!(
            "{server}/{pg_name}{query}"
        )));
    }
    let engine = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let admin = rt
        .block_on(vouch::app::init(&data, &CaOptions::default(), &clock))
        .unwrap()
        .unwrap()
        .to_string();
    let ca = Arc::new(LocalCa::load(&data.ca_dir()).unwrap());

    rt.block_on(async {
        let (ra, server) = vouch::app::start(&data, clock.clone(), Default::default(),
            "127.0.0.1:0".parse().unwrap(), None, Default::default()).await.unwrap();
        let api = format!("http://{}/api/v1", server.addr);
        let client = reqwest::Client::new();
        let mut op_ids = Vec::new();
        for (name, roles) in [("bench-clerk", json!(["clerk"])), ("bench-approver", json!(["approver"]))] {
            let b = post(&client, format!("{api}/operators"), &admin, json!({"name": name, "roles": roles})).await;
            op_ids.push(b["id"].as_str().unwrap().to_string());
        }
        post(&client, format!("{api}/operators"), &admin, json!({"name": "bench-console",
            "roles": ["clerk", "approver", "revoker", "admin", "auditor"], "password": PASSWORD})).await;
        let ca_id = ra.ca_for_profile("person-signing").issuing_id().to_string();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let span = 2 * 365 * 86_400;
        let ids = Arc::new(Ids {
            clerk: op_ids[0].clone(),
            approver: op_ids[1].clone(),
            ca_id,
            csr_der: csr("Bench Person").1,
            start: now - span,
            step: span / total as i64,
            now,
        });

        // Sign on two threads, store in batches of 500 certificates (one write job each).
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(8);
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let (ca, ids, tx) = (ca.clone(), ids.clone(), tx.clone());
                std::thread::spawn(move || {
                    for chunk in (0..total).step_by(500).skip(t).step_by(2) {
                        let items = (chunk..(chunk + 500).min(total))
                            .map(|i| make_item(&ca, &ids, i, total))
                            .collect();
                        tx.blocking_send(items).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mid = total / 2;
        let mut serial = String::new();
        while let Some(items) = rx.recv().await {
            if let Some(it) = items.iter().find(|it| it.index == mid) {
                serial = it.cert.serial.clone();
            }
            store_items(&ra, ids.clone(), items).await;
        }
        for p in producers {
            p.join().unwrap();
        }
        println!("[{engine}] filled {total} certificates ({} subscribers) in {:.0} s", total / 2,
            start.elapsed().as_secs_f64());

        let base = format!("http://{}", server.addr);
        let mut b = console_login(&base).await;
        // A subscriber with a Latin name (every tenth of three has a Chinese one).
        let who = mid / 2 + 3;
        let (name, email, number) = person(who);
        let colons: String = serial.as_bytes().chunks(2).map(|p| std::str::from_utf8(p).unwrap().to_uppercase())
            .collect::<Vec<_>>().join(":");
        let sub_id = format!("sub_{:032x}", who as u128 * 7919 + 1);
        let req_id = format!("req_{:032x}", mid as u128 * 104_729 + 3);
        let deep_req = format!("req_{:032x}", (total * 9 / 10) as u128 * 104_729 + 3);
        let day = time::OffsetDateTime::from_unix_timestamp(ids.start + mid as i64 * ids.step).unwrap().date();
        let family = name.split(' ').nth(1).unwrap_or(&name).to_string();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pages: Vec<(String, String)> = vec![
            ("home".into(), "/".into()),
            ("subscribers".into(), "/subscribers".into()),
            ("subscribers, search hit: a family name".into(), format!("/subscribers?q={}", enc(&family))),
            ("subscribers, search hit: e-mail".into(), format!("/subscribers?q={}", enc(&email))),
            ("subscribers, search hit: evidence number".into(), format!("/subscribers?q={number}")),
            ("subscribers, search hit: Chinese name".into(), format!("/subscribers?q={}", enc("王伟"))),
            ("subscribers, search miss".into(), "/subscribers?q=nobody-here".into()),
            ("subscriber page".into(), format!("/subscribers/{sub_id}")),
            ("requests".into(), "/requests".into()),
            ("requests, deep page".into(), format!("/requests?after={deep_req}")),
            ("requests?status=pending (queue)".into(), "/requests?status=pending".into()),
            ("requests?status=issued".into(), "/requests?status=issued".into()),
            ("requests?status=rejected".into(), "/requests?status=rejected".into()),
            ("requests?status=approved (none)".into(), "/requests?status=approved".into()),
            ("requests?status=expired (none)".into(), "/requests?status=expired".into()),
            ("request page".into(), format!("/requests/{req_id}")),
            ("certificate page".into(), format!("/certificates/{serial}")),
            ("certificates?q= serial with colons".into(), format!("/certificates?q={colons}")),
            ("certificates?q= name".into(), format!("/certificates?q={}", enc(&name))),
            ("certificates?q= e-mail".into(), format!("/certificates?q={}", enc(&email))),
            ("certificates?q= evidence number".into(), format!("/certificates?q={number}")),
            ("certificates?q= miss".into(), "/certificates?q=nobody-here".into()),
            ("audit".into(), "/audit".into()),
            ("audit, deep page".into(), "/audit?before=1000".into()),
            ("audit?actor=".into(), format!("/audit?actor={}", ids.approver)),
            ("audit?action=certificate.revoked".into(), "/audit?action=certificate.revoked".into()),
            ("audit?action=, deep page".into(), "/audit?action=certificate.issued&before=5000".into()),
            ("audit?object=".into(), format!("/audit?object={serial}")),
            ("audit, one day a year ago".into(), format!("/audit?from={day}&to={day}")),
            ("operators".into(), "/operators".into()),
        ];
        println!("[{engine}] {total} certificates: console pages over HTTP, {n} sequential requests each");
        println!("| page | status | median ms | p99 ms | bytes |");
        println!("|---|---|---|---|---|");
        for (label, path) in pages {
            for _ in 0..3 {
                b.get(&path).await;
            }
            let mut lat = Vec::with_capacity(n);
            let mut last = None;
            for _ in 0..n {
                let t = Instant::now();
                let p = b.get(&path).await;
                lat.push(t.elapsed());
                last = Some(p);
            }
            let p = last.unwrap();
            assert!(p.status.is_success() || p.status.is_redirection(), "{path}: {} {}", p.status, p.body);
            lat.sort();
            let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
            println!("| {label} | {} | {:.1} | {:.1} | {} |", p.status.as_u16(),
                pct(0.5).as_secs_f64() * 1e3, pct(0.99).as_secs_f64() * 1e3, p.body.len());
        }
        server.shutdown().await;
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
