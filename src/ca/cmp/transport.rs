//! CMP over HTTP (RFC 6712, RFC 9483 6.1): each request is a POST of the DER PKIMessage with
//! Content-Type `application/pkixcmp`, the answer a PKIMessage with the same type. Connect and
//! total timeouts, at most [`MAX_RESPONSE_BYTES`] read, no redirects followed; for https, the
//! configured TLS trust anchor (else the system's roots).

use crate::ca::cfssl::wire::{clean, read_bounded, without_url};
use crate::ca::CaError;
use std::time::Duration;

/// The media type of CMP messages.
pub const CONTENT_TYPE: &str = "application/pkixcmp";
/// Most bytes read from one answer.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one exchange may take in all.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for one CMP server.
pub struct Transport {
    id: String,
    url: url::Url,
    http: reqwest::Client,
}

impl Transport {
    /// A client for the CA `id` at `url`, trusting `tls_anchors` (PEM) for https when given;
    /// each call may take `timeout` in all.
    pub fn new(
        id: &str,
        url: url::Url,
        tls_anchors: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Transport, CaError> {
        let unusable = |e: &dyn std::fmt::Display| {
            CaError::Unavailable(format!("HTTP client for the CA {id}: {e}"))
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = tls_anchors {
            builder = builder.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| unusable(&e))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| unusable(&e))?;
        Ok(Transport {
            id: id.to_string(),
            url,
            http,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// POST `message`; the answer's bytes. HTTP failures are `Unavailable`.
    pub async fn exchange(&self, message: Vec<u8>) -> Result<Vec<u8>, CaError> {
        let (id, url) = (&self.id, self.url.as_str());
        let unreachable = |e: &dyn std::fmt::Display| {
            CaError::Unavailable(format!("the CA {id} is unreachable at {url}: {e}"))
        };
        let mut response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(message)
            .send()
            .await
            .map_err(|e| unreachable(&without_url(e)))?;
        let status = response.status();
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = read_bounded(&mut response, MAX_RESPONSE_BYTES, id, url).await?;
        // A CMP server answers CMP errors with a PKIMessage whatever the HTTP status; anything
        // else is the HTTP server's own failure.
        if !media.eq_ignore_ascii_case(CONTENT_TYPE) {
            return Err(CaError::Unavailable(format!(
                "the CA {id} answered HTTP {} with Content-Type \"{}\" from {url}, not a CMP \
                 message",
                status.as_u16(),
                clean(&media)
            )));
        }
        Ok(bytes)
    }
}
