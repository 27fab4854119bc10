//! The verification API: an application posts a signed submission (CMS SignedData) and gets a
//! decision, with every signer checked and reported (signature, certificate chain to Vouch's CA,
//! status at the signing time, key usage, issuing profile, role in the application through an
//! attribute certificate) and a receipt that Vouch signed over the answer.
//!
//! `cms` reads the SignedData and checks signatures; `timestamp` checks RFC 3161 signature
//! timestamps; `signer` checks one signer against Vouch's records; `roles` finds the attribute
//! certificate that gives a signer a role; `receipt` signs answers and checks receipts.

mod anchors;
pub mod cms;
pub mod receipt;
mod records;
mod roles;
mod signer;
pub mod timestamp;

use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::ra::{rfc3339, Operator, Ra, Role};
use crate::store::job;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What verifications keep between calls: the receipt signer, whether the issuing CA is revoked
/// (with the status generation it was read at), and the records of the certificates checked.
#[derive(Default)]
pub(crate) struct VerifyState {
    pub(crate) receipts: receipt::Receipts,
    pub(crate) issuing_revoked: std::sync::Mutex<Option<(u64, bool)>>,
    pub(crate) foreign_crls: anchors::ForeignCrls,
    pub(crate) records: records::Records,
}

/// Most attribute certificates a caller may send with one submission.
pub const MAX_CALLER_ACS: usize = 16;

/// How the signing time is set when no timestamp token gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimePolicy {
    /// Only an RFC 3161 timestamp token: without one, reject.
    Timestamp,
    /// The signer's own signingTime attribute (what the signer claims).
    SigningTime,
    /// The time of the verification.
    #[default]
    Now,
}

/// A key usage the policy can require of signers' certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RequiredKeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// nonRepudiation (contentCommitment).
    NonRepudiation,
}

/// What the application requires of a submission.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// How the signing time is set without a timestamp token (default `now`).
    #[serde(default)]
    pub time: TimePolicy,
    /// Reject a signer without a valid timestamp token.
    #[serde(default)]
    pub require_timestamp: bool,
    /// Key usages every signer's certificate must have.
    #[serde(default)]
    pub key_usage: Vec<RequiredKeyUsage>,
    /// The issuing profiles allowed (any when absent).
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// The role every signer must hold in `application` at the signing time.
    #[serde(default)]
    pub role: Option<String>,
    /// The application the role is for.
    #[serde(default)]
    pub application: Option<String>,
    /// Attribute certificates (base64 DER) the caller holds, besides those Vouch issued.
    #[serde(default)]
    pub attribute_certificates: Vec<String>,
}

/// A verification request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The CMS SignedData: base64 DER, or PEM.
    pub cms: String,
    /// The content (base64), when the CMS is detached.
    #[serde(default)]
    pub content: Option<String>,
    /// What the application requires.
    #[serde(default)]
    pub policy: Policy,
}

/// A signer's certificate revocation, as Vouch's records have it now.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationInfo {
    /// When the key is believed compromised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidity_date: Option<String>,
    /// The RFC 5280 reason.
    pub reason: String,
    /// When it was revoked (or put on hold).
    pub time: String,
}

/// One signer, as checked.
#[derive(Debug, Clone, Serialize)]
pub struct SignerReport {
    /// `good`, `revoked`, `on-hold` at the signing time, or `unknown` (not Vouch's).
    pub certificate_status: &'static str,
    /// The profile it was issued under (Vouch's certificates).
    pub profile: Option<String>,
    /// Why this signer fails the policy (empty when it passes).
    pub reasons: Vec<&'static str>,
    /// The revocation Vouch's records hold now, if any (it may be later than the signing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationInfo>,
    /// The roles held in the policy's application at the signing time.
    pub roles: Vec<String>,
    /// The certificate's serial (hex), when it was found.
    pub serial: Option<String>,
    /// The signing time used, RFC 3339.
    pub signed_at: Option<String>,
    /// The certificate's subject (RFC 4514), when it was found.
    pub subject: Option<String>,
    /// The subscriber the certificate was issued to (Vouch's certificates).
    pub subscriber_id: Option<String>,
    /// Where it came from: `timestamp`, `signing-time` or `now`.
    pub time_source: Option<&'static str>,
}

/// The decision. The fields of this struct and of those in it are declared in sorted order, so
/// that serializing it gives the receipt's canonical JSON (keys sorted, no spaces) directly.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyAnswer {
    /// The application the policy's role is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// SHA-256 of the signed content, hex.
    pub content_sha256: String,
    /// `accept` or `reject`.
    pub decision: &'static str,
    /// Every reason any signer failed, in order, without repeats.
    pub reasons: Vec<&'static str>,
    /// The receipt: a CMS SignedData (base64 DER) over the canonical JSON of this answer without
    /// `receipt` (keys sorted, no spaces).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub receipt: String,
    /// The role the policy asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The first signer's signing time.
    pub signed_at: Option<String>,
    /// The first signer.
    pub signer: Option<SignerReport>,
    /// Every signer.
    pub signers: Vec<SignerReport>,
    /// Where the first signer's time came from.
    pub time_source: Option<&'static str>,
    /// When Vouch verified, RFC 3339.
    pub verified_at: String,
}

/// Base64 (standard alphabet, padded), line breaks and other ASCII white space allowed.
fn decode(field: &'static str, text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    // Most callers send one unbroken line: decode it as it is, and only when that fails look for
    // white space to take out.
    let decoded = engine.decode(text).or_else(|e| {
        if text.bytes().any(|b| b.is_ascii_whitespace()) {
            let cleaned: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            engine.decode(cleaned)
        } else {
            Err(e)
        }
    });
    decoded.map_err(|_| Error::invalid("invalid_field", format!("{field}: not base64")))
}

impl Ra {
    /// Verify a signed submission against a policy (role `verifier`): 200 with the decision for
    /// anything readable; only unusable input is an error.
    pub async fn verify(&self, op: &Operator, req: &VerifyRequest) -> Result<VerifyAnswer> {
        let (mut answer, _, receipt) = self.verify_canonical(op, req).await?;
        answer.receipt = receipt;
        Ok(answer)
    }

    /// [`Ra::verify`] as the JSON body of the answer: the canonical JSON the receipt signs with
    /// `receipt` added as its last member, so the answer is serialized once.
    pub async fn verify_json(&self, op: &Operator, req: &VerifyRequest) -> Result<Vec<u8>> {
        let (_, canonical, receipt) = self.verify_canonical(op, req).await?;
        Ok(with_receipt(canonical, &receipt))
    }

    /// The answer (its `receipt` empty), its canonical JSON and the receipt over it (base64).
    async fn verify_canonical(
        &self,
        op: &Operator,
        req: &VerifyRequest,
    ) -> Result<(VerifyAnswer, Vec<u8>, String)> {
        self.authorize(op, Role::Verifier, "verify", None).await?;
        let now = self.now();
        let policy = &req.policy;
        if policy.role.is_some() != policy.application.is_some() {
            return Err(Error::invalid(
                "invalid_policy",
                "policy: role and application go together",
            ));
        }
        for name in [&policy.role, &policy.application].into_iter().flatten() {
            crate::x509::ac::check_name("policy", name)?;
        }
        if policy.attribute_certificates.len() > MAX_CALLER_ACS {
            return Err(Error::invalid(
                "invalid_policy",
                format!("policy.attribute_certificates: at most {MAX_CALLER_ACS}"),
            ));
        }
        let caller_acs = policy
            .attribute_certificates
            .iter()
            .map(|a| decode("policy.attribute_certificates", a))
            .collect::<Result<Vec<_>>>()?;
        let cms_bytes = if req.cms.trim_start().starts_with("-----BEGIN") {
            req.cms.as_bytes().to_vec()
        } else {
            decode("cms", &req.cms)?
        };
        let sd = cms::read(&cms_bytes)
            .map_err(|e| Error::invalid("bad_cms", format!("cms: {}", e.0)))?;
        let detached = req
            .content
            .as_deref()
            .map(|c| decode("content", c))
            .transpose()?;
        let content = match (&sd.content, detached) {
            (Some(attached), Some(given)) if *attached != given => {
                return Err(Error::invalid(
                    "content_conflict",
                    "the CMS carries its content and a different content was given",
                ))
            }
            (Some(attached), _) => attached.clone(),
            (None, Some(given)) => given,
            (None, None) => {
                return Err(Error::invalid(
                    "content_required",
                    "the CMS is detached: give the signed content in `content` (base64)",
                ))
            }
        };
        let mut signers = Vec::with_capacity(sd.signers.len());
        for info in &sd.signers {
            signers.push(
                self.check_signer(&sd, info, &content, policy, &caller_acs, now)
                    .await?,
            );
        }
        let mut reasons: Vec<&'static str> = Vec::new();
        for r in signers.iter().flat_map(|s| s.reasons.iter()) {
            if !reasons.contains(r) {
                reasons.push(r);
            }
        }
        let first = signers.first().cloned();
        let answer = VerifyAnswer {
            decision: if reasons.is_empty() {
                "accept"
            } else {
                "reject"
            },
            reasons,
            signed_at: first.as_ref().and_then(|s| s.signed_at.clone()),
            time_source: first.as_ref().and_then(|s| s.time_source),
            signer: first,
            signers,
            content_sha256: crate::x509::sha256_hex(&content),
            role: policy.role.clone(),
            application: policy.application.clone(),
            verified_at: rfc3339(now.unix_timestamp()),
            receipt: String::new(),
        };
        let canonical = canonical_json(&answer)?;
        let receipt = self.sign_receipt(&canonical, now).await?;
        self.audit_verification(op, &answer, now).await?;
        Ok((answer, canonical, receipt))
    }

    /// The receipt over an answer's canonical JSON, base64 DER.
    async fn sign_receipt(&self, canonical: &[u8], now: OffsetDateTime) -> Result<String> {
        use base64::Engine;
        let (signer, new_cert) = self.verify_state().receipts.signer(self.ca(), now).await?;
        if let Some(cert) = new_cert {
            let details = serde_json::json!({
                "certificate_sha256": crate::x509::sha256_hex(&cert),
                "not_after": rfc3339(signer.not_after.unix_timestamp()),
            });
            self.store()
                .write(job!(|_, log| {
                    let event = Event::new(None, Action::ReceiptSignerIssued, None, details);
                    audit::record(log, now, event);
                    Ok(())
                }))
                .await?;
        }
        let der = signer.sign(canonical, now)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(der))
    }

    /// One audit entry per verification (through the group-commit writer, so entries of
    /// concurrent verifications share transactions): never the content, its hash.
    async fn audit_verification(
        &self,
        op: &Operator,
        answer: &VerifyAnswer,
        now: OffsetDateTime,
    ) -> Result<()> {
        let serials: Vec<Option<String>> =
            answer.signers.iter().map(|s| s.serial.clone()).collect();
        let details = serde_json::json!({
            "decision": answer.decision,
            "reasons": answer.reasons,
            "signers": serials,
            "content_sha256": answer.content_sha256,
            "application": answer.application,
            "role": answer.role,
            "signed_at": answer.signed_at,
            "time_source": answer.time_source,
        });
        let by = op.id.clone();
        let target = serials.first().cloned().flatten();
        self.store()
            .write(job!(|_, log| {
                let event = Event::new(Some(&by), Action::Verification, target.as_deref(), details);
                audit::record(log, now, event);
                Ok(())
            }))
            .await
    }
}

/// The canonical JSON of `answer` (keys sorted, no spaces; `receipt` left out while empty): the
/// structs declare their fields in sorted order, so plain serialization gives it.
fn canonical_json(answer: &VerifyAnswer) -> Result<Vec<u8>> {
    serde_json::to_vec(answer).map_err(Error::internal)
}

/// `canonical` (a JSON object) with `"receipt": receipt` added as its last member.
fn with_receipt(mut canonical: Vec<u8>, receipt: &str) -> Vec<u8> {
    debug_assert_eq!(canonical.last(), Some(&b'}'));
    canonical.pop();
    canonical.extend_from_slice(b",\"receipt\":\"");
    canonical.extend_from_slice(receipt.as_bytes());
    canonical.extend_from_slice(b"\"}");
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(serial: &str, revoked: bool) -> SignerReport {
        SignerReport {
            certificate_status: if revoked { "revoked" } else { "good" },
            profile: Some("person-signing".into()),
            reasons: if revoked {
                vec!["certificate_revoked"]
            } else {
                vec![]
            },
            revocation: revoked.then(|| RevocationInfo {
                invalidity_date: Some("2026-01-01T00:00:00Z".into()),
                reason: "keyCompromise".into(),
                time: "2026-01-02T00:00:00Z".into(),
            }),
            roles: vec!["approver".into()],
            serial: Some(serial.into()),
            signed_at: Some("2026-01-03T00:00:00Z".into()),
            subject: Some("CN=A \"quoted\" name,O=\u{4e2d}".into()),
            subscriber_id: None,
            time_source: Some("now"),
        }
    }

    #[test]
    fn the_answer_serializes_to_its_canonical_form_and_the_receipt_splices_in() {
        let signers = vec![report("01", false), report("02", true)];
        let mut answer = VerifyAnswer {
            application: Some("permits".into()),
            content_sha256: "ab".repeat(32),
            decision: "reject",
            reasons: vec!["certificate_revoked"],
            receipt: String::new(),
            role: Some("approver".into()),
            signed_at: Some("2026-01-03T00:00:00Z".into()),
            signer: signers.first().cloned(),
            signers,
            time_source: Some("now"),
            verified_at: "2026-01-04T00:00:00Z".into(),
        };
        // The canonical form as a JSON library makes it: parsed into a map (keys sorted), written
        // without spaces.
        let sorted =
            |v: &VerifyAnswer| serde_json::to_vec(&serde_json::to_value(v).unwrap()).unwrap();
        let canonical = canonical_json(&answer).unwrap();
        assert_eq!(canonical, sorted(&answer));
        let body = with_receipt(canonical, "MIIB+/==");
        answer.receipt = "MIIB+/==".into();
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, serde_json::to_value(&answer).unwrap());
        answer.role = None;
        answer.application = None;
        answer.signer = None;
        answer.receipt = String::new();
        assert_eq!(canonical_json(&answer).unwrap(), sorted(&answer));
    }

    #[test]
    fn base64_with_line_breaks_reads_as_without() {
        let plain = super::decode("cms", "aGVsbG8gd29ybGQ=").unwrap();
        assert_eq!(plain, b"hello world");
        assert_eq!(
            super::decode("cms", "aGVsbG8g\r\nd29y bGQ=\n").unwrap(),
            plain
        );
        assert!(super::decode("cms", "aGVsbG8g\u{a0}d29ybGQ=").is_err());
        assert!(super::decode("cms", "not base64!").is_err());
    }
}
