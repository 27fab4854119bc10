//! What an [`Ra`](super::Ra) is configured with. It arrives whole at construction
//! ([`Ra::new`](super::Ra::new)); nothing is set later, so no setting depends on call order.

use super::root::ArlSettings;
use crate::ca::aa::AttributeAuthority;
use crate::ca::local::LocalCa;
use crate::x509::ac::AttributeNames;
use std::sync::Arc;
use time::Duration;

/// The settings of one RA. [`RaConfig::default`] is a server with no public URL (certificates
/// name no CRL, OCSP or CA-certificate URLs), 24-hour CRLs, the default ARL settings, no embedded
/// CA, a 64 MiB OCSP answer cache, no attribute authority and the default attribute namespace.
#[derive(Clone)]
pub struct RaConfig {
    /// The base URL relying parties reach this RA at: issued certificates name their CRL, OCSP and
    /// CA-certificate URLs under it (a trailing `/` is dropped). `app::start` fills in the address
    /// it listens on when none is given.
    pub public_url: Option<String>,
    /// Whether `public_url` was given by the operator (`--public-url`) rather than taken from the
    /// listening address: only a given one is reason to re-issue a CA certificate that names other
    /// URLs.
    pub public_url_given: bool,
    /// How long a full CRL is valid (nextUpdate - thisUpdate).
    pub crl_validity: Duration,
    /// ARL validity and warning margin.
    pub arl: ArlSettings,
    /// The embedded CA, for the root's own duties (ARL, issuing CA certificate); none with a
    /// remote CA.
    pub embedded_ca: Option<Arc<LocalCa>>,
    /// Memory kept for signed OCSP answers, in bytes.
    pub ocsp_cache_bytes: u64,
    /// The attribute authority (signs attribute certificates and the AC CRL); none when the data
    /// directory has none yet (the root key offline when it was first needed).
    pub attribute_authority: Option<Arc<AttributeAuthority>>,
    /// How role and application names become URIs (`attribute_namespace` in `vouch.toml`).
    pub attribute_names: AttributeNames,
    /// The TSA certificates (DER) whose RFC 3161 timestamps the verification API trusts
    /// (`<data-dir>/tsa/*.pem`).
    pub tsa_anchors: Vec<Vec<u8>>,
    /// Root certificates (DER) of other CAs whose subscribers' signatures the verification API
    /// accepts (`<data-dir>/anchors/*.pem`), their status read from the CRLs they name.
    pub trust_anchors: Vec<Vec<u8>>,
    /// The remote CAs of `<data-dir>/upstream.toml` and the profiles each signs; none: the
    /// embedded CA signs everything.
    pub upstreams: crate::ca::upstreams::Upstreams,
    /// When failed CA calls (issuance, revocation forwards) are tried again.
    pub retry: RetrySchedule,
    /// Where the answers of remote CAs are kept until the database has recorded them
    /// (`<data-dir>/issuance-journal`, see [`super::journal`]); none: not kept.
    pub issuance_journal: Option<std::path::PathBuf>,
    /// How often the remote CAs' CRLs are read for the status of what they issued
    /// (`--upstream-crl-interval-secs`; see [`super::upstream_status`]).
    pub upstream_crl_interval: std::time::Duration,
    /// How long a remote CA's OCSP answer about a certificate stands before its responder is
    /// asked again (`--upstream-ocsp-reuse-secs`; see [`super::upstream_ocsp`]).
    pub upstream_ocsp_reuse: std::time::Duration,
    /// The key that seals operators' TOTP secrets in the database (`<data-dir>/console.key`);
    /// none: a random key held in memory (enrolments do not survive a restart).
    pub console_key: Option<Arc<super::console::SealKey>>,
    /// Whether this server itself serves TLS (`--tls-cert`/`--tls-key`): the console's cookies
    /// are then Secure even without an https `--public-url`.
    pub tls: bool,
}

/// How often the remote CAs' CRLs are read by default: 15 minutes.
pub const DEFAULT_UPSTREAM_CRL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(900);

/// When failed calls to a CA are tried again: issuance intents of approved requests, and
/// revocations to forward to a remote CA. The first retry is at the next round of the background
/// task; then the wait is `backoff`, doubled after each further failure, at most `backoff_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// How often the background task looks for retries that are due (`--retry-interval-secs`).
    pub interval: std::time::Duration,
    /// The wait after the second failed attempt (`--retry-backoff-secs`).
    pub backoff: Duration,
    /// The longest wait (`--retry-backoff-max-secs`).
    pub backoff_max: Duration,
    /// Issuance intents younger than this are left to the approval that recorded them, which may
    /// still be waiting for its CA (`--retry-min-age-secs`).
    pub min_age: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            interval: std::time::Duration::from_secs(30),
            backoff: Duration::minutes(1),
            backoff_max: Duration::hours(1),
            min_age: Duration::minutes(1),
        }
    }
}

impl RetrySchedule {
    /// How long to wait before the next attempt after `attempts` failed ones: none after the
    /// first (the next round takes it), then `backoff`, doubled each time, at most
    /// `backoff_max`.
    pub fn delay(&self, attempts: i64) -> Duration {
        if attempts <= 1 {
            return Duration::ZERO;
        }
        let factor = 1i64 << (attempts - 2).clamp(0, 30);
        let seconds = self.backoff.whole_seconds().saturating_mul(factor);
        Duration::seconds(seconds.min(self.backoff_max.whole_seconds()))
    }
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            public_url: None,
            public_url_given: false,
            crl_validity: super::publish::CRL_VALIDITY,
            arl: ArlSettings::default(),
            embedded_ca: None,
            ocsp_cache_bytes: super::ocsp::DEFAULT_CACHE_MB << 20,
            attribute_authority: None,
            attribute_names: AttributeNames::default(),
            tsa_anchors: Vec::new(),
            trust_anchors: Vec::new(),
            upstreams: Default::default(),
            retry: RetrySchedule::default(),
            issuance_journal: None,
            upstream_crl_interval: DEFAULT_UPSTREAM_CRL_INTERVAL,
            upstream_ocsp_reuse: super::upstream_ocsp::DEFAULT_OCSP_REUSE,
            console_key: None,
            tls: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_its_base_up_to_its_cap() {
        let s = RetrySchedule {
            backoff: Duration::seconds(5),
            backoff_max: Duration::seconds(30),
            ..RetrySchedule::default()
        };
        let waits: Vec<i64> = (1..=7).map(|n| s.delay(n).whole_seconds()).collect();
        assert_eq!(waits, [0, 5, 10, 20, 30, 30, 30]);
        // No overflow however many attempts failed.
        assert_eq!(s.delay(i64::MAX).whole_seconds(), 30);
    }
}
