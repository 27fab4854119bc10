//! A fake CFSSL for the tests that need a CA to misbehave: `/info` gives the test CA's
//! certificate, `/authsign` answers success with a certificate the CA signed for another key than
//! the one in the request, `/revoke` records what it is asked to revoke. Listens on
//! 127.0.0.1:0; stopped when dropped.

use super::cfssl::TestCaFiles;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct FakeCfssl {
    pub url: String,
    signed: Arc<AtomicUsize>,
    revoked: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

/// CFSSL's `/info`: the CA certificate `ca_pem`.
pub fn info(ca_pem: String) -> axum::routing::MethodRouter {
    axum::routing::post(move || {
        let pem = ca_pem.clone();
        async move {
            axum::Json(json!({"success": true, "result": {"certificate": pem},
                "errors": [], "messages": []}))
        }
    })
}

impl FakeCfssl {
    pub async fn start(ca: &TestCaFiles) -> FakeCfssl {
        let ca_pem = std::fs::read_to_string(&ca.cert).unwrap();
        let ca_cert = X509::from_pem(ca_pem.as_bytes()).unwrap();
        let ca_key = PKey::private_key_from_pem(&std::fs::read(&ca.key).unwrap()).unwrap();
        // A certificate for a key nobody asked to certify.
        let other = super::ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(0x7eadbeef).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Li Wei").unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_issuer_name(ca_cert.subject_name()).unwrap();
        b.set_pubkey(&other).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let wrong = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
        let signed = Arc::new(AtomicUsize::new(0));
        let counter = signed.clone();
        let revoked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let revocations = revoked.clone();
        let app = axum::Router::new()
            .route("/api/v1/cfssl/info", info(ca_pem))
            .route(
                "/api/v1/cfssl/authsign",
                axum::routing::post(move || {
                    let (pem, counter) = (wrong.clone(), counter.clone());
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        axum::Json(json!({"success": true, "result": {"certificate": pem},
                            "errors": [], "messages": []}))
                    }
                }),
            )
            .route(
                "/api/v1/cfssl/revoke",
                axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                    let revocations = revocations.clone();
                    async move {
                        revocations.lock().unwrap().push(body);
                        axum::Json(json!({"success": true, "result": {}, "errors": [],
                            "messages": []}))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCfssl {
            url,
            signed,
            revoked,
            task,
        }
    }

    /// The bodies of the revocations it was asked for.
    pub fn revoked(&self) -> Vec<serde_json::Value> {
        self.revoked.lock().unwrap().clone()
    }

    /// How many certificates it was asked to sign.
    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }
}

impl Drop for FakeCfssl {
    fn drop(&mut self) {
        self.task.abort();
    }
}
