//! Typed configuration, validated before anything starts.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_DATA_DIR: &str = "./vouch-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Explicit permission to serve plain HTTP on a non-loopback address.
    pub insecure_http: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
