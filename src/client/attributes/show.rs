//! How `vouch attribute` shows what the server answered: attribute certificates (written to a
//! file when asked), grants, and the attribute authority's certificates.

use super::super::output::{self, Fields};
use super::super::{write_output, Answer, Failure};
use base64::Engine;
use serde_json::Value;
use std::path::Path;
use time::format_description::well_known::Rfc3339;

/// The subject and notAfter of each certificate in a PEM bundle; None if it holds none, or
/// anything that is not a certificate.
pub(super) fn pem_certificates(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let blocks = pem::parse_many(bytes).ok()?;
    let mut out = Vec::new();
    for block in &blocks {
        if block.tag() != "CERTIFICATE" {
            return None;
        }
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents()).ok()?;
        let not_after = cert
            .validity()
            .not_after
            .to_datetime()
            .format(&Rfc3339)
            .ok()?;
        out.push((cert.subject().to_string(), not_after));
    }
    (!out.is_empty()).then_some(out)
}

/// Print an AC (or its JSON), after writing it to `out` when asked: PEM, or DER with `der`.
/// With `out` `-` the AC alone goes to stdout.
pub(super) fn written(
    answer: &Answer,
    out: Option<&Path>,
    der: bool,
    force: bool,
    json: bool,
) -> Result<(), Failure> {
    let v = &answer.value;
    if let Some(out) = out {
        let pem = v["pem"]
            .as_str()
            .filter(|p| p.starts_with("-----BEGIN ATTRIBUTE CERTIFICATE-----"))
            .ok_or_else(|| Failure::local("the answer has no attribute certificate PEM"))?;
        let bytes = if der {
            base64::engine::general_purpose::STANDARD
                .decode(v["der"].as_str().unwrap_or(""))
                .map_err(|_| Failure::local("the answer's DER is not base64"))?
        } else {
            pem.as_bytes().to_vec()
        };
        write_output(out, &bytes, force)?;
        if out.as_os_str() == "-" {
            return Ok(());
        }
    }
    if json {
        output::raw(&answer.raw);
        return Ok(());
    }
    let mut f = Fields::new();
    f.add("serial", &v["serial"]);
    let mut status = output::text(&v["status"]).unwrap_or_else(|| "?".into());
    if v["expired"] == Value::Bool(true) {
        status.push_str(" (expired)");
    }
    f.line("status", status);
    f.keys(
        v,
        &[
            "holder_serial",
            "profile",
            "roles",
            "groups",
            "targets",
            "role_uris",
            "target_uris",
            "not_before",
            "not_after",
            "revocation",
            "revoked_at",
            "revocation_reason",
            "grant_id",
            "granted_by",
            "issued_at",
        ],
    );
    if let Some(out) = out {
        f.line("file", out.display().to_string());
    }
    f.print();
    Ok(())
}

/// `N of M`: a grant's approvals counted and needed.
pub(super) fn approval_count(g: &Value) -> String {
    format!(
        "{} of {}",
        g["approvals"].as_array().map_or(0, Vec::len),
        output::text(&g["required_approvals"]).unwrap_or_else(|| "?".into())
    )
}

/// A grant as `key: value` lines.
pub(super) fn grant_fields(g: &Value) -> Fields {
    let mut f = Fields::new();
    f.keys(
        g,
        &[
            "id",
            "status",
            "serial",
            "holder_serial",
            "profile",
            "roles",
            "groups",
            "targets",
            "not_before",
            "not_after",
        ],
    );
    let by: Vec<String> = g["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| output::text(&a["operator"]))
        .collect();
    let mut line = approval_count(g);
    if !by.is_empty() {
        line.push_str(&format!(" ({})", by.join(", ")));
    }
    f.line("approvals", line);
    f.keys(g, &["requested_by", "created_at", "expires_at", "reason"]);
    f
}

pub(super) fn show_grant(answer: &Answer, json: bool) {
    if json {
        output::raw(&answer.raw);
    } else {
        grant_fields(&answer.value).print();
    }
}
