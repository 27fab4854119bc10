//! Wiring: initialise a data directory, open it into an [`Ra`], and serve the API. Used by the CLI,
//! the integration tests and the benchmark alike.

use crate::api;
use crate::ca::aa::AttributeAuthority;
use crate::ca::local::{CaOptions, LocalCa};
use crate::clock::SharedClock;
use crate::config::{Limits, TlsFiles};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::ra::{operators, Ra, RaConfig};
use crate::startup::InitLock;
use crate::store::job;
use crate::store::Store;
use crate::x509::profile::Profiles;
use openssl::ssl::{AlpnError, SslAcceptor, SslFiletype, SslMethod};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// What [`initialise`] found and made.
pub struct Initialised {
    /// The embedded CA was generated now.
    pub created_ca: bool,
    /// The database was bound to the issuing CA now: its first start.
    pub bound_now: bool,
    /// The bootstrap admin's token, when one was created now (shown once).
    pub token: Option<Zeroizing<String>>,
}

impl Initialised {
    /// Something was made: a first start.
    pub fn fresh(&self) -> bool {
        self.created_ca || self.bound_now || self.token.is_some()
    }
}

/// Create whatever is missing in `data`: directories, profiles, database schema, the embedded CA,
/// and, if no admin was ever created, a bootstrap admin whose token is returned (once).
pub async fn init(
    data: &DataDir,
    ca: &CaOptions,
    clock: &SharedClock,
) -> Result<Option<Zeroizing<String>>> {
    Ok(initialise(data, ca, clock, true).await?.token)
}

/// [`init`], saying what was made; the bootstrap admin only when `admin` is true (`vouch serve`
/// makes it once its port is bound, so that a failed bind loses no token). Everything up to the
/// admin runs under the [`InitLock`]: commands started together on a new directory (or, on
/// PostgreSQL, instances started together on a new database) migrate and create the CA once.
pub async fn initialise(
    data: &DataDir,
    ca: &CaOptions,
    clock: &SharedClock,
    admin: bool,
) -> Result<Initialised> {
    data.create_dirs()?;
    let lock = InitLock::acquire(data).await?;
    let made = async {
        data.install_profiles()?;
        let created_ca = !LocalCa::exists(&data.ca_dir());
        if created_ca {
            LocalCa::create(&data.ca_dir(), ca, clock.now())?;
        }
        let store = Store::connect(&data.database_target()).await?;
        let prepared = async {
            let local = LocalCa::load(&data.ca_dir())?;
            let bound_now = bind_ca(&store, &local, clock.now()).await?;
            attribute_authority(&store, &local, &data.ca_dir(), None, false, clock.now()).await?;
            crate::ra::keys::rekey(&store, clock.now()).await?;
            Ok::<_, Error>(bound_now)
        }
        .await;
        store.close().await;
        Ok::<_, Error>((created_ca, prepared?))
    }
    .await;
    lock.release().await;
    let (created_ca, bound_now) = made?;
    let token = if admin {
        let store = crate::startup::open_store(data).await?;
        let token = operators::bootstrap_admin(&store, clock.now()).await;
        store.close().await;
        token?
    } else {
        None
    };
    Ok(Initialised {
        created_ca,
        bound_now,
        token,
    })
}

/// A database belongs to one issuing CA. The first start records the issuing CA's key (SHA-256 of
/// its SubjectPublicKeyInfo); an instance whose data directory holds another CA (say, a second
/// instance initialised on its own instead of given a copy of the first one's `ca/`) is refused
/// before it can issue anything. The key, not the certificate, is what is compared: the issuing
/// CA certificate is re-issued with the same key when its publication URLs change. Databases bound
/// by the certificate's hash (`issuing_ca_sha256`, before re-issuing existed) move to the key on
/// the first start that finds the same certificate.
///
/// Returns true when the database was bound now (its first start).
async fn bind_ca(store: &Store, ca: &LocalCa, now: time::OffsetDateTime) -> Result<bool> {
    let der = ca.issuing_der();
    let cert_fingerprint = crate::x509::sha256_hex(&der);
    let parsed = crate::x509::certificate::read(&der)
        .map_err(|e| Error::internal(format!("issuing CA certificate: {e}")))?;
    let key = crate::x509::sha256_hex(&parsed.spki);
    let spki = parsed.spki;
    let mismatch = store
        .write(job!(|c, log| {
            use crate::store::meta;
            if let Some(recorded) = meta::get(c, "issuing_ca_key_sha256").await? {
                return Ok(((recorded != key).then_some((recorded, key)), false));
            }
            let mut bound_now = false;
            match meta::get(c, "issuing_ca_sha256").await? {
                Some(recorded)
                    if recorded != cert_fingerprint
                        && !reissued_from(c, &recorded, &spki).await? =>
                {
                    return Ok((Some((recorded, cert_fingerprint)), false));
                }
                Some(_) => {}
                None => {
                    meta::put(c, "issuing_ca_sha256", &cert_fingerprint).await?;
                    bound_now = true;
                }
            }
            meta::put(c, "issuing_ca_key_sha256", &key).await?;
            let details = serde_json::json!({
                "issuing_ca_sha256": cert_fingerprint,
                "issuing_ca_key_sha256": key,
            });
            crate::audit::record(
                log,
                now,
                crate::audit::Event::new(None, crate::audit::Action::CaBound, None, details),
            );
            Ok((None, bound_now))
        }))
        .await?;
    match mismatch {
        (None, bound_now) => Ok(bound_now),
        (Some((recorded, mine)), _) => Err(Error::invalid(
            "ca_mismatch",
            format!(
                "this database belongs to the issuing CA {recorded} (SHA-256), but the data \
                 directory holds the CA {mine}; give every instance a copy of the same ca/ directory"
            ),
        )),
    }
}

/// Whether the certificate with SHA-256 `recorded` is an issuing CA certificate this database
/// recorded (one that was re-issued) for the key `spki`: then the certificate now in use is its
/// re-issue, not another CA.
async fn reissued_from(c: &mut crate::store::Conn, recorded: &str, spki: &[u8]) -> Result<bool> {
    for row in crate::store::ca::list(c, "issuing").await? {
        if crate::x509::sha256_hex(&row.der) != recorded {
            continue;
        }
        let same_key = crate::x509::certificate::read(&row.der)
            .map(|cert| cert.spki == spki)
            .unwrap_or(false);
        return Ok(same_key);
    }
    Ok(false)
}

/// Give the issuing CA certificate and the attribute authority's certificate their ARL
/// distribution point and the root's caIssuers under `public_url` (re-issuing them with the same
/// keys), for `vouch init --public-url`: needs the root key in the data directory.
pub async fn publish_root_at(data: &DataDir, public_url: &str, clock: &SharedClock) -> Result<()> {
    use crate::ca::root::Publication;
    let store = crate::startup::open_store(data).await?;
    let ca = LocalCa::load(&data.ca_dir())?;
    let expected = Publication::under(public_url);
    let outcome = async {
        crate::ra::root::record_issuing(&store, &ca.issuing_der(), clock.now()).await?;
        if Publication::of(&ca.issuing_der())? != expected {
            let root = ca.root_key(None)?;
            crate::ra::root::reissue_issuing(&store, &ca, &root, &expected, clock.now()).await?;
        }
        let aa_dir = data.ca_dir();
        let aa_named = match AttributeAuthority::exists(&aa_dir) {
            true => Some(Publication::of(
                AttributeAuthority::load(&aa_dir)?.certificate_der(),
            )?),
            false => None,
        };
        if aa_named.as_ref() != Some(&expected) {
            let root = ca.root_key(None)?;
            crate::ra::root::issue_aa(&store, &aa_dir, &root, Some(&expected), clock.now()).await?;
        }
        Ok(())
    }
    .await;
    store.close().await;
    outcome
}

/// Open an initialised data directory, as an RA configured by `config` with the data directory's
/// CA as its embedded CA.
pub async fn open(data: &DataDir, clock: SharedClock, config: RaConfig) -> Result<Ra> {
    let store = crate::startup::open_store(data).await?;
    let ca = Arc::new(LocalCa::load(&data.ca_dir())?);
    bind_ca(&store, &ca, clock.now()).await?;
    crate::ra::keys::rekey(&store, clock.now()).await?;
    // Subscribers recorded before the search index existed are indexed once (migration 0021).
    store
        .write(job!(|c, _log| {
            crate::store::subscribers::fill_search_terms(c).await
        }))
        .await?;
    let profiles = Profiles::load_dir(&data.profiles_dir())?;
    let attribute_authority = attribute_authority(
        &store,
        &ca,
        &data.ca_dir(),
        config.public_url.as_deref(),
        config.public_url_given,
        clock.now(),
    )
    .await?;
    let upstreams =
        crate::ca::upstreams::load(&data.upstream_file(), data.root(), &profiles).await?;
    let config = RaConfig {
        upstreams,
        embedded_ca: Some(ca.clone()),
        attribute_authority,
        attribute_names: data.attribute_names()?,
        tsa_anchors: data.tsa_anchors()?,
        trust_anchors: data.trust_anchors()?,
        issuance_journal: Some(data.issuance_journal_dir()),
        console_key: Some(Arc::new(crate::ra::console::SealKey::load_or_create(
            &data.console_key_file(),
        )?)),
        ..config
    };
    Ok(Ra::new(store, ca, profiles, clock, config))
}

/// The data directory's attribute authority, checked against the one the database is bound to
/// (`aa_mismatch` when it is another: every instance must hold a copy of the same one). Made now
/// when the directory has none, the database names none and the root key is in the directory;
/// its certificate re-issued (same key) when it names no ARL, or another one than an explicitly
/// given public URL's, and the root key is there. An AA that is missing and cannot be made here
/// is reported and the server runs without one (grants answer `aa_unavailable`).
pub async fn attribute_authority(
    store: &Store,
    ca: &LocalCa,
    ca_dir: &std::path::Path,
    public_url: Option<&str>,
    explicit_url: bool,
    now: time::OffsetDateTime,
) -> Result<Option<Arc<AttributeAuthority>>> {
    use crate::ca::root::Publication;
    use crate::ra::root::{bind_aa, bound_aa, issue_aa};
    let expected = public_url.map(Publication::under);
    if !AttributeAuthority::exists(ca_dir) {
        if bound_aa(store).await?.is_some() {
            tracing::warn!(
                "the database has an attribute authority but this data directory has no copy of \
                 it: copy ca/aa.key and ca/aa.pem from another instance; until then attribute \
                 certificates cannot be granted here"
            );
            return Ok(None);
        }
        if !ca.root_key_online() {
            tracing::warn!(
                "the data directory has no attribute authority (ca/aa.pem) and the root key is \
                 offline: attribute certificates cannot be granted until `vouch ca issue-aa \
                 --root-key FILE` is run"
            );
            return Ok(None);
        }
        let root = ca.root_key(None)?;
        match issue_aa(store, ca_dir, &root, expected.as_ref(), now).await {
            Ok(_) => {}
            // Another instance made the deployment's AA meanwhile: ours was removed again.
            Err(e) if e.code() == "aa_mismatch" => {
                tracing::warn!(error = %e, "no attribute authority on this instance");
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    } else {
        let current = AttributeAuthority::load(ca_dir)?;
        bind_aa(store, current.certificate_der()).await?;
        if let Some(expected) = &expected {
            let found = Publication::of(current.certificate_der())?;
            if found != *expected
                && (explicit_url || found.crl_urls.is_empty())
                && ca.root_key_online()
            {
                let root = ca.root_key(None)?;
                issue_aa(store, ca_dir, &root, Some(expected), now).await?;
            }
        }
    }
    Ok(Some(Arc::new(AttributeAuthority::load(ca_dir)?)))
}

/// Bind `listen`, open `data` and serve it, under `limits`; see [`bind`] and [`serve_on`]. The
/// RA's public URL is `config.public_url` when given (`--public-url`), or else the address this
/// server listens on, which is known only once it is bound.
pub async fn start(
    data: &DataDir,
    clock: SharedClock,
    mut config: RaConfig,
    listen: SocketAddr,
    tls: Option<&TlsFiles>,
    limits: Limits,
) -> Result<(Ra, Server)> {
    limits.validate()?;
    let listener = bind(listen, tls)?;
    if config.public_url.is_some() {
        config.public_url_given = true;
    } else {
        config.public_url = Some(listener.url());
    }
    let ra = open(data, clock, config).await?;
    let server = serve_on(listener, ra.clone(), limits).await?;
    Ok((ra, server))
}

/// A running server.
pub struct Server {
    /// The address bound.
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

    /// A sender that stops the server when sent `true`.
    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// A bound listening socket, not yet serving: its address is known, so an RA can be configured
/// with it before [`serve_on`] serves it.
pub struct Listener {
    listener: tokio::net::TcpListener,
    acceptor: Option<Arc<SslAcceptor>>,
    addr: SocketAddr,
}

impl Listener {
    /// The address bound (with the port chosen when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` or `https://` and the address bound: the RA's public URL when none is given.
    pub fn url(&self) -> String {
        let scheme = if self.acceptor.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

/// Bind `listen`, with TLS from `tls` when given. Port 0 picks a free port; see
/// [`Listener::addr`].
pub fn bind(listen: SocketAddr, tls: Option<&TlsFiles>) -> Result<Listener> {
    let acceptor = tls.map(tls_acceptor).transpose()?.map(Arc::new);
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied && listen.port() < 1024 {
            Error::environment(format!(
                "cannot listen on {listen}: ports below 1024 need privileges \
                 (CAP_NET_BIND_SERVICE); choose a port above 1023 with --listen"
            ))
        } else {
            Error::io(format!("cannot listen on {listen}"), &e)
        }
    })?;
    listener.set_nonblocking(true).map_err(Error::internal)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(Error::internal)?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    Ok(Listener {
        listener,
        acceptor,
        addr,
    })
}

/// Serve the API on `listener`, with background upkeep (expiry sweeps, issuance reconciliation).
/// Plain and TLS connections alike are held to `limits` (timeouts, connection cap; see
/// [`api::listener`]).
///
/// Certificates issued name CRL and CA-certificate URLs under the RA's public URL
/// ([`RaConfig::public_url`]).
pub async fn serve_on(listener: Listener, ra: Ra, limits: Limits) -> Result<Server> {
    limits.validate()?;
    let Listener {
        listener,
        acceptor,
        addr,
    } = listener;
    // The issuing CA certificate must name the root's ARL and certificate under this URL. A
    // failure (say, the audit log cannot take the event) leaves the old certificate in use, still
    // valid; /readyz and the root upkeep keep saying so.
    if let Err(e) = ra
        .ensure_issuing_publication(ra.config().public_url_given)
        .await
    {
        tracing::error!(error = %e, "could not give the issuing CA certificate its ARL and caIssuers URLs");
    }
    // Say at once what the root needs (an ARL near its nextUpdate, a revoked issuing CA), not
    // only at the first upkeep round.
    if let Err(e) = ra.root_upkeep().await {
        tracing::warn!(error = %e, "root CA upkeep failed");
    }
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
        let period = ra.config().retry.interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = ra.expire_overdue().await {
                tracing::warn!(error = %e, "expiry sweep failed");
            }
            if let Err(e) = ra.expire_grants().await {
                tracing::warn!(error = %e, "attribute grant expiry sweep failed");
            }
            if let Err(e) = ra.expire_operator_resets().await {
                tracing::warn!(error = %e, "operator reset expiry sweep failed");
            }
            // Young intents may still be in flight in an approve call.
            if let Err(e) = ra.reconcile(ra.config().retry.min_age).await {
                tracing::warn!(error = %e, "reconciliation failed");
            }
            if let Err(e) = ra.retry_forwards().await {
                tracing::warn!(error = %e, "retrying revocation forwards failed");
            }
            if let Err(e) = ra.root_upkeep().await {
                tracing::warn!(error = %e, "root CA upkeep failed");
            }
            if let Err(e) = ra.read_upstream_crls_if_due().await {
                tracing::warn!(error = %e, "reading the remote CAs' CRLs failed");
            }
            if let Err(e) = ra.prune_console_sessions().await {
                tracing::warn!(error = %e, "pruning console sessions failed");
            }
        }
    });
}
