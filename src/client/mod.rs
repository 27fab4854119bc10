//! `vouch` as a client of a running server, for operators and scripts: the connection options,
//! the HTTP client and the errors every command group shares. One file per command group
//! (`subscriber`, `request`, `cert` and `crl`, `ocsp`, `operator`, `audit`, `attribute`); `output`
//! prints.
//!
//! Exit status of every client command: 0 done, 1 the server refused (its error code and message
//! are printed as `vouch: CODE: MESSAGE`), 2 a usage, file or connection error. `ocsp check` has
//! its own: 0 good, 1 revoked or unknown, 2 no verified answer.

pub mod attributes;
pub mod audit;
pub mod certificates;
pub mod ocsp;
pub mod operators;
pub mod output;
pub mod requests;
pub mod subscribers;

use clap::Args;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use zeroize::Zeroizing;

/// The server a client command talks to when neither --url nor VOUCH_URL says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A token is 49 characters; a token file is a line, not a document.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// The largest answer read from a server (a page of 1000 requests or audit entries fits easily).
const MAX_RESPONSE_BYTES: usize = 32 << 20;
/// The largest local input file read (a CSR, a certificate, a CA bundle).
pub const MAX_INPUT_FILE_BYTES: u64 = 1 << 20;

/// Where the server is and who is calling: flattened into every client command.
#[derive(Args, Clone)]
pub struct Connection {
    /// URL of the Vouch server.
    #[arg(long, env = "VOUCH_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Bearer token of the operator. Prefer --token-file: a command line is visible to other
    /// users of the machine.
    #[arg(long, env = "VOUCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token (its first line); refused when group or others may read it
    /// (chmod 600).
    #[arg(long, env = "VOUCH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for an https:// server, besides the system's.
    #[arg(long, env = "VOUCH_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Print the server's JSON answer as it came, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Why a client command failed, and so its exit status.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error (exit 1).
    Api {
        /// The error code (`self_approval`, `not_found`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// Usage, a local file, the connection, an answer that makes no sense (exit 2).
    Local(String),
}

impl Failure {
    /// A failure on this side: usage, a file, the connection.
    pub fn local(message: impl Into<String>) -> Failure {
        Failure::Local(message.into())
    }
}

/// What a client command ends with: its exit status, or why it failed.
pub type Outcome = Result<ExitCode, Failure>;

/// Print a failure to stderr and turn it into the exit status.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(Failure::Api { code, message }) => {
            eprintln!(
                "vouch: {}: {}",
                output::clean(&code),
                output::clean(&message)
            );
            ExitCode::from(1)
        }
        Err(Failure::Local(message)) => {
            eprintln!("vouch: {message}");
            ExitCode::from(2)
        }
    }
}

/// Read a local file of at most `limit` bytes, naming it in the error.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::local(format!(
            "{}: larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Write `bytes` to a new file, or over an existing one only with `force`; `-` is stdout.
pub fn write_output(path: &Path, bytes: &[u8], force: bool) -> Result<(), Failure> {
    use std::io::Write;
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|e| Failure::local(format!("stdout: {e}")));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::local(format!(
                "{} exists; give another --out or --force to overwrite it",
                path.display()
            ))
        } else {
            Failure::local(format!("{}: {e}", path.display()))
        }
    })?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))
}

/// Read the token file, refusing one that group or others may read or write, as ssh refuses a
/// private key file.
fn read_token_file(path: &Path) -> Result<Zeroizing<String>, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| Failure::local(format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Failure::local(format!(
            "token file {shown} is not a regular file"
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::local(format!(
            "token file {shown} is accessible by group or others (mode {mode:04o}); \
             a token is a password: run `chmod 600 {shown}`"
        )));
    }
    let bytes = Zeroizing::new(read_file(path, MAX_TOKEN_FILE_BYTES)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::local(format!("token file {shown} is not UTF-8 text")))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(Failure::local(format!("token file {shown} is empty")));
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// The `Authorization` header for a token, marked sensitive so that no debug output shows it.
fn bearer(token: &str) -> Result<HeaderValue, Failure> {
    // The token itself is never part of a message.
    let ok = !token.is_empty() && token.len() <= 512 && token.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(Failure::local(
            "the token has characters a token cannot have (expected vouch_ and 43 base64url \
             characters)",
        ));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Failure::local("the token cannot be sent in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// An HTTP client for one server, with the connection's timeouts and trust.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
}

/// A parsed http(s) URL, or a usage error naming `what`.
pub fn parse_url(text: &str, what: &str) -> Result<Url, Failure> {
    let url = Url::parse(text.trim())
        .map_err(|e| Failure::local(format!("{what} {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Failure::local(format!(
            "{what} {text:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url)
}

/// The HTTP client every command uses: 5 s to connect, 30 s per request, no redirects (a token
/// is never sent anywhere else), the system's trust plus `--cacert`.
pub fn http_client(cacert: Option<&Path>) -> Result<reqwest::Client, Failure> {
    let mut builder = reqwest::Client::builder()
        .use_native_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = cacert {
        let pem = read_file(path, MAX_INPUT_FILE_BYTES)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Failure::local(format!(
                "{}: no PEM certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Failure::local(format!("cannot set up the HTTP client: {e}")))
}

/// A URL fit to print: no user name or password in it.
pub fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// Say what went wrong on the way to `url`, in the user's terms.
pub fn transport_error(url: &Url, e: &reqwest::Error) -> Failure {
    let server = url.origin().ascii_serialization();
    let url = shown(url);
    let mut cause: &dyn std::error::Error = e;
    let mut refused = false;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cause = next;
    }
    if refused {
        Failure::local(format!(
            "no Vouch server at {server}: connection refused; is `vouch serve` running?"
        ))
    } else if e.is_timeout() {
        let limit = if e.is_connect() {
            CONNECT_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        Failure::local(format!("{url} did not answer within {} s", limit.as_secs()))
    } else if e.is_connect() {
        let hint = if url.starts_with("https:") {
            " (for a server certificate from a private CA, give --cacert)"
        } else {
            ""
        };
        Failure::local(format!("cannot connect to {server}: {cause}{hint}"))
    } else {
        Failure::local(format!("{url}: {cause}"))
    }
}

/// Read an answer's body, at most `limit` bytes.
pub async fn read_body(
    url: &Url,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(Failure::local(format!(
                "{}: the answer is larger than {limit} bytes",
                shown(url)
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The server's error answer as a failure: its `error` code and `message`, or, for an answer
/// that is not Vouch's JSON (a proxy's page), the HTTP status.
fn api_failure(status: StatusCode, body: &[u8]) -> Failure {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let (Some(code), Some(message)) = (v["error"].as_str(), v["message"].as_str()) {
            return Failure::Api {
                code: code.to_string(),
                message: message.to_string(),
            };
        }
    }
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    Failure::Api {
        code: format!("http_{}", status.as_u16()),
        message: if text.trim().is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text.trim().to_string()
        },
    }
}

/// A JSON answer: the text as it came (for `--json`) and its parsed value.
pub struct Answer {
    /// The HTTP status (a success: 200, 201 or 202).
    pub status: StatusCode,
    /// The body as the server sent it.
    pub raw: String,
    /// The body parsed.
    pub value: Value,
}

impl Client {
    /// A client that sends the operator's token (from --token or --token-file).
    pub fn new(conn: &Connection) -> Result<Client, Failure> {
        let mut client = Client::anonymous(conn)?;
        let token = match (&conn.token, &conn.token_file) {
            (Some(_), Some(_)) => return Err(Failure::local(
                "give either --token (VOUCH_TOKEN) or --token-file (VOUCH_TOKEN_FILE), not both",
            )),
            (Some(t), None) => Zeroizing::new(t.trim().to_string()),
            (None, Some(path)) => read_token_file(path)?,
            (None, None) => {
                return Err(Failure::local(
                    "no token: give --token-file FILE (or VOUCH_TOKEN_FILE), or --token \
                     (VOUCH_TOKEN)",
                ))
            }
        };
        client.auth = Some(bearer(&token)?);
        Ok(client)
    }

    /// A client for the public endpoints (CRLs, CA certificates): no token is sent.
    pub fn anonymous(conn: &Connection) -> Result<Client, Failure> {
        Ok(Client {
            http: http_client(conn.cacert.as_deref())?,
            base: parse_url(&conn.url, "--url")?,
            auth: None,
        })
    }

    /// The server URL with these path segments (each percent-encoded) appended.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let mut req = self.http.request(method, url.clone());
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.map_err(|e| transport_error(&url, &e))?;
        let status = resp.status();
        let bytes = read_body(&url, resp, MAX_RESPONSE_BYTES).await?;
        Ok((status, bytes))
    }

    async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let (status, bytes) = self.send(method, url.clone(), body).await?;
        if !status.is_success() {
            return Err(api_failure(status, &bytes));
        }
        let raw = String::from_utf8(bytes).map_err(|_| {
            Failure::local(format!("{}: the answer is not UTF-8 text", shown(&url)))
        })?;
        let value = serde_json::from_str(&raw).map_err(|_| {
            Failure::local(format!(
                "{}: the answer is not JSON; is this a Vouch server?",
                shown(&url)
            ))
        })?;
        Ok(Answer { status, raw, value })
    }

    /// GET a JSON resource under the server URL.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Answer, Failure> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        self.json(Method::GET, url, None).await
    }

    /// POST a JSON body to a resource under the server URL.
    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Answer, Failure> {
        self.json(Method::POST, self.url(segments), Some(body))
            .await
    }

    /// GET a public file (a CRL, a CA certificate) under the server URL, as bytes.
    pub async fn get_bytes(&self, segments: &[&str], limit: usize) -> Result<Vec<u8>, Failure> {
        let url = self.url(segments);
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(&url, &e))?;
        let status = resp.status();
        let bytes = read_body(&url, resp, limit).await?;
        if !status.is_success() {
            return Err(api_failure(status, &bytes));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_the_base_path_kept() {
        let conn = Connection {
            url: "http://127.0.0.1:8080/ra/".into(),
            token: None,
            token_file: None,
            cacert: None,
            json: false,
        };
        let c = Client::anonymous(&conn).unwrap();
        assert_eq!(
            c.url(&["api", "v1", "requests", "../x?y"]).as_str(),
            "http://127.0.0.1:8080/ra/api/v1/requests/..%2Fx%3Fy"
        );
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_url("ftp://x", "--url").is_err());
        assert!(parse_url("127.0.0.1:8080", "--url").is_err());
        assert!(parse_url("https://ra.example", "--url").is_ok());
    }

    #[test]
    fn shown_urls_carry_no_password() {
        let url = Url::parse("https://user:secret@ra.example/").unwrap();
        assert_eq!(shown(&url), "https://ra.example/");
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "vouch_abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let Err(Failure::Local(msg)) = read_token_file(&path) else {
            panic!("accepted a group-readable token file")
        };
        assert!(msg.contains("chmod 600") && msg.contains("0640"), "{msg}");
        assert!(!msg.contains("vouch_abc"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&path).unwrap().as_str(), "vouch_abc");
    }

    #[test]
    fn api_errors_keep_code_and_message() {
        let f = api_failure(
            StatusCode::FORBIDDEN,
            br#"{"error":"forbidden","message":"request.approve requires the approver role"}"#,
        );
        assert!(
            matches!(f, Failure::Api { ref code, ref message } if code == "forbidden" && message.contains("approver"))
        );
        let f = api_failure(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(matches!(f, Failure::Api { ref code, .. } if code == "http_502"));
    }
}
