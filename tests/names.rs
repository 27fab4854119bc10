//! Names and other text a person reads: subscriber names cannot spoof, e-mail addresses fit an
//! rfc822Name, CSR PEM is checked as sent, operator names are unique regardless of case, and
//! refusals say what is actually wrong.

mod common;

use common::*;
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::Path;

async fn register(app: &TestApp, clerk: &str, name: &str, email: &str) -> (StatusCode, Value) {
    app.post(
        clerk,
        "/api/v1/subscribers",
        json!({"kind": "person", "name": name, "email": email,
               "identifiers": [{"type": "national-id", "number": "110101199003070011",
                                 "issuer": "Public Security Bureau", "valid_until": "2099-12-31"}]}),
    )
    .await
}

fn refused(status: StatusCode, body: &Value, expected: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_field", "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(expected), "{msg:?} lacks {expected:?}");
}

/// Issue a certificate for a registered subscriber; returns it.
async fn issue_for(app: &TestApp, clerk: &str, approver: &str, sub: &str) -> X509 {
    let (status, req) = app.submit(clerk, sub, "person-signing", &p256_csr()).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let (status, body) = app
        .post_empty(
            approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let serial = body["serial"].as_str().unwrap();
    let (_, cert) = app
        .get(clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    X509::from_pem(cert["pem"].as_str().unwrap().as_bytes()).unwrap()
}

fn common_names(x: &X509) -> Vec<Vec<u8>> {
    x.subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .map(|e| e.data().as_slice().to_vec())
        .collect()
}

#[tokio::test]
async fn names_that_display_as_something_else_are_refused() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let cases = [
        (
            "Ad\u{200B}min",
            "name: contains U+200B ZERO WIDTH SPACE at position 3",
        ),
        (
            "Admin\u{202E}nimda",
            "name: contains U+202E RIGHT-TO-LEFT OVERRIDE at position 6",
        ),
        (
            "\u{FEFF}Admin",
            "U+FEFF ZERO WIDTH NO-BREAK SPACE (byte order mark) at position 1",
        ),
        ("Ad\u{2028}min", "U+2028 LINE SEPARATOR at position 3"),
        (
            "\u{301}Admin",
            "combining mark U+0301 COMBINING ACUTE ACCENT",
        ),
        (
            "\u{410}dmin",
            "mixes scripts that can be confused: 'А' U+0410 (Cyrillic) at position 1",
        ),
        ("Micros\u{3BF}ft", "U+03BF (Greek) at position 7"),
    ];
    for (name, expected) in cases {
        let (status, body) = register(&app, &clerk, name, "li.wei@example.org").await;
        refused(status, &body, expected);
    }
    let (status, body) = app
        .post(
            &clerk,
            "/api/v1/subscribers",
            json!({"kind": "organisation", "name": "City Hall",
                   "organisation": "City\u{200D}Hall",
                   "identifiers": [{"type": "registration", "number": "91310000X",
                                     "issuer": "Market Regulation", "valid_until": "2099-12-31"}]}),
        )
        .await;
    refused(
        status,
        &body,
        "organisation: contains U+200D ZERO WIDTH JOINER at position 5",
    );
    // Each refusal is audited.
    let audit = app.audit_entries().await;
    let refusals = audit
        .iter()
        .filter(|e| e["action"] == "subscriber.refused")
        .count();
    assert_eq!(refusals, cases.len() + 1);

    // Chinese names, with the middle dot of transliterated names and with a Latin spelling,
    // are registered and certified unchanged.
    for name in ["阿依古丽·买买提", "李伟 Li Wei", "山田 太郎", "김민준"] {
        let (status, body) = register(&app, &clerk, name, "li.wei@example.org").await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let sub = body["id"].as_str().unwrap();
        let x = issue_for(&app, &clerk, &approver, sub).await;
        assert_eq!(common_names(&x), vec![name.as_bytes().to_vec()]);
    }
    app.stop().await;
}

/// A name typed with combining accents is stored in NFC, and the certificate carries exactly the
/// stored text; an independent parser (Python cryptography) reads the same string.
#[tokio::test]
async fn names_are_stored_and_certified_in_nfc() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let typed = "Ange\u{300}le Nguye\u{302}\u{303}n";
    let nfc = "Angèle Nguyễn";
    let (status, body) = register(&app, &clerk, typed, "angele@example.org").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub = body["id"].as_str().unwrap();
    let (_, shown) = app.get(&clerk, &format!("/api/v1/subscribers/{sub}")).await;
    assert_eq!(shown["name"], nfc);
    // Searching with either form finds it.
    for q in [nfc, typed] {
        let (status, found) = app
            .get(
                &clerk,
                &format!(
                    "/api/v1/subscribers?q={}",
                    url_escape(&q.chars().take(6).collect::<String>())
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert!(found.to_string().contains(sub), "{q:?}: {found}");
    }
    let x = issue_for(&app, &clerk, &approver, sub).await;
    assert_eq!(common_names(&x), vec![nfc.as_bytes().to_vec()]);

    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("cert.pem");
    std::fs::write(&pem, x.to_pem().unwrap()).unwrap();
    let script = "import sys\n\
        from cryptography import x509\n\
        from cryptography.x509.oid import NameOID\n\
        c = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())\n\
        v = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value\n\
        sys.stdout.buffer.write(v.encode('utf-8'))\n";
    let out = std::process::Command::new(venv_bin("python3"))
        .arg("-c")
        .arg(script)
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), nfc);
    app.stop().await;
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn email_addresses_fit_an_rfc822_name() {
    let app = TestApp::spawn().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let too_long_local = format!("{}@example.org", "a".repeat(65));
    for (email, expected) in [
        ("li.wei@localhost", "at least two labels"),
        ("li..wei@example.org", "not a valid address"),
        (
            "李伟@example.org",
            "non-ASCII character U+674E at position 1",
        ),
        ("li@[192.0.2.1]", "address literal"),
        ("li@exa_mple.org", "the domain contains '_'"),
        (
            too_long_local.as_str(),
            "the part before @ is 65 characters",
        ),
    ] {
        let (status, body) = register(&app, &clerk, "Li Wei", email).await;
        refused(status, &body, expected);
    }
    let good = "li.wei+signing@mail.example-city.gov.cn";
    let (status, body) = register(&app, &clerk, "Li Wei", good).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let x = issue_for(&app, &clerk, &approver, body["id"].as_str().unwrap()).await;
    let emails: Vec<String> = x
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|n| n.email().map(str::to_string))
        .collect();
    assert_eq!(emails, vec![good.to_string()]);
    app.stop().await;
}

#[tokio::test]
async fn csr_pem_is_checked_as_sent() {
    let app = TestApp::spawn().await;
    let (clerk, _) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let pem = p256_csr();
    let second = p256_csr();
    for (csr, expected) in [
        (format!("{pem}junk\n"), "bytes of text after the -----END"),
        (format!("{pem}{second}"), "more than one PEM block"),
    ] {
        let (status, body) = app.submit(&clerk, &sub, "person-signing", &csr).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_csr")),
            "{body}"
        );
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains(expected), "{msg}");
    }
    let mut der = openssl::x509::X509Req::from_pem(pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    der.extend_from_slice(b"\x05\x00");
    let padded = vouch::x509::pem_encode("CERTIFICATE REQUEST", &der);
    let (status, body) = app.submit(&clerk, &sub, "person-signing", &padded).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("2 trailing bytes after the CSR's DER"));
    // The request as sent is what is accepted.
    let (status, body) = app.submit(&clerk, &sub, "person-signing", &pem).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn refusals_name_the_real_problem() {
    let app = TestApp::spawn().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    // A 65-digit serial is too long, not "not hex".
    let (status, body) = app
        .get(
            &revoker,
            &format!("/api/v1/certificates/{}", "a".repeat(65)),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_serial"))
    );
    assert_eq!(body["message"], "serial has 65 hex digits; at most 64");
    let (_, body) = app.get(&revoker, "/api/v1/certificates/12xz").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("serial contains 'x' at position 3"),
        "{body}"
    );
    // A NUL in a comment is a control character, not "too long".
    let (status, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{}/revoke", "1a".repeat(16)),
            json!({"reason": "superseded", "comment": "moved\u{0}away"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "comment: contains the control character U+0000 at position 6; only line breaks \
         (U+000A) are allowed"
    );
    let (_, body) = app
        .post(
            &revoker,
            &format!("/api/v1/certificates/{}/revoke", "1a".repeat(16)),
            json!({"reason": "superseded", "comment": "x".repeat(1001)}),
        )
        .await;
    assert_eq!(body["message"], "comment: 1001 characters; at most 1000");
    app.stop().await;
}

#[tokio::test]
async fn operator_names_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
    app.operator("Alice", &["clerk"]).await;
    for name in ["alice", "ALICE", "aLiCe"] {
        let (status, body) = app
            .post(
                &app.admin,
                "/api/v1/operators",
                json!({"name": name, "roles": ["clerk"]}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::CONFLICT, Some("name_taken")),
            "{body}"
        );
        assert_eq!(
            body["message"],
            format!(
                "an operator named \"Alice\" exists; operator names are unique regardless of \
                 case, so \"{name}\" is taken"
            )
        );
    }
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/operators",
            json!({"name": "Alice", "roles": ["clerk"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "an operator named \"Alice\" exists");
    app.stop().await;
}

/// Operators, as (id, name, created_at), inserted before migration 0008.
const EXISTING: [(&str, &str, i64); 5] = [
    ("op_b", "Alice", 1),
    ("op_a", "alice", 2),
    ("op_c", "ALICE", 2),
    ("op_d", "bob", 3),
    ("op_e", "carol", 1),
];

/// The names migration 0008 leaves: the first-created keeps its name, the others get a suffix.
const AFTER: [(&str, &str); 5] = [
    ("op_a", "alice.dup-op_a"),
    ("op_b", "Alice"),
    ("op_c", "ALICE.dup-op_c"),
    ("op_d", "bob"),
    ("op_e", "carol"),
];

async fn migrator_before_0008(dir: &str) -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate::Migrator::new(Path::new(dir)).await.unwrap();
    let older: Vec<_> = m
        .migrations
        .iter()
        .filter(|x| x.version < 8)
        .cloned()
        .collect();
    assert!(older.len() >= 6);
    m.migrations = older.into();
    m
}

const INSERT: &str = "INSERT INTO operators (id, name, roles, token_hash, created_at) VALUES ($1, $2, 'clerk', $3, $4)";

async fn check_after_0008(db: vouch::store::Database) {
    vouch::store::migrate(&db).await.unwrap();
    let store = vouch::store::Store::connect(&db).await.unwrap();
    // The unique index now refuses a case variant, and the RA says so.
    let err = vouch::ra::operators::create(
        &store,
        time::OffsetDateTime::now_utc(),
        None,
        "BOB".into(),
        vec![vouch::ra::Role::Clerk],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), "name_taken");
    let listed = vouch::ra::operators::create(
        &store,
        time::OffsetDateTime::now_utc(),
        None,
        "dave".into(),
        vec![vouch::ra::Role::Clerk],
    )
    .await;
    assert!(listed.is_ok());
}

#[tokio::test]
async fn migration_0008_renames_existing_case_duplicates_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vouch.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    migrator_before_0008("migrations/sqlite")
        .await
        .run(&mut c)
        .await
        .unwrap();
    for (id, name, at) in EXISTING {
        sqlx::query(INSERT)
            .bind(id)
            .bind(name)
            .bind(id.as_bytes())
            .bind(at)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();
    check_after_0008(vouch::store::Database::Sqlite(path.clone())).await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM operators WHERE length(id) = 4 ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let expected: Vec<(String, String)> = AFTER
        .iter()
        .map(|(i, n)| (i.to_string(), n.to_string()))
        .collect();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn migration_0008_renames_existing_case_duplicates_on_postgres() {
    // The suite's server, or the local one (as tests/postgres.rs does).
    let server = postgres_server().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let db = PgDatabase::create(&server).await;
    let mut c = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    migrator_before_0008("migrations/postgres")
        .await
        .run(&mut c)
        .await
        .unwrap();
    for (id, name, at) in EXISTING {
        sqlx::query(INSERT)
            .bind(id)
            .bind(name)
            .bind(id.as_bytes())
            .bind(at)
            .execute(&mut c)
            .await
            .unwrap();
    }
    check_after_0008(vouch::store::Database::Postgres(db.url())).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM operators WHERE length(id) = 4 ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
    c.close().await.unwrap();
    let expected: Vec<(String, String)> = AFTER
        .iter()
        .map(|(i, n)| (i.to_string(), n.to_string()))
        .collect();
    assert_eq!(rows, expected);
    db.drop_database().await;
}
