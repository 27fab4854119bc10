//! `vouch receipt verify`: check a verification receipt offline, against the root certificate.

use crate::error::{Error, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum ReceiptCommand {
    /// Check a receipt from POST /api/v1/verify (DER, PEM or the base64 of the `receipt` field):
    /// its signature, its chain to the root and the receipt-signing purpose of its signer. Prints
    /// what it says (the decision, reasons, signers, content hash); exit 0 when it holds, 1 when
    /// it does not. Needs no server.
    Verify {
        /// The receipt file.
        file: PathBuf,
        /// The root CA certificate (PEM) to check it against: the RA's /ca/root.pem.
        #[arg(long)]
        root: PathBuf,
        /// Print the signed answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), &e))
}

/// The receipt's bytes: DER or PEM as they are; base64 text decoded.
fn receipt_bytes(raw: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    if raw.first() == Some(&0x30) || raw.starts_with(b"-----BEGIN") {
        return raw;
    }
    let text: String = String::from_utf8_lossy(&raw)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or(raw)
}

pub(super) fn run(command: ReceiptCommand) -> Result<ExitCode> {
    let ReceiptCommand::Verify { file, root, json } = command;
    let receipt = receipt_bytes(read(&file)?);
    let root = read(&root)?;
    match crate::verify::receipt::verify_receipt(&receipt, &root) {
        Ok(answer) => {
            if json {
                println!("{answer}");
            } else {
                println!("receipt: valid");
                for key in [
                    "decision",
                    "reasons",
                    "signed_at",
                    "time_source",
                    "content_sha256",
                    "role",
                    "application",
                    "verified_at",
                ] {
                    if let Some(v) = answer.get(key).filter(|v| !v.is_null()) {
                        let shown = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        println!("{key}: {shown}");
                    }
                }
                for s in answer["signers"].as_array().into_iter().flatten() {
                    println!(
                        "signer: {} {} ({})",
                        s["serial"].as_str().unwrap_or("-"),
                        s["subject"].as_str().unwrap_or("-"),
                        s["certificate_status"].as_str().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("vouch: receipt not valid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
