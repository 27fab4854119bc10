//! `vouch ca …`: the embedded root CA's duties and ceremonies (src/ra/root).

use super::{check_public_url, days, lock_data_dir, open_store, DataDirArg};
use crate::clock::SharedClock;
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::store::Store;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct RootKeyArg {
    /// The root CA key file (PEM, mode 0600), for a root kept offline; default: the key in the
    /// data directory's ca/root.key.
    #[arg(long)]
    root_key: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(super) enum CaCommand {
    /// Show the root key's place, the published ARL and the issuing CA certificate's URLs.
    Status {
        #[command(flatten)]
        data: DataDirArg,
        /// Also check the issuing CA certificate against this public URL.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Sign the next ARL (the root's CRL of CA certificates, served at /crl/root.crl): the
    /// offline root's ceremony. Servers publish it within about a second.
    SignArl {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        root: RootKeyArg,
        /// Validity of the ARL (thisUpdate to nextUpdate), in days.
        #[arg(long, default_value_t = crate::ra::root::DEFAULT_ARL_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u16).range(1..=366))]
        validity_days: u16,
        /// Also write the ARL (DER) to this file, for publication elsewhere.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revoke the issuing CA (every certificate the root made for its key) and sign the ARL that
    /// lists it: relying parties then refuse every certificate it issued. Cannot be undone.
    RevokeIssuing {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        root: RootKeyArg,
        /// keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation or
        /// unspecified.
        #[arg(long)]
        reason: String,
        /// Validity of the ARL, in days.
        #[arg(long, default_value_t = crate::ra::root::DEFAULT_ARL_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u16).range(1..=366))]
        validity_days: u16,
    },
    /// Re-issue the issuing CA certificate (same key, subject and key identifiers) naming the
    /// root's ARL and certificate under --public-url; certificates already issued stay valid.
    /// Stop the server first (a server with the root key online does this itself at start).
    ReissueIssuing {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        root: RootKeyArg,
        /// Base URL relying parties reach this RA at.
        #[arg(long, env = "VOUCH_PUBLIC_URL")]
        public_url: String,
    },
    /// Issue the attribute authority's certificate with the root key (a new AA key and
    /// certificate when the data directory has none; else a new certificate for the AA's key):
    /// the ceremony for a root kept offline. Restart the server to use it.
    IssueAa {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        root: RootKeyArg,
        /// Base URL relying parties reach this RA at: the AA certificate then names the root's
        /// ARL and certificate under it.
        #[arg(long, env = "VOUCH_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Move the root key out of the data directory into a new file (0600), after signing a fresh
    /// ARL for the server to publish meanwhile: the offline root for an existing directory.
    MoveRootKey {
        #[command(flatten)]
        data: DataDirArg,
        /// The new key file; it must not exist.
        #[arg(long)]
        out: PathBuf,
        /// Validity of the ARL signed before the key leaves, in days.
        #[arg(long, default_value_t = crate::ra::root::DEFAULT_ARL_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u16).range(1..=366))]
        validity_days: u16,
    },
}

/// Take the root key out of `data` into `out`, after signing an ARL valid for `validity`.
pub(super) async fn move_root_key(
    data: &DataDir,
    out: &std::path::Path,
    validity: time::Duration,
    now: time::OffsetDateTime,
) -> Result<()> {
    let (store, ca) = open_ca(data).await?;
    let moved = crate::ra::root::move_root_key(&store, &ca, out, now, validity).await;
    store.close().await;
    let arl = moved?;
    println!(
        "root key moved to {} (keep it offline); ARL number {} valid until {}",
        out.display(),
        arl.number,
        crate::ra::rfc3339(arl.next_update)
    );
    Ok(())
}

async fn open_ca(data: &DataDir) -> Result<(Store, crate::ca::local::LocalCa)> {
    let ca = crate::ca::local::LocalCa::load(&data.ca_dir())?;
    let store = open_store(data).await?;
    Ok((store, ca))
}

pub(super) async fn ca_command(command: CaCommand, clock: SharedClock) -> Result<ExitCode> {
    use crate::ra::root;
    let now = clock.now();
    match command {
        CaCommand::Status { data, public_url } => {
            if let Some(url) = &public_url {
                check_public_url(url)?;
            }
            let (store, ca) = open_ca(&data.resolve()?).await?;
            let expected = public_url
                .as_deref()
                .map(crate::ca::root::Publication::under);
            let status = root::status(
                &store,
                &ca,
                expected.as_ref(),
                now,
                days(root::DEFAULT_ARL_WARN_DAYS),
            )
            .await;
            store.close().await;
            let status = status?;
            println!("root key: {}", status.root_key);
            match &status.arl {
                Some(a) => println!(
                    "ARL: number {}, this update {}, next update {} ({})",
                    a.number, a.this_update, a.next_update, a.state
                ),
                None => println!("ARL: none signed yet"),
            }
            println!("issuing CA certificate: serial {}", status.issuing_serial);
            println!(
                "  CRL distribution points: {}",
                status.issuing_crl_urls.join(" ")
            );
            println!("  CA issuers: {}", status.issuing_ca_issuers_urls.join(" "));
            if let Some(reason) = &status.issuing_revoked {
                println!("  REVOKED: {reason}");
            }
            for w in &status.warnings {
                println!("warning: {w}");
            }
            Ok(if status.warnings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CaCommand::SignArl {
            data,
            root: key,
            validity_days,
            out,
        } => {
            if let Some(out) = &out {
                if out.exists() {
                    return Err(Error::invalid(
                        "output_exists",
                        format!("{} exists; give a new file", out.display()),
                    ));
                }
            }
            let (store, ca) = open_ca(&data.resolve()?).await?;
            let signed = async {
                let key = std::sync::Arc::new(ca.root_key(key.root_key.as_deref())?);
                root::sign_arl(&store, key, now, days(validity_days)).await
            }
            .await;
            store.close().await;
            let arl = signed?;
            if let Some(out) = &out {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(out)
                    .and_then(|mut f| f.write_all(&arl.der))
                    .map_err(|e| {
                        Error::invalid("cannot_write", format!("{}: {e}", out.display()))
                    })?;
            }
            println!(
                "signed ARL number {}: this update {}, next update {}",
                arl.number,
                crate::ra::rfc3339(arl.this_update),
                crate::ra::rfc3339(arl.next_update)
            );
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::RevokeIssuing {
            data,
            root: key,
            reason,
            validity_days,
        } => {
            let (store, ca) = open_ca(&data.resolve()?).await?;
            let done = async {
                let key = std::sync::Arc::new(ca.root_key(key.root_key.as_deref())?);
                root::revoke_issuing(&store, &ca, key, &reason, now, days(validity_days)).await
            }
            .await;
            store.close().await;
            let done = done?;
            println!(
                "revoked the issuing CA ({}): certificate(s) {}; ARL number {} lists them",
                done.reason,
                done.serials.join(", "),
                done.arl_number
            );
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::ReissueIssuing {
            data,
            root: key,
            public_url,
        } => {
            check_public_url(&public_url)?;
            let data = data.resolve()?;
            let _lock = lock_data_dir(&data)?;
            let (store, ca) = open_ca(&data).await?;
            let done = async {
                let key = ca.root_key(key.root_key.as_deref())?;
                let publication = crate::ca::root::Publication::under(&public_url);
                root::reissue_issuing(&store, &ca, &key, &publication, now).await
            }
            .await;
            store.close().await;
            let der = done?;
            println!(
                "re-issued the issuing CA certificate: serial {}, ARL at {}/crl/root.crl",
                root::serial_of(&der)?,
                public_url.trim_end_matches('/')
            );
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::IssueAa {
            data,
            root: key,
            public_url,
        } => {
            if let Some(url) = &public_url {
                check_public_url(url)?;
            }
            let data = data.resolve()?;
            let _lock = lock_data_dir(&data)?;
            let (store, ca) = open_ca(&data).await?;
            let done = async {
                let key = ca.root_key(key.root_key.as_deref())?;
                let publication = public_url
                    .as_deref()
                    .map(crate::ca::root::Publication::under);
                root::issue_aa(&store, &data.ca_dir(), &key, publication.as_ref(), now).await
            }
            .await;
            store.close().await;
            let der = done?;
            println!(
                "issued the attribute authority certificate: serial {}, in {}",
                root::serial_of(&der)?,
                data.ca_dir().join("aa.pem").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::MoveRootKey {
            data,
            out,
            validity_days,
        } => {
            move_root_key(&data.resolve()?, &out, days(validity_days), now).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
