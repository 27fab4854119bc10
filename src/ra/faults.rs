//! Fault injection for the crash tests (tests/upstream_faults.rs): a point in issuance where a
//! debug build stops for good when `VOUCH_TEST_FAULT` names it, so that a test can `kill -9` the
//! server exactly there. Compiled into debug builds only: in a release build [`at`] does nothing
//! and the variable is never read.

/// Where issuance can be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// The CA's certificate is in the issuance journal; the database has not recorded it
    /// (`VOUCH_TEST_FAULT=pause-before-record`).
    BeforeRecord,
}

#[cfg(debug_assertions)]
impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::BeforeRecord => "pause-before-record",
        }
    }
}

/// Stop here for good if `VOUCH_TEST_FAULT` names `point` (debug builds only).
#[cfg(debug_assertions)]
pub(crate) async fn at(point: Point) {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let fault = FAULT.get_or_init(|| std::env::var("VOUCH_TEST_FAULT").ok());
    if fault.as_deref() == Some(point.name()) {
        tracing::warn!(
            fault = point.name(),
            "test fault: issuance paused here until the process is killed"
        );
        std::future::pending::<()>().await;
    }
}

/// Release builds: no fault can be injected.
#[cfg(not(debug_assertions))]
pub(crate) async fn at(_point: Point) {}
