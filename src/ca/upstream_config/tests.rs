//! Unit tests of `upstream.toml` parsing.
use super::*;

fn known() -> BTreeSet<String> {
    ["person-signing", "person-auth"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn parse_str(text: &str) -> Result<Vec<CaEntry>> {
    parse(
        text,
        Path::new("/data/upstream.toml"),
        Path::new("/data"),
        &known(),
    )
}

fn error(text: &str) -> String {
    parse_str(text).unwrap_err().to_string()
}

const GOOD: &str = r#"
    [[ca]]
    id = "city-cfssl"
    kind = "cfssl"
    url = "http://127.0.0.1:8888/"
    auth_key = "0123abcd"
    cfssl_profile = "default"
    profiles = ["person-signing"]
"#;

#[test]
fn a_good_entry_is_read_and_its_key_decoded() {
    let entries = parse_str(GOOD).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, "city-cfssl");
    let CaKind::Cfssl(s) = &entries[0].kind else {
        panic!("a CFSSL entry")
    };
    assert_eq!(s.url.as_str(), "http://127.0.0.1:8888/");
    assert_eq!(&s.auth_key[..], &[0x01, 0x23, 0xab, 0xcd]);
    assert_eq!(s.cfssl_profile.as_deref(), Some("default"));
    assert!(
        !format!("{s:?}").contains("0123abcd"),
        "the key is not in Debug output"
    );
    assert!(parse_str("").unwrap().is_empty());
}

#[test]
fn errors_name_the_file_the_entry_and_the_key() {
    let e = error(&GOOD.replace("cfssl_profile", "cfssl_profle"));
    assert!(
        e.contains("/data/upstream.toml: [[ca]] #1 (id \"city-cfssl\")"),
        "{e}"
    );
    assert!(e.contains("cfssl_profle"), "{e}");
    let e = error(&GOOD.replace("0123abcd", "0123abcz"));
    assert!(e.contains("`auth_key`") && e.contains("not hex"), "{e}");
    assert!(!e.contains("0123abc"), "the key is not echoed: {e}");
    let e = error(&GOOD.replace("0123abcd", "0123abc"));
    assert!(e.contains("even number"), "{e}");
    let e = error(&GOOD.replace(
        "auth_key = \"0123abcd\"",
        "auth_key = \"0123abcd\"\nauth_key_file = \"k.hex\"",
    ));
    assert!(e.contains("not both"), "{e}");
    let e = error(&GOOD.replace("person-signing", "nobody"));
    assert!(e.contains("`profiles`") && e.contains("\"nobody\""), "{e}");
    let e = error(&format!(
        "{GOOD}{}",
        GOOD.replace("person-signing", "person-auth")
    ));
    assert!(
        e.contains("[[ca]] #2") && e.contains("used by an earlier entry"),
        "{e}"
    );
    let e = error(&format!("{GOOD}{}", GOOD.replace("city-cfssl", "other")));
    assert!(
        e.contains("\"person-signing\" is claimed by the CA \"city-cfssl\""),
        "{e}"
    );
    let e = error(&GOOD.replace("\"cfssl\"", "\"cmp\""));
    assert!(e.contains("`auth_key` is not a key"), "{e}");
    let e = error(&GOOD.replace("\"cfssl\"", "\"acme\""));
    assert!(e.contains("`kind`"), "{e}");
    let e = error(&GOOD.replace("http://127.0.0.1:8888/", "ftp://x"));
    assert!(e.contains("`url`"), "{e}");
    let e = error(&GOOD.replace("city-cfssl", "issuing"));
    assert!(e.contains("embedded CA"), "{e}");
    let e = error(&format!("stray = 1\n{GOOD}"));
    assert!(e.contains("unknown key `stray`"), "{e}");
}

#[test]
fn a_key_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.hex"), "00ff\n").unwrap();
    let text = GOOD.replace("auth_key = \"0123abcd\"", "auth_key_file = \"k.hex\"");
    let file = dir.path().join("upstream.toml");
    std::fs::set_permissions(
        dir.path().join("k.hex"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let e = parse(&text, &file, dir.path(), &known())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`auth_key_file`") && e.contains("chmod 600"),
        "{e}"
    );
    std::fs::set_permissions(
        dir.path().join("k.hex"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let entries = parse(&text, &file, dir.path(), &known()).unwrap();
    let CaKind::Cfssl(s) = &entries[0].kind else {
        panic!("a CFSSL entry")
    };
    assert_eq!(&s.auth_key[..], &[0x00, 0xff]);
}

#[test]
fn certdb_url_is_checked_and_kept_without_its_password_in_debug() {
    let with = |line: &str| GOOD.replace("cfssl_profile", &format!("{line}\n cfssl_profile"));
    let entries = parse_str(&with(r#"certdb_url = "sqlite:cfssl/certdb.db""#)).unwrap();
    let CaKind::Cfssl(s) = &entries[0].kind else {
        panic!("a CFSSL entry")
    };
    let shown = format!("{s:?}");
    assert!(shown.contains("sqlite:/data/cfssl/certdb.db"), "{shown}");
    let pg = r#"certdb_url = "postgres://reader:s3cret@db.example.org/cfssl""#;
    let in_query = r#"certdb_url = "postgres://reader@db.example.org/cfssl?password=s3cret""#;
    let entries = parse_str(&with(pg)).unwrap();
    let shown = format!("{:?}", entries[0].kind);
    assert!(
        shown.contains("db.example.org") && !shown.contains("s3cret"),
        "{shown}"
    );
    // A password (in the user information or as a parameter) in a file others can read is
    // refused.
    for line in [pg, in_query] {
        let text = with(line).replace("auth_key = \"0123abcd\"", "auth_key_file = \"k\"");
        let file = Path::new("/data/upstream.toml");
        let e = parse_file(&text, file, false, Path::new("/data"), &known())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`certdb_url` holds a password"), "{line}: {e}");
    }
    // A parameter sqlx does not know would be logged with its value: refused, unshown.
    let e = error(&with(
        r#"certdb_url = "postgres://reader@db/cfssl?passwd=s3cret""#,
    ));
    assert!(e.contains("`passwd`") && !e.contains("s3cret"), "{e}");
    let socket = r#"certdb_url = "postgres://reader@%2Fvar%2Frun%2Fpostgresql/cfssl?sslmode=disable&options[search_path]=cfssl""#;
    let entries = parse_str(&with(socket)).unwrap();
    let shown = format!("{:?}", entries[0].kind);
    assert!(shown.contains("socket in /var/run/postgresql"), "{shown}");
    let e = error(&with(r#"certdb_url = "mysql://root@db/cfssl""#));
    assert!(
        e.contains("`certdb_url`") && e.contains("sqlite:PATH"),
        "{e}"
    );
    let cmp = r#"
        [[ca]]
        id = "city-cmp"
        kind = "cmp"
        url = "http://127.0.0.1:8829/pkix/"
        certdb_url = "sqlite:/x.db"
        profiles = ["person-signing"]
    "#;
    let e = error(cmp);
    assert!(
        e.contains("`certdb_url` is not a key of a kind = \"cmp\" entry"),
        "{e}"
    );
}
