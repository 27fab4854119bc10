//! An upstream CA for tests that delegates to the embedded one, with what goes wrong chosen by a
//! [`Mode`]: an outage (for good or once), a refusal at signing or at the submission check, or a
//! signing that waits for the test.

use super::{Options, TestApp, WrapCa};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use vouch::ca::local::LocalCa;
use vouch::ca::{CaChain, CaError, CrlOrder, IssueOrder, PublishingCa, UpstreamCa};

/// How the test CA behaves.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// Signs nothing: the CA is down.
    Down,
    /// Down for the first signing only, then signs.
    DownOnce,
    /// Accepts the order at submission, refuses it when asked to sign.
    RefuseAtSigning,
    /// Refuses the order already when asked to check it.
    RefuseAtCheck,
    /// Waits for `release` before signing.
    Slow,
}

/// What a test sees of its CA: how often it was asked to sign, and (in [`Mode::Slow`]) the
/// signing's start and the release that lets it finish.
#[derive(Clone, Default)]
pub struct Probes {
    /// Signing calls so far.
    pub calls: Arc<AtomicUsize>,
    /// Notified when a slow signing has begun.
    pub entered: Arc<Notify>,
    /// Notify it to let a slow signing finish.
    pub release: Arc<Notify>,
}

/// The embedded CA behind a [`Mode`].
pub struct TestCa {
    inner: LocalCa,
    mode: Mode,
    probes: Probes,
}

impl TestCa {
    /// A `wrap_ca` for [`Options`] that puts the embedded CA behind `mode`, and its probes.
    pub fn wrap(mode: Mode) -> (WrapCa, Probes) {
        let probes = Probes::default();
        let theirs = probes.clone();
        let wrap: WrapCa = Box::new(move |inner| {
            Arc::new(TestCa {
                inner,
                mode,
                probes: theirs,
            })
        });
        (wrap, probes)
    }
}

/// A test server whose CA behaves as `mode`, and the probes into that CA.
pub async fn spawn(mode: Mode) -> (TestApp, Probes) {
    let (wrap, probes) = TestCa::wrap(mode);
    let app = TestApp::spawn_with(Options {
        wrap_ca: Some(wrap),
        ..Options::default()
    })
    .await;
    (app, probes)
}

#[async_trait]
impl UpstreamCa for TestCa {
    fn issuing_id(&self) -> &str {
        self.inner.issuing_id()
    }
    async fn issue(&self, order: &IssueOrder) -> Result<Vec<u8>, CaError> {
        let earlier = self.probes.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Down => Err(CaError::Unavailable("connection refused".into())),
            Mode::DownOnce if earlier == 0 => Err(CaError::Unavailable("injected outage".into())),
            Mode::DownOnce | Mode::RefuseAtCheck => self.inner.issue(order).await,
            Mode::RefuseAtSigning => Err(CaError::Refused(
                "certificate profile not permitted for this RA".into(),
            )),
            Mode::Slow => {
                self.probes.entered.notify_one();
                self.probes.release.notified().await;
                self.inner.issue(order).await
            }
        }
    }
    fn check(&self, order: &IssueOrder) -> Result<(), CaError> {
        if self.mode == Mode::RefuseAtCheck {
            return Err(CaError::Refused("subject organisation not allowed".into()));
        }
        self.inner.check(order)
    }
    fn chain(&self) -> std::sync::Arc<CaChain> {
        self.inner.chain()
    }
    fn max_not_after(&self) -> time::OffsetDateTime {
        self.inner.max_not_after()
    }
    async fn revoke(
        &self,
        serial: &str,
        reason: vouch::x509::revocation::Reason,
        time: time::OffsetDateTime,
    ) -> Result<(), CaError> {
        self.inner.revoke(serial, reason, time).await
    }
}

#[async_trait]
impl PublishingCa for TestCa {
    async fn sign_crl(&self, order: &CrlOrder) -> Result<Vec<u8>, CaError> {
        self.inner.sign_crl(order).await
    }
    async fn issue_ocsp_responder(
        &self,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
        self.inner.issue_ocsp_responder(not_before, not_after).await
    }
    async fn issue_receipt_signer(
        &self,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
        self.inner.issue_receipt_signer(not_before, not_after).await
    }
}
