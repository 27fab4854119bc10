//! `vouch ocsp check FILE`: what a relying party asks. The certificate's own OCSP URL (AIA) is
//! asked by POST, about a CertID made with the issuer (from `--issuer` or the certificate's AIA
//! caIssuers URL); the answer must be signed by the issuer or by a responder it certified for
//! OCSP signing, and be current. Exit 0 good, 1 revoked or unknown, 2 no verified answer.

use super::output;
use super::{
    finish, http_client, parse_url, read_body, read_file, shown, transport_error, Failure, Outcome,
    MAX_INPUT_FILE_BYTES,
};
use clap::{Args, Subcommand};
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
    OcspRevokedStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509VerifyResult, X509};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An OCSP answer or a CA certificate is read up to this size.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Clock difference tolerated on thisUpdate and nextUpdate, in seconds.
const CLOCK_SKEW_SECS: u32 = 300;

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

/// RFC 5280 name of a revocation reason.
fn reason_name(r: OcspRevokedStatus) -> &'static str {
    match r {
        OcspRevokedStatus::KEY_COMPROMISE => "keyCompromise",
        OcspRevokedStatus::CA_COMPROMISE => "cACompromise",
        OcspRevokedStatus::AFFILIATION_CHANGED => "affiliationChanged",
        OcspRevokedStatus::STATUS_SUPERSEDED => "superseded",
        OcspRevokedStatus::STATUS_CESSATION_OF_OPERATION => "cessationOfOperation",
        OcspRevokedStatus::STATUS_CERTIFICATE_HOLD => "certificateHold",
        OcspRevokedStatus::REMOVE_FROM_CRL => "removeFromCRL",
        _ => match r.as_raw() {
            9 => "privilegeWithdrawn",
            10 => "aACompromise",
            _ => "unspecified",
        },
    }
}

fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        OcspResponseStatus::INTERNAL_ERROR => "internalError",
        OcspResponseStatus::TRY_LATER => "tryLater",
        OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        _ => "an unknown status",
    }
}

/// OpenSSL prints a GeneralizedTime as `Nov  2 08:00:00 2026 GMT`; RFC 3339 is what the rest of
/// Vouch shows. The text is kept as it is if it does not read so.
fn rfc3339(openssl_time: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = openssl_time.split_whitespace().collect();
    let parsed = (|| {
        let [mon, day, clock, year, "GMT"] = parts.as_slice() else {
            return None;
        };
        let month = MONTHS.iter().position(|m| m == mon)? + 1;
        let clock = clock.split('.').next()?;
        let hms: Vec<u8> = clock.split(':').filter_map(|p| p.parse().ok()).collect();
        let [h, m, s] = hms.as_slice() else {
            return None;
        };
        let date = time::Date::from_calendar_date(
            year.parse().ok()?,
            time::Month::try_from(u8::try_from(month).ok()?).ok()?,
            day.parse().ok()?,
        )
        .ok()?;
        let t = time::Time::from_hms(*h, *m, *s).ok()?;
        date.with_time(t)
            .assume_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })();
    parsed.unwrap_or_else(|| openssl_time.to_string())
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
    let cert_id = || OcspCertId::from_cert(MessageDigest::sha1(), &cert, &issuer);
    let mut request = OcspRequest::new().map_err(ssl("OCSP request"))?;
    request
        .add_id(cert_id().map_err(ssl("OCSP request"))?)
        .map_err(ssl("OCSP request"))?;
    let request = request.to_der().map_err(ssl("OCSP request"))?;

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
    let response = OcspResponse::from_der(&body)
        .map_err(|_| Failure::local(format!("{at} did not answer an OCSP response")))?;
    if response.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(Failure::local(format!(
            "the OCSP responder {at} answered {}",
            response_status_name(response.status())
        )));
    }
    let basic = response
        .basic()
        .map_err(|_| Failure::local(format!("{at}: not a basic OCSP response")))?;
    // Signed by the issuer itself or by a responder certificate the issuer made for OCSP
    // signing (carried in the response): the issuer is the trust anchor here.
    let mut store = X509StoreBuilder::new().map_err(ssl("trust store"))?;
    store.add_cert(issuer.clone()).map_err(ssl("trust store"))?;
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(ssl("trust store"))?;
    let store = store.build();
    let extra = Stack::new().map_err(ssl("trust store"))?;
    basic
        .verify(&extra, &store, OcspFlag::empty())
        .map_err(|e| {
            Failure::local(format!(
                "the OCSP answer from {at} is not signed by the issuer or a responder it \
                 authorised: {e}"
            ))
        })?;
    let id = cert_id().map_err(ssl("OCSP request"))?;
    let single = basic.find_status(&id).ok_or_else(|| {
        Failure::local(format!(
            "the OCSP answer from {at} says nothing about this certificate"
        ))
    })?;
    single.check_validity(CLOCK_SKEW_SECS, None).map_err(|_| {
        Failure::local(format!(
            "the OCSP answer from {at} is not current (thisUpdate {}, nextUpdate {})",
            rfc3339(&single.this_update.to_string()),
            single
                .next_update()
                .map(|t| rfc3339(&t.to_string()))
                .unwrap_or_else(|| "none".into())
        ))
    })?;

    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_lowercase()))
        .map_err(ssl("serial"))?;
    let mut result = json!({
        "serial": serial,
        "responder": at,
        "this_update": rfc3339(&single.this_update.to_string()),
        "next_update": single.next_update().map(|t| rfc3339(&t.to_string())),
    });
    let (line, code) = match single.status {
        OcspCertStatus::GOOD => {
            result["status"] = json!("good");
            ("good".to_string(), 0)
        }
        OcspCertStatus::REVOKED => {
            let reason = reason_name(single.reason);
            let when = single
                .revocation_time
                .map(|t| rfc3339(&t.to_string()))
                .unwrap_or_default();
            result["status"] = json!("revoked");
            result["revocation_reason"] = json!(reason);
            result["revoked_at"] = json!(when);
            (format!("revoked ({reason}, {when})"), 1)
        }
        _ => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_times_read_as_rfc3339() {
        assert_eq!(rfc3339("Nov  2 08:00:05 2026 GMT"), "2026-11-02T08:00:05Z");
        assert_eq!(
            rfc3339("Feb 28 23:59:59.5 2030 GMT"),
            "2030-02-28T23:59:59Z"
        );
        assert_eq!(rfc3339("garbage"), "garbage");
    }

    #[test]
    fn reasons_have_their_rfc_5280_names() {
        assert_eq!(
            reason_name(OcspRevokedStatus::KEY_COMPROMISE),
            "keyCompromise"
        );
        assert_eq!(
            reason_name(OcspRevokedStatus::from_raw(9)),
            "privilegeWithdrawn"
        );
        assert_eq!(reason_name(OcspRevokedStatus::from_raw(0)), "unspecified");
    }
}
