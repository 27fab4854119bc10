//! CFSSL's HTTP API on the wire: the authenticated request, its HMAC token, and calls that are
//! bounded in time and size and whose failures are typed and name the CA.

use crate::ca::CaError;
use base64::Engine;

/// Most bytes read from one CFSSL answer.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most characters of a CA's own error message passed on.
const MAX_MESSAGE_CHARS: usize = 500;

/// HMAC-SHA256 of `request` under `key`: the `token` of CFSSL's `auth_key` provider.
pub fn token(key: &[u8], request: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = openssl::pkey::PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(request)?;
    signer.sign_to_vec()
}

/// CFSSL's AuthenticatedRequest: `token` and `request` as base64 (Go's encoding of `[]byte`).
pub fn authenticated(token: &[u8], request: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "token": b64.encode(token),
        "request": b64.encode(request),
    })
    .to_string()
    .into_bytes()
}

/// An HTTP client for one CA.
pub struct Client {
    id: String,
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the CA `id` at `base` whose calls take at most `timeout` in all.
    pub fn new(id: &str, base: url::Url, timeout: std::time::Duration) -> Result<Client, CaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(super::CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CaError::Unavailable(format!("HTTP client for the CA {id}: {e}")))?;
        Ok(Client {
            id: id.to_string(),
            base: base.as_str().trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The CA's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// POST `body` (JSON) to `/api/v1/cfssl/{endpoint}`; returns the answer's `result`.
    pub async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<serde_json::Value, CaError> {
        let url = format!("{}/api/v1/cfssl/{endpoint}", self.base);
        let id = &self.id;
        let unreachable = |e: &dyn std::fmt::Display| {
            CaError::Unavailable(format!("the CA {id} is unreachable at {url}: {e}"))
        };
        let mut response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(&without_url(e)))?;
        let status = response.status();
        let bytes = read_bounded(&mut response, MAX_RESPONSE_BYTES, id, &url).await?;
        let answer: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let message = answer.as_ref().and_then(error_message).unwrap_or_else(|| {
            clean(&String::from_utf8_lossy(
                &bytes[..bytes.len().min(MAX_MESSAGE_CHARS)],
            ))
        });
        if status.is_server_error() {
            return Err(CaError::Unavailable(format!(
                "the CA {id} failed at {url} (HTTP {}): {message}",
                status.as_u16()
            )));
        }
        if !status.is_success() && answer.as_ref().is_some_and(store_failed) {
            // The CA's database failed (CFSSL signs, then stores; a failed store delivers
            // nothing): not the order's fault; tried again later.
            return Err(CaError::Unavailable(format!(
                "the CA {id}'s certificate database failed (HTTP {} from {url}): {message}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(CaError::Refused(format!(
                "the CA {id} refused (HTTP {} from {url}): {message}",
                status.as_u16()
            )));
        }
        let Some(answer) = answer else {
            return Err(CaError::Unavailable(format!(
                "the CA {id} sent an answer that is not JSON from {url}"
            )));
        };
        if answer.get("success").and_then(|s| s.as_bool()) != Some(true) {
            return Err(CaError::Refused(format!(
                "the CA {id} refused ({url}): {message}"
            )));
        }
        Ok(answer
            .get("result")
            .cloned()
            .unwrap_or(serde_json::Value::Null))
    }
}

/// The body of `response` from the CA `id` at `url`, at most `max` bytes (also used by the CMP
/// transport).
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    max: usize,
    id: &str,
    url: &str,
) -> Result<Vec<u8>, CaError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        CaError::Unavailable(format!(
            "the CA {id} is unreachable at {url}: {}",
            without_url(e)
        ))
    })? {
        if bytes.len() + chunk.len() > max {
            return Err(CaError::Unavailable(format!(
                "the CA {id} sent more than {max} bytes from {url}"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// reqwest's error without the URL it would repeat (also used by the CMP transport).
pub(crate) fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(&e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", clean(&detail))
    }
}

/// Whether CFSSL's answer is a failure of its certificate database (CertStoreError, codes
/// 11000-11999, e.g. an insert refused for a serial it already holds), other than "record not
/// found" (11200), which is an answer about the request.
fn store_failed(answer: &serde_json::Value) -> bool {
    answer
        .get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.get("code")
                    .and_then(|c| c.as_i64())
                    .is_some_and(|c| (11000..12000).contains(&c) && c != 11200)
            })
        })
}

/// CFSSL's `errors[].message` (with its code), joined.
fn error_message(answer: &serde_json::Value) -> Option<String> {
    let errors = answer.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let m = e.get("message")?.as_str()?;
            let code = e.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
            Some(format!("{} (code {code})", clean(m)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A message from the CA, safe to log and show: no control characters, bounded (also used for a
/// CMP CA's words).
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_hmac_sha256_of_the_request_bytes() {
        // RFC 4231 test case 2.
        let t = token(b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(
            hex::encode(t),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&authenticated(&[1, 2], b"{}")).unwrap();
        assert_eq!(body["token"], "AQI=");
        assert_eq!(body["request"], "e30=");
    }

    #[test]
    fn the_cas_messages_are_read_and_cleaned() {
        let answer = serde_json::json!({"success": false, "result": null,
            "errors": [{"code": 400, "message": "invalid\ntoken"}]});
        assert_eq!(error_message(&answer).unwrap(), "invalidtoken (code 400)");
    }
}
