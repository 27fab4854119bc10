//! A remote CA that did not answer when the service started. The service starts anyway, as long
//! as it has the CA's chain from an earlier start (kept in `<data-dir>/upstream-chains/<id>.pem`
//! each time the CA is reached): the certificates that CA issued keep their chain in the API,
//! requests for its profiles are taken and approved, and their issuance waits, with the reason
//! shown on the request, until the CA answers. Each call that needs the CA tries to reach it again,
//! at most once per [`RECONNECT_INTERVAL`]; once it answers, the real adapter takes over for good.
//! A CA never reached before still stops the start: there is no chain to serve.

use super::remote_crl::CrlSource;
use super::upstream_config::CaEntry;
use super::{CaCertificate, CaChain, CaError, IssueOrder, Keep, UpstreamCa};
use crate::x509::revocation::Reason;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The shortest wait between two attempts to reach a CA that did not answer.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(15);

/// Where the chain of the CA `id` is kept.
pub fn chain_file(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("upstream-chains").join(format!("{id}.pem"))
}

/// Keep `ca`'s chain for the next start (PEM, the issuing CA first). A failure is logged: it
/// only costs the next start its fallback.
pub fn save_chain(data_dir: &Path, ca: &dyn UpstreamCa) {
    let file = chain_file(data_dir, ca.issuing_id());
    let pem: String = ca
        .chain()
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.der.clone())))
        .collect();
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let tmp = file.with_extension("pem.tmp");
            std::fs::write(&tmp, pem)?;
            std::fs::rename(&tmp, &file)
        });
    if let Err(e) = written {
        tracing::warn!(ca = %ca.issuing_id(), file = %file.display(), error = %e, "could not keep the CA chain");
    }
}

/// The chain kept for `id`, if there is one that reads.
fn load_chain(data_dir: &Path, id: &str) -> Option<(CaChain, OffsetDateTime)> {
    let text = std::fs::read(chain_file(data_dir, id)).ok()?;
    let mut certs = pem::parse_many(text)
        .ok()?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CaCertificate {
            id: id.to_string(),
            der: p.into_contents(),
        });
    let issuing = certs.next()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&issuing.der).ok()?;
    let not_after =
        OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp()).ok()?;
    Some((CaChain::new(issuing, certs.collect()), not_after))
}

/// The CA of `entry`, not reached yet.
pub struct Standby {
    entry: CaEntry,
    data_dir: PathBuf,
    chain: Arc<CaChain>,
    not_after: OffsetDateTime,
    live: OnceLock<Arc<dyn UpstreamCa>>,
    connecting: tokio::sync::Mutex<()>,
    /// When the CA may be tried again, and why the last attempt failed.
    last: Mutex<(Instant, String)>,
}

impl Standby {
    /// A stand-in for the CA of `entry`, which failed with `error` just now; None when no chain
    /// was kept for it.
    pub fn new(entry: CaEntry, data_dir: &Path, error: String) -> Option<Standby> {
        let (chain, not_after) = load_chain(data_dir, &entry.id)?;
        Some(Standby {
            entry,
            data_dir: data_dir.to_path_buf(),
            chain: Arc::new(chain),
            not_after,
            live: OnceLock::new(),
            connecting: tokio::sync::Mutex::new(()),
            last: Mutex::new((Instant::now() + RECONNECT_INTERVAL, error)),
        })
    }

    /// The real adapter: reached before, or now (at most once per [`RECONNECT_INTERVAL`]).
    async fn live(&self) -> Result<&Arc<dyn UpstreamCa>, CaError> {
        if let Some(ca) = self.live.get() {
            return Ok(ca);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(ca) = self.live.get() {
            return Ok(ca);
        }
        {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if Instant::now() < last.0 {
                return Err(self.unavailable(&last.1));
            }
        }
        match super::upstreams::connect(&self.entry).await {
            Ok(ca) => {
                tracing::info!(ca = %self.entry.id, "upstream CA reached: it now serves its profiles");
                save_chain(&self.data_dir, ca.as_ref());
                Ok(self.live.get_or_init(|| ca))
            }
            Err(CaError::Refused(m) | CaError::Unavailable(m)) => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                *last = (Instant::now() + RECONNECT_INTERVAL, m.clone());
                Err(self.unavailable(&m))
            }
        }
    }

    fn unavailable(&self, why: &str) -> CaError {
        CaError::Unavailable(format!(
            "the CA {} has not been reached since the service started: {why}",
            self.entry.id
        ))
    }
}

#[async_trait]
impl UpstreamCa for Standby {
    fn issuing_id(&self) -> &str {
        &self.entry.id
    }

    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        self.live().await?.issue(order).await
    }

    async fn issue_kept(&self, order: &IssueOrder, keep: &Keep<'_>) -> Result<Vec<u8>, CaError> {
        self.live().await?.issue_kept(order, keep).await
    }

    async fn find_issued(&self, order: &IssueOrder) -> Result<Option<Vec<u8>>, CaError> {
        self.live().await?.find_issued(order).await
    }

    fn check(&self, order: &IssueOrder) -> Result<(), CaError> {
        // Before the CA answers, its local checks run at issuance instead (the adapter makes them
        // again there).
        self.live.get().map_or(Ok(()), |ca| ca.check(order))
    }

    fn chain(&self) -> Arc<CaChain> {
        self.live
            .get()
            .map_or_else(|| self.chain.clone(), |ca| ca.chain())
    }

    fn max_not_after(&self) -> OffsetDateTime {
        self.live
            .get()
            .map_or(self.not_after, |ca| ca.max_not_after())
    }

    fn picks_serial(&self) -> bool {
        // Both remote kinds pick serials; the adapter has the last word once reached.
        self.live.get().is_none_or(|ca| ca.picks_serial())
    }

    fn attempt_limit(&self) -> std::time::Duration {
        self.live
            .get()
            .map_or_else(|| self.entry.kind.attempt_limit(), |ca| ca.attempt_limit())
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: Reason,
        time: OffsetDateTime,
    ) -> Result<(), CaError> {
        self.live().await?.revoke(serial, reason, time).await
    }

    async fn check_credentials(&self) -> Result<(), CaError> {
        self.live().await?.check_credentials().await
    }

    fn crl_source(&self) -> Option<&CrlSource> {
        self.live.get().and_then(|ca| ca.crl_source())
    }

    fn ocsp_source(&self) -> Option<&super::remote_ocsp::OcspSource> {
        self.live.get().and_then(|ca| ca.ocsp_source())
    }

    async fn release(&self, serial: &str) -> Result<(), CaError> {
        self.live().await?.release(serial).await
    }

    fn unreached(&self) -> Option<String> {
        if self.live.get().is_some() {
            return None;
        }
        Some(
            self.last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .clone(),
        )
    }
}
