//! Typed configuration, validated before anything starts.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the data directory is when `--data-dir` is not given.
pub const DEFAULT_DATA_DIR: &str = "./vouch-data";
/// Where `vouch serve` listens when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Longest public base URL accepted: it is written into every certificate's extensions.
const MAX_PUBLIC_URL_LEN: usize = 200;

/// Check a public base URL (`--public-url`): an absolute `http://` or `https://` URL, as the
/// `url` crate (the WHATWG URL standard) parses it, whose host comes right after the `//`
/// (a letter, digit or `[`), in printable ASCII of at most 200 characters. The URL is used as
/// written, never re-serialised: the `url` crate only checks it.
pub fn check_public_url(url: &str) -> Result<()> {
    let bad = || {
        Error::invalid(
            "invalid_public_url",
            "--public-url must be an http:// or https:// URL",
        )
    };
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    if !host.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
        || url.len() > MAX_PUBLIC_URL_LEN
        || !url.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(bad());
    }
    match url::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => Ok(()),
        _ => Err(bad()),
    }
}

/// `--listen`: `ADDR:PORT`, `[V6]:PORT`, `HOST:PORT` (resolved now; an IPv4 address is preferred
/// when the name has both) or a port alone (`8081`, meaning 127.0.0.1:8081).
pub fn parse_listen(s: &str) -> std::result::Result<SocketAddr, String> {
    use std::net::{Ipv4Addr, ToSocketAddrs};
    let s = s.trim();
    if !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s
            .parse()
            .map_err(|_| format!("{s} is not a port (0-65535)"))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "{s:?}: give ADDRESS:PORT (127.0.0.1:8080, [::1]:8080, localhost:8080) or a port alone"
        ));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "{s:?}: give ADDRESS:PORT (127.0.0.1:8080, [::1]:8080, localhost:8080) or a port alone"
        ));
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address"))
}

/// The certificate and key `vouch serve` answers TLS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// What `vouch serve` needs to start, checked before anything starts.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Explicit permission to serve plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// TLS, when the server answers HTTPS.
    pub tls: Option<TlsFiles>,
}

impl ServeConfig {
    /// Bearer tokens must not cross a network in clear text: a non-loopback listener needs TLS
    /// unless the operator says otherwise (e.g. behind a TLS-terminating proxy on the same host).
    pub fn validate(&self) -> Result<()> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure_http {
            return Err(Error::invalid(
                "insecure_listen",
                format!(
                    "refusing to serve plain HTTP on non-loopback address {}: configure --tls-cert/--tls-key, \
                     or pass --insecure-http if a TLS proxy fronts this port",
                    self.listen
                ),
            ));
        }
        if let Some(tls) = &self.tls {
            for p in [&tls.cert, &tls.key] {
                if !p.is_file() {
                    return Err(Error::invalid(
                        "tls_file_missing",
                        format!("{} is not a readable file", p.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What one slow, idle or greedy client may hold, so that it cannot take the service down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From a connection's accept (or the end of its TLS handshake) until its first request head
    /// is complete, and from the first byte of each later request until its head is complete.
    /// Also bounds the TLS handshake.
    pub header_read_timeout: Duration,
    /// A keep-alive connection silent between requests (no request in flight, nothing sent
    /// either way) for this long is closed.
    pub idle_timeout: Duration,
    /// From a request's head to its response: past this the client gets a `503 timeout`.
    pub request_timeout: Duration,
    /// Connections served at once. Past it, a few more (see [`Limits::reserved_connections`]) are
    /// accepted for `/healthz` and `/readyz` only and every other path gets `503 overloaded`;
    /// past those, a new connection is closed at once.
    pub max_connections: usize,
}

/// File descriptors left for everything that is not a client connection (database, data
/// directory files, CA keys, logs).
pub const FD_HEADROOM: u64 = 256;
/// The most connections served by default, whatever the descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time allowed for a request's headers to arrive.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default time an idle connection is kept open.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default time allowed for a whole request.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

impl Limits {
    /// The slice kept beyond [`Limits::max_connections`] for health probes (and for telling
    /// other clients fast that the service is overloaded): a sixteenth, at least 8, at most 64.
    pub fn reserved_connections(&self) -> usize {
        (self.max_connections / 16).clamp(8, 64)
    }

    /// Every connection this server may hold, served or reserved.
    pub fn total_connections(&self) -> usize {
        self.max_connections + self.reserved_connections()
    }

    /// Refuse limits that are zero or out of their range, naming the flag.
    pub fn validate(&self) -> Result<()> {
        for (name, d) in [
            ("header-read-timeout-secs", self.header_read_timeout),
            ("idle-timeout-secs", self.idle_timeout),
            ("request-timeout-secs", self.request_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(86_400) {
                return Err(Error::invalid(
                    "invalid_limit",
                    format!("--{name} must be between 1 and 86400"),
                ));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(Error::invalid(
                "invalid_limit",
                "--max-connections must be between 1 and 1000000",
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_connections: default_max_connections(open_files_limit()),
        }
    }
}

/// The soft limit on open files (RLIMIT_NOFILE), if there is one.
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// [`DEFAULT_MAX_CONNECTIONS`], or fewer when the descriptor limit would not hold them with the
/// reserved slice and [`FD_HEADROOM`] beside them.
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    let cap = DEFAULT_MAX_CONNECTIONS as u64;
    let usable = open_files.map_or(cap + 64, |n| n.saturating_sub(FD_HEADROOM));
    // The reserved slice is at most 64 (see Limits::reserved_connections).
    let fit = usable.saturating_sub(64).clamp(16, cap);
    usize::try_from(fit).unwrap_or(DEFAULT_MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_http_or_https_with_a_host() {
        for ok in [
            "http://ra.example.org/",
            "https://ra.example.org:8443/vouch",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/",
        ] {
            assert!(check_public_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ra.example.org",
            "ftp://ra.example.org/",
            "HTTP://ra.example.org/",
            "http://",
            "http:///path",
            "http://-ra.example.org/",
            "http://ra example.org/",
            "http://ra.example.org:99999/",
            "http://[::1/",
        ] {
            let e = check_public_url(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_public_url", "{bad}");
            assert_eq!(
                e.to_string(),
                "--public-url must be an http:// or https:// URL"
            );
        }
        assert!(check_public_url(&format!("http://a.org/{}", "x".repeat(190))).is_err());
    }

    #[test]
    fn default_connection_cap_fits_the_descriptor_limit() {
        assert_eq!(default_max_connections(None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            DEFAULT_MAX_CONNECTIONS
        );
        // A systemd service's default soft limit.
        let cap = default_max_connections(Some(1024));
        let limits = Limits {
            max_connections: cap,
            ..Limits::default()
        };
        assert_eq!(cap, 1024 - 256 - 64);
        assert!(limits.total_connections() as u64 + FD_HEADROOM <= 1024);
        // A tiny limit still serves someone.
        assert_eq!(default_max_connections(Some(100)), 16);
    }

    #[test]
    fn reserved_slice_is_bounded() {
        let with = |n| Limits {
            max_connections: n,
            ..Limits::default()
        };
        assert_eq!(with(20).reserved_connections(), 8);
        assert_eq!(with(704).reserved_connections(), 44);
        assert_eq!(with(4096).reserved_connections(), 64);
        assert!(with(0).validate().is_err());
        assert!(with(20).validate().is_ok());
    }

    fn cfg(listen: &str, insecure: bool) -> ServeConfig {
        ServeConfig {
            data_dir: DEFAULT_DATA_DIR.into(),
            listen: listen.parse().unwrap(),
            insecure_http: insecure,
            tls: None,
        }
    }

    #[test]
    fn non_loopback_plain_http_needs_explicit_flag() {
        assert!(cfg("127.0.0.1:8080", false).validate().is_ok());
        assert!(cfg("[::1]:8080", false).validate().is_ok());
        assert_eq!(
            cfg("0.0.0.0:8080", false).validate().unwrap_err().code(),
            "insecure_listen"
        );
        assert!(cfg("0.0.0.0:8080", true).validate().is_ok());
    }

    #[test]
    fn listen_takes_a_port_alone_and_host_names() {
        assert_eq!(
            parse_listen("8081").unwrap(),
            "127.0.0.1:8081".parse().unwrap()
        );
        assert_eq!(parse_listen("0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            parse_listen("localhost:8081").unwrap(),
            "127.0.0.1:8081".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:8081").unwrap(),
            "[::1]:8081".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        for bad in [
            "",
            "99999",
            "localhost",
            "localhost:http",
            ":8080",
            "host:99999",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
        // A resolved loopback name passes the plain-HTTP check like the address itself.
        let config = ServeConfig {
            listen: parse_listen("localhost:8081").unwrap(),
            ..cfg("127.0.0.1:1", false)
        };
        assert!(config.validate().is_ok());
    }
}
