//! Self-revocation: a subscriber revokes their own certificate with a statement signed by its
//! key, without a token. Rate-limited across all callers; each statement works once.

use super::revocation::{parse_time, revoke_in, serial_of, RevocationOutcome};
use super::Ra;
use crate::error::{Error, Result};
use crate::store::certificates as rows;
use crate::store::{job, Committed};
use crate::x509::revocation::Reason;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use time::Duration;

/// Self-revocations accepted per second, across all callers (they need no token).
pub const SELF_REVOCATIONS_PER_SECOND: u32 = 20;
/// How old a signed self-revocation statement may be (and how far in the future its clock may be).
pub const STATEMENT_MAX_AGE: Duration = Duration::minutes(5);
/// How far ahead of ours the clock that dated a statement may be.
pub const STATEMENT_MAX_SKEW: Duration = Duration::minutes(1);
/// Reasons a subscriber may give for revoking their own certificate.
const SUBSCRIBER_REASONS: [Reason; 5] = [
    Reason::Unspecified,
    Reason::KeyCompromise,
    Reason::AffiliationChanged,
    Reason::Superseded,
    Reason::CessationOfOperation,
];

/// [`SELF_REVOCATIONS_PER_SECOND`] as the non-zero count the rate limiter takes (checked when
/// compiling: a zero would fail the build, never a request).
const PER_SECOND: NonZeroU32 = match NonZeroU32::new(SELF_REVOCATIONS_PER_SECOND) {
    Some(n) => n,
    None => panic!("SELF_REVOCATIONS_PER_SECOND must not be zero"),
};

/// The limit on self-revocations across all callers: [`SELF_REVOCATIONS_PER_SECOND`] a second,
/// in bursts of up to as many.
pub(crate) struct RateLimit(DefaultDirectRateLimiter);

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit(RateLimiter::direct(Quota::per_second(PER_SECOND)))
    }
}

impl RateLimit {
    /// Whether one more self-revocation may go ahead now.
    fn allow(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// What a subscriber signs to revoke their own certificate.
#[derive(serde::Deserialize)]
struct Statement {
    serial: String,
    reason: String,
    time: String,
}

impl Ra {
    /// Self-revocation: a CMS SignedData over `{"serial", "reason", "time"}`, signed with the key of
    /// that very certificate, and recent. No token; rate-limited; each statement works once.
    pub async fn revoke_by_key(&self, body: &[u8]) -> Result<RevocationOutcome> {
        if !self.self_revocation_limit().allow() {
            return Err(Error::RateLimited(
                "too many self-revocations; try again in a second".into(),
            ));
        }
        let refuse = |code: &'static str, message: &str| Error::refused(code, message.to_string());
        let content = crate::x509::cms::content(body)?;
        let statement: Statement = serde_json::from_slice(&content).map_err(|_| {
            Error::invalid(
                "invalid_statement",
                "the signed content must be JSON {\"serial\", \"reason\", \"time\"}",
            )
        })?;
        let serial = serial_of(&statement.serial)?;
        let reason = Reason::parse(&statement.reason)?;
        if !SUBSCRIBER_REASONS.contains(&reason) {
            return Err(refuse("reason_not_allowed", "a subscriber may give unspecified, keyCompromise, affiliationChanged, superseded or cessationOfOperation"));
        }
        let now = self.now();
        let signed_at = parse_time("time", &statement.time)?;
        if signed_at < now - STATEMENT_MAX_AGE || signed_at > now + STATEMENT_MAX_SKEW {
            return Err(refuse(
                "stale_statement",
                "the statement's time must be within the last 5 minutes",
            ));
        }
        let cert = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
        };
        if !crate::x509::cms::signed_by(body, &cert.der)? {
            let details = serde_json::json!({"serial": serial, "error": "not_key_holder"});
            self.audit_refusal(
                None,
                crate::audit::Action::RevocationByKeyRefused,
                Some(&serial),
                details,
            )
            .await;
            return Err(Error::forbidden(
                "not_key_holder",
                "the statement is not signed with this certificate's key",
            ));
        }
        let digest = crate::x509::sha256_hex(body);
        let (target, key, actor) = (
            serial.clone(),
            cert.key_sha256.clone(),
            format!("subscriber:{serial}"),
        );
        let revoked = self
            .store()
            .write(job!(|c, log| {
                if !rows::use_statement(c, &digest, &target, now.unix_timestamp()).await? {
                    return Ok(Committed::Refused(Error::conflict(
                        "replayed",
                        "this signed statement was used already",
                    )));
                }
                let comment =
                    Some("revoked by the subscriber with proof of key possession".to_string());
                Ok(Committed::Done(
                    revoke_in(c, log, now, &actor, &target, &key, reason, None, comment).await?,
                ))
            }))
            .await?
            .into_result()?;
        self.revoked_outcome(None, serial, reason, revoked).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_go_ahead_at_once_and_the_next_is_refused() {
        let limit = RateLimit::default();
        for n in 0..SELF_REVOCATIONS_PER_SECOND {
            assert!(limit.allow(), "attempt {n} of a burst was refused");
        }
        assert!(
            !limit.allow(),
            "a 21st attempt within the second went ahead"
        );
    }
}
