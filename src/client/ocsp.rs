//! `vouch ocsp check FILE`: what a relying party asks. The certificate's own OCSP URL (AIA) is
//! asked by POST, about a CertID made with the issuer (from `--issuer` or the certificate's AIA
//! caIssuers URL); the answer must be signed by the issuer or by a responder it certified for
//! OCSP signing, and be current. Exit 0 good, 1 revoked or unknown, 2 no verified answer.

use super::output;
use super::{
    finish, http_client, parse_url, read_body, read_file, shown, transport_error, Failure, Outcome,
    MAX_INPUT_FILE_BYTES,
};
use crate::ca::remote_ocsp::{self, OcspStatus, MAX_ANSWER_BYTES};
use clap::{Args, Subcommand};
use openssl::x509::{X509VerifyResult, X509};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const ID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const ID_AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

/// `vouch ocsp`: certificate status from OCSP responders.
#[derive(Subcommand)]
pub enum OcspCommand {
    /// Ask the certificate's own OCSP responder for its status, verify the signed answer, and
    /// print `good`, `revoked (REASON, TIME)` or `unknown`. Exit 0 good, 1 revoked or unknown,
    /// 2 no verified answer (no responder, bad signature, stale answer, connection error).
    Check(CheckArgs),
}

/// The arguments of `vouch ocsp check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The certificate (PEM, its first certificate, or DER).
    file: PathBuf,
    /// The issuing CA's certificate (PEM or DER); default: fetched from the certificate's AIA
    /// caIssuers URL.
    #[arg(long)]
    issuer: Option<PathBuf>,
    /// Ask this OCSP responder instead of the one the certificate names.
    #[arg(long)]
    responder: Option<String>,
    /// CA certificates (PEM) to trust for https:// URLs, besides the system's.
    #[arg(long, env = "VOUCH_CACERT")]
    cacert: Option<PathBuf>,
    /// Print the result as JSON: {"status", "serial", "responder", "this_update",
    /// "next_update", "revocation_reason", "revoked_at"}.
    #[arg(long)]
    json: bool,
}

/// Run a `vouch ocsp` command.
pub async fn run(command: OcspCommand) -> ExitCode {
    let OcspCommand::Check(args) = command;
    finish(check(args).await)
}

fn ssl(context: &str) -> impl Fn(openssl::error::ErrorStack) -> Failure + '_ {
    move |e| Failure::local(format!("{context}: {e}"))
}

/// A certificate from PEM (the first one) or DER.
fn load_cert(bytes: &[u8], what: &str) -> Result<X509, Failure> {
    let pem = bytes.windows(10).take(4096).any(|w| w == b"-----BEGIN");
    if pem {
        X509::from_pem(bytes)
    } else {
        X509::from_der(bytes)
    }
    .map_err(|_| Failure::local(format!("{what} is not a certificate (PEM or DER)")))
}

/// The AIA URLs of one access method (http and https only).
fn aia_urls(cert: &X509, method: &str) -> Result<Vec<String>, Failure> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let der = cert.to_der().map_err(ssl("certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| Failure::local(format!("certificate: {e}")))?;
    let mut urls = Vec::new();
    for ext in parsed.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method.to_id_string() != method {
                    continue;
                }
                if let GeneralName::URI(uri) = &desc.access_location {
                    if uri.starts_with("http://") || uri.starts_with("https://") {
                        urls.push(uri.to_string());
                    }
                }
            }
        }
    }
    Ok(urls)
}

async fn fetch_issuer(
    http: &reqwest::Client,
    cert: &X509,
    file: &Path,
) -> Result<(X509, String), Failure> {
    let urls = aia_urls(cert, ID_AD_CA_ISSUERS)?;
    if urls.is_empty() {
        return Err(Failure::local(format!(
            "{} names no caIssuers URL; give the issuer with --issuer FILE",
            file.display()
        )));
    }
    let mut last = None;
    for u in urls {
        let url = parse_url(&u, "caIssuers URL")?;
        let got = async {
            let resp = http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| transport_error(&url, &e))?;
            let status = resp.status();
            let body = read_body(&url, resp, MAX_ANSWER_BYTES).await?;
            if !status.is_success() {
                return Err(Failure::local(format!(
                    "{}: HTTP {}",
                    shown(&url),
                    status.as_u16()
                )));
            }
            load_cert(&body, &shown(&url))
        }
        .await;
        match got {
            Ok(c) => return Ok((c, shown(&url))),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Failure::local("no issuer certificate found")))
}

async fn check(a: CheckArgs) -> Outcome {
    let http = http_client(a.cacert.as_deref())?;
    let bytes = read_file(&a.file, MAX_INPUT_FILE_BYTES)?;
    let cert = load_cert(&bytes, &a.file.display().to_string())?;
    let (issuer, issuer_from) = match &a.issuer {
        Some(path) => {
            let bytes = read_file(path, MAX_INPUT_FILE_BYTES)?;
            (
                load_cert(&bytes, &path.display().to_string())?,
                path.display().to_string(),
            )
        }
        None => fetch_issuer(&http, &cert, &a.file).await?,
    };
    // The CertID names the issuer: it must be the one that signed this certificate.
    let key = issuer.public_key().map_err(ssl("issuer key"))?;
    if issuer.issued(&cert) != X509VerifyResult::OK || !cert.verify(&key).unwrap_or(false) {
        return Err(Failure::local(format!(
            "the issuer certificate from {issuer_from} did not sign {}",
            a.file.display()
        )));
    }
    let responder = match &a.responder {
        Some(u) => parse_url(u, "--responder")?,
        None => {
            let urls = aia_urls(&cert, ID_AD_OCSP)?;
            let first = urls.first().ok_or_else(|| {
                Failure::local(format!(
                    "{} names no OCSP responder; give one with --responder URL",
                    a.file.display()
                ))
            })?;
            parse_url(first, "OCSP URL")?
        }
    };
    let request = remote_ocsp::request_der(&cert, &issuer)
        .map_err(|e| Failure::local(format!("OCSP request: {e}")))?;

    let resp = http
        .post(responder.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
        .header(reqwest::header::ACCEPT, "application/ocsp-response")
        .body(request)
        .send()
        .await
        .map_err(|e| transport_error(&responder, &e))?;
    let status = resp.status();
    let body = read_body(&responder, resp, MAX_ANSWER_BYTES).await?;
    let at = shown(&responder);
    if !status.is_success() {
        return Err(Failure::local(format!(
            "the OCSP responder {at} answered HTTP {}",
            status.as_u16()
        )));
    }
    let answer = remote_ocsp::read_answer(&body, &cert, &issuer, None)
        .map_err(|e| Failure::local(format!("the OCSP answer from {at}: {e}")))?;

    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_lowercase()))
        .map_err(ssl("serial"))?;
    let time = |t: time::OffsetDateTime| crate::ra::rfc3339(t.unix_timestamp());
    let mut result = json!({
        "serial": serial,
        "responder": at,
        "this_update": time(answer.this_update),
        "next_update": answer.next_update.map(time),
    });
    let (line, code) = match answer.status {
        OcspStatus::Good => {
            result["status"] = json!("good");
            ("good".to_string(), 0)
        }
        OcspStatus::Revoked {
            at, reason_name, ..
        } => {
            let when = time(at);
            result["status"] = json!("revoked");
            result["revocation_reason"] = json!(reason_name);
            result["revoked_at"] = json!(when);
            (format!("revoked ({reason_name}, {when})"), 1)
        }
        OcspStatus::Unknown => {
            result["status"] = json!("unknown");
            ("unknown".to_string(), 1)
        }
    };
    if a.json {
        println!("{result}");
    } else {
        println!("{}", output::clean(&line));
    }
    Ok(ExitCode::from(code))
}
