//! `vouch operator add|list|disable`: over the API (`client::operators`) when a server URL is
//! given and no data directory, on the data directory otherwise (host recovery).

use super::{open_store, DataDirArg};
use crate::client;
use crate::clock::SharedClock;
use crate::error::Result;
use crate::ra::{operators, Role};
use crate::store::operators as operator_rows;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum OperatorCommand {
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

// `add` and `list` go over the API when a server URL is given (--url or VOUCH_URL) and no data
// directory (--data-dir, --database-url or their variables); the command line beats the
// environment (`client::operators::over_api`, docs/API.md "vouch as a client").

/// Run an operator command; `over_api` says where `add` and `list` go.
pub(super) async fn operator_command(
    command: OperatorCommand,
    over_api: bool,
    clock: SharedClock,
) -> Result<ExitCode> {
    match command {
        OperatorCommand::Disable { id, conn } => Ok(client::operators::disable(conn, id).await),
        OperatorCommand::Add {
            conn, name, roles, ..
        } if over_api => Ok(client::operators::add(conn, name, roles).await),
        OperatorCommand::List { conn, .. } if over_api => Ok(client::operators::list(conn).await),
        OperatorCommand::Add {
            data,
            conn,
            name,
            roles,
        } => add_on_host(data, conn, name, roles, &clock).await,
        OperatorCommand::List { data, conn } => list_on_host(data, conn).await,
    }
}

/// `operator add` on the data directory (no server needed: an admin's recovery on the host).
async fn add_on_host(
    data: DataDirArg,
    conn: client::Connection,
    name: String,
    roles: Vec<String>,
    clock: &SharedClock,
) -> Result<ExitCode> {
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

/// `operator list` on the data directory.
async fn list_on_host(data: DataDirArg, conn: client::Connection) -> Result<ExitCode> {
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
