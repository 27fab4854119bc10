//! Wiring: initialise a data directory, open it into an [`Ra`], and serve the API. Used by the CLI,
//! the integration tests and the benchmark alike.

use crate::api;
use crate::ca::local::{CaOptions, LocalCa};
use crate::ca::UpstreamCa;
use crate::clock::SharedClock;
use crate::config::{Limits, TlsFiles};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::ra::{operators, Ra};
use crate::store::Store;
use crate::x509::profile::Profiles;
use openssl::ssl::{AlpnError, SslAcceptor, SslFiletype, SslMethod};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// Create whatever is missing in `data`: directories, profiles, database schema, the embedded CA,
/// and, if there is no operator yet, a bootstrap admin whose token is returned (once).
pub async fn init(
    data: &DataDir,
    ca: &CaOptions,
    clock: &SharedClock,
) -> Result<Option<Zeroizing<String>>> {
    data.create_dirs()?;
    data.install_profiles()?;
    if !LocalCa::exists(&data.ca_dir()) {
        LocalCa::create(&data.ca_dir(), ca, clock.now())?;
    }
    let store = Store::connect(&data.database_target()).await?;
    bind_ca(&store, &LocalCa::load(&data.ca_dir())?, clock.now()).await?;
    crate::ra::keys::rekey(&store, clock.now()).await?;
    let token = operators::bootstrap_admin(&store, clock.now()).await?;
    store.close().await;
    Ok(token)
}

/// A database belongs to one issuing CA. The first start records the CA certificate's fingerprint;
/// an instance whose data directory holds another CA (say, a second instance initialised on its
/// own instead of given a copy of the first one's `ca/`) is refused before it can issue anything.
async fn bind_ca(store: &Store, ca: &LocalCa, now: time::OffsetDateTime) -> Result<()> {
    let fingerprint = crate::x509::sha256_hex(&ca.chain()[0].der);
    let recorded = store
        .write(move |c, log| {
            Box::pin(async move {
                let recorded = crate::store::meta::get(c, "issuing_ca_sha256").await?;
                if recorded.is_none() {
                    crate::store::meta::put(c, "issuing_ca_sha256", &fingerprint).await?;
                    let details = serde_json::json!({"issuing_ca_sha256": fingerprint});
                    crate::audit::record(
                        log,
                        now,
                        crate::audit::Event::new(None, "ca.bound", None, details),
                    );
                }
                Ok(recorded.map(|r| (r, fingerprint)))
            })
        })
        .await?;
    match recorded {
        Some((r, mine)) if r != mine => Err(Error::invalid(
            "ca_mismatch",
            format!(
                "this database belongs to the issuing CA with SHA-256 {r}, but the data directory \
                 holds the CA {mine}; give every instance a copy of the same ca/ directory"
            ),
        )),
        _ => Ok(()),
    }
}

/// Open an initialised data directory.
pub async fn open(data: &DataDir, clock: SharedClock) -> Result<Ra> {
    data.require_initialised()?;
    let store = Store::connect(&data.database_target()).await?;
    let ca = LocalCa::load(&data.ca_dir())?;
    bind_ca(&store, &ca, clock.now()).await?;
    crate::ra::keys::rekey(&store, clock.now()).await?;
    let profiles = Profiles::load_dir(&data.profiles_dir())?;
    Ok(Ra::new(store, Arc::new(ca), profiles, clock))
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stop accepting, finish in-flight requests and wait for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Wait until the server stops by itself (or fails).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Bind `listen` and serve the API under the default [`Limits`]; see [`serve_with`].
pub async fn serve(ra: Ra, listen: SocketAddr, tls: Option<&TlsFiles>) -> Result<Server> {
    serve_with(ra, listen, tls, Limits::default()).await
}

/// Bind `listen` and serve the API, with background upkeep (expiry sweeps, issuance
/// reconciliation). Port 0 picks a free port; see [`Server::addr`]. Plain and TLS connections
/// alike are held to `limits` (timeouts, connection cap; see [`api::listener`]).
///
/// Certificates issued name CRL and CA-certificate URLs under the RA's public URL: the one set with
/// [`Ra::set_public_url`], or by default the address this server listens on.
pub async fn serve_with(
    ra: Ra,
    listen: SocketAddr,
    tls: Option<&TlsFiles>,
    limits: Limits,
) -> Result<Server> {
    limits.validate()?;
    let acceptor = tls.map(tls_acceptor).transpose()?.map(Arc::new);
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| Error::internal(format!("binding {listen}: {e}")))?;
    listener.set_nonblocking(true).map_err(Error::internal)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(Error::internal)?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    ra.set_public_url(&format!("{scheme}://{addr}"));
    let (stop, stopped) = watch::channel(false);
    spawn_upkeep(ra.clone(), stop.subscribe());
    // Learn the current status version before anything is cached, so the watch's first rounds do
    // not drop caches for changes they were built after.
    ra.observe_status_changes().await?;
    spawn_status_watch(ra.clone(), stop.subscribe());
    spawn_audit_watch(ra.clone(), stop.subscribe());
    let app = api::router(ra);
    let task = tokio::spawn(api::listener::run(listener, acceptor, app, limits, stopped));
    Ok(Server { addr, stop, task })
}

/// TLS 1.3 only (Mozilla's "modern" profile), HTTP/2 or HTTP/1.1 by ALPN.
fn tls_acceptor(files: &TlsFiles) -> Result<SslAcceptor> {
    let bad = |e: openssl::error::ErrorStack| {
        Error::invalid("bad_tls_config", format!("TLS certificate/key: {e}"))
    };
    let mut builder = SslAcceptor::mozilla_modern_v5(SslMethod::tls()).map_err(bad)?;
    builder
        .set_certificate_chain_file(&files.cert)
        .map_err(bad)?;
    builder
        .set_private_key_file(&files.key, SslFiletype::PEM)
        .map_err(bad)?;
    builder.check_private_key().map_err(bad)?;
    builder.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x02h2\x08http/1.1", client).ok_or(AlpnError::NOACK)
    });
    Ok(builder.build())
}

/// Once a second, compare the database's status version with the last one seen, so that cached
/// CRLs and OCSP responses reflect a change made by another instance within about a second.
fn spawn_status_watch(ra: Ra, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match ra.observe_status_changes().await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "could not read the status version");
                }
                Err(_) => {}
            }
        }
    });
}

/// Every few seconds (the first round at once): check the audit chain's head, logging an error
/// while it is broken and unacknowledged, and audit the failed-login windows that closed.
fn spawn_audit_watch(ra: Ra, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged: Option<(i64, tokio::time::Instant)> = None;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                ra.flush_login_failures().await;
                return;
            }
            ra.flush_login_failures().await;
            match crate::audit::health::check(ra.store(), ra.now()).await {
                Ok(Some(b)) => {
                    let due = logged.is_none_or(|(seq, at)| {
                        seq != b.seq || at.elapsed() >= Duration::from_secs(60)
                    });
                    if due {
                        tracing::error!(entry = b.seq, problem = %b.problem, "the audit chain is broken; not ready until `vouch audit acknowledge`");
                        logged = Some((b.seq, tokio::time::Instant::now()));
                    }
                }
                Ok(None) => {
                    if logged.take().is_some() {
                        tracing::info!("audit chain break acknowledged; ready again");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check the audit chain"),
            }
        }
    });
}

fn spawn_upkeep(ra: Ra, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        // The first round waits a full period: at start the caller reconciles itself.
        let period = Duration::from_secs(30);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = ra.expire_overdue().await {
                tracing::warn!(error = %e, "expiry sweep failed");
            }
            // Intents younger than a minute may still be in flight in an approve call.
            if let Err(e) = ra.reconcile(time::Duration::minutes(1)).await {
                tracing::warn!(error = %e, "reconciliation failed");
            }
        }
    });
}
