//! The console over HTTP, as a browser drives it (forms, cookies, redirects): login with password
//! and TOTP, CSRF, lockout, session timeouts and logout, the clerk → approver → revoker →
//! auditor flow in English and Chinese, escaping, and `vouch operator add --password-stdin`.
//! Certificates it issues are checked with `openssl verify` and `openssl ocsp`.

#[path = "console/browser.rs"]
mod browser;
mod common;

use browser::{base32_decode, Browser, Page};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use vouch::clock::{Clock, ManualClock};
use vouch::ra::console::totp;

const PASSWORD: &str = "correct horse battery";

async fn app_with_clock() -> (TestApp, ManualClock) {
    // Behind the real time, so that what it issues is already valid for openssl.
    let clock = ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(10));
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .await;
    (app, clock)
}

/// An operator with a console password, made over the API (`password` in the create call).
async fn operator(app: &TestApp, name: &str, roles: &[&str]) {
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/operators",
            json!({"name": name, "roles": roles, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn login(app: &TestApp, name: &str, password: &str, code: &str) -> (Browser, Page) {
    let mut b = Browser::new(&app.url(""));
    let page = b
        .submit(
            "/login",
            "/login",
            &[("name", name), ("password", password), ("totp", code)],
        )
        .await;
    (b, page)
}

fn code_at(secret: &[u8], unix: i64) -> String {
    format!("{:06}", totp::hotp(secret, totp::step_at(unix) as u64, 6))
}

/// Log in an operator who needs TOTP for the first time: enrol (the QR code and the secret are
/// shown), confirm with a code; returns the browser, logged in, and the secret.
async fn enrol(app: &TestApp, clock: &ManualClock, name: &str) -> (Browser, Vec<u8>) {
    let (mut b, page) = login(app, name, PASSWORD, "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/enrol"));
    // Until enrolled, nothing else opens.
    assert_eq!(b.get("/subscribers").await.location(), Some("/enrol"));
    let enrol = b.get("/enrol").await;
    assert_eq!(enrol.status, StatusCode::OK);
    assert!(enrol.body.contains("<svg"), "a QR code");
    let secret = base32_decode(&enrol.text_of("totp-secret").expect("the secret as text"));
    assert_eq!(secret.len(), 20);
    let now = clock.now().unix_timestamp();
    let wrong = b
        .post("/enrol", &[("totp", "000000"), ("csrf", &enrol.csrf())])
        .await;
    if code_at(&secret, now) != "000000" {
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        assert!(
            !wrong.body.contains("totp-secret"),
            "the secret is not shown again"
        );
    }
    let forged = b.post("/enrol", &[("totp", &code_at(&secret, now))]).await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "POST /enrol needs the CSRF token"
    );
    let ok = b
        .post(
            "/enrol",
            &[("totp", &code_at(&secret, now)), ("csrf", &enrol.csrf())],
        )
        .await;
    assert_eq!(ok.location(), Some("/"), "{}", ok.body);
    (b, secret)
}

#[tokio::test]
async fn get_root_sends_browsers_to_login_and_keeps_the_json_for_other_clients() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.url(""));
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login"));
    let login = b.get("/login").await;
    for field in [
        "name=\"name\"",
        "name=\"password\"",
        "name=\"totp\"",
        "name=\"csrf\"",
    ] {
        assert!(login.body.contains(field), "{field}");
    }
    let cookie = login
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("vouch_login_csrf="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let json = reqwest::Client::new()
        .get(app.url("/"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let about: serde_json::Value = json.json().await.unwrap();
    assert_eq!(about["api"], "/api/v1");
    // The API's bearer tokens work as before.
    let (status, _) = app.get(&app.admin, "/api/v1/operators").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.url(""));
    let page = b.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let h = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("x-frame-options"), "DENY");
    let csp = h("content-security-policy");
    for directive in [
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    // Served over plain HTTP with an http public URL: the cookie cannot be Secure.
    assert!(page.set_cookies().iter().all(|c| !c.contains("Secure")));
    app.stop().await;
}

/// `vouch serve --tls-cert/--tls-key` without an https `--public-url`: the console's cookies are
/// Secure all the same (read with curl over TLS).
#[test]
fn cookies_are_secure_when_the_server_serves_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_tls(dir.path());
    let served = serve_process(
        &dir.path().join("d"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--max-time", "20"])
        .arg("--cacert")
        .arg(&cert)
        .arg(format!("https://{}/login", served.addr))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let cookie = headers
        .lines()
        .find(|l| l.starts_with("set-cookie: vouch_login_csrf="))
        .unwrap_or_else(|| panic!("a login cookie in {headers}"));
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(cookie.contains("httponly") && cookie.contains("samesite=strict"));
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    operator(&app, "clerk1", &["clerk"]).await;
    // The login form without its token, and with a token that is not the cookie's.
    let mut b = Browser::new(&app.url(""));
    let page = b
        .post("/login", &[("name", "clerk1"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    b.get("/login").await;
    let page = b
        .post(
            "/login",
            &[
                ("name", "clerk1"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Logged in: a form without the session's token changes nothing.
    let (mut b, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.location(), Some("/"), "{}", page.body);
    let form = [
        ("kind", "person"),
        ("name", "No Token"),
        ("doc_type", "passport"),
        ("number", "E1"),
        ("issuer", "MPS"),
        ("valid_until", "2099-01-01"),
    ];
    assert_eq!(
        b.post("/subscribers", &form).await.status,
        StatusCode::FORBIDDEN
    );
    let mut forged = form.to_vec();
    forged.push(("csrf", "x"));
    assert_eq!(
        b.post("/subscribers", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(b.post("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    let listed = b.get("/subscribers?q=No+Token").await;
    assert!(!listed.body.contains("No Token</a>"));
    // With the token it works.
    let ok = b.submit("/subscribers", "/subscribers", &form).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_registers_and_submits_a_second_operator_with_totp_approves_a_revoker_revokes() {
    let (app, clock) = app_with_clock().await;
    for (name, roles) in [
        ("clerk1", &["clerk"][..]),
        ("approver1", &["approver"][..]),
        ("revoker1", &["revoker"][..]),
        ("auditor1", &["auditor"][..]),
    ] {
        operator(&app, name, roles).await;
    }
    let (mut clerk, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.location(), Some("/"));
    let session = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("vouch_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let home = clerk.get("/").await;
    assert!(home.body.contains("id=\"nav-subscribers\""));
    assert!(
        !home.body.contains("id=\"nav-operators\""),
        "menus follow roles"
    );
    assert!(!home.body.contains("id=\"nav-audit\""));

    // A refused form keeps what was typed.
    let bad = clerk
        .submit(
            "/subscribers",
            "/subscribers",
            &[
                ("kind", "person"),
                ("name", "Wang Fang"),
                ("doc_type", "national-id"),
                ("number", "110101199003070022"),
                ("issuer", "PSB"),
                ("valid_until", "not a date"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("value=\"110101199003070022\""));
    assert!(bad.text_of("error").unwrap().contains("valid_until"));

    let xss = "<script>alert(1)</script>";
    let created = clerk
        .submit(
            "/subscribers",
            "/subscribers",
            &[
                ("kind", "person"),
                ("name", xss),
                ("email", "li.wei@example.org"),
                ("doc_type", "national-id"),
                ("number", "110101199003070011"),
                ("issuer", "PSB"),
                ("valid_until", "2099-12-31"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let subscriber_page = created.location().unwrap().to_string();
    let sub_id = subscriber_page
        .trim_start_matches("/subscribers/")
        .to_string();
    let shown = clerk.get(&subscriber_page).await;
    assert!(!shown.body.contains(xss), "names are escaped");
    assert!(
        shown.body.contains("&lt;script&gt;alert(1)&lt;"),
        "{:?}",
        shown.text_of("subscriber-name")
    );
    let found = clerk.get("/subscribers?q=110101199003070011").await;
    assert!(found.body.contains(&sub_id), "search by document number");

    let key = ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
    let csr = csr_for(&key, openssl::hash::MessageDigest::sha256(), "x");
    let submitted = clerk
        .submit(
            &subscriber_page,
            "/requests",
            &[
                ("subscriber_id", &sub_id),
                ("profile", "person-signing"),
                ("csr", &csr),
            ],
        )
        .await;
    assert_eq!(
        submitted.status,
        StatusCode::SEE_OTHER,
        "{}",
        submitted.body
    );
    let request_page = submitted.location().unwrap().to_string();
    let request_id = request_page.trim_start_matches("/requests/").to_string();
    // The clerk sees why they cannot approve, and cannot.
    let own = clerk.get(&request_page).await;
    assert!(own.text_of("cannot-approve").is_some(), "{}", own.body);
    assert!(!own.body.contains("id=\"approve\""));
    let refused = clerk
        .submit(&request_page, &format!("{request_page}/approve"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The approver enrols TOTP at the first login, logs out, and a wrong code is refused.
    let (mut approver, secret) = enrol(&app, &clock, "approver1").await;
    approver.submit("/", "/logout", &[]).await;
    clock.advance(time::Duration::seconds(30));
    let (_, wrong) = login(&app, "approver1", PASSWORD, "123456").await;
    let now = clock.now().unix_timestamp();
    if code_at(&secret, now) != "123456" {
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.text_of("error").is_some());
    }
    let (_, no_code) = login(&app, "approver1", PASSWORD, "").await;
    assert_eq!(no_code.status, StatusCode::UNAUTHORIZED);
    let (mut approver, ok) = login(&app, "approver1", PASSWORD, &code_at(&secret, now)).await;
    assert_eq!(ok.location(), Some("/"), "{}", ok.body);
    // The same code again is refused (a step is good once).
    let (_, replay) = login(&app, "approver1", PASSWORD, &code_at(&secret, now)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);

    let queue = approver.get("/requests?status=pending").await;
    assert!(queue.body.contains(&request_id));
    assert!(queue.body.contains("ec-p256 256"), "key type and size");
    assert!(
        queue.body.contains("national-id 110101199003070011"),
        "evidence"
    );
    let detail = approver.get(&request_page).await;
    assert!(detail.body.contains("id=\"approve\""));
    let approved = approver
        .submit(&request_page, &format!("{request_page}/approve"), &[])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let issued = approver.get(&request_page).await;
    assert_eq!(issued.text_of("request-status").as_deref(), Some("issued"));
    let serial = issued.text_of("request-serial").unwrap();

    // The certificate downloaded from its page passes openssl verify.
    let files = tempfile::tempdir().unwrap();
    let pem = clerk.get(&format!("/certificates/{serial}/pem")).await;
    assert_eq!(pem.status, StatusCode::OK);
    let leaf = pem
        .body
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    std::fs::write(files.path().join("cert.pem"), leaf).unwrap();
    let (root, issuing) = app.save_ca_certs(files.path()).await;
    let (ok, out) = run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&issuing)
        .arg(files.path().join("cert.pem")));
    assert!(ok && out.contains(": OK"), "{out}");

    // The revoker revokes; the page and OCSP say so.
    let (mut revoker, _) = enrol(&app, &clock, "revoker1").await;
    let cert_page = format!("/certificates/{serial}");
    let before = revoker.get(&cert_page).await;
    assert_eq!(before.text_of("cert-status").as_deref(), Some("valid"));
    let revoked = revoker
        .submit(
            &cert_page,
            &format!("{cert_page}/revoke"),
            &[("reason", "superseded")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let zh = revoker.get(&format!("{cert_page}?lang=zh-CN")).await;
    assert!(
        zh.text_of("cert-status").unwrap().contains("（已被取代）")
            || zh.text_of("cert-status").unwrap().contains("(已被取代)"),
        "the reason in Chinese: {}",
        zh.text_of("cert-status").unwrap()
    );
    revoker.get(&format!("{cert_page}?lang=en")).await;
    let after = revoker.get(&cert_page).await;
    assert!(
        after.text_of("cert-status").unwrap().starts_with("revoked"),
        "{}",
        after.body
    );
    assert!(after.body.contains("superseded"));
    let (ok, out) = run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(&issuing)
        .arg("-cert")
        .arg(files.path().join("cert.pem"))
        .args(["-url", &app.url("/ocsp"), "-CAfile"])
        .arg(&root));
    assert!(ok && out.contains(": revoked"), "{out}");

    // The auditor sees the chain intact, and the console's own entries.
    let (mut auditor, _) = login(&app, "auditor1", PASSWORD, "").await;
    let audit = auditor.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        audit.text_of("chain").is_none() && audit.body.contains("href=\"/audit?verify=1\""),
        "the whole chain is read only when asked for"
    );
    let audit = auditor.get("/audit?verify=1").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        audit.text_of("chain").unwrap().contains("intact"),
        "{}",
        audit.body
    );
    let logins = auditor.get("/audit?action=console.login").await;
    // Each action by its name in the operator's language, with its code beside it.
    assert!(logins
        .body
        .contains("<td>Console login<br><span class=\"mono muted\">console.login</span></td>"));
    assert!(
        !logins.body.contains("certificate.revoked</span>"),
        "the filter applies"
    );
    let in_chinese = auditor.get("/audit?action=console.login&lang=zh-CN").await;
    assert!(
        in_chinese.body.contains("<td>控制台登录<br>"),
        "{}",
        in_chinese.body
    );
    auditor.get("/audit?lang=en").await;
    let totp_entries = auditor.get("/audit?action=operator.totp_enrolled").await;
    assert!(
        totp_entries
            .body
            .matches("operator.totp_enrolled</span>")
            .count()
            >= 2
    );
    assert!(!audit.body.contains(PASSWORD));
    app.stop().await;
}

#[tokio::test]
async fn in_chinese_labels_errors_and_dates_follow_the_language_which_sticks() {
    let app = TestApp::spawn().await;
    operator(&app, "clerk1", &["clerk"]).await;
    let mut b = Browser::new(&app.url(""));
    b.accept_language = "zh-CN,zh;q=0.9,en;q=0.5".into();
    let page = b.get("/login").await;
    assert!(page.body.contains("<html lang=\"zh-CN\">"));
    assert!(page.body.contains("操作员登录"));
    // A wrong password, in Chinese.
    let csrf = page.csrf();
    let wrong = b
        .post(
            "/login",
            &[
                ("name", "clerk1"),
                ("password", "wrong password!"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text_of("error").unwrap().contains("密码"));
    // ?lang=en switches and sticks (cookie) whatever the browser asks for.
    let en = b.get("/login?lang=en").await;
    assert!(en.body.contains("Operator login"));
    assert!(b.cookies.contains_key("vouch_lang"));
    assert!(b.get("/login").await.body.contains("Operator login"));
    b.get("/login?lang=zh-CN").await;
    let page = b
        .submit(
            "/login",
            "/login",
            &[("name", "clerk1"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.location(), Some("/"));
    let subs = b.get("/subscribers").await;
    assert!(subs.body.contains("登记订户"));
    assert!(
        subs.body.contains("(受理员)") && !subs.body.contains("(clerk)"),
        "role names are translated"
    );
    let bad = b
        .submit(
            "/subscribers",
            "/subscribers",
            &[
                ("kind", "person"),
                ("name", "王芳"),
                ("doc_type", "national-id"),
                ("number", "1"),
                ("issuer", "公安局"),
                ("valid_until", "2099-13-45"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body.contains("value=\"王芳\""),
        "the form keeps its input"
    );
    let error = bad.text_of("error").unwrap();
    assert!(
        error
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{error}"
    );
    let ok = b
        .submit(
            "/subscribers",
            "/subscribers",
            &[
                ("kind", "person"),
                ("name", "王芳"),
                ("doc_type", "national-id"),
                ("number", "1"),
                ("issuer", "公安局"),
                ("valid_until", "2099-01-01"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let shown = b.get(ok.location().unwrap()).await;
    assert!(
        shown.body.contains("年") && shown.body.contains("月"),
        "dates in Chinese style"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stolen_cookie_does_not_survive_logout() {
    let app = TestApp::spawn().await;
    operator(&app, "clerk1", &["clerk"]).await;
    let (mut b, _) = login(&app, "clerk1", PASSWORD, "").await;
    let stolen = b.cookies.clone();
    assert_eq!(b.get("/subscribers").await.status, StatusCode::OK);
    let out = b.submit("/", "/logout", &[]).await;
    assert_eq!(out.location(), Some("/login"));
    let mut thief = Browser::new(&app.url(""));
    thief.cookies = stolen;
    let page = thief.get("/subscribers").await;
    assert_eq!(
        page.location(),
        Some("/login"),
        "the session ended server-side"
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_operator_for_a_while_and_are_audited() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "clerk1", &["clerk"]).await;
    for _ in 0..5 {
        let (_, page) = login(&app, "clerk1", "not the password", "").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let (_, locked) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    clock.advance(time::Duration::minutes(6));
    let (_, ok) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(ok.location(), Some("/"), "{}", ok.body);
    let entries = app.audit_entries().await;
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("console.login_failed"), 5);
    assert_eq!(count("operator.locked"), 1);
    assert_eq!(count("console.login"), 1);
    app.stop().await;
}

/// Guesses by anyone lock a name, but cannot keep an operator with TOTP out: the right password
/// with the right code passes the lock (a right password with a wrong code answers like any other
/// failure). A clerk without TOTP waits, or the host lifts the lock.
#[tokio::test]
async fn a_lock_lets_both_factors_through_and_the_host_lifts_it() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "admin2", &["admin"]).await;
    operator(&app, "clerk1", &["clerk"]).await;
    let (_, secret) = enrol(&app, &clock, "admin2").await;
    for _ in 0..5 {
        let (_, page) = login(&app, "admin2", "not the password", "000000").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    clock.advance(time::Duration::seconds(61));
    let now = clock.now().unix_timestamp();
    let wrong = if code_at(&secret, now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (_, page) = login(&app, "admin2", PASSWORD, wrong).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    let (_, page) = login(&app, "admin2", "not the password", &code_at(&secret, now)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let (_, page) = login(&app, "admin2", PASSWORD, &code_at(&secret, now)).await;
    assert_eq!(page.location(), Some("/"), "both factors pass the lock");

    clock.advance(time::Duration::seconds(61));
    for _ in 0..5 {
        let (_, page) = login(&app, "clerk1", "not the password", "").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    clock.advance(time::Duration::seconds(61));
    let (_, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let (_, list) = app.get(&app.admin, "/api/v1/operators").await;
    let id = list["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "clerk1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lifted = vouch::ra::console::sessions::unlock(app.ra.store(), clock.now(), &id)
        .await
        .unwrap();
    assert!(lifted);
    let (_, page) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(page.location(), Some("/"), "{}", page.body);
    let entries = app.audit_entries().await;
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "operator.unlocked")
            .count(),
        1
    );
    app.stop().await;
}

/// Upkeep deletes the rows of sessions that are over and keeps live ones.
#[tokio::test]
async fn sessions_that_are_over_are_pruned() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "clerk1", &["clerk"]).await;
    let (mut ended, _) = login(&app, "clerk1", PASSWORD, "").await;
    ended.submit("/", "/logout", &[]).await;
    clock.advance(time::Duration::minutes(1));
    let (mut live, _) = login(&app, "clerk1", PASSWORD, "").await;
    assert_eq!(
        app.ra.prune_console_sessions().await.unwrap(),
        1,
        "the ended one"
    );
    assert_eq!(live.get("/subscribers").await.status, StatusCode::OK);
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        app.ra.prune_console_sessions().await.unwrap(),
        1,
        "the idle one"
    );
    assert_eq!(live.get("/subscribers").await.location(), Some("/login"));
    app.stop().await;
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "clerk1", &["clerk"]).await;
    let (mut b, _) = login(&app, "clerk1", PASSWORD, "").await;
    clock.advance(time::Duration::minutes(29));
    assert_eq!(b.get("/subscribers").await.status, StatusCode::OK);
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        b.get("/subscribers").await.location(),
        Some("/login"),
        "idle"
    );
    let (mut b, _) = login(&app, "clerk1", PASSWORD, "").await;
    for _ in 0..25 {
        clock.advance(time::Duration::minutes(29));
        if b.get("/subscribers").await.status != StatusCode::OK {
            break;
        }
    }
    let elapsed = b.get("/subscribers").await;
    assert_eq!(elapsed.location(), Some("/login"), "absolute");
    app.stop().await;
}

#[test]
fn operator_add_and_set_password_read_the_password_from_stdin() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let served = serve_process(&data, &[], &[]);
    let vouch = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = vouch(
        &[
            "operator",
            "add",
            "--name",
            "clerk2",
            "--role",
            "clerk",
            "--password-stdin",
        ],
        "first password!\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let weak = vouch(
        &[
            "operator",
            "set-password",
            "--name",
            "clerk2",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("12"));
    let base = format!("http://{}", served.addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let try_login = |password: &'static str| {
        rt.block_on(async {
            let mut b = Browser::new(&base);
            b.submit(
                "/login",
                "/login",
                &[("name", "clerk2"), ("password", password)],
            )
            .await
            .status
        })
    };
    assert_eq!(try_login("first password!"), StatusCode::SEE_OTHER);
    let out = vouch(
        &[
            "operator",
            "set-password",
            "--name",
            "clerk2",
            "--password-stdin",
        ],
        "second password!\r\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(try_login("first password!"), StatusCode::UNAUTHORIZED);
    assert_eq!(try_login("second password!"), StatusCode::SEE_OTHER);
    // Locked by guesses; the host lifts the lock without touching the password.
    for _ in 0..5 {
        assert_eq!(try_login("a wrong guess!!"), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(try_login("second password!"), StatusCode::TOO_MANY_REQUESTS);
    let out = vouch(&["operator", "unlock", "--name", "clerk2"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("console lock lifted"),
        "{said}"
    );
    assert_eq!(try_login("second password!"), StatusCode::SEE_OTHER);
    let out = vouch(&["operator", "unlock", "--name", "nobody"], "");
    assert!(!out.status.success(), "an unknown name is an error");
    // A second admin, made on the host: it approves the request below (made before it, and
    // not by the admin who asks).
    let out = vouch(
        &["operator", "add", "--name", "admin2", "--role", "admin"],
        "",
    );
    assert!(out.status.success());
    let admin2 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    // Over the API, as an admin (no data directory given: --url decides): another operator's
    // password waits for a second admin.
    let token = served.stdout.lines().last().unwrap().trim().to_string();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "operator",
            "set-password",
            "--name",
            "CLERK2",
            "--password-stdin",
            "--reason",
            "forgotten",
        ])
        .args(["--url", &base, "--token-file"])
        .arg(&token_file)
        .env_remove("VOUCH_DATA_DIR")
        .env_remove("VOUCH_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"third password!!\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("awaits a second admin"), "{said}");
    let reset = said
        .split("reset ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(try_login("third password!!"), StatusCode::UNAUTHORIZED);
    assert_eq!(try_login("second password!"), StatusCode::SEE_OTHER);
    // A second admin, made on the host before the request, approves it.
    let approved = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/operator-resets/{reset}/approve"))
            .bearer_auth(&admin2)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(approved, StatusCode::OK);
    assert_eq!(try_login("second password!"), StatusCode::UNAUTHORIZED);
    assert_eq!(try_login("third password!!"), StatusCode::SEE_OTHER);
    // The key that seals TOTP secrets is the data directory's, 0600.
    let mode = std::fs::metadata(data.join("console.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(served);
}

#[tokio::test]
async fn the_request_list_is_paged() {
    let app = TestApp::spawn().await;
    operator(&app, "clerk1", &["clerk"]).await;
    let clerk = app.operator("clerk-api", &["clerk"]).await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let mut ids = Vec::new();
    for _ in 0..53 {
        let (status, r) = app
            .submit(&clerk, &sub, "person-signing", &p256_csr())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    let (mut b, _) = login(&app, "clerk1", PASSWORD, "").await;
    let first = b.get("/requests?status=pending").await;
    let shown = |p: &Page| ids.iter().filter(|id| p.body.contains(id.as_str())).count();
    assert_eq!(shown(&first), 50, "{}", first.body);
    let next = first.body.split("id=\"next-page\" href=\"").nth(1).unwrap();
    let next = next[..next.find('"').unwrap()].replace("&amp;", "&");
    let second = b.get(&next).await;
    assert_eq!(shown(&second), 3);
    // Together the two pages show every request once.
    for id in &ids {
        assert!(
            first.body.contains(id.as_str()) != second.body.contains(id.as_str()),
            "{id}"
        );
    }
    assert!(!second.body.contains("id=\"next-page\""));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_disable_and_reset_operators_and_revokers_hold_and_release() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "admin2", &["admin"]).await;
    operator(&app, "revoker1", &["revoker"]).await;
    // An admin made on the host, outside the line of admins the first one created: it can
    // approve what admin2 asks for (tests/operator_resets.rs has the four-eyes rules).
    let approver = vouch::ra::operators::create(
        app.ra.store(),
        app.ra.now(),
        None,
        "admin3".into(),
        vec![vouch::ra::Role::Admin],
    )
    .await
    .unwrap()
    .token;
    let (mut admin, _) = enrol(&app, &clock, "admin2").await;
    let page = admin.get("/operators").await;
    assert!(page.body.contains("id=\"nav-operators\""));
    // Two roles from two checkboxes; the API token is shown once.
    let added = admin
        .submit(
            "/operators",
            "/operators",
            &[
                ("name", "mixed1"),
                ("password", PASSWORD),
                ("role", "clerk"),
                ("role", "auditor"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(added.text_of("notice").unwrap().contains("mixed1"));
    assert!(added.body.contains("vouch_"), "the token, once");
    assert!(added.body.contains("<td>clerk, auditor</td>"));
    let weak = admin
        .submit(
            "/operators",
            "/operators",
            &[("name", "weak1"), ("password", "short"), ("role", "clerk")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("value=\"weak1\""));
    let (mut mixed, ok) = login(&app, "mixed1", PASSWORD, "").await;
    assert_eq!(ok.location(), Some("/"));
    assert!(mixed.get("/audit").await.status == StatusCode::OK);
    // Disabling ends the operator's session at once.
    let (status, list) = app.get(&app.admin, "/api/v1/operators").await;
    assert_eq!(status, StatusCode::OK);
    let id_of = |name: &str| {
        list["operators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let disabled = admin
        .submit(
            "/operators",
            &format!("/operators/{}/disable", id_of("mixed1")),
            &[],
        )
        .await;
    assert_eq!(disabled.location(), Some("/operators"), "{}", disabled.body);
    assert_eq!(mixed.get("/audit").await.location(), Some("/login"));
    // A TOTP reset, asked for by one admin and approved by another (tests/operator_resets.rs has
    // the four-eyes rules), makes the revoker enrol again.
    let (_, secret) = enrol(&app, &clock, "revoker1").await;
    let reset = admin
        .submit(
            "/operators",
            &format!("/operators/{}/reset-totp", id_of("revoker1")),
            &[("reason", "new phone")],
        )
        .await;
    assert_eq!(reset.location(), Some("/operators#resets"));
    let (_, pending) = app.get(&app.admin, "/api/v1/operator-resets").await;
    let rid = pending["resets"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post_empty(&approver, &format!("/api/v1/operator-resets/{rid}/approve"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = {
        let mut c = app.ra.store().read().await.unwrap();
        vouch::store::console::login_by_id(&mut c, &id_of("revoker1"))
            .await
            .unwrap()
            .unwrap()
    };
    assert!(
        row.totp_sealed.is_none() && row.totp_enrolled_at.is_none(),
        "the sealed secret is cleared, not only the enrolment"
    );
    clock.advance(time::Duration::seconds(60));
    let now = clock.now().unix_timestamp();
    let (_, old) = login(&app, "revoker1", PASSWORD, &code_at(&secret, now)).await;
    assert_eq!(old.location(), Some("/enrol"), "the old secret is gone");
    let (mut revoker, _) = enrol(&app, &clock, "revoker1").await;

    // Hold and release on the certificate page.
    let (clerk, approver) = app.clerk_and_approver().await;
    let serial = app.issue(&clerk, &approver, &p256_csr()).await;
    let page = format!("/certificates/{serial}");
    // An admin who is not a revoker sees the certificate but no form the RA would refuse.
    let by_admin = admin.get(&page).await;
    assert_eq!(by_admin.status, StatusCode::OK);
    for action in ["revoke", "hold", "release"] {
        let form = format!("action=\"{page}/{action}\"");
        assert!(!by_admin.body.contains(&form), "{action} shown to an admin");
    }
    assert!(revoker
        .get(&page)
        .await
        .body
        .contains(&format!("action=\"{page}/revoke\"")));
    let held = revoker.submit(&page, &format!("{page}/hold"), &[]).await;
    assert_eq!(held.status, StatusCode::SEE_OTHER, "{}", held.body);
    let shown = revoker.get(&page).await;
    assert!(shown.text_of("cert-status").unwrap().starts_with("on hold"));
    assert!(shown.body.contains("id=\"release\""));
    revoker.submit(&page, &format!("{page}/release"), &[]).await;
    let shown = revoker.get(&page).await;
    assert_eq!(shown.text_of("cert-status").as_deref(), Some("valid"));
    assert!(
        shown.body.matches("<td>valid</td>").count() >= 1,
        "the history shows the release"
    );
    app.stop().await;
}

const DUAL_REVOCATION: &str = r#"
name = "person-signing-guarded"
subscriber_kind = "person"
validity_days = 365
key_types = ["ec-p256"]
request_expiry_hours = 24
key_usage = ["digitalSignature", "nonRepudiation"]
subject = ["common_name"]
revocation_approval = true
"#;

#[tokio::test]
async fn a_second_revoker_approves_a_pending_revocation_on_the_certificate_page() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(10));
    let app = TestApp::spawn_with(Options {
        clock: Arc::new(clock.clone()),
        extra_profiles: vec![("guarded.toml".into(), DUAL_REVOCATION.into())],
        ..Default::default()
    })
    .await;
    operator(&app, "revoker1", &["revoker"]).await;
    operator(&app, "revoker2", &["revoker"]).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let sub = app.person(&clerk, "Li Wei", "2099-12-31").await;
    let (_, req) = app
        .submit(&clerk, &sub, "person-signing-guarded", &p256_csr())
        .await;
    let (_, done) = app
        .post_empty(
            &approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    let serial = done["serial"].as_str().unwrap().to_string();
    let page = format!("/certificates/{serial}");
    let (mut first, _) = enrol(&app, &clock, "revoker1").await;
    let asked = first
        .submit(
            &page,
            &format!("{page}/revoke"),
            &[("reason", "superseded")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let shown = first.get(&page).await;
    assert_eq!(shown.text_of("cert-status").as_deref(), Some("valid"));
    assert!(shown.body.contains("id=\"pending-revocation\""));
    assert!(
        !shown.body.contains("id=\"approve-revocation\""),
        "not by the same revoker"
    );
    clock.advance(time::Duration::seconds(30));
    let (mut second, _) = enrol(&app, &clock, "revoker2").await;
    let shown = second.get(&page).await;
    let action = shown
        .body
        .split("action=\"/revocations/")
        .nth(1)
        .map(|r| format!("/revocations/{}", &r[..r.find('"').unwrap()]))
        .unwrap();
    assert!(action.ends_with("/approve"), "{action}");
    let approved = second.submit(&page, &action, &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let shown = second.get(&page).await;
    assert!(shown.text_of("cert-status").unwrap().starts_with("revoked"));
    assert!(!shown.body.contains("id=\"pending-revocation\""));
    app.stop().await;
}

/// A datetime-local value (UTC) `days` after the server's clock.
fn form_time(clock: &ManualClock, days: i64) -> String {
    let t = clock.now() + time::Duration::days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa_operators_grant_and_approve_roles_and_a_revoker_revokes_the_attribute_certificate() {
    let (app, clock) = app_with_clock().await;
    for (name, roles) in [
        ("aa-one", &["aa"][..]),
        ("aa-two", &["aa"][..]),
        ("revoker1", &["revoker"][..]),
    ] {
        operator(&app, name, roles).await;
    }
    let (clerk, approver) = app.clerk_and_approver().await;
    let holder = app.issue(&clerk, &approver, &p256_csr()).await;
    let (mut aa1, _) = enrol(&app, &clock, "aa-one").await;
    let home = aa1.get("/").await;
    assert!(home.body.contains("id=\"nav-attribute-certificates\""));
    assert!(home.body.contains("id=\"nav-attribute-grants\""));
    assert!(
        !home.body.contains("id=\"nav-requests\""),
        "menus follow roles"
    );
    let list = aa1.get("/attribute-certificates").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("id=\"grant-form\""));

    let not_after = form_time(&clock, 30);
    let xss = "<script>alert(1)</script>";
    let grant = |targets: &str| {
        vec![
            ("holder_serial", holder.clone()),
            ("profile", "application-role-approved".to_string()),
            ("roles", "approver， signer".to_string()),
            ("groups", "planning-bureau".to_string()),
            ("targets", targets.to_string()),
            ("not_after", not_after.clone()),
        ]
    };
    // A refused grant comes back with the form as typed, the application name escaped.
    let bad = grant(xss);
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = aa1
        .submit("/attribute-certificates", "/attribute-certificates", &bad)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(!refused.body.contains(xss), "escaped");
    assert!(refused
        .body
        .contains("value=\"&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\""));
    assert!(refused.body.contains(&format!("value=\"{holder}\"")));
    assert!(refused.body.contains(&format!("value=\"{not_after}\"")));
    assert!(refused.text_of("error").unwrap().contains("targets"));
    // The same in the list's filter.
    let filtered = aa1
        .get("/attribute-certificates?target=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(filtered.status, StatusCode::BAD_REQUEST);
    assert!(!filtered.body.contains(xss));
    assert!(filtered.text_of("list-error").is_some());

    // Without the CSRF token nothing is granted.
    let good: Vec<(&str, String)> = grant("permits");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let forged = aa1.post("/attribute-certificates", &good).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let aa_api = app.operator("aa-api", &["aa"]).await;
    let (_, none) = app.get(&aa_api, "/api/v1/attribute-grants").await;
    assert_eq!(none["grants"], json!([]), "{none}");

    // The grant waits for a second aa operator; its granter is told why they cannot approve.
    let made = aa1
        .submit("/attribute-certificates", "/attribute-certificates", &good)
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let grant_page = made.location().unwrap().to_string();
    assert!(
        grant_page.starts_with("/attribute-grants/grant_"),
        "{grant_page}"
    );
    let shown = aa1.get(&grant_page).await;
    assert_eq!(shown.text_of("grant-status").as_deref(), Some("pending"));
    assert!(shown
        .text_of("cannot-approve")
        .unwrap()
        .contains("four eyes"));
    assert!(!shown.body.contains("id=\"approve\""));
    let own = aa1
        .submit(&grant_page, &format!("{grant_page}/approve"), &[])
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert!(own.text_of("error").unwrap().contains("four eyes"));
    assert_eq!(own.text_of("grant-status").as_deref(), Some("pending"));

    clock.advance(time::Duration::seconds(30));
    let (mut aa2, _) = enrol(&app, &clock, "aa-two").await;
    let queue = aa2.get("/attribute-grants").await;
    let id = grant_page.trim_start_matches("/attribute-grants/");
    assert!(queue.body.contains(id), "{}", queue.body);
    let approved = aa2
        .submit(&grant_page, &format!("{grant_page}/approve"), &[])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let ac_page = approved.location().unwrap().to_string();
    let serial = ac_page
        .trim_start_matches("/attribute-certificates/")
        .to_string();
    let ac = aa2.get(&ac_page).await;
    assert_eq!(ac.status, StatusCode::OK, "{}", ac.body);
    assert_eq!(ac.text_of("ac-status").as_deref(), Some("valid"));
    assert_eq!(ac.text_of("ac-holder").as_deref(), Some(holder.as_str()));
    assert!(ac.text_of("ac-issuer").unwrap().contains("CN="));
    assert!(ac
        .text_of("ac-roles")
        .unwrap()
        .starts_with("approver, signer"));
    assert!(ac.text_of("ac-targets").unwrap().starts_with("permits"));
    assert!(
        !ac.body.contains("id=\"revoke\""),
        "an aa operator without the revoker role sees no revocation form"
    );
    // The downloads are the AC the API serves.
    let (_, api) = app
        .get(&aa_api, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    let pem = aa2.get(&format!("{ac_page}/pem")).await;
    assert_eq!(pem.body, api["pem"].as_str().unwrap());
    let der = aa2.get(&format!("{ac_page}/der")).await;
    use base64::Engine;
    let api_der = base64::engine::general_purpose::STANDARD
        .decode(api["der"].as_str().unwrap())
        .unwrap();
    assert_eq!(der.body, String::from_utf8_lossy(&api_der));
    assert!(der.headers["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".ac.der\""));
    // The holder's certificate page lists the roles, linking to the AC.
    let cert = aa2.get(&format!("/certificates/{holder}")).await;
    assert!(
        cert.body
            .contains(&format!("href=\"/attribute-certificates/{serial}\"")),
        "{}",
        cert.body
    );
    // The list finds it by holder, role, application and status.
    for q in [
        format!("holder_serial={holder}"),
        "role=signer".into(),
        "target=permits&status=valid".into(),
    ] {
        let found = aa2.get(&format!("/attribute-certificates?{q}")).await;
        assert!(found.body.contains(&serial), "{q}");
    }
    let none = aa2.get("/attribute-certificates?status=revoked").await;
    assert!(!none.body.contains(&serial));

    clock.advance(time::Duration::seconds(30));
    let (mut revoker, _) = enrol(&app, &clock, "revoker1").await;
    let revoked = revoker
        .submit(
            &ac_page,
            &format!("{ac_page}/revoke"),
            &[
                ("reason", "privilegeWithdrawn"),
                ("comment", "left the bureau"),
            ],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let shown = revoker.get(&ac_page).await;
    assert!(shown.text_of("ac-status").unwrap().starts_with("revoked"));
    assert!(!shown.body.contains("id=\"revoke\""));
    let listed = revoker.get("/attribute-certificates?status=revoked").await;
    assert!(listed.body.contains(&serial));
    let (_, api) = app
        .get(&aa_api, &format!("/api/v1/attribute-certificates/{serial}"))
        .await;
    assert_eq!(api["status"], "revoked");
    assert_eq!(api["revocation_reason"], "privilegeWithdrawn");
    // Under a profile without approvals the AC is issued at once and its page opens.
    let mut at_once = good.clone();
    at_once[1].1 = "application-role";
    let issued = aa1
        .submit(
            "/attribute-certificates",
            "/attribute-certificates",
            &at_once,
        )
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.body);
    let at_once_page = issued.location().unwrap().to_string();
    assert!(at_once_page.starts_with("/attribute-certificates/"));
    assert_eq!(
        aa1.get(&at_once_page).await.text_of("ac-status").as_deref(),
        Some("valid")
    );
    // A second aa operator rejects a grant with a reason, which the grant page keeps.
    let waiting = aa1
        .submit("/attribute-certificates", "/attribute-certificates", &good)
        .await;
    let waiting = waiting.location().unwrap().to_string();
    let empty = aa2
        .submit(&waiting, &format!("{waiting}/reject"), &[("reason", " ")])
        .await;
    assert_eq!(
        empty.status,
        StatusCode::BAD_REQUEST,
        "a reason is required"
    );
    assert_eq!(empty.text_of("grant-status").as_deref(), Some("pending"));
    let rejected = aa2
        .submit(
            &waiting,
            &format!("{waiting}/reject"),
            &[("reason", "not in the bureau")],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let shown = aa2.get(&waiting).await;
    assert_eq!(shown.text_of("grant-status").as_deref(), Some("rejected"));
    assert_eq!(
        shown.text_of("grant-reason").as_deref(),
        Some("not in the bureau")
    );
    assert!(!shown.body.contains("id=\"approve\""));
    let entries = app.audit_entries().await;
    for action in [
        "attribute.grant_requested",
        "attribute.grant_approved",
        "attribute.grant_rejected",
        "attribute.issued",
        "attribute.revoked",
    ] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_clerk_sees_no_attribute_menus_and_is_refused_in_their_language() {
    let app = TestApp::spawn().await;
    operator(&app, "clerk-ac", &["clerk"]).await;
    let (mut b, _) = login(&app, "clerk-ac", PASSWORD, "").await;
    let home = b.get("/").await;
    assert!(home.body.contains("id=\"nav-subscribers\""));
    assert!(!home.body.contains("id=\"nav-attribute-certificates\""));
    assert!(!home.body.contains("id=\"nav-attribute-grants\""));
    let refused = b.get("/attribute-certificates").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Your roles do not allow this."));
    assert!(!refused.body.contains("id=\"grant-form\""));
    b.accept_language = "zh-CN".into();
    for path in ["/attribute-grants", "/attribute-certificates/0a1b"] {
        let refused = b.get(path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.body.contains("您的角色无权执行此操作。"), "{path}");
    }
    // A grant posted with a valid token is refused by the RA, and nothing is granted.
    let csrf = b.get("/subscribers").await.csrf();
    let posted = b
        .post(
            "/attribute-certificates",
            &[
                ("holder_serial", "0a1b"),
                ("roles", "approver"),
                ("targets", "permits"),
                ("not_after", "2099-01-01T00:00"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(posted.body.contains("您的角色无权执行此操作。"));
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(
        |e| e["action"] == "access.forbidden" && e["details"]["attempted"] == "attribute.grant"
    ));
    app.stop().await;
}

#[tokio::test]
async fn the_attribute_certificate_list_is_paged_and_in_chinese() {
    let app = TestApp::spawn().await;
    operator(&app, "auditor-ac", &["auditor"]).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let holder = app.issue(&clerk, &approver, &p256_csr()).await;
    let aa = app.operator("aa-api", &["aa"]).await;
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut serials = Vec::new();
    for _ in 0..53 {
        let (status, ac) = app
            .post(
                &aa,
                "/api/v1/attribute-certificates",
                json!({"holder_serial": holder, "roles": ["clerk"], "targets": ["permits"],
                       "not_after": not_after}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ac}");
        serials.push(ac["serial"].as_str().unwrap().to_string());
    }
    // An auditor reads ACs without TOTP enrolment and sees no grant form.
    let (mut b, _) = login(&app, "auditor-ac", PASSWORD, "").await;
    b.accept_language = "zh-CN".into();
    let first = b.get("/attribute-certificates").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body.contains("<h1>属性证书</h1>"));
    assert!(first.body.contains("年"), "dates in the Chinese style");
    assert!(!first.body.contains("id=\"grant-form\""));
    let shown = |p: &Page| {
        serials
            .iter()
            .filter(|s| p.body.contains(&format!("/attribute-certificates/{s}\"")))
            .count()
    };
    assert_eq!(shown(&first), 50);
    let next = first.body.split("id=\"next-page\" href=\"").nth(1).unwrap();
    let next = next[..next.find('"').unwrap()].replace("&amp;", "&");
    let second = b.get(&next).await;
    assert_eq!(shown(&second), 3);
    for s in &serials {
        let link = format!("/attribute-certificates/{s}\"");
        assert!(
            first.body.contains(&link) != second.body.contains(&link),
            "{s} on exactly one page"
        );
    }
    assert!(!second.body.contains("id=\"next-page\""));

    // Each filter, alone and with the others, on a second holder's ACs.
    let other = app.issue(&clerk, &approver, &p256_csr()).await;
    let mut others = Vec::new();
    for (role, target) in [("approver", "permits"), ("clerk", "office-automation")] {
        let (status, ac) = app
            .post(
                &aa,
                "/api/v1/attribute-certificates",
                json!({"holder_serial": other, "roles": [role], "targets": [target],
                       "not_after": not_after}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ac}");
        others.push(ac["serial"].as_str().unwrap().to_string());
    }
    let listed = |p: &Page, s: &str| p.body.contains(&format!("/attribute-certificates/{s}\""));
    for (query, expected) in [
        (format!("holder_serial={other}"), vec![true, true]),
        (
            format!("holder_serial={other}&role=clerk"),
            vec![false, true],
        ),
        (
            format!("holder_serial={other}&target=permits&status=valid"),
            vec![true, false],
        ),
        (
            format!("holder_serial={other}&status=revoked"),
            vec![false, false],
        ),
        ("role=approver".to_string(), vec![true, false]),
        (
            "role=clerk&target=office-automation".to_string(),
            vec![false, true],
        ),
        (
            "target=office-automation&status=valid".to_string(),
            vec![false, true],
        ),
        (
            "target=office-automation&status=expired".to_string(),
            vec![false, false],
        ),
    ] {
        let page = b.get(&format!("/attribute-certificates?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}");
        let got: Vec<bool> = others.iter().map(|s| listed(&page, s)).collect();
        assert_eq!(got, expected, "{query}");
        // None of them matches the first holder's ACs (clerk in permits).
        assert!(!serials.iter().any(|s| listed(&page, s)), "{query}");
    }
    app.stop().await;
}

/// Register `name` with `email` and evidence `number`, and issue a certificate to them; returns
/// the subscriber and the serial.
async fn issued_to(
    app: &TestApp,
    clerk: &str,
    approver: &str,
    name: &str,
    email: &str,
    number: &str,
) -> (String, String) {
    let (status, sub) = app
        .post(
            clerk,
            "/api/v1/subscribers",
            json!({"kind": "person", "name": name, "email": email,
                   "identifiers": [{"type": "passport", "number": number, "issuer": "MPS",
                                     "valid_until": "2099-12-31"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_string();
    let (status, req) = app.submit(clerk, &sub, "person-signing", &p256_csr()).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let (status, done) = app
        .post_empty(
            approver,
            &format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    (sub, done["serial"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_certificate_finder_finds_by_serial_name_and_identifier_and_pages() {
    let (app, clock) = app_with_clock().await;
    operator(&app, "auditor1", &["auditor"]).await;
    let (clerk, approver) = app.clerk_and_approver().await;
    let (_, zhang) = issued_to(
        &app,
        &clerk,
        &approver,
        "Zhang San",
        "zhang.san@example.org",
        "G12345678",
    )
    .await;
    let (_, li) = issued_to(
        &app,
        &clerk,
        &approver,
        "Li Wei",
        "li.wei@example.org",
        "E7654321",
    )
    .await;
    let xss = "<script>alert(1)</script>";
    let (_, scripted) = issued_to(&app, &clerk, &approver, xss, "x@example.org", "X1").await;
    let (mut b, _) = login(&app, "auditor1", PASSWORD, "").await;

    // A serial as people paste it (upper case, colons) goes straight to the certificate; so does
    // the older `?serial=`.
    let colons = zhang
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    for path in [
        format!("/certificates?q={colons}"),
        format!("/certificates?serial={colons}"),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {}", page.body);
        assert_eq!(
            page.location(),
            Some(format!("/certificates/{zhang}").as_str())
        );
    }
    // The first digits of a serial, a name, a word of the e-mail address, a part of the document
    // number: the certificates of that subscriber are listed, and only those.
    for q in [
        &zhang[..10],
        "zhang",
        "ZHANG+san",
        "zhang.san%40example.org",
        "2345678",
    ] {
        let page = b.get(&format!("/certificates?q={q}")).await;
        assert_eq!(page.status, StatusCode::OK, "{q}");
        assert!(
            page.body
                .contains(&format!("href=\"/certificates/{zhang}\"")),
            "{q}: {}",
            page.body
        );
        assert!(!page.body.contains(&li), "{q}");
        assert!(
            page.body.contains("Zhang San"),
            "{q}: the subscriber is named"
        );
    }
    let miss = b.get("/certificates?q=nobody").await;
    assert_eq!(miss.status, StatusCode::OK);
    assert!(
        miss.body.contains("id=\"no-certificates\""),
        "{}",
        miss.body
    );
    assert!(miss.body.contains("No certificate matches."));
    assert!(
        miss.body.contains("value=\"nobody\""),
        "the query stays in the box"
    );

    // Names are escaped in the list.
    let page = b.get("/certificates?q=script").await;
    assert!(page.body.contains(&scripted), "{}", page.body);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(xss));

    // Newest first, in keyset pages: after the newest of three, the other two.
    let mut three = Vec::new();
    for n in 0..3 {
        clock.advance(time::Duration::seconds(1));
        let (_, serial) = issued_to(
            &app,
            &clerk,
            &approver,
            "Paging Person",
            "p@example.org",
            &format!("P{n}"),
        )
        .await;
        three.push(serial);
    }
    let first = b.get("/certificates?q=paging").await;
    let at = |s: &str| {
        first
            .body
            .find(s)
            .unwrap_or_else(|| panic!("{s}: {}", first.body))
    };
    assert!(
        at(&three[2]) < at(&three[1]) && at(&three[1]) < at(&three[0]),
        "newest first"
    );
    let rest = b
        .get(&format!("/certificates?q=paging&before={}", three[2]))
        .await;
    assert_eq!(rest.status, StatusCode::OK);
    assert!(!rest.body.contains(&three[2]));
    assert!(rest.body.contains(&three[1]) && rest.body.contains(&three[0]));

    // A query that is too long is refused with a reason, and kept.
    let long = "x".repeat(129);
    let refused = b.get(&format!("/certificates?q={long}")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("id=\"find-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(&format!("value=\"{long}\"")));

    // In Chinese too.
    b.accept_language = "zh-CN".into();
    let zh = b.get("/certificates?q=nobody").await;
    assert!(zh.body.contains("没有匹配的证书。"), "{}", zh.body);
    app.stop().await;
}
