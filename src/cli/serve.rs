//! `vouch serve`: the RA on its port, from its flags to a clean stop. The wiring from flags to a
//! running `Ra` and listener is here; what runs is `app` (and `api::listener` for the limits).

use super::{check_public_url, days};
use super::{lock_data_dir, print_bootstrap, warn_if_no_admin, CaArgs, DataDirArg};
use crate::app;
use crate::clock::SharedClock;
use crate::config::{self, Limits, ServeConfig, TlsFiles, DEFAULT_LISTEN};
use crate::error::{Error, Result};
use crate::ra::operators;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address and port to listen on: ADDRESS:PORT, HOST:PORT (resolved at start) or a port
    /// alone (on 127.0.0.1).
    #[arg(long, env = "VOUCH_LISTEN", default_value = DEFAULT_LISTEN,
          value_parser = config::parse_listen)]
    listen: SocketAddr,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    insecure_http: bool,
    /// Base URL relying parties reach this RA at; issued certificates name their CRL and CA
    /// certificate under it (default: the address served, e.g. http://127.0.0.1:8080).
    #[arg(long, env = "VOUCH_PUBLIC_URL")]
    public_url: Option<String>,
    /// How long each CRL is valid, in hours (thisUpdate to nextUpdate). CRLs are re-signed at half
    /// this, and at once after any status change.
    #[arg(long, env = "VOUCH_CRL_VALIDITY_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u16).range(1..=720))]
    crl_validity_hours: u16,
    /// Validity of the ARLs this server signs while the root key is in the data directory, in
    /// days; the next is signed at half this.
    #[arg(long, env = "VOUCH_ARL_VALIDITY_DAYS",
          default_value_t = crate::ra::root::DEFAULT_ARL_VALIDITY_DAYS,
          value_parser = clap::value_parser!(u16).range(1..=366))]
    arl_validity_days: u16,
    /// Warn (in /readyz and the log) when the published ARL is this many days or fewer from its
    /// nextUpdate and the root key is offline.
    #[arg(long, env = "VOUCH_ARL_WARN_DAYS",
          default_value_t = crate::ra::root::DEFAULT_ARL_WARN_DAYS,
          value_parser = clap::value_parser!(u16).range(0..=365))]
    arl_warn_days: u16,
    /// Seconds a client has to finish the TLS handshake, its first request head after
    /// connecting, and each later request head from its first byte; a slower connection is
    /// closed.
    #[arg(long, env = "VOUCH_HEADER_READ_TIMEOUT_SECS",
          default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay silent between requests before it is closed.
    #[arg(long, env = "VOUCH_IDLE_TIMEOUT_SECS",
          default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    idle_timeout_secs: u64,
    /// Seconds a request may take from its head to its response; past it the client gets
    /// 503 {"error": "timeout"}.
    #[arg(long, env = "VOUCH_REQUEST_TIMEOUT_SECS",
          default_value_t = config::DEFAULT_REQUEST_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// Connections served at once (default: 4096, or fewer so that they fit the open-files
    /// limit). Past it, a reserved few answer /healthz and /readyz and 503 {"error":
    /// "overloaded"} to anything else; past those, new connections are closed at once.
    #[arg(long, env = "VOUCH_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Memory for signed OCSP responses kept for reuse, in MiB.
    #[arg(long, env = "VOUCH_OCSP_CACHE_MB", default_value_t = crate::ra::ocsp::DEFAULT_CACHE_MB,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    ocsp_cache_mb: u64,
    /// How often, in seconds, failed CA calls are looked at again: issuance of approved requests
    /// whose CA was down, slow or refused to store, and revocations not yet acknowledged by the
    /// remote CA that issued the certificate.
    #[arg(long, env = "VOUCH_RETRY_INTERVAL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    retry_interval_secs: u64,
    /// Seconds to wait after the second failed attempt at a CA call; the wait doubles after
    /// each further failure (the first retry is at the next round).
    #[arg(long, env = "VOUCH_RETRY_BACKOFF_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    retry_backoff_secs: u64,
    /// The longest wait between attempts at a CA call, in seconds.
    #[arg(long, env = "VOUCH_RETRY_BACKOFF_MAX_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604800))]
    retry_backoff_max_secs: u64,
    /// Seconds an issuance intent is left to the approval that recorded it (which may still be
    /// waiting for its CA) before the retry task completes it; also at start on PostgreSQL,
    /// where another instance may be signing it.
    #[arg(long, env = "VOUCH_RETRY_MIN_AGE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    retry_min_age_secs: u64,
    /// How often, in seconds, the CRL of each remote CA with a `crl_url` (upstream.toml) is read
    /// for the status of the certificates it issued (checked at the retry task's rounds).
    #[arg(long, env = "VOUCH_UPSTREAM_CRL_INTERVAL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    upstream_crl_interval_secs: u64,
    /// How long, in seconds, an answer of a remote CA's OCSP responder (`ocsp_url` in
    /// upstream.toml) about a certificate stands before the responder is asked again when that
    /// certificate is reported (less when the answer's nextUpdate comes sooner; 0: every time).
    #[arg(long, env = "VOUCH_UPSTREAM_OCSP_REUSE_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=86400))]
    upstream_ocsp_reuse_secs: u64,
    /// TLS certificate chain (PEM) to serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) to serve HTTPS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    ca: CaArgs,
}

pub(super) async fn serve(args: ServeArgs, clock: SharedClock) -> Result<ExitCode> {
    let limits = limits(&args)?;
    let retry = retry_schedule(&args)?;
    let config = ServeConfig {
        data_dir: args.data.data_dir.clone(),
        listen: args.listen,
        insecure_http: args.insecure_http,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
    };
    config.validate()?;
    if let Some(url) = &args.public_url {
        check_public_url(url)?;
    }
    let data = args.data.resolve()?;
    // One server per data directory (a second would sign the same reconciliation intents), and
    // no two first starts racing to create the CA.
    let lock = lock_data_dir(&data)?;
    // The bootstrap admin is made once the port is bound: a failed bind loses no token.
    let made = app::initialise(&data, &args.ca.options(), &clock, false).await?;
    let ra_config = crate::ra::RaConfig {
        public_url: args.public_url.clone(),
        crl_validity: time::Duration::hours(i64::from(args.crl_validity_hours)),
        arl: crate::ra::root::ArlSettings {
            validity: days(args.arl_validity_days),
            warn: days(args.arl_warn_days),
        },
        ocsp_cache_bytes: args.ocsp_cache_mb << 20,
        retry,
        upstream_crl_interval: std::time::Duration::from_secs(args.upstream_crl_interval_secs),
        upstream_ocsp_reuse: std::time::Duration::from_secs(args.upstream_ocsp_reuse_secs),
        tls: config.tls.is_some(),
        ..Default::default()
    };
    if args.public_url.is_none() && config.listen.ip().is_unspecified() {
        tracing::warn!("listening on an unspecified address without --public-url: issued certificates will name {} in their CRL/OCSP URLs", config.listen);
    }
    let (ra, server) = app::start(
        &data,
        clock,
        ra_config,
        config.listen,
        config.tls.as_ref(),
        limits,
    )
    .await?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}", server.addr);
    let token = operators::bootstrap_admin(ra.store(), ra.now()).await?;
    if made.fresh() || token.is_some() {
        println!("Vouch RA serving at {url} (API under {url}/api/v1)");
        let profiles: Vec<String> = ra.profiles().names().map(str::to_string).collect();
        for line in crate::startup::Summary::of(&data, &profiles).lines() {
            println!("{line}");
        }
    }
    if token.is_some() {
        println!("{}", crate::startup::token_example(&url));
    }
    print_bootstrap(token.as_ref().map(|t| t.as_str()));
    warn_if_no_admin(ra.store(), &data).await?;
    // Finish issuance that a previous run approved but did not complete (after serve(), so the
    // certificates name the public URL).
    // On a shared database another instance may be signing an intent right now: leave young ones
    // to it, as the periodic reconciliation does.
    let min_age = if ra.store().is_postgres() {
        ra.config().retry.min_age
    } else {
        time::Duration::ZERO
    };
    let completed = ra.reconcile(min_age).await?;
    if completed > 0 {
        tracing::info!(completed, "completed interrupted issuance");
    }
    tracing::info!("vouch listening on {url}");
    let stop = server.stop_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    server.wait().await.map_err(Error::internal)?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

fn retry_schedule(args: &ServeArgs) -> Result<crate::ra::RetrySchedule> {
    if args.retry_backoff_max_secs < args.retry_backoff_secs {
        return Err(Error::invalid(
            "invalid_field",
            "--retry-backoff-max-secs must not be below --retry-backoff-secs",
        ));
    }
    let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    Ok(crate::ra::RetrySchedule {
        interval: std::time::Duration::from_secs(args.retry_interval_secs),
        backoff: secs(args.retry_backoff_secs),
        backoff_max: secs(args.retry_backoff_max_secs),
        min_age: secs(args.retry_min_age_secs),
    })
}

fn limits(args: &ServeArgs) -> Result<Limits> {
    let secs = std::time::Duration::from_secs;
    let mut limits = Limits {
        header_read_timeout: secs(args.header_read_timeout_secs),
        idle_timeout: secs(args.idle_timeout_secs),
        request_timeout: secs(args.request_timeout_secs),
        ..Limits::default()
    };
    if let Some(n) = args.max_connections {
        limits.max_connections = usize::try_from(n).map_err(Error::internal)?;
    }
    limits.validate()?;
    let needed = limits.total_connections() as u64 + config::FD_HEADROOM;
    match config::open_files_limit() {
        Some(open_files) if open_files < needed => tracing::warn!(
            open_files,
            needed,
            "the open-files limit (ulimit -n, LimitNOFILE) is below --max-connections plus its \
             reserve and headroom: the server may run out of descriptors before the cap"
        ),
        _ => {}
    }
    tracing::info!(
        max_connections = limits.max_connections,
        reserved = limits.reserved_connections(),
        "connection limits"
    );
    Ok(limits)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
