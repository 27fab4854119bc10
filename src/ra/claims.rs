//! Claims on issuance intents: with several instances on one PostgreSQL database, an attempt at
//! a remote CA owns its intent for a while, so that no other instance asks the CA for the same
//! request meanwhile (docs/OPERATIONS.md, "Several instances").

use super::Ra;
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::requests::{self as rows, IntentRow};
use time::OffsetDateTime;

impl Ra {
    /// Until when an attempt starting `now` at `ca` owns its intent: twice the longest the
    /// adapter waits for an answer (timeouts, CMP polling), so that another instance sharing the
    /// database, whose reconciliation would otherwise pick the same due intent in the same round,
    /// does not ask the CA for a second certificate while the first may still arrive. 0 for the
    /// embedded CA (it signs the reserved serial, so a second attempt makes no second
    /// certificate) and on SQLite. Each instance's clock sets and reads it: instances sharing a
    /// database keep their clocks in step (NTP), well within the attempt limit.
    pub(crate) fn claim_end(&self, ca: &dyn crate::ca::UpstreamCa, now: OffsetDateTime) -> i64 {
        // On SQLite one instance serves the database (`serve.lock`): nobody to keep out, and an
        // attempt cut short by a restart is taken up at once.
        if self.is_embedded(ca.issuing_id()) || !self.store().is_postgres() {
            return 0;
        }
        let lease = ca.attempt_limit().saturating_mul(2).as_secs();
        now.unix_timestamp()
            .saturating_add(i64::try_from(lease).unwrap_or(i64::MAX))
    }

    /// Claim `intent` for this attempt at `ca` (see [`Ra::claim_end`]); false when another
    /// instance claimed it first.
    pub(super) async fn claim(
        &self,
        intent: &IntentRow,
        ca: &dyn crate::ca::UpstreamCa,
    ) -> Result<bool> {
        let now = self.now();
        let (id, ts, until) = (
            intent.request_id.clone(),
            now.unix_timestamp(),
            self.claim_end(ca, now),
        );
        self.store()
            .write(job!(|c, _log| rows::claim_intent(c, &id, ts, until).await))
            .await
    }

    /// The approval's attempt at `intent` ended with `error` before it asked the CA (its order
    /// could not be read): the claim the approval recorded is given up, so that the next round
    /// of reconciliation (any instance) may try again at once. Returns `error`.
    pub(super) async fn release_claim(&self, intent: &IntentRow, error: Error) -> Error {
        let (id, ts) = (intent.request_id.clone(), self.now().unix_timestamp());
        let released = self
            .store()
            .write(job!(|c, _log| rows::release_intent(c, &id, ts).await))
            .await;
        if let Err(e) = released {
            tracing::warn!(request = %intent.request_id, error = %e,
                "could not give up the claim on an issuance intent; it runs out by itself");
        }
        error
    }
}
