//! One CMP transaction: a transactionID kept for every message of it (request, pollReq,
//! certConf): random, or, for an issuance, derived from the CA and the order's reserved serial so
//! that every attempt at one request carries the same (a CA that remembers transactions can tell
//! a retry after a lost answer from a new request); a fresh senderNonce per message, the CA's last senderNonce echoed as
//! recipNonce. Every answer is read strictly and checked before its body is looked at: its
//! protection, its transactionID, its recipNonce (it must answer the message just sent), and an
//! error message becomes the CA's typed rejection.

use super::message::{self, BodyType, Outgoing, Received, NONCE_BYTES};
use super::CmpCa;
use crate::ca::CaError;

/// A transaction with the CA, for the request `what` (e.g. "ir").
pub struct Transaction<'a> {
    ca: &'a CmpCa,
    what: &'static str,
    id: [u8; NONCE_BYTES],
    server_nonce: Option<Vec<u8>>,
}

/// The transactionID of every attempt at issuing the order with reserved serial `serial` (its
/// bytes) by the CA `ca_id`: the first 16 bytes of SHA-256 over a label, the CA's id and the
/// serial. Not secret (the nonces, not the transactionID, make each message fresh).
pub fn issuance_transaction_id(ca_id: &str, serial: &[u8]) -> [u8; NONCE_BYTES] {
    let mut h = openssl::sha::Sha256::new();
    h.update(b"vouch CMP issuance transactionID\0");
    h.update(ca_id.as_bytes());
    h.update(b"\0");
    h.update(serial);
    let digest = h.finish();
    let mut id = [0u8; NONCE_BYTES];
    id.copy_from_slice(&digest[..NONCE_BYTES]);
    id
}

fn random() -> [u8; NONCE_BYTES] {
    let mut b = [0u8; NONCE_BYTES];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b);
    b
}

impl<'a> Transaction<'a> {
    /// A new transaction with `ca` for the request `what`.
    pub fn new(ca: &'a CmpCa, what: &'static str) -> Transaction<'a> {
        Transaction {
            ca,
            what,
            id: random(),
            server_nonce: None,
        }
    }

    /// A transaction for the request `what` whose transactionID is `id` (see
    /// [`issuance_transaction_id`]).
    pub fn with_id(ca: &'a CmpCa, what: &'static str, id: [u8; NONCE_BYTES]) -> Transaction<'a> {
        Transaction {
            ca,
            what,
            id,
            server_nonce: None,
        }
    }

    /// The name of the request, for messages.
    pub fn what(&self) -> &'static str {
        self.what
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> CaError {
        CaError::Unavailable(format!(
            "the CA {}'s answer to the {}: {why}",
            self.ca.id, self.what
        ))
    }

    /// Send `body` (a PKIBody, tagged) and return the CA's checked answer. `implicit_confirm`:
    /// ask for implicit confirmation.
    pub async fn send(
        &mut self,
        body: Vec<u8>,
        implicit_confirm: bool,
    ) -> Result<Received, CaError> {
        let ca = self.ca;
        let nonce = random();
        let alg = ca.protector.algorithm();
        let header = Outgoing {
            sender: &ca.sender,
            recipient: &ca.recipient,
            protection_alg: &alg,
            sender_kid: ca.sender_kid.as_deref(),
            transaction_id: &self.id,
            sender_nonce: &nonce,
            recip_nonce: self.server_nonce.as_deref(),
            implicit_confirm,
            time: time::OffsetDateTime::now_utc(),
        }
        .header();
        let part = message::protected_part(&header, &body);
        let protection = ca.protector.protect(&alg, &part).map_err(|e| {
            CaError::Unavailable(format!(
                "the {} to the CA {} cannot be protected: {e}",
                self.what, ca.id
            ))
        })?;
        let msg = message::message(&header, &body, &protection, &ca.protector.extra_certs());
        let bytes = ca.transport.exchange(msg).await?;
        let got = message::parse(&bytes)
            .map_err(|e| self.unavailable(format!("not a readable PKIMessage: {e}")))?;
        if got.pvno != 2 && got.pvno != 3 {
            return Err(self.unavailable(format!("pvno {} is not cmp2000 or cmp2021", got.pvno)));
        }
        let checked = ca.checker.check(&got);
        // A failed signature check can leave errors on OpenSSL's queue for this thread, which
        // the next TLS user (a PostgreSQL connection) would take for its own.
        crate::verify::cms::clear_openssl_errors();
        if let Err(why) = checked {
            // An unprotected or forged answer is not the CA's word: never a final refusal.
            let said = if got.body_type == BodyType::Error {
                super::body::error(&got.body)
                    .map(|s| format!(" (it says: {})", s.describe()))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            return Err(self.unavailable(format!("its protection does not check: {why}{said}")));
        }
        if got.transaction_id.as_deref() != Some(&self.id[..]) {
            return Err(self.unavailable("its transactionID is not this transaction's"));
        }
        if got.recip_nonce.as_deref() != Some(&nonce[..]) {
            return Err(self.unavailable("its recipNonce is not the senderNonce just sent"));
        }
        match &got.sender_nonce {
            Some(n) if !n.is_empty() => self.server_nonce = Some(n.clone()),
            _ => return Err(self.unavailable("it has no senderNonce")),
        }
        if got.body_type == BodyType::Error {
            let status = super::body::error(&got.body)
                .map_err(|e| self.unavailable(format!("an unreadable error message: {e}")))?;
            return Err(status.to_error(&ca.id, self.what));
        }
        Ok(got)
    }

    /// An answer with an unexpected body.
    pub fn unexpected(&self, got: &Received, wanted: &str) -> CaError {
        self.unavailable(format!(
            "a {} where a {wanted} was expected",
            got.body_type.name()
        ))
    }

    /// An answer whose body cannot be read.
    pub fn unreadable(&self, got: &Received, e: impl std::fmt::Display) -> CaError {
        self.unavailable(format!("its {} cannot be read: {e}", got.body_type.name()))
    }
}
