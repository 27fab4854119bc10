//! The RA's decisions: who may do what, vetting, the request state machine with four-eyes
//! approval, and issuance orchestration. The HTTP layer and the CLI both call into this module.
//!
//! Rooms: `subscribers` and `email` (vetting), `requests` and `approvals` (the request state
//! machine), `issuance` (intents and reconciliation), `journal` (remote CAs' answers until they
//! are recorded), `forwarding` (revocations told to remote CAs, queued until acknowledged),
//! `faults` (crash points for tests, debug builds only), `revocation`, `revocation_requests`
//! (four-eyes revocation) and `self_revocation`, `attributes` (the attribute authority's grants,
//! attribute certificates and the AC CRL), `publish` (the CRL publisher and its cache),
//! `ocsp` (the responder and its cache), `certificates`, `blocklist` and `keys` (key blocks and
//! fingerprints), `operators`, `logins` and `console` (who may do what; console passwords, TOTP and sessions), `root` (the root CA's duties), and
//! `config` ([`RaConfig`], given whole to [`Ra::new`]).

pub mod approvals;
pub mod attributes;
pub mod blocklist;
pub mod certificates;
mod claims;
pub mod config;
pub mod console;
mod email;
mod faults;
pub mod forward_admin;
mod forwarding;
pub mod issuance;
pub mod journal;
pub mod keys;
pub mod logins;
pub mod ocsp;
pub mod operator_resets;
pub mod operators;
pub mod publish;
pub mod quarantine;
pub mod readiness;
pub mod received;
pub mod requests;
pub mod revocation;
pub mod revocation_requests;
pub mod root;
pub mod self_revocation;
pub mod subscribers;
mod upstream_holds;
pub mod upstream_ocsp;
pub mod upstream_status;

use crate::audit::{self, Action, Event};
use crate::ca::{PublishingCa, UpstreamCa};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::Store;
use crate::x509::profile::Profiles;
use rand::RngCore;
use std::sync::Arc;
use time::OffsetDateTime;

pub use config::{RaConfig, RetrySchedule};
pub use operators::{Operator, Role};

/// The registration authority service. Cheap to clone.
#[derive(Clone)]
pub struct Ra {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ca: Arc<dyn PublishingCa>,
    profiles: Profiles,
    clock: SharedClock,
    tokens: operators::TokenCache,
    logins: logins::LoginLimit,
    config: RaConfig,
    crl: publish::CrlPublisher,
    ac_crl: attributes::crl::AcCrlPublisher,
    ocsp: ocsp::OcspResponder,
    verify: crate::verify::VerifyState,
    issuing: issuance::InFlight,
    self_revocations: self_revocation::RateLimit,
    arl: tokio::sync::Mutex<Option<root::CachedArl>>,
    root_warned: std::sync::Mutex<Option<std::time::Instant>>,
    journal: journal::Journal,
    crl_reads: upstream_status::CrlReads,
    ocsp_asked: upstream_ocsp::OcspAsked,
    console_key: Arc<console::SealKey>,
}

impl Ra {
    /// An RA over `store`, signing with `ca`, issuing under `profiles`, on `clock`'s time, and
    /// configured by `config` once and for all.
    pub fn new(
        store: Store,
        ca: Arc<dyn PublishingCa>,
        profiles: Profiles,
        clock: SharedClock,
        mut config: RaConfig,
    ) -> Self {
        config.public_url = config
            .public_url
            .map(|url| url.trim_end_matches('/').to_string());
        let delta_urls = match &config.public_url {
            Some(base) => vec![format!("{base}/crl/{}-delta.crl", ca.issuing_id())],
            None => Vec::new(),
        };
        Ra {
            inner: Arc::new(Inner {
                crl: publish::CrlPublisher::new(
                    store.clone(),
                    ca.clone(),
                    clock.clone(),
                    config.crl_validity,
                    delta_urls,
                ),
                ac_crl: Default::default(),
                verify: Default::default(),
                issuing: Default::default(),
                ocsp: ocsp::OcspResponder::new(store.clone(), ca.clone(), config.ocsp_cache_bytes),
                journal: journal::Journal::new(
                    config.issuance_journal.clone(),
                    !config.upstreams.is_empty(),
                ),
                console_key: config
                    .console_key
                    .clone()
                    .unwrap_or_else(|| Arc::new(console::SealKey::ephemeral())),
                config,
                store,
                ca,
                profiles,
                clock,
                tokens: Default::default(),
                logins: Default::default(),
                self_revocations: Default::default(),
                arl: Default::default(),
                root_warned: Default::default(),
                crl_reads: Default::default(),
                ocsp_asked: Default::default(),
            }),
        }
    }

    pub(crate) fn crl_reads(&self) -> &upstream_status::CrlReads {
        &self.inner.crl_reads
    }

    /// The configuration this RA was built with.
    pub fn config(&self) -> &RaConfig {
        &self.inner.config
    }

    /// The base URL relying parties reach this RA at, if it has one.
    pub fn public_url(&self) -> Option<&str> {
        self.inner.config.public_url.as_deref()
    }

    pub(crate) fn embedded_ca(&self) -> Option<Arc<crate::ca::local::LocalCa>> {
        self.inner.config.embedded_ca.clone()
    }

    pub(crate) fn arl_settings(&self) -> root::ArlSettings {
        self.inner.config.arl
    }

    pub(crate) fn arl_cache(&self) -> &tokio::sync::Mutex<Option<root::CachedArl>> {
        &self.inner.arl
    }

    pub(crate) fn root_warned(&self) -> &std::sync::Mutex<Option<std::time::Instant>> {
        &self.inner.root_warned
    }

    /// (CRL, caIssuers, OCSP) URLs for certificates of the issuing CA; empty until a public URL
    /// is set.
    pub(crate) fn publication_urls(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        match self.public_url() {
            Some(base) => {
                let id = self.ca().issuing_id();
                (
                    vec![format!("{base}/crl/{id}.crl")],
                    // DER, as RFC 5280 4.2.2.1 asks of an HTTP caIssuers URI.
                    vec![format!("{base}/ca/{id}.cer")],
                    vec![format!("{base}/ocsp")],
                )
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        }
    }

    /// The publication URLs an order to `ca` carries: Vouch's own for the embedded CA, none for a
    /// remote CA (its certificates name its own CRL and OCSP locations).
    pub(crate) fn order_urls(
        &self,
        ca: &dyn UpstreamCa,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        if self.is_embedded(ca.issuing_id()) {
            self.publication_urls()
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        }
    }

    /// Whether `ca_id` names the embedded CA.
    pub(crate) fn is_embedded(&self, ca_id: &str) -> bool {
        ca_id == self.inner.ca.issuing_id()
    }

    /// The key that seals operators' TOTP secrets.
    pub(crate) fn console_key(&self) -> Arc<console::SealKey> {
        self.inner.console_key.clone()
    }

    /// Where remote CAs' answers are kept until recorded.
    pub(crate) fn journal(&self) -> &journal::Journal {
        &self.inner.journal
    }

    pub(crate) fn ocsp_responder(&self) -> &ocsp::OcspResponder {
        &self.inner.ocsp
    }

    pub(crate) fn self_revocation_limit(&self) -> &self_revocation::RateLimit {
        &self.inner.self_revocations
    }

    pub(crate) fn verify_state(&self) -> &crate::verify::VerifyState {
        &self.inner.verify
    }

    pub(crate) fn issuing(&self) -> &issuance::InFlight {
        &self.inner.issuing
    }

    pub(crate) fn ac_crl_publisher(&self) -> &attributes::crl::AcCrlPublisher {
        &self.inner.ac_crl
    }

    pub(crate) fn crl_publisher(&self) -> &publish::CrlPublisher {
        &self.inner.crl
    }

    /// The status generation, which moves whenever a certificate status changes (see
    /// `publish::CrlPublisher`).
    pub(crate) fn status_generation(&self) -> u64 {
        self.inner.crl.generation()
    }

    pub(crate) fn tokens(&self) -> &operators::TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn logins(&self) -> &logins::LoginLimit {
        &self.inner.logins
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The embedded CA: it signs every profile no remote CA claims, and Vouch's own CRLs, OCSP
    /// responder and receipt signer.
    pub fn ca(&self) -> &dyn PublishingCa {
        self.inner.ca.as_ref()
    }

    /// The CA that signs `profile`: the remote CA of `upstream.toml` that claims it, else the
    /// embedded CA.
    pub fn ca_for_profile(&self, profile: &str) -> Arc<dyn UpstreamCa> {
        match self.inner.config.upstreams.for_profile(profile) {
            Some(ca) => ca.clone(),
            None => self.inner.ca.clone(),
        }
    }

    /// The CA with id `id` (the `ca_id` stored with intents and certificates): the embedded CA or
    /// a remote one; None when no configured CA has that id (one removed from `upstream.toml`).
    pub fn ca_by_id(&self, id: &str) -> Option<Arc<dyn UpstreamCa>> {
        if id == self.inner.ca.issuing_id() {
            return Some(self.inner.ca.clone());
        }
        self.inner.config.upstreams.by_id(id).cloned()
    }

    /// The certificate profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.inner.profiles
    }

    /// The time now, by the RA's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// Check that `op` holds `role`; a refusal is audited before it is returned.
    pub async fn authorize(
        &self,
        op: &Operator,
        role: Role,
        action: &'static str,
        target: Option<&str>,
    ) -> Result<()> {
        self.authorize_any(op, &[role], action, target).await
    }

    /// Check that `op` holds at least one of `roles`; a refusal is audited before it is returned.
    pub async fn authorize_any(
        &self,
        op: &Operator,
        roles: &[Role],
        action: &'static str,
        target: Option<&str>,
    ) -> Result<()> {
        if roles.iter().any(|r| op.has(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        self.audit_refusal(
            Some(&op.id),
            Action::AccessForbidden,
            target,
            serde_json::json!({"attempted": action, "required_roles": names, "operator": op.name}),
        )
        .await;
        let needed = match names.as_slice() {
            [one] => format!("the {one} role"),
            many => format!("one of the roles {}", many.join(", ")),
        };
        Err(Error::forbidden(
            "forbidden",
            format!("{action} requires {needed}"),
        ))
    }

    /// Record a refused attempt (or another event that changes nothing, such as a revocation
    /// forwarded upstream) in its own transaction. A failure to audit is logged, and does not
    /// turn the refusal into a different error.
    pub async fn audit_refusal(
        &self,
        actor: Option<&str>,
        action: Action,
        target: Option<&str>,
        details: serde_json::Value,
    ) {
        let (now, event) = (self.now(), Event::new(actor, action, target, details));
        let result = self
            .store()
            .write(job!(|_, log| {
                audit::record(log, now, event);
                Ok(())
            }))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, %action, "could not audit a refused attempt");
        }
    }

    /// A page of the audit log: up to `limit` (1 to 1000) entries after entry `after`; auditors only.
    pub async fn audit_page(
        &self,
        op: &Operator,
        after: i64,
        limit: i64,
    ) -> Result<Vec<audit::Entry>> {
        self.authorize(op, Role::Auditor, "audit.read", None)
            .await?;
        let mut c = self.store().read().await?;
        audit::page(&mut c, after, limit.clamp(1, 1000)).await
    }

    /// Entries matching `filter`, newest first, up to `limit` (1 to 1000); auditors only.
    pub async fn audit_search(
        &self,
        op: &Operator,
        filter: &crate::store::audit::AuditFilter,
        limit: i64,
    ) -> Result<Vec<audit::Entry>> {
        self.authorize(op, Role::Auditor, "audit.read", None)
            .await?;
        let mut c = self.store().read().await?;
        Ok(
            crate::store::audit::search(&mut c, filter, limit.clamp(1, 1000))
                .await?
                .into_iter()
                .map(audit::Entry::from)
                .collect(),
        )
    }

    /// Walk the audit hash chain and say whether it is intact; auditors only.
    pub async fn audit_verify(&self, op: &Operator) -> Result<audit::Verdict> {
        self.authorize(op, Role::Auditor, "audit.verify", None)
            .await?;
        let mut c = self.store().read().await?;
        audit::verify(&mut c).await
    }
}

/// A free-text field an operator types (a reason, a comment), trimmed: 1..=`max` characters and no
/// control characters, but for line breaks where `lines` allows them. The message names the field
/// and what is wrong with it (the character and its position, or the length).
pub(crate) fn free_text(field: &str, value: &str, max: usize, lines: bool) -> Result<String> {
    let value = value.trim();
    if let Some((i, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !(lines && *c == '\n'))
    {
        let allowed = if lines {
            "; only line breaks (U+000A) are allowed"
        } else {
            ""
        };
        return Err(Error::invalid(
            "invalid_field",
            format!(
                "{field}: contains the control character U+{:04X} at position {}{allowed}",
                c as u32,
                i + 1
            ),
        ));
    }
    let n = value.chars().count();
    if n == 0 {
        return Err(Error::invalid(
            "invalid_field",
            format!("{field}: is empty"),
        ));
    }
    if n > max {
        return Err(Error::invalid(
            "invalid_field",
            format!("{field}: {n} characters; at most {max}"),
        ));
    }
    Ok(value.to_string())
}

/// A new random identifier with a readable prefix: `req_` + 128 bits of hex.
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// RFC 3339 UTC rendering for API output.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
