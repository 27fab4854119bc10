//! `vouch init` and `vouch migrate`: a data directory made ready (database, embedded CA,
//! profiles, the bootstrap admin) without serving it.

use super::{ca::move_root_key, CaArgs, DataDirArg};
use super::{check_public_url, days, lock_data_dir, open_store, print_bootstrap, warn_if_no_admin};
use crate::app;
use crate::clock::SharedClock;
use crate::config::DEFAULT_LISTEN;
use crate::error::{Error, Result};
use crate::store::Database;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct InitArgs {
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

pub(super) async fn init(args: InitArgs, clock: SharedClock) -> Result<ExitCode> {
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

/// `vouch migrate`: create or update the database schema, then exit.
pub(super) async fn migrate(data: DataDirArg) -> Result<ExitCode> {
    let data = data.resolve()?;
    let db = data.database_target();
    if let Database::Sqlite(_) = db {
        data.create_dirs()?;
    }
    crate::startup::migrate(&data).await?;
    println!("database schema is up to date ({db:?})");
    Ok(ExitCode::SUCCESS)
}
