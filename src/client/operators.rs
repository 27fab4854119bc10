//! `vouch operator add|set-password|list|disable` over the API (admin). All but `disable` also work on the data
//! directory without a server (admin recovery on the host); [`over_api`] decides which.

use super::output::{self, Table};
use super::{finish, Client, Connection, Outcome};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde_json::json;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Whether `vouch operator add|set-password|list` goes to a server rather than the data directory. The command
/// line beats the environment; at the same level the data directory wins:
/// `--data-dir`/`--database-url` given → data directory; else `--url` given → API; else
/// `VOUCH_DATA_DIR`/`VOUCH_DATABASE_URL` set → data directory; else `VOUCH_URL` set → API; else the
/// data directory (`./vouch-data`), as before the client existed.
pub fn over_api(top: &ArgMatches) -> bool {
    let Some(("operator", m)) = top.subcommand() else {
        return false;
    };
    let Some((name, m)) = m.subcommand() else {
        return false;
    };
    if name != "add" && name != "list" && name != "set-password" {
        return name == "disable";
    }
    let from = |id: &str, source: ValueSource| m.value_source(id) == Some(source);
    let data = |source| from("data_dir", source) || from("database_url", source);
    let url = |source| from("url", source);
    if data(ValueSource::CommandLine) {
        false
    } else if url(ValueSource::CommandLine) {
        true
    } else if data(ValueSource::EnvVariable) {
        false
    } else {
        url(ValueSource::EnvVariable)
    }
}

/// `vouch operator add` over the API: prints the new operator and, alone on the last line, its
/// token.
pub async fn add(
    conn: Connection,
    name: String,
    roles: Vec<String>,
    password: Option<Zeroizing<String>>,
) -> ExitCode {
    finish(create(conn, name, roles, password).await)
}

async fn create(
    conn: Connection,
    name: String,
    roles: Vec<String>,
    password: Option<Zeroizing<String>>,
) -> Outcome {
    let mut body = json!({"name": name, "roles": roles});
    if let Some(p) = &password {
        body["password"] = json!(p.as_str());
    }
    let answer = Client::new(&conn)?
        .post(&["api", "v1", "operators"], &body)
        .await?;
    if conn.json {
        output::raw(&answer.raw);
        return Ok(ExitCode::SUCCESS);
    }
    let v = &answer.value;
    // The same lines as the data-directory version: the new token alone on the last line.
    println!(
        "created operator {} ({}) with roles {}",
        output::text(&v["name"]).unwrap_or_default(),
        output::text(&v["id"]).unwrap_or_default(),
        v["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(output::text)
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("bearer token (shown once; store it safely):");
    println!("{}", output::text(&v["token"]).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `vouch operator set-password` over the API: the operator is found by name in the list, then
/// its password is set (an admin's own), or a change is asked for that a second admin approves
/// (another operator's: 202 with the pending reset).
pub async fn set_password(
    conn: Connection,
    name: String,
    password: Zeroizing<String>,
    reason: Option<String>,
) -> ExitCode {
    finish(
        async {
            let client = Client::new(&conn)?;
            let list = client.get(&["api", "v1", "operators"], &[]).await?;
            let found = list.value["operators"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| output::text(&o["name"]).is_some_and(|n| n.eq_ignore_ascii_case(&name)))
                .and_then(|o| output::text(&o["id"]));
            let Some(id) = found else {
                return Err(super::Failure::Api {
                    code: "not_found".into(),
                    message: format!("no operator named {name:?}"),
                });
            };
            let body = json!({"password": password.as_str(), "reason": reason});
            let answer = client
                .post(&["api", "v1", "operators", &id, "password"], &body)
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else if answer.status == reqwest::StatusCode::ACCEPTED {
                println!(
                    "password change for operator {name} ({id}) awaits a second admin's approval: \
                     reset {} (expires {})",
                    output::text(&answer.value["id"]).unwrap_or_default(),
                    output::text(&answer.value["expires_at"]).unwrap_or_default()
                );
            } else {
                println!("password set for operator {name} ({id})");
            }
            Ok(ExitCode::SUCCESS)
        }
        .await,
    )
}

/// `vouch operator list` over the API.
pub async fn list(conn: Connection) -> ExitCode {
    finish(
        async {
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "operators"], &[])
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                let keys = ["id", "name", "roles", "disabled", "created_at"];
                let mut t = Table::new(&keys);
                for op in answer.value["operators"].as_array().into_iter().flatten() {
                    t.row_of(op, &keys);
                }
                t.print();
            }
            Ok(ExitCode::SUCCESS)
        }
        .await,
    )
}

/// `vouch operator disable` (over the API only).
pub async fn disable(conn: Connection, id: String) -> ExitCode {
    finish(
        async {
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "operators", &id, "disable"], &json!({}))
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                println!(
                    "disabled operator {}",
                    output::text(&answer.value["id"]).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        .await,
    )
}

/// On the data directory the output is the original text; `--json` needs the API.
pub fn refuse_json_on_host(conn: &Connection) -> crate::error::Result<()> {
    if conn.json {
        return Err(crate::error::Error::invalid(
            "json_needs_api",
            "--json works over the API: give --url (or VOUCH_URL) and no --data-dir",
        ));
    }
    Ok(())
}
