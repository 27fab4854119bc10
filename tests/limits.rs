//! Slow, idle and surplus clients: the server closes what it must and answers what it can, fast.
//! Each test starts its own server on 127.0.0.1 with second-scale limits and speaks raw HTTP/1.1
//! over TCP, so that nothing between the test and the server pools or retries.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vouch::app::{self, Server};
use vouch::ca::local::CaOptions;
use vouch::clock::{SharedClock, SystemClock};
use vouch::config::{Limits, TlsFiles};
use vouch::datadir::DataDir;

/// Longest a test waits for the server to close a connection it should close.
const PATIENCE: Duration = Duration::from_secs(8);

fn limits(header_read: u64, idle: u64, request: u64, max_connections: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(header_read),
        idle_timeout: Duration::from_secs(idle),
        request_timeout: Duration::from_secs(request),
        max_connections,
    }
}

async fn start(dir: &Path, limits: Limits, tls: Option<&TlsFiles>) -> Server {
    let data = DataDir::new(dir.join("data"));
    let clock: SharedClock = Arc::new(SystemClock);
    app::init(&data, &CaOptions::default(), &clock)
        .await
        .expect("init");
    let (_, server) = app::start(
        &data,
        clock,
        Default::default(),
        "127.0.0.1:0".parse().unwrap(),
        tls,
        limits,
    )
    .await
    .expect("serve");
    server
}

/// Read until the server closes the connection; `None` if it is still open after `within`.
async fn until_closed(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Read one response with a Content-Length body, leaving the connection open.
async fn one_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Send one request on a new connection and read the whole answer (the server closes).
async fn request(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return None;
    }
    let got = until_closed(&mut s, PATIENCE)
        .await
        .expect("closed in time");
    (!got.is_empty()).then(|| String::from_utf8_lossy(&got).to_string())
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn slowloris_is_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), limits(1, 30, 30, 100), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    // Keep trickling header bytes: activity alone does not keep an unfinished head alive.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(PATIENCE, trickle).await;
    let closed = until_closed(&mut s, Duration::from_secs(1)).await;
    assert!(
        closed.is_some_and(|b| b.is_empty()),
        "the server must close a connection whose head never finishes, without answering"
    );
    assert!(
        sent.elapsed() < PATIENCE,
        "closed by the header-read timeout, not by the test"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_asks_is_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), limits(1, 30, 30, 100), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let closed = until_closed(&mut s, PATIENCE).await;
    assert!(
        closed.is_some_and(|b| b.is_empty()),
        "a connection that sends nothing must be closed well before the idle timeout"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // The idle timeout is longer than the header-read timeout: a quiet connection between
    // requests is idle, not a slow head.
    let server = start(dir.path(), limits(1, 3, 30, 100), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let first = one_response(&mut s).await;
    assert_eq!(status(&first), "200", "{first}");
    let answered = Instant::now();
    // Still open past the header-read timeout: a second request on it is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let second = one_response(&mut s).await;
    assert_eq!(status(&second), "200", "{second}");
    let answered_again = Instant::now();
    assert!(answered.elapsed() >= Duration::from_millis(1500));
    let closed = until_closed(&mut s, PATIENCE).await;
    assert!(
        closed.is_some_and(|b| b.is_empty()),
        "the idle keep-alive connection must be closed by the server"
    );
    assert!(
        answered_again.elapsed() >= Duration::from_secs(2),
        "closed by the idle timeout, not earlier"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn over_the_cap_clients_get_a_fast_503_and_health_probes_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 20;
    // The idle connections stay open for the whole test.
    let limits = limits(30, 30, 30, cap);
    let reserved = limits.reserved_connections();
    let server = start(dir.path(), limits, None).await;
    let mut idle = Vec::new();
    for _ in 0..cap {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Past the cap: an API call is told to come back, at once and in JSON.
    let over = request(server.addr, "/api/v1/operators")
        .await
        .expect("an answer");
    assert_eq!(status(&over), "503", "{over}");
    assert!(over.contains("\"error\":\"overloaded\""), "{over}");
    assert!(
        over.to_ascii_lowercase().contains("retry-after: 1"),
        "{over}"
    );
    // The health probe is still served.
    let health = request(server.addr, "/healthz").await.expect("an answer");
    assert_eq!(status(&health), "200", "{health}");
    assert!(health.ends_with("ok"), "{health}");
    // Past the reserved slice too: the connection is closed without an answer.
    for _ in 0..reserved {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    assert_eq!(request(server.addr, "/healthz").await, None);
    // Once the idle clients leave, everyone is served again.
    idle.clear();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(r) = request(server.addr, "/api/v1/operators").await {
            if status(&r) == "401" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "slots were not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_past_the_request_timeout_gets_a_json_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), limits(5, 30, 1, 100), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // A body announced and never sent: the handler waits for it until the request timeout.
    s.write_all(
        b"POST /ocsp HTTP/1.1\r\nHost: t\r\nContent-Type: application/ocsp-request\r\n\
          Content-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let answer = one_response(&mut s).await;
    assert_eq!(status(&answer), "503", "{answer}");
    assert!(answer.contains("\"error\":\"timeout\""), "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_closed_and_https_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let tls = TlsFiles {
        cert: cert.clone(),
        key,
    };
    let server = start(dir.path(), limits(1, 30, 30, 100), Some(&tls)).await;
    // A TLS record header and nothing more.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
    let closed = until_closed(&mut s, PATIENCE).await;
    assert!(closed.is_some(), "a stalled TLS handshake must be closed");
    // A real client is served.
    let addr = server.addr;
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .arg(format!("https://{addr}/healthz"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_an_in_flight_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), limits(5, 30, 30, 100), None).await;
    let addr = server.addr;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A request whose body is still coming when the server is told to stop.
    s.write_all(
        b"POST /ocsp HTTP/1.1\r\nHost: t\r\nContent-Type: application/ocsp-request\r\n\
          Content-Length: 4\r\n\r\n00",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(b"00").await.unwrap();
    let answer = one_response(&mut s).await;
    assert_eq!(status(&answer), "200", "{answer}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("shutdown ends once the request is answered")
        .unwrap();
    // No longer accepting.
    assert!(TcpStream::connect(addr).await.is_err());
}
