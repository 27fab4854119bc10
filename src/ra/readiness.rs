//! Whether this instance can serve, as `/readyz` reports it: the database answers and its writer
//! runs, the audit chain's head is sound (or its breaks acknowledged), and, as news for operators
//! rather than a reason to stop, the root CA's state, remote CAs not reached, and quarantined
//! certificates no admin has acknowledged.

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
        /// The root CA's state and warnings (boxed: the variant is large beside the others).
        root: Option<Box<RootStatus>>,
        /// Remote CAs not reached since the start (id, why): their issuances wait for them.
        unreached: Vec<(String, String)>,
        /// Quarantined certificates (of the newest 100) no admin has acknowledged.
        quarantined: usize,
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
                let counted =
                    tokio::time::timeout(READINESS_TIMEOUT, self.unacknowledged_quarantines());
                let quarantined = match counted.await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not count quarantined certificates");
                        0
                    }
                    Err(_) => {
                        tracing::warn!("counting quarantined certificates took too long");
                        0
                    }
                };
                Readiness::Ready {
                    root: root.map(Box::new),
                    unreached,
                    quarantined,
                }
            }
            Ok(Ok(Some(b))) => Readiness::AuditChainBroken(b),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready");
                Readiness::DatabaseUnreachable
            }
            Err(_) => Readiness::TimedOut,
        }
    }

    /// How many of the newest 100 quarantined certificates no admin has acknowledged; 0 without
    /// a remote CA (only a remote CA's answer is quarantined).
    async fn unacknowledged_quarantines(&self) -> crate::error::Result<usize> {
        if self.inner.config.upstreams.is_empty() {
            return Ok(0);
        }
        let mut c = self.store().read().await?;
        let listed = super::quarantine::newest(&mut c, 100).await?;
        Ok(listed.iter().filter(|(_, ack)| ack.is_none()).count())
    }
}
