//! Revocations of certificates a remote CA issued, forwarded to that CA. Vouch's own record
//! changes first (the local status is revoked at once, in the revoking transaction); the CA is
//! told afterwards, and each forward is audited, failed ones with the CA's error. A failed
//! forward is not retried here (see docs/OPERATIONS.md, "Upstream CAs").

use super::Ra;
use crate::audit::Action;
use crate::ca::CaError;
use crate::store::certificates as rows;
use crate::x509::revocation::Reason;
use time::OffsetDateTime;

impl Ra {
    /// Tell the remote CA of each of `serials` (those the embedded CA issued are skipped: Vouch
    /// publishes their status itself) that it is revoked for `reason` (certificateHold: on
    /// hold) since `time`. Returns, for the caller to show, one message per forward that failed.
    pub(crate) async fn forward_revocations(
        &self,
        by: Option<&str>,
        serials: &[String],
        reason: Reason,
        time: OffsetDateTime,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for serial in serials {
            let ca_id = match self.store().read().await {
                Ok(mut c) => match rows::get(&mut c, serial).await {
                    Ok(Some(row)) => row.ca_id,
                    Ok(None) => continue,
                    Err(e) => {
                        failures.push(
                            self.forward_failed(by, serial, "?", reason, e.to_string())
                                .await,
                        );
                        continue;
                    }
                },
                Err(e) => {
                    failures.push(
                        self.forward_failed(by, serial, "?", reason, e.to_string())
                            .await,
                    );
                    continue;
                }
            };
            if self.is_embedded(&ca_id) {
                continue;
            }
            let Some(ca) = self.ca_by_id(&ca_id) else {
                let why = format!("the CA {ca_id} is not configured (upstream.toml)");
                failures.push(self.forward_failed(by, serial, &ca_id, reason, why).await);
                continue;
            };
            match ca.revoke(serial, reason, time).await {
                Ok(()) => {
                    let details = serde_json::json!({"ca": ca_id, "reason": reason.as_str()});
                    self.audit_refusal(
                        by,
                        Action::CertificateRevocationForwarded,
                        Some(serial),
                        details,
                    )
                    .await;
                }
                Err(CaError::Refused(m) | CaError::Unavailable(m)) => {
                    failures.push(self.forward_failed(by, serial, &ca_id, reason, m).await);
                }
            }
        }
        failures
    }

    /// Audit (and log) a forward that failed; returns the message for the caller.
    async fn forward_failed(
        &self,
        by: Option<&str>,
        serial: &str,
        ca_id: &str,
        reason: Reason,
        error: String,
    ) -> String {
        tracing::error!(%serial, ca = %ca_id, %error, "could not forward a revocation to the CA that issued the certificate");
        let details = serde_json::json!({"ca": ca_id, "reason": reason.as_str(), "error": error});
        self.audit_refusal(
            by,
            Action::CertificateRevocationForwardFailed,
            Some(serial),
            details,
        )
        .await;
        format!("the revocation of {serial} was recorded, but the CA {ca_id} was not told: {error}")
    }
}
