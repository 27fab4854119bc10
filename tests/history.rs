//! The status history (migration 0012): every hold, release, revocation and escalation to
//! keyCompromise of a certificate or an attribute certificate, made through the API, is recorded
//! with its time, so that the status at any past time can be read back with
//! `store::history::status_at`; refused changes record nothing; and the migration's backfill
//! records the certificates revoked or held before it. Runs on SQLite, and on PostgreSQL when the
//! suite does.

mod common;

use common::{p256_csr, Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use vouch::clock::{Clock, ManualClock};
use vouch::state::CertificateStatus::{self, OnHold, Revoked, Valid};
use vouch::store::history::{self, HistoryKind, HistoryRow};

/// An app on a clock that moves only when told to, starting on a whole second.
async fn app_on_manual_clock() -> (TestApp, ManualClock) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let clock = ManualClock::new(now);
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    (app, clock)
}

/// Move the clock on a minute; returns the new time (Unix seconds).
fn tick(clock: &ManualClock) -> i64 {
    clock.advance(Duration::minutes(1));
    clock.now().unix_timestamp()
}

async fn status_at(app: &TestApp, kind: HistoryKind, serial: &str, at: i64) -> Option<HistoryRow> {
    let mut c = app.ra.store().read().await.unwrap();
    history::status_at(&mut c, kind, serial, at).await.unwrap()
}

/// (status, reason, invalidity date) of a row, for comparisons.
type Summary = (CertificateStatus, Option<String>, Option<i64>);

fn summary(row: &HistoryRow) -> Summary {
    (row.status, row.reason.clone(), row.invalidity_date)
}

fn s(status: CertificateStatus, reason: Option<&str>, invalidity: Option<i64>) -> Summary {
    (status, reason.map(str::to_string), invalidity)
}

async fn summary_at(app: &TestApp, kind: HistoryKind, serial: &str, at: i64) -> Option<Summary> {
    status_at(app, kind, serial, at).await.as_ref().map(summary)
}

/// Every change of `serial`, oldest first, as (at, summary).
async fn changes(app: &TestApp, kind: HistoryKind, serial: &str) -> Vec<(i64, Summary)> {
    let mut c = app.ra.store().read().await.unwrap();
    history::history(&mut c, kind, serial)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.at, summary(r)))
        .collect()
}

/// POST `/api/v1/certificates/{serial}/{what}` and expect `want` (OK, or CONFLICT for a refused
/// change).
async fn act(app: &TestApp, token: &str, serial: &str, what: &str, body: Value, want: StatusCode) {
    let path = format!("/api/v1/certificates/{serial}/{what}");
    let (status, out) = app.post(token, &path, body).await;
    assert_eq!(status, want, "{what}: {out}");
}

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::CONFLICT;

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn a_certificate_s_status_at_each_time_follows_its_hold_release_revocation_and_escalation() {
    use HistoryKind::Certificate as C;
    let (app, clock) = app_on_manual_clock().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let issued = clock.now().unix_timestamp();
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    assert!(changes(&app, C, &serial).await.is_empty());

    let held = tick(&clock);
    act(&app, &revoker, &serial, "hold", json!({}), OK).await;
    let released = tick(&clock);
    act(&app, &revoker, &serial, "release", json!({}), OK).await;
    // Refused changes record nothing.
    act(&app, &revoker, &serial, "release", json!({}), REFUSED).await;
    let revoked = tick(&clock);
    let superseded = json!({"reason": "superseded"});
    act(&app, &revoker, &serial, "revoke", superseded.clone(), OK).await;
    tick(&clock);
    act(&app, &revoker, &serial, "revoke", superseded, REFUSED).await;
    act(&app, &revoker, &serial, "hold", json!({}), REFUSED).await;
    // The key was compromised since just after issuance: the reason changes, the revocation
    // time stays, and the change is dated now.
    let escalated = tick(&clock);
    let compromised = issued + 30;
    let body = json!({"reason": "keyCompromise", "invalidity_date": rfc3339(compromised)});
    act(&app, &revoker, &serial, "revoke", body, OK).await;

    let hold = s(OnHold, Some("certificateHold"), None);
    let valid = s(Valid, None, None);
    let superseded = s(Revoked, Some("superseded"), None);
    let key_compromise = s(Revoked, Some("keyCompromise"), Some(compromised));
    assert_eq!(summary_at(&app, C, &serial, issued).await, None);
    assert_eq!(summary_at(&app, C, &serial, held - 1).await, None);
    for (at, want) in [
        (held, &hold),
        (released - 1, &hold),
        (released, &valid),
        (revoked - 1, &valid),
        (revoked, &superseded),
        (escalated - 1, &superseded),
        (escalated, &key_compromise),
        (escalated + 86_400, &key_compromise),
    ] {
        assert_eq!(
            summary_at(&app, C, &serial, at).await.as_ref(),
            Some(want),
            "at {at}"
        );
    }
    assert_eq!(
        changes(&app, C, &serial).await,
        vec![
            (held, hold.clone()),
            (released, valid.clone()),
            (revoked, superseded),
            (escalated, key_compromise),
        ]
    );
    // The certificate row itself keeps the first revocation time and forgot the hold.
    let (_, shown) = app
        .get(&clerk, &format!("/api/v1/certificates/{serial}"))
        .await;
    assert_eq!(shown["revocation_reason"], "keyCompromise", "{shown}");
    assert_eq!(shown["revoked_at"], rfc3339(revoked).as_str(), "{shown}");
    // Another kind's history of the same serial is another certificate's.
    assert_eq!(
        summary_at(&app, HistoryKind::Attribute, &serial, escalated).await,
        None
    );

    // Held and released within one second: the later change is the status at that second.
    let other = app.issue(&clerk, &approver, &p256_csr()).await;
    let now = tick(&clock);
    act(&app, &revoker, &other, "hold", json!({}), OK).await;
    act(&app, &revoker, &other, "release", json!({}), OK).await;
    assert_eq!(summary_at(&app, C, &other, now).await, Some(valid.clone()));
    assert_eq!(
        changes(&app, C, &other).await,
        vec![(now, hold), (now, valid)]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_attribute_certificate_s_history_follows_its_holder_and_its_own_revocation() {
    use HistoryKind::{Attribute as A, Certificate as C};
    let (app, clock) = app_on_manual_clock().await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let aa = app.operator("aa1", &["aa"]).await;
    let revoker = app.operator("revoker1", &["revoker"]).await;
    let holder = app.issue(&clerk, &approver, &p256_csr()).await;
    let not_after = (clock.now() + Duration::days(30)).format(&Rfc3339).unwrap();
    let grant = || {
        let (app, aa, body) = (
            &app,
            aa.clone(),
            json!({"holder_serial": holder, "roles": ["approver"], "groups": ["planning-bureau"],
                   "targets": ["permits"], "not_after": not_after}),
        );
        async move {
            let (status, body) = app.post(&aa, "/api/v1/attribute-certificates", body).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["serial"].as_str().unwrap().to_string()
        }
    };
    let (ac, own) = (grant().await, grant().await);
    let granted = clock.now().unix_timestamp();

    // Both held and released with the holder.
    let held = tick(&clock);
    act(&app, &revoker, &holder, "hold", json!({}), OK).await;
    let released = tick(&clock);
    act(&app, &revoker, &holder, "release", json!({}), OK).await;
    // One AC revoked on its own.
    let withdrawn = tick(&clock);
    let (status, out) = app
        .post(
            &revoker,
            &format!("/api/v1/attribute-certificates/{own}/revoke"),
            json!({"reason": "privilegeWithdrawn"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // The holder revoked: the other AC with it (the one already revoked does not change)...
    let revoked = tick(&clock);
    let body = json!({"reason": "superseded"});
    act(&app, &revoker, &holder, "revoke", body, OK).await;
    // ...then its key compromised: both ACs take keyCompromise.
    let escalated = tick(&clock);
    let compromised = granted - 60;
    let body = json!({"reason": "keyCompromise", "invalidity_date": rfc3339(compromised)});
    act(&app, &revoker, &holder, "revoke", body, OK).await;

    let hold = s(OnHold, Some("certificateHold"), None);
    let valid = s(Valid, None, None);
    let key_compromise = s(Revoked, Some("keyCompromise"), Some(compromised));
    assert_eq!(
        changes(&app, A, &ac).await,
        vec![
            (held, hold.clone()),
            (released, valid.clone()),
            (revoked, s(Revoked, Some("superseded"), None)),
            (escalated, key_compromise.clone()),
        ]
    );
    assert_eq!(
        changes(&app, A, &own).await,
        vec![
            (held, hold.clone()),
            (released, valid.clone()),
            (withdrawn, s(Revoked, Some("privilegeWithdrawn"), None)),
            (escalated, key_compromise.clone()),
        ]
    );
    assert_eq!(summary_at(&app, A, &ac, granted).await, None);
    assert_eq!(summary_at(&app, A, &ac, held).await, Some(hold.clone()));
    assert_eq!(summary_at(&app, A, &ac, released - 1).await, Some(hold));
    assert_eq!(
        summary_at(&app, A, &ac, released).await,
        Some(valid.clone())
    );
    assert_eq!(
        summary_at(&app, A, &ac, escalated - 1).await.unwrap().0,
        Revoked
    );
    assert_eq!(
        summary_at(&app, A, &ac, escalated).await,
        Some(key_compromise.clone())
    );
    assert_eq!(
        summary_at(&app, A, &own, revoked).await,
        Some(s(Revoked, Some("privilegeWithdrawn"), None))
    );
    // The holder's own history, beside its ACs'.
    let holder_changes: Vec<_> = changes(&app, C, &holder)
        .await
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    assert_eq!(holder_changes, vec![held, released, revoked, escalated]);
    app.stop().await;
}

/// The migrations before 0012, copied for `engine`, to build a database as it was before it.
fn migrations_before_history(engine: &str, into: &std::path::Path) {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    std::fs::create_dir_all(into).unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0012" {
            std::fs::copy(&path, into.join(&name)).unwrap();
            copied += 1;
        }
    }
    assert_eq!(copied, 11);
}

#[tokio::test]
async fn the_migration_records_the_certificates_revoked_or_held_before_it() {
    use sqlx::Connection;
    let tmp = tempfile::tempdir().unwrap();
    let pg = match common::postgres_server() {
        Some(server) => Some(common::PgDatabase::create(&server).await),
        None => None,
    };
    let (db, url, engine) = match &pg {
        Some(pg) => (
            vouch::store::Database::Postgres(pg.url()),
            pg.url(),
            "postgres",
        ),
        None => {
            let path = tmp.path().join("vouch.db");
            let url = format!("sqlite://{}?mode=rwc", path.display());
            (vouch::store::Database::Sqlite(path), url, "sqlite")
        }
    };
    let dir = tmp.path().join("migrations");
    migrations_before_history(engine, &dir);
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    // Rows as an older version left them, without the requests and operators they refer to.
    let off = if pg.is_some() {
        "SET session_replication_role = replica"
    } else {
        "PRAGMA foreign_keys = OFF"
    };
    sqlx::query(off).execute(&mut conn).await.unwrap();
    for (serial, status, at, reason, invalidity) in [
        ("0A", "valid", None, None, None),
        ("0B", "on-hold", Some(100i64), Some("certificateHold"), None),
        (
            "0C",
            "revoked",
            Some(200),
            Some("keyCompromise"),
            Some(50i64),
        ),
    ] {
        sqlx::query(
            "INSERT INTO certificates (serial, request_id, subscriber_id, ca_id, profile, subject, \
             key_sha256, not_before, not_after, der, status, issued_at, revoked_at, revocation_reason, \
             invalidity_date) VALUES ($1, $1, 's', 'issuing', 'p', 'CN=x', 'k', 0, 1000, $2, $3, 10, $4, $5, $6)",
        )
        .bind(serial)
        .bind(vec![0u8])
        .bind(status)
        .bind(at)
        .bind(reason)
        .bind(invalidity)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for (serial, status, at, reason) in [
        ("0d", "valid", None, None),
        ("0e", "revoked", Some(300i64), Some("privilegeWithdrawn")),
        ("0f", "on-hold", Some(100), Some("certificateHold")),
    ] {
        sqlx::query(
            "INSERT INTO attribute_certificates (serial, holder_serial, profile, roles_json, groups_json, \
             targets_json, not_before, not_after, revocable, der, status, held_with_holder, granted_by, \
             issued_at, revoked_at, revocation_reason) \
             VALUES ($1, '0B', 'p', '[]', '[]', '[]', 0, 1000, 1, $2, $3, 0, 'op', 20, $4, $5)",
        )
        .bind(serial)
        .bind(vec![0u8])
        .bind(status)
        .bind(at)
        .bind(reason)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let store = vouch::store::Store::connect(&db).await.unwrap();
    let mut c = store.read().await.unwrap();
    let mut found = Vec::new();
    for (kind, serial) in [
        (HistoryKind::Certificate, "0A"),
        (HistoryKind::Certificate, "0B"),
        (HistoryKind::Certificate, "0C"),
        (HistoryKind::Attribute, "0d"),
        (HistoryKind::Attribute, "0e"),
        (HistoryKind::Attribute, "0f"),
    ] {
        for row in history::history(&mut c, kind, serial).await.unwrap() {
            found.push((kind.as_str(), row.serial.clone(), row.at, summary(&row)));
        }
    }
    let row = |kind: &'static str, serial: &str, at, sum| (kind, serial.to_string(), at, sum);
    assert_eq!(
        found,
        vec![
            row(
                "certificate",
                "0B",
                100,
                s(OnHold, Some("certificateHold"), None)
            ),
            row(
                "certificate",
                "0C",
                200,
                s(Revoked, Some("keyCompromise"), Some(50))
            ),
            row(
                "attribute",
                "0e",
                300,
                s(Revoked, Some("privilegeWithdrawn"), None)
            ),
            row(
                "attribute",
                "0f",
                100,
                s(OnHold, Some("certificateHold"), None)
            ),
        ]
    );
    drop(c);
    store.close().await;
    if let Some(pg) = pg {
        pg.drop_database().await;
    }
}
