//! The `vouch` command line: the top-level flags, the arguments several commands share, and which
//! file runs each command. The commands that work on a data directory have a file each beside
//! this one (`serve`, `init` with `migrate`, `operator`, `audit`, `keys`, `ca`, `upstream`); the
//! commands that talk to a running server live in `crate::client`.

use crate::ca::local::{CaKeyAlgorithm, CaOptions};
use crate::client;
use crate::clock::{SharedClock, SystemClock};
use crate::config::check_public_url;
use crate::config::DEFAULT_DATA_DIR;
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::ra::operators;
use crate::store::Store;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod audit;
mod ca;
mod init;
mod keys;
mod operator;
mod receipt;
mod serve;
mod upstream;
use audit::{audit_command, AuditCommand};
use ca::{ca_command, CaCommand};
use init::{init, InitArgs};
use keys::{keys_command, KeysCommand};
use operator::{operator_command, OperatorCommand};
use serve::{serve, ServeArgs};
use upstream::{upstream_command, UpstreamCommand};

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

#[derive(clap::Subcommand)]
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
    /// Remote CAs (<data-dir>/upstream.toml): check that each one answers and show its chain;
    /// list what waits for a CA (issuances and revocation forwards to retry).
    #[command(subcommand)]
    Upstream(UpstreamCommand),
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
    /// Attribute certificates: roles in applications, granted, approved, shown, revoked (client
    /// of a running server).
    #[command(subcommand)]
    Attribute(client::attributes::AttributeCommand),
    /// Download the published CRLs (client of a running server).
    #[command(subcommand)]
    Crl(client::certificates::CrlCommand),
    /// Check a certificate's status with its OCSP responder.
    #[command(subcommand)]
    Ocsp(client::ocsp::OcspCommand),
    /// Verification receipts: check one offline.
    #[command(subcommand)]
    Receipt(receipt::ReceiptCommand),
}

#[derive(Args)]
pub(super) struct DataDirArg {
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

/// Run the command line: parse the arguments, start logging and the runtime, run the command
/// and turn its result into the exit status (2 for an error the command did not handle).
pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let matches = Cli::command().get_matches();
    // Whether `operator add|set-password|list` go to a server depends on where their options came from.
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

/// `vouch … | head` closes our standard output early, and Rust's `println!` then panics. A command
/// whose reader has gone has nothing left to say: end quietly with the status a shell gives a
/// process killed by SIGPIPE (128 + 13), and leave every other panic to the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
        Command::Migrate { data } => init::migrate(data).await,
        Command::Init(args) => init(args, clock).await,
        Command::Ca(command) => ca_command(command, clock).await,
        Command::Subscriber(command) => Ok(client::subscribers::run(command).await),
        Command::Request(command) => Ok(client::requests::run(command).await),
        Command::Cert(command) => Ok(client::certificates::run(command).await),
        Command::Attribute(command) => Ok(client::attributes::run(command).await),
        Command::Crl(command) => Ok(client::certificates::run_crl(command).await),
        Command::Ocsp(command) => Ok(client::ocsp::run(command).await),
        Command::Receipt(command) => receipt::run(command),
        Command::Audit(command) => audit_command(command, clock).await,
        Command::Operator(command) => operator_command(command, operators_over_api, clock).await,
        Command::Keys(command) => keys_command(command, clock).await,
        Command::Upstream(command) => upstream_command(command).await,
    }
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

fn days(n: u16) -> time::Duration {
    time::Duration::days(i64::from(n))
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
