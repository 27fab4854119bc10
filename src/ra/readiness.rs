//! Whether this instance can serve, as `/readyz` reports it: the database answers and its writer
//! runs, the audit chain's head is sound (or its breaks acknowledged), and, as news for operators
//! rather than a reason to stop, the root CA's state.

use super::root::RootStatus;
use super::Ra;
use crate::audit::Break;
use std::time::Duration;

/// How long the database and audit checks may take before the instance counts as not ready.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to "can this instance serve?".
#[derive(Debug)]
pub enum Readiness {
    /// It can. `root` is the embedded root CA's state (none with a remote CA, or when it could
    /// not be read: that is logged, and is no reason to stop serving OCSP answers and CRLs).
    Ready {
        /// The root CA's state and warnings.
        root: Option<RootStatus>,
        /// Remote CAs not reached since the start (id, why): their issuances wait for them.
        unreached: Vec<(String, String)>,
    },
    /// The audit chain is broken at an entry no admin has acknowledged.
    AuditChainBroken(Break),
    /// The database did not answer, or its writer did not commit.
    DatabaseUnreachable,
    /// The checks did not finish within [`READINESS_TIMEOUT`].
    TimedOut,
}

impl Ra {
    /// Check readiness: an empty write transaction and a read commit, and the audit chain's head
    /// is checked, all within [`READINESS_TIMEOUT`]; then the root CA's state is read.
    pub async fn readiness(&self) -> Readiness {
        let checks = async {
            self.store().ready().await?;
            crate::audit::health::check(self.store(), self.now()).await
        };
        match tokio::time::timeout(READINESS_TIMEOUT, checks).await {
            Ok(Ok(None)) => {
                let root = match self.root_status().await {
                    Ok(root) => root,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the root CA's state");
                        None
                    }
                };
                let unreached = self
                    .inner
                    .config
                    .upstreams
                    .iter()
                    .filter_map(|ca| Some((ca.issuing_id().to_string(), ca.unreached()?)))
                    .collect();
                Readiness::Ready { root, unreached }
            }
            Ok(Ok(Some(b))) => Readiness::AuditChainBroken(b),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready");
                Readiness::DatabaseUnreachable
            }
            Err(_) => Readiness::TimedOut,
        }
    }
}
