//! The `vouch` command line.

use crate::app;
use crate::audit::{self, Verdict};
use crate::ca::local::{CaKeyAlgorithm, CaOptions};
use crate::client;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Limits, ServeConfig, TlsFiles, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::ra::{blocklist, operators, Role};
use crate::store::{operators as operator_rows, Database, Store};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod ca;
use ca::{ca_command, move_root_key, CaCommand};

#[derive(Parser)]
#[command(
    name = "vouch",
    version,
    about = "Vouch: a certificate Registration Authority"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: text (coloured only on a terminal) or json (one object a line, for
    /// log collectors).
    #[arg(long, global = true, env = "VOUCH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the RA (initialising the data directory on first start).
    Serve(ServeArgs),
    /// Initialise a data directory (database, embedded CA, profiles) without serving.
    Init(InitArgs),
    /// Manage operators: over the API when --url or VOUCH_URL is given and no data directory,
    /// on the data directory otherwise (host recovery).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Public-key policy data: import weak-key blocklists.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The embedded CA's root duties: its ARL, the issuing CA certificate, the offline root key.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Create or update the database schema, then exit (serve also does this at start).
    Migrate {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Subscribers and their identity evidence (client of a running server).
    #[command(subcommand)]
    Subscriber(client::subscribers::SubscriberCommand),
    /// Certificate requests: submit, list, approve, reject (client of a running server).
    #[command(subcommand)]
    Request(client::requests::RequestCommand),
    /// Issued certificates: show, download, revoke, hold, release (client of a running server).
    #[command(subcommand)]
    Cert(client::certificates::CertCommand),
    /// Download the published CRLs (client of a running server).
    #[command(subcommand)]
    Crl(client::certificates::CrlCommand),
    /// Check a certificate's status with its OCSP responder.
    #[command(subcommand)]
    Ocsp(client::ocsp::OcspCommand),
}

#[derive(Args)]
struct DataDirArg {
    /// Data directory (SQLite database, CA keys, profiles, optional vouch.toml).
    #[arg(long, env = "VOUCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Database to use instead of vouch.db in the data directory: postgres://user@host:port/db
    /// (overrides database_url in <data-dir>/vouch.toml).
    #[arg(long, env = "VOUCH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl DataDirArg {
    fn resolve(&self) -> Result<DataDir> {
        DataDir::new(&self.data_dir).resolve_database(self.database_url.as_deref())
    }
}

#[derive(Args)]
struct CaArgs {
    /// Key algorithm for a newly created embedded CA: p256 or p384.
    #[arg(long, default_value = "p256")]
    ca_key_type: CaKeyAlgorithm,
    /// Organisation named in newly created CA certificates.
    #[arg(long, default_value = "Vouch")]
    ca_organisation: String,
}

impl CaArgs {
    fn options(&self) -> CaOptions {
        CaOptions {
            algorithm: self.ca_key_type,
            organisation: self.ca_organisation.clone(),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
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
    /// TLS certificate chain (PEM) to serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) to serve HTTPS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    ca: CaArgs,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    ca: CaArgs,
    /// Base URL relying parties will reach this RA at: the issuing CA certificate names the
    /// root's ARL (<URL>/crl/root.crl) and certificate (<URL>/ca/root.cer, .pem) under it.
    #[arg(long, env = "VOUCH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Take the root CA key out of the data directory into this new file (0600) once the CA is
    /// made and the first ARL signed: the offline root. Keep the file off the server; bring it
    /// back for `vouch ca sign-arl`. Needs --public-url.
    #[arg(long, requires = "public_url")]
    root_key_out: Option<PathBuf>,
    /// Validity of the first ARL when the root key goes offline, in days.
    #[arg(long, default_value_t = crate::ra::root::DEFAULT_ARL_VALIDITY_DAYS,
          value_parser = clap::value_parser!(u16).range(1..=366))]
    arl_validity_days: u16,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator; prints its bearer token, once, alone on the last line.
    Add {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        conn: client::Connection,
        /// Login name.
        #[arg(long)]
        name: String,
        /// Role (clerk, approver, revoker, admin, aa, auditor, verifier); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List operators.
    List {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        conn: client::Connection,
    },
    /// Disable an operator: its token stops working (admin; over the API only).
    Disable {
        /// Operator id (op_…).
        id: String,
        #[command(flatten)]
        conn: client::Connection,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits 1 and names the first bad entry if a row was edited or deleted
    /// (breaks acknowledged with `audit acknowledge` are listed, and do not fail the check).
    Verify {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Acknowledge every break in the hash chain after investigating it: records an audited
    /// `audit.acknowledged` entry with the breaks and the reason, re-anchors the chain there, and
    /// lets servers report ready again.
    Acknowledge {
        #[command(flatten)]
        data: DataDirArg,
        /// Why the break is accepted (who investigated, what was found); kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Print the last entries of the audit log from a running server (auditor).
    Tail(client::audit::TailArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Import a blocklist of weak public keys; requests for listed keys are refused with weak_key.
    /// A dry run (counts only) unless --apply is given. Exits 1, importing nothing, if any line
    /// is malformed.
    ImportBlocklist {
        #[command(flatten)]
        data: DataDirArg,
        /// The list: one entry a line, `#` comments and blank lines ignored.
        file: PathBuf,
        /// spki-sha256: SHA-256 of the DER SubjectPublicKeyInfo, hex or base64 (badkeys' spkisha256).
        /// debian: Debian openssl-blacklist lines (20 hex digits), RSA keys of one size.
        #[arg(long, value_enum, default_value = "spki-sha256")]
        format: BlocklistFormat,
        /// Key size of a Debian list (default: from a file name blacklist.RSA-<bits>).
        #[arg(long)]
        bits: Option<u32>,
        /// Import (without it, only report what would be imported).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BlocklistFormat {
    SpkiSha256,
    Debian,
}

/// Bad lines shown before "... and N more".
const BAD_LINES_SHOWN: usize = 20;

async fn import_blocklist(
    data: DataDirArg,
    file: PathBuf,
    format: BlocklistFormat,
    bits: Option<u32>,
    apply: bool,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let file_name = file.display().to_string();
    let format = match format {
        BlocklistFormat::SpkiSha256 => blocklist::Format::SpkiSha256,
        BlocklistFormat::Debian => blocklist::Format::debian(&file_name, bits)?,
    };
    let size = std::fs::metadata(&file)
        .map_err(|e| Error::invalid("bad_blocklist", format!("{file_name}: {e}")))?
        .len();
    if size > blocklist::MAX_FILE_BYTES as u64 {
        return Err(Error::invalid(
            "bad_blocklist",
            format!(
                "{file_name}: larger than {} bytes",
                blocklist::MAX_FILE_BYTES
            ),
        ));
    }
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::invalid("bad_blocklist", format!("{file_name}: {e}")))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file_name.clone());
    let list = blocklist::parse(&name, &bytes, format)?;
    println!(
        "{file_name}: {} lines, {} entries ({}), {} duplicate(s), {} bad line(s); file sha256 {}",
        list.lines,
        list.entries.len(),
        list.format.as_str(),
        list.duplicates,
        list.bad.len(),
        list.file_sha256
    );
    if !list.bad.is_empty() {
        for bad in list.bad.iter().take(BAD_LINES_SHOWN) {
            eprintln!("line {}: {}", bad.line, bad.problem);
        }
        if list.bad.len() > BAD_LINES_SHOWN {
            eprintln!(
                "... and {} more bad line(s)",
                list.bad.len() - BAD_LINES_SHOWN
            );
        }
        eprintln!("nothing imported: fix or remove the bad lines");
        return Ok(ExitCode::from(1));
    }
    let store = open_store(&data.resolve()?).await?;
    if apply {
        let report = blocklist::import(&store, clock.now(), None, list).await?;
        store.close().await;
        println!(
            "imported: {} added, {} already listed; the blocklist holds {} entries",
            report.added, report.already_listed, report.total
        );
    } else {
        let report = blocklist::preview(&store, &list).await?;
        store.close().await;
        println!(
            "dry run: {} would be added, {} already listed (the blocklist holds {} entries); run again with --apply to import",
            report.added, report.already_listed, report.total
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // Whether `operator add|list` go to a server depends on where their options came from.
    let operators_over_api = client::operators::over_api(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logs(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vouch: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli, operators_over_api)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: text, coloured only on a terminal (and not with NO_COLOR set), or JSON.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
    }
}

async fn run(cli: Cli, operators_over_api: bool) -> Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve(args) => serve(args, clock).await,
        Command::Migrate { data } => {
            let data = data.resolve()?;
            let db = data.database_target();
            if let Database::Sqlite(_) = db {
                data.create_dirs()?;
            }
            crate::startup::migrate(&data).await?;
            println!("database schema is up to date ({db:?})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => init(args, clock).await,
        Command::Ca(command) => ca_command(command, clock).await,
        Command::Subscriber(command) => Ok(client::subscribers::run(command).await),
        Command::Request(command) => Ok(client::requests::run(command).await),
        Command::Cert(command) => Ok(client::certificates::run(command).await),
        Command::Crl(command) => Ok(client::certificates::run_crl(command).await),
        Command::Ocsp(command) => Ok(client::ocsp::run(command).await),
        Command::Audit(AuditCommand::Tail(args)) => Ok(client::audit::tail(args).await),
        Command::Operator(OperatorCommand::Disable { id, conn }) => {
            Ok(client::operators::disable(conn, id).await)
        }
        Command::Operator(OperatorCommand::Add {
            conn, name, roles, ..
        }) if operators_over_api => Ok(client::operators::add(conn, name, roles).await),
        Command::Operator(OperatorCommand::List { conn, .. }) if operators_over_api => {
            Ok(client::operators::list(conn).await)
        }
        Command::Operator(OperatorCommand::Add {
            data,
            conn,
            name,
            roles,
        }) => {
            client::operators::refuse_json_on_host(&conn)?;
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>>>()?;
            let data = data.resolve()?;
            let store = open_store(&data).await?;
            let created = operators::create(&store, clock.now(), None, name, roles).await?;
            store.close().await;
            let roles: Vec<&str> = created.view.roles.iter().map(|r| r.as_str()).collect();
            println!(
                "created operator {} ({}) with roles {}",
                created.view.name,
                created.view.id,
                roles.join(",")
            );
            println!("bearer token (shown once; store it safely):");
            println!("{}", created.token.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Operator(OperatorCommand::List { data, conn }) => {
            client::operators::refuse_json_on_host(&conn)?;
            let store = open_store(&data.resolve()?).await?;
            let mut c = store.read().await?;
            for op in operator_rows::list(&mut c).await? {
                let state = if op.disabled_at.is_some() {
                    " (disabled)"
                } else {
                    ""
                };
                println!("{}\t{}\t{}{state}", op.id, op.name, op.roles);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Acknowledge { data, reason }) => {
            acknowledge(data, &reason, clock).await
        }
        Command::Keys(KeysCommand::ImportBlocklist {
            data,
            file,
            format,
            bits,
            apply,
        }) => import_blocklist(data, file, format, bits, apply, &clock).await,
        Command::Audit(AuditCommand::Verify { data }) => {
            let store = open_store(&data.resolve()?).await?;
            let mut c = store.read().await?;
            match audit::verify(&mut c).await? {
                Verdict::Intact {
                    entries,
                    head,
                    acknowledged,
                } => {
                    println!("audit log intact: {entries} entries, head {head}");
                    for b in acknowledged {
                        println!("acknowledged break at entry {}: {}", b.seq, b.problem);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Verdict::Broken { seq, problem } => {
                    println!("audit log BROKEN at entry {seq}: {problem}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

async fn acknowledge(data: DataDirArg, reason: &str, clock: SharedClock) -> Result<ExitCode> {
    let store = open_store(&data.resolve()?).await?;
    let done = audit::health::acknowledge(&store, clock.now(), reason).await;
    store.close().await;
    match done? {
        None => println!("nothing to acknowledge: the audit chain has no open break"),
        Some(ack) => {
            for b in &ack.breaks {
                println!("acknowledged break at entry {}: {}", b.seq, b.problem);
            }
            if let Some((from, to)) = ack.head_moved {
                let from = from.map_or("missing".to_string(), |s| format!("at entry {s}"));
                println!("chain head record was {from}; set to the last entry, {to}");
            }
            println!("recorded as an audit.acknowledged entry; servers report ready again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn open_store(data: &DataDir) -> Result<Store> {
    crate::startup::open_store(data).await
}

/// The bootstrap token, alone on the last line of stdout (scripts take `tail -n 1`).
fn print_bootstrap(token: Option<&str>) {
    if let Some(token) = token {
        println!("bootstrap admin token (shown once; store it safely):");
        println!("{token}");
    }
}

/// Every admin is disabled: nobody can manage operators over the API. Say how to recover.
async fn warn_if_no_admin(store: &Store, data: &DataDir) -> Result<()> {
    if operators::admin_state(store).await? == operators::Admins::AllDisabled {
        tracing::warn!(
            "every admin operator is disabled: nobody can create or disable operators over the \
             API; on this host, run `vouch operator add --data-dir {} --name NAME --role admin` \
             (audited) to make a new one",
            data.root().display()
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs, clock: SharedClock) -> Result<ExitCode> {
    let limits = limits(&args)?;
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
        time::Duration::minutes(1)
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

fn days(n: u16) -> time::Duration {
    time::Duration::days(i64::from(n))
}

fn check_public_url(url: &str) -> Result<()> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or("");
    let ok = host.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
        && url.len() <= 200
        && url.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_public_url",
            "--public-url must be an http:// or https:// URL",
        ))
    }
}

async fn init(args: InitArgs, clock: SharedClock) -> Result<ExitCode> {
    if let Some(url) = &args.public_url {
        check_public_url(url)?;
    }
    let data = args.data.resolve()?;
    // Publishing under a URL and moving the root key change the CA files a running server uses:
    // they need the server stopped. Plain initialisation only needs the init lock (taken by
    // app::initialise), so it may run beside a first `vouch serve`.
    let _lock = if args.public_url.is_some() || args.root_key_out.is_some() {
        Some(lock_data_dir(&data)?)
    } else {
        None
    };
    if let Some(out) = &args.root_key_out {
        if out.exists() {
            return Err(Error::invalid(
                "output_exists",
                format!("{} exists; give a new file for the root key", out.display()),
            ));
        }
    }
    let made = app::initialise(&data, &args.ca.options(), &clock, true).await?;
    let token = made.token.as_ref();
    if let Some(url) = &args.public_url {
        app::publish_root_at(&data, url, &clock).await?;
    }
    let profiles = crate::x509::profile::Profiles::load_dir(&data.profiles_dir())?;
    let profiles: Vec<String> = profiles.names().map(str::to_string).collect();
    if made.fresh() {
        println!("initialised {}", data.root().display());
        for line in crate::startup::Summary::of(&data, &profiles).lines() {
            println!("{line}");
        }
    } else {
        println!(
            "already initialised: {} (database {:?}, CA {})",
            data.root().display(),
            data.database_target(),
            data.ca_dir().display()
        );
    }
    if let Some(out) = &args.root_key_out {
        move_root_key(&data, out, days(args.arl_validity_days), clock.now()).await?;
    }
    if token.is_some() {
        let url = format!("http://{DEFAULT_LISTEN}");
        println!(
            "start the server with `vouch serve --data-dir {}`, then {}",
            data.root().display(),
            crate::startup::token_example(&url)
        );
    } else if let Ok(store) = open_store(&data).await {
        let warned = warn_if_no_admin(&store, &data).await;
        store.close().await;
        warned?;
    }
    print_bootstrap(token.map(|t| t.as_str()));
    Ok(ExitCode::SUCCESS)
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

fn lock_data_dir(data: &DataDir) -> Result<std::fs::File> {
    data.create_dirs()?;
    let path = data.root().join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), &e))?;
    file.try_lock().map_err(|_| {
        Error::conflict(
            "data_dir_in_use",
            format!(
                "another `vouch serve` (or `vouch init --public-url`) is using {}",
                data.root().display()
            ),
        )
    })?;
    Ok(file)
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
