//! `vouch subscriber add|add-id|show|search`: subscribers and their identity evidence.

use super::output::{self, Fields, Table};
use super::{finish, Client, Connection, Failure, Outcome};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::process::ExitCode;

/// `vouch subscriber`: subscribers and their identity evidence.
#[derive(Subcommand)]
pub enum SubscriberCommand {
    /// Register a person or organisation with the identity evidence examined (clerk).
    Add(AddArgs),
    /// Record one more identity document for a subscriber (clerk).
    AddId {
        /// Subscriber id (sub_…).
        id: String,
        /// The document: TYPE:NUMBER:ISSUER:VALID_UNTIL[:DOCUMENT_SHA256] (see `add --help`).
        #[arg(long = "id", value_name = "SPEC")]
        evidence: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Show a subscriber and its evidence.
    Show {
        /// Subscriber id (sub_…).
        id: String,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
    /// Search name, e-mail, organisation and identifier numbers (substring, ASCII case ignored);
    /// newest first.
    Search {
        /// Text to look for; without it, every subscriber (up to --limit).
        query: Option<String>,
        /// At most this many (1–200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Where the server is and who is calling.
        #[command(flatten)]
        conn: Connection,
    },
}

/// The arguments of `vouch subscriber add`.
#[derive(Args)]
pub struct AddArgs {
    /// person or organisation.
    #[arg(long, value_parser = ["person", "organisation"])]
    kind: String,
    /// Name as on the evidence (1–64 characters).
    #[arg(long)]
    name: String,
    /// E-mail address (certified in subjectAltName by the built-in profiles).
    #[arg(long)]
    email: Option<String>,
    /// Organisation.
    #[arg(long)]
    organisation: Option<String>,
    /// An identity document: TYPE:NUMBER:ISSUER:VALID_UNTIL[:DOCUMENT_SHA256], e.g.
    /// national-id:110101199003070011:Public Security Bureau:2035-01-01. Write a colon inside a
    /// field as \: and a backslash as \\. Repeat for several (1–16).
    #[arg(long = "id", value_name = "SPEC", required = true)]
    evidence: Vec<String>,
    /// Where the server is and who is calling.
    #[command(flatten)]
    conn: Connection,
}

/// Split on `:`, with `\:` a colon and `\\` a backslash inside a field.
fn split_fields(spec: &str) -> Result<Vec<String>, Failure> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (':' | '\\')) => field.push(e),
                _ => {
                    return Err(Failure::local(format!(
                        "--id {spec:?}: a backslash must be followed by : or \\"
                    )))
                }
            },
            ':' => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    Ok(fields)
}

/// One identifier object of the API from a `--id` spec.
pub fn identifier(spec: &str) -> Result<Value, Failure> {
    let fields = split_fields(spec)?;
    if !(4..=5).contains(&fields.len()) {
        return Err(Failure::local(format!(
            "--id {spec:?}: expected TYPE:NUMBER:ISSUER:VALID_UNTIL[:DOCUMENT_SHA256] \
             ({} fields found; write a colon inside a field as \\:)",
            fields.len()
        )));
    }
    let mut id = Map::new();
    for (key, value) in ["type", "number", "issuer", "valid_until", "document_sha256"]
        .iter()
        .zip(fields)
    {
        id.insert(key.to_string(), Value::String(value));
    }
    Ok(Value::Object(id))
}

/// Run a `vouch subscriber` command.
pub async fn run(command: SubscriberCommand) -> ExitCode {
    finish(dispatch(command).await)
}

async fn dispatch(command: SubscriberCommand) -> Outcome {
    match command {
        SubscriberCommand::Add(a) => {
            let identifiers = a
                .evidence
                .iter()
                .map(|s| identifier(s))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({"kind": a.kind, "name": a.name, "identifiers": identifiers});
            if let Some(email) = a.email {
                body["email"] = Value::String(email);
            }
            if let Some(org) = a.organisation {
                body["organisation"] = Value::String(org);
            }
            let answer = Client::new(&a.conn)?
                .post(&["api", "v1", "subscribers"], &body)
                .await?;
            if a.conn.json {
                output::raw(&answer.raw);
            } else {
                Fields::new().keys(&answer.value, &["id"]).print();
            }
        }
        SubscriberCommand::AddId { id, evidence, conn } => {
            let body = identifier(&evidence)?;
            let answer = Client::new(&conn)?
                .post(&["api", "v1", "subscribers", &id, "identifiers"], &body)
                .await?;
            show(&answer, conn.json);
        }
        SubscriberCommand::Show { id, conn } => {
            let answer = Client::new(&conn)?
                .get(&["api", "v1", "subscribers", &id], &[])
                .await?;
            show(&answer, conn.json);
        }
        SubscriberCommand::Search { query, limit, conn } => {
            let answer = Client::new(&conn)?
                .get(
                    &["api", "v1", "subscribers"],
                    &[
                        ("q", query.unwrap_or_default()),
                        ("limit", limit.to_string()),
                    ],
                )
                .await?;
            if conn.json {
                output::raw(&answer.raw);
            } else {
                let mut t =
                    Table::new(&["id", "kind", "name", "email", "organisation", "created_at"]);
                for s in answer.value["subscribers"].as_array().into_iter().flatten() {
                    t.row_of(
                        s,
                        &["id", "kind", "name", "email", "organisation", "created_at"],
                    );
                }
                t.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(answer: &super::Answer, json: bool) {
    if json {
        output::raw(&answer.raw);
        return;
    }
    let s = &answer.value;
    Fields::new()
        .keys(
            s,
            &[
                "id",
                "kind",
                "name",
                "email",
                "organisation",
                "created_by",
                "created_at",
            ],
        )
        .print();
    println!("identifiers:");
    let mut t = Table::new(&[
        "type",
        "number",
        "issuer",
        "valid_until",
        "valid",
        "recorded_at",
    ]);
    for i in s["identifiers"].as_array().into_iter().flatten() {
        t.row_of(
            i,
            &[
                "type",
                "number",
                "issuer",
                "valid_until",
                "valid",
                "recorded_at",
            ],
        );
    }
    t.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_specs_split_on_unescaped_colons() {
        let v =
            identifier("national-id:110101199003070011:Public Security Bureau:2035-01-01").unwrap();
        assert_eq!(
            v,
            json!({"type": "national-id", "number": "110101199003070011",
                   "issuer": "Public Security Bureau", "valid_until": "2035-01-01"})
        );
        let v = identifier(&format!(
            "passport:A\\:1:Ministry\\\\x:2030-01-01:{}",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(v["number"], "A:1");
        assert_eq!(v["issuer"], "Ministry\\x");
        assert_eq!(v["document_sha256"], "ab".repeat(32));
    }

    #[test]
    fn bad_id_specs_are_usage_errors() {
        assert!(identifier("national-id:123:2035-01-01").is_err());
        assert!(identifier("a:b:c:d:e:f").is_err());
        assert!(identifier("a:b\\x:c:d").is_err());
    }
}
