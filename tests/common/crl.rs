//! What the CRL tests share: an HTTP server for one CRL file (what `crl_url` points at), and a
//! CRL made by `openssl ca -gencrl` with a test CA's key.

use super::run;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// An HTTP server for one CRL file: 404 until `set`, then the bytes set.
pub struct CrlServer {
    pub url: String,
    body: Arc<Mutex<Option<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CrlServer {
    pub async fn start() -> CrlServer {
        let body: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let served = body.clone();
        let app = axum::Router::new().route(
            "/city.crl",
            axum::routing::get(move || {
                let served = served.clone();
                async move {
                    match served.lock().unwrap().clone() {
                        Some(b) => (axum::http::StatusCode::OK, b),
                        None => (axum::http::StatusCode::NOT_FOUND, b"no CRL yet".to_vec()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/city.crl", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CrlServer { url, body, task }
    }

    pub fn set(&self, body: Option<Vec<u8>>) {
        *self.body.lock().unwrap() = body;
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CRL (PEM) of the CA `cert` / `key` by `openssl ca -gencrl`, listing each (certificate PEM,
/// reason); the reason `certificateHold` is written as openssl ca asks for it (`-crl_hold`), and
/// `compromise:YYYYMMDDHHMMSSZ` is keyCompromise with that invalidityDate (`-crl_compromise`).
pub fn openssl_crl(cert: &Path, key: &Path, revoked: &[(&str, &str)]) -> Vec<u8> {
    openssl_crl_with(cert, key, revoked, "")
}

/// [`openssl_crl`] with the CRL extensions `crl_ext` (lines of an `openssl ca` config section,
/// more sections may follow them).
pub fn openssl_crl_with(
    cert: &Path,
    key: &Path,
    revoked: &[(&str, &str)],
    crl_ext: &str,
) -> Vec<u8> {
    openssl_crl_dated(cert, key, revoked, crl_ext, None)
}

/// [`openssl_crl_with`] whose thisUpdate is `this_update` (default: now).
pub fn openssl_crl_dated(
    cert: &Path,
    key: &Path,
    revoked: &[(&str, &str)],
    crl_ext: &str,
    this_update: Option<time::OffsetDateTime>,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    let cnf = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = {db}\ncrlnumber = {num}\ncertificate = {cert}\n\
         private_key = {key}\ndefault_md = sha256\ndefault_crl_days = 7\n{ext}",
        db = d.join("index.txt").display(),
        num = d.join("crlnumber").display(),
        cert = cert.display(),
        key = key.display(),
        ext = match crl_ext {
            "" => String::new(),
            ext => format!("crl_extensions = crl_ext\n[crl_ext]\n{ext}\n"),
        },
    );
    std::fs::write(d.join("ca.cnf"), cnf).unwrap();
    let openssl = |args: &[&str]| {
        let (ok, out) = run(Command::new("openssl").current_dir(d).args(args));
        assert!(ok, "openssl {args:?}: {out}");
    };
    for (i, (pem, reason)) in revoked.iter().enumerate() {
        let file = format!("r{i}.pem");
        std::fs::write(d.join(&file), pem).unwrap();
        let how: &[&str] = match *reason {
            "certificateHold" => &["-crl_hold", "holdInstructionReject"],
            // keyCompromise with an invalidityDate (GeneralizedTime).
            r if r.starts_with("compromise:") => &["-crl_compromise", &r[11..]],
            _ => &["-crl_reason", reason],
        };
        let mut args = vec!["ca", "-config", "ca.cnf", "-revoke", &file];
        args.extend_from_slice(how);
        openssl(&args);
    }
    let mut args = vec!["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"];
    let last = this_update.map(|t| {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    });
    if let Some(last) = &last {
        args.extend(["-crl_lastupdate", last.as_str()]);
    }
    openssl(&args);
    std::fs::read(d.join("crl.pem")).unwrap()
}
