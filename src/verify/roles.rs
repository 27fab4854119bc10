//! Roles at the signing time: the signer holds the role in the application when an attribute
//! certificate (one Vouch issued for the signer's certificate, or one the caller sent) names the
//! signer's certificate as its holder, the role and the application, is valid at that time and
//! was not revoked or held by then.

use crate::error::Result;
use crate::ra::Ra;
use crate::state::CertificateStatus;
use crate::store::attributes::{self as rows, AcFilter, AcRow};
use crate::x509::ac::{self, AcProblem, Expectation};
use time::OffsetDateTime;

/// When a Vouch AC stopped being usable, by the records: revoked or held at that time (a hold
/// that ended before `at` does not count; the history says).
async fn unusable_since(ra: &Ra, row: &AcRow, at: i64) -> Result<Option<OffsetDateTime>> {
    let history = ra.attribute_history(&row.serial).await?;
    Ok(match super::records::status_at(&history, at) {
        Some(h) if h.status != CertificateStatus::Valid => {
            OffsetDateTime::from_unix_timestamp(h.at).ok()
        }
        _ => None,
    })
}

impl Ra {
    /// The roles the holder of `cert_der` holds in `application` at `at`, and, when `role` is not
    /// among them, why (the problems of the attribute certificates that name it, or
    /// `role_missing` when none does).
    pub(super) async fn roles_at(
        &self,
        cert_der: &[u8],
        holder_serial: Option<&str>,
        role: &str,
        application: &str,
        caller_acs: &[Vec<u8>],
        at: OffsetDateTime,
    ) -> Result<(Vec<String>, Vec<&'static str>)> {
        let names = &self.config().attribute_names;
        let (role_uri, target_uri) = (names.role_uri(role), names.target_uri(application));
        let Some(aa) = self.aa_certificate().map(<[u8]>::to_vec) else {
            return Ok((Vec::new(), vec!["role_missing"]));
        };
        // Vouch's own ACs of this holder, then the caller's (matched to Vouch's records when
        // they are Vouch's, for their status).
        let mut candidates: Vec<(Vec<u8>, Option<AcRow>)> = Vec::new();
        if let Some(holder) = holder_serial {
            let filter = AcFilter {
                holder_serial: Some(holder.to_string()),
                role: None,
                target: None,
            };
            let mut c = self.store().read().await?;
            for row in rows::list(&mut c, &filter, 1000).await? {
                candidates.push((row.der.clone(), Some(row)));
            }
        }
        for der in caller_acs {
            if candidates.iter().any(|(d, _)| d == der) {
                continue;
            }
            // Vouch's record by serial alone: an AC the AA signed is the one on record with its
            // serial, whatever its bytes (an ECDSA signature has a second valid form, so a
            // revoked AC must not pass for an unknown one by a change of encoding).
            let row = match ac::parse(der) {
                Ok(parsed) => {
                    let mut c = self.store().read().await?;
                    rows::get(&mut c, &parsed.serial_hex()).await?
                }
                Err(_) => None,
            };
            candidates.push((der.clone(), row));
        }
        let mut held = Vec::new();
        // The problems reported are those of the most fitting AC naming the role: one for this
        // application (revoked, expired, ...) before one for another application.
        let mut problems: Option<(bool, Vec<&'static str>)> = None;
        for (der, row) in &candidates {
            let revoked_at = match row {
                Some(row) => unusable_since(self, row, at.unix_timestamp()).await?,
                None => None,
            };
            let expect = Expectation {
                at,
                target_uri: Some(&target_uri),
                revoked_at,
            };
            let records = &self.verify_state().records;
            let checked = ac::check_with(der, cert_der, &aa, expect, &mut |parsed| {
                records.ac_signature_holds(parsed, der, &aa)
            });
            let Some(parsed) = &checked.ac else {
                let malformed = vec![AcProblem::Malformed(String::new()).code()];
                problems.get_or_insert((true, malformed));
                continue;
            };
            let names_role = parsed.role_uris.iter().any(|r| r == &role_uri);
            if checked.is_good() {
                held.extend(
                    parsed
                        .role_uris
                        .iter()
                        .filter_map(|u| names.role_of(u).map(str::to_string)),
                );
            } else if names_role {
                let elsewhere = checked.problems.contains(&AcProblem::TargetMismatch);
                if problems
                    .as_ref()
                    .is_none_or(|(worse, _)| *worse && !elsewhere)
                {
                    let codes = checked.problems.iter().map(AcProblem::code).collect();
                    problems = Some((elsewhere, codes));
                }
            }
        }
        held.sort();
        held.dedup();
        if held.iter().any(|r| r == role) {
            return Ok((held, Vec::new()));
        }
        let reasons = problems.map_or_else(|| vec!["role_missing"], |(_, codes)| codes);
        Ok((held, reasons))
    }
}
