//! `vouch operator add|set-password|reset-totp|unlock|list|disable`: over the API (`client::operators`) when a server URL is
//! given and no data directory, on the data directory otherwise (host recovery).

use super::{open_store, DataDirArg};
use crate::client;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::ra::{console, operator_resets, operators, Role};
use crate::store::operators as operator_rows;
use clap::Subcommand;
use std::process::ExitCode;
use zeroize::Zeroizing;

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
        /// Also set the console password, read from standard input (one line; at least 12
        /// characters). Approvers, revokers, admins and aa operators enrol TOTP at their first
        /// console login.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an operator's console password, read from standard input; their console sessions end
    ///
    /// On the data directory it is set at once (host recovery, audited `via: host`). Over the
    /// API, an admin's own password is set at once; another operator's waits until a second
    /// admin approves it (`POST /api/v1/operator-resets/{id}/approve`).
    SetPassword {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        conn: client::Connection,
        /// The operator's login name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input (required: a password is never an argument,
        /// where other users could read it).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Why (over the API, for another operator: the second admin decides on it; on the data
        /// directory: recorded in the audit entry).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reset an operator's TOTP on the data directory (host recovery: no second admin needed)
    ///
    /// The operator enrols again at their next console login; their console sessions end.
    /// The host's way out when no second admin can approve a reset (over the API, `POST
    /// /api/v1/operators/{id}/reset-totp` waits for one). Audited `operator.totp_reset` with
    /// `via: host`.
    ResetTotp {
        #[command(flatten)]
        data: DataDirArg,
        /// The operator's login name.
        #[arg(long)]
        name: String,
    },
    /// Lift an operator's console lock after repeated failed logins (on the data directory; the
    /// password and TOTP stay as they are). Audited.
    Unlock {
        #[command(flatten)]
        data: DataDirArg,
        /// The operator's login name.
        #[arg(long)]
        name: String,
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
            conn,
            name,
            roles,
            password_stdin,
            ..
        } if over_api => {
            let password = password_stdin.then(read_password).transpose()?;
            Ok(client::operators::add(conn, name, roles, password).await)
        }
        OperatorCommand::SetPassword {
            conn, name, reason, ..
        } if over_api => {
            let password = read_password()?;
            Ok(client::operators::set_password(conn, name, password, reason).await)
        }
        OperatorCommand::SetPassword {
            data,
            conn,
            name,
            reason,
            ..
        } => set_password_on_host(data, conn, name, reason, &clock).await,
        OperatorCommand::List { conn, .. } if over_api => Ok(client::operators::list(conn).await),
        OperatorCommand::Add {
            data,
            conn,
            name,
            roles,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            add_on_host(data, conn, name, roles, password, &clock).await
        }
        OperatorCommand::List { data, conn } => list_on_host(data, conn).await,
        OperatorCommand::Unlock { data, name } => unlock_on_host(data, name, &clock).await,
        OperatorCommand::ResetTotp { data, name } => reset_totp_on_host(data, name, &clock).await,
    }
}

/// The operator named `name` (ignoring case) in `store`.
async fn find(store: &crate::store::Store, name: &str) -> Result<operator_rows::OperatorRow> {
    let mut c = store.read().await?;
    operator_rows::by_name_ignoring_case(&mut c, name)
        .await?
        .ok_or(Error::NotFound("operator"))
}

/// `operator reset-totp` on the data directory.
async fn reset_totp_on_host(
    data: DataDirArg,
    name: String,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(&data.resolve()?).await?;
    let result = match find(&store, &name).await {
        Ok(op) => operator_resets::reset_totp_on_host(&store, clock.now(), &op.id)
            .await
            .map(|()| op),
        Err(e) => Err(e),
    };
    store.close().await;
    let op = result?;
    println!(
        "TOTP reset for operator {} ({}); they enrol again at their next console login",
        op.name, op.id
    );
    Ok(ExitCode::SUCCESS)
}

/// `operator unlock` on the data directory.
async fn unlock_on_host(data: DataDirArg, name: String, clock: &SharedClock) -> Result<ExitCode> {
    let store = open_store(&data.resolve()?).await?;
    let found = match store.read().await {
        Ok(mut c) => operator_rows::by_name_ignoring_case(&mut c, &name).await,
        Err(e) => Err(e),
    };
    let result = match found {
        Ok(Some(op)) => console::sessions::unlock(&store, clock.now(), &op.id)
            .await
            .map(|done| done.then_some(op)),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    store.close().await;
    let Some(op) = result? else {
        return Err(Error::NotFound("operator"));
    };
    println!("console lock lifted for operator {} ({})", op.name, op.id);
    Ok(ExitCode::SUCCESS)
}

/// `operator add` on the data directory (no server needed: an admin's recovery on the host).
async fn add_on_host(
    data: DataDirArg,
    conn: client::Connection,
    name: String,
    roles: Vec<String>,
    password: Option<Zeroizing<String>>,
    clock: &SharedClock,
) -> Result<ExitCode> {
    client::operators::refuse_json_on_host(&conn)?;
    let roles = roles
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Result<Vec<_>>>()?;
    // Hashed before anything is written: a refused password creates no operator.
    let hash = match password {
        Some(p) => Some(console::password::hash(p).await?),
        None => None,
    };
    let data = data.resolve()?;
    let store = open_store(&data).await?;
    let created = operators::create(&store, clock.now(), None, name, roles).await?;
    if let Some(hash) = hash {
        let result =
            console::sessions::set_password_hash(&store, clock.now(), &created.view.id, hash, None)
                .await;
        if let Err(e) = result {
            store.close().await;
            return Err(e);
        }
    }
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

/// `operator set-password` on the data directory.
async fn set_password_on_host(
    data: DataDirArg,
    conn: client::Connection,
    name: String,
    reason: Option<String>,
    clock: &SharedClock,
) -> Result<ExitCode> {
    client::operators::refuse_json_on_host(&conn)?;
    // Checked before the password is read; recorded in the audit entry.
    let reason = reason
        .map(|r| crate::ra::operator_resets::check_reason(Some(&r)))
        .transpose()?;
    let password = read_password()?;
    let hash = console::password::hash(password).await?;
    let store = open_store(&data.resolve()?).await?;
    let found = {
        let mut c = store.read().await?;
        operator_rows::by_name_ignoring_case(&mut c, &name).await?
    };
    let Some(op) = found else {
        store.close().await;
        return Err(Error::NotFound("operator"));
    };
    let result =
        console::sessions::set_password_hash(&store, clock.now(), &op.id, hash, reason).await;
    store.close().await;
    result?;
    println!("password set for operator {} ({})", op.name, op.id);
    Ok(ExitCode::SUCCESS)
}

/// The password on standard input: everything up to the first line end (or the end), at most
/// [`console::password::MAX_BYTES`] bytes.
fn read_password() -> Result<Zeroizing<String>> {
    use std::io::Read;
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(console::password::MAX_BYTES as u64 + 2)
        .read_to_end(&mut raw)
        .map_err(|e| Error::Environment(format!("reading the password from stdin: {e}")))?;
    let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw[..end].strip_suffix(b"\r").unwrap_or(&raw[..end]);
    let text = std::str::from_utf8(line)
        .map_err(|_| Error::invalid("weak_password", "the password is not UTF-8"))?;
    let password = Zeroizing::new(text.to_string());
    console::password::check_new(&password)?;
    Ok(password)
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
