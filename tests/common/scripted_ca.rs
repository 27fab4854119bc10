//! A CFSSL stand-in whose faults a test scripts: it signs what `/authsign` asks (the CSR's key,
//! the subject and e-mail addresses of the request, the serial the request carries, keyUsage
//! digitalSignature + nonRepudiation and extendedKeyUsage emailProtection, as CFSSL's person
//! profile does), keeps a certificate database that refuses a second certificate with a serial
//! it holds (as CFSSL's does, with a store error, code 11000), and can be down, slow or refusing for
//! `/authsign` and `/revoke`. Listens on 127.0.0.1:0; stopped when dropped.

use super::cfssl::TestCaFiles;
use axum::http::StatusCode;
use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509Req, X509};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the CA behaves for the next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Signs and revokes.
    Up,
    /// Answers 503 without signing or revoking.
    Down,
    /// Waits this long, then answers 503 without signing or revoking.
    Slow(Duration),
    /// Answers no (HTTP 400, as CFSSL refuses a request it will never grant).
    Refuse,
    /// Waits this long, then signs.
    SlowSign(Duration),
}

#[derive(Default)]
struct State {
    /// serial (decimal) -> (PEM, revoked reason).
    certdb: BTreeMap<String, (String, Option<String>)>,
    sign_calls: usize,
    revoke_calls: usize,
    /// Serials of its own choosing (as a CA that ignores the requested one), not the request's.
    own_serials: bool,
}

pub struct ScriptedCa {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, axum::Json<Value>) {
    (status, axum::Json(body))
}

fn failure(status: StatusCode, code: i64, message: &str) -> (StatusCode, axum::Json<Value>) {
    answer(
        status,
        json!({"success": false, "result": null, "errors": [{"code": code, "message": message}], "messages": []}),
    )
}

/// Wait or refuse as `mode` says; None: go on.
async fn fault(mode: Mode) -> Option<(StatusCode, axum::Json<Value>)> {
    match mode {
        Mode::Up => None,
        Mode::Down => Some(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            0,
            "down for the test",
        )),
        Mode::Refuse => Some(failure(
            StatusCode::BAD_REQUEST,
            1000,
            "refused for the test",
        )),
        Mode::SlowSign(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            Some(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                0,
                "slow for the test",
            ))
        }
    }
}

fn sign(
    request: &str,
    ca_cert: &X509,
    ca_key: &PKey<Private>,
    own_serial: bool,
) -> (String, String) {
    let req: Value = serde_json::from_str(request).unwrap();
    // The serial is a JSON number longer than an f64 holds: read its digits from the text.
    let mut digits: String = request
        .split("\"serial\":")
        .nth(1)
        .expect("the request carries a serial")
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if own_serial {
        let mut n = BigNum::new().unwrap();
        n.rand(120, openssl::bn::MsbOption::ONE, false).unwrap();
        digits = n.to_dec_str().unwrap().to_string();
    }
    let csr = X509Req::from_pem(req["certificate_request"].as_str().unwrap().as_bytes()).unwrap();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_dec_str(&digits).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    let subject = &req["subject"];
    if let Some(cn) = subject["CN"].as_str().filter(|s| !s.is_empty()) {
        name.append_entry_by_text("CN", cn).unwrap();
    }
    for n in subject["names"].as_array().into_iter().flatten() {
        if let Some(o) = n["O"].as_str() {
            name.append_entry_by_text("O", o).unwrap();
        }
    }
    if let Some(sn) = subject["SerialNumber"].as_str().filter(|s| !s.is_empty()) {
        name.append_entry_by_text("serialNumber", sn).unwrap();
    }
    b.set_subject_name(&name.build()).unwrap();
    b.set_issuer_name(ca_cert.subject_name()).unwrap();
    b.set_pubkey(&csr.public_key().unwrap()).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
        .unwrap();
    let emails: Vec<&str> = req["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str())
        .collect();
    if !emails.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for e in emails {
            san.email(e);
        }
        let ext = san.build(&b.x509v3_context(Some(ca_cert), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    b.sign(ca_key, MessageDigest::sha256()).unwrap();
    (
        digits,
        String::from_utf8(b.build().to_pem().unwrap()).unwrap(),
    )
}

impl ScriptedCa {
    pub async fn start(ca: &TestCaFiles) -> ScriptedCa {
        let ca_pem = std::fs::read_to_string(&ca.cert).unwrap();
        let ca_cert = X509::from_pem(ca_pem.as_bytes()).unwrap();
        let ca_key = PKey::private_key_from_pem(&std::fs::read(&ca.key).unwrap()).unwrap();
        let mode = Arc::new(Mutex::new(Mode::Up));
        let state = Arc::new(Mutex::new(State::default()));
        let (sign_mode, sign_state) = (mode.clone(), state.clone());
        let (revoke_mode, revoke_state) = (mode.clone(), state.clone());
        let app = axum::Router::new()
            .route("/api/v1/cfssl/info", super::fake_cfssl::info(ca_pem))
            .route(
                "/api/v1/cfssl/authsign",
                axum::routing::post(move |body: axum::Json<Value>| {
                    let (mode, state) = (sign_mode.clone(), sign_state.clone());
                    let (ca_cert, ca_key) = (ca_cert.clone(), ca_key.clone());
                    async move {
                        state.lock().unwrap().sign_calls += 1;
                        let m = *mode.lock().unwrap();
                        if let Some(refusal) = fault(m).await {
                            return refusal;
                        }
                        let request = base64::engine::general_purpose::STANDARD
                            .decode(body["request"].as_str().unwrap())
                            .unwrap();
                        let request = String::from_utf8(request).unwrap();
                        let own = state.lock().unwrap().own_serials;
                        let (serial, pem) = sign(&request, &ca_cert, &ca_key, own);
                        let mut s = state.lock().unwrap();
                        if s.certdb.contains_key(&serial) {
                            return failure(
                                StatusCode::BAD_REQUEST,
                                11000,
                                "UNIQUE constraint failed: certificates.serial_number, certificates.authority_key_identifier",
                            );
                        }
                        s.certdb.insert(serial, (pem.clone(), None));
                        answer(
                            StatusCode::OK,
                            json!({"success": true, "result": {"certificate": pem}, "errors": [], "messages": []}),
                        )
                    }
                }),
            )
            .route(
                "/api/v1/cfssl/revoke",
                axum::routing::post(move |body: axum::Json<Value>| {
                    let (mode, state) = (revoke_mode.clone(), revoke_state.clone());
                    async move {
                        state.lock().unwrap().revoke_calls += 1;
                        let m = *mode.lock().unwrap();
                        if let Some(refusal) = fault(m).await {
                            return refusal;
                        }
                        let serial = body["serial"].as_str().unwrap_or_default().to_string();
                        let reason = body["reason"].as_str().unwrap_or_default().to_string();
                        let mut s = state.lock().unwrap();
                        match s.certdb.get_mut(&serial) {
                            Some(entry) => {
                                entry.1 = Some(reason);
                                answer(
                                    StatusCode::OK,
                                    json!({"success": true, "result": {}, "errors": [], "messages": []}),
                                )
                            }
                            None => failure(StatusCode::NOT_FOUND, 404, "Certificate not found"),
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedCa {
            url,
            mode,
            state,
            task,
        }
    }

    /// How the CA behaves from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Pick serials itself from now on, ignoring the one requested (as most CMP CAs do): a
    /// second request for one order makes a second certificate.
    pub fn pick_own_serials(&self) {
        self.state.lock().unwrap().own_serials = true;
    }

    /// The hex serials of the certificates it issued.
    pub fn serials(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.certdb
            .keys()
            .map(|d| {
                BigNum::from_dec_str(d)
                    .unwrap()
                    .to_hex_str()
                    .unwrap()
                    .to_lowercase()
            })
            .collect()
    }

    /// Certificates it issued (its database's rows).
    pub fn issued(&self) -> usize {
        self.state.lock().unwrap().certdb.len()
    }

    /// Calls to `/authsign`, answered or not.
    pub fn sign_calls(&self) -> usize {
        self.state.lock().unwrap().sign_calls
    }

    /// Calls to `/revoke`, answered or not.
    pub fn revoke_calls(&self) -> usize {
        self.state.lock().unwrap().revoke_calls
    }

    /// The reason its database holds for the certificate with hex serial `serial` (None: not
    /// revoked; panics if it never issued it).
    pub fn revocation(&self, serial: &str) -> Option<String> {
        let decimal = BigNum::from_hex_str(serial)
            .unwrap()
            .to_dec_str()
            .unwrap()
            .to_string();
        self.state.lock().unwrap().certdb[&decimal].1.clone()
    }
}

impl Drop for ScriptedCa {
    fn drop(&mut self) {
        self.task.abort();
    }
}
