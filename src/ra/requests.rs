//! Certificate requests and their state machine:
//!
//! ```text
//! pending --(M approvals by operators other than the requester)--> approved --(CA signs)--> issued
//! pending --(any rejection)--> rejected        pending --(expiry)--> expired
//! approved --(the CA refuses the order)--> failed
//! approved --(an admin cancels it before it is issued)--> cancelled
//! ```
//! While the CA is unavailable a request stays `approved`; its view shows the failed attempts, the
//! last error and when the next attempt is due.
//! `approved` is entered together with the issuance intent (reserved serial, key hash), in one
//! transaction, before the CA is asked to sign.

use super::subscribers::evidence_valid;
use super::{new_id, rfc3339, Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::ca::{CaError, IssueOrder};
use crate::error::{Error, Result};
use crate::state::RequestState;
use crate::store::job;
use crate::store::requests::{self as rows, ApprovalRow, NewRequest, RequestRow};
use crate::store::{certificates, subscribers, Conn};
use crate::x509::csr::CheckedCsr;
use crate::x509::profile::{ExtendedKeyUsage, KeyUsage, Profile};
use crate::x509::serial::Serial;
use crate::x509::subject::{SubjectSpec, VettedIdentity};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What will be certified, frozen when the request is submitted so that approvers approve exactly
/// what the CA will sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    /// The subject to certify.
    pub subject: SubjectSpec,
    /// Key usages.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Validity in days.
    pub validity_days: u32,
}

#[derive(Debug, Clone, Serialize)]
/// One approval of a request.
pub struct ApprovalView {
    /// The approving operator.
    pub operator: String,
    /// When, RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
/// A certificate request as the API shows it.
pub struct RequestView {
    /// Request identifier.
    pub id: String,
    /// The request's state; a pending request past its expiry shows as `expired`.
    pub status: RequestState,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The serial reserved or issued, once approved.
    pub serial: Option<String>,
    /// The subscriber it is for.
    pub subscriber_id: String,
    /// The profile asked for.
    pub profile: String,
    /// The subject DN the certificate will carry (RFC 4514).
    pub subject: String,
    /// E-mail addresses for the subjectAltName.
    pub subject_alt_emails: Vec<String>,
    /// SHA-256 of the canonical SubjectPublicKeyInfo, hex.
    pub key_sha256: String,
    /// The key's type as profiles name it (`ec-p256`, `ec-p384`, `rsa`).
    pub key_type: String,
    /// The key's size in bits (RSA modulus, EC field).
    pub key_bits: u32,
    /// Validity in days.
    pub validity_days: u32,
    /// Approvals needed, from the profile.
    pub required_approvals: i64,
    /// Approvals given.
    pub approvals: Vec<ApprovalView>,
    /// The operator who submitted it.
    pub requested_by: String,
    /// When it was submitted, RFC 3339.
    pub created_at: String,
    /// When it expires unless decided, RFC 3339.
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// When it was approved or rejected, RFC 3339.
    pub decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Who rejected it.
    pub rejected_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// Why the CA refused to sign (`failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Signing attempts that failed while the CA was unavailable (approved requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuance: Option<IssuanceView>,
}

/// Why an approved request is not issued yet.
#[derive(Debug, Clone, Serialize)]
pub struct IssuanceView {
    /// The CA asked to sign (`issuing` for the embedded CA, else an id from upstream.toml).
    pub ca: String,
    /// CA attempts that failed so far.
    pub failed_attempts: i64,
    /// The last attempt's error.
    pub last_error: String,
    /// When the next attempt is due, RFC 3339 (the retry task takes it at its next round from
    /// then).
    pub next_attempt_at: String,
}

/// Most characters in a rejection or cancellation reason.
pub const MAX_REASON_CHARS: usize = 1000;

/// The vetted identity of a subscriber as of `today`, or why it cannot support a request.
async fn vetted(
    conn: &mut Conn,
    subscriber_id: &str,
    today: time::Date,
) -> Result<(subscribers::SubscriberRow, Option<String>)> {
    let s = subscribers::get(conn, subscriber_id)
        .await?
        .ok_or(Error::NotFound("subscriber"))?;
    let evidence = subscribers::evidence(conn, subscriber_id).await?;
    let valid = evidence
        .iter()
        .find(|e| evidence_valid(e, today))
        .map(|e| e.number.clone());
    if valid.is_none() {
        return Err(no_valid_evidence());
    }
    Ok((s, valid))
}

fn check_key_for_profile(csr: &CheckedCsr, profile: &Profile) -> Result<()> {
    if !profile.key_types.contains(&csr.key().key_type()) {
        return Err(Error::refused(
            "key_type_not_allowed",
            format!(
                "profile {} does not accept {} keys",
                profile.name,
                csr.key().key_type().as_str()
            ),
        ));
    }
    if csr.key().key_type() == crate::x509::key::KeyType::Rsa
        && csr.key().bits() < profile.rsa_min_bits
    {
        return Err(Error::refused(
            "weak_key",
            format!(
                "profile {} requires RSA keys of at least {} bits",
                profile.name, profile.rsa_min_bits
            ),
        ));
    }
    Ok(())
}

pub(super) fn no_valid_evidence() -> Error {
    Error::refused(
        "evidence_expired",
        "none of the subscriber's identity evidence is still valid; add current evidence to the subscriber first",
    )
}

pub(super) fn blocked_key(reason: String) -> Error {
    Error::refused(
        "blocked_key",
        format!("this public key is blocked ({reason})"),
    )
}

async fn refuse_if_blocked(conn: &mut Conn, key_sha256: &str) -> Result<()> {
    match certificates::is_key_blocked(conn, key_sha256).await? {
        Some(reason) => Err(blocked_key(reason)),
        None => Ok(()),
    }
}

impl Ra {
    /// Submit a request for `subscriber_id` under a profile, with a PKCS#10 CSR; clerks only.
    pub async fn submit_request(
        &self,
        op: &Operator,
        subscriber_id: &str,
        profile_name: &str,
        csr_pem: &str,
    ) -> Result<RequestView> {
        self.authorize(op, Role::Clerk, "request.submit", Some(subscriber_id))
            .await?;
        let outcome = self
            .submit_checked(op, subscriber_id, profile_name, csr_pem)
            .await;
        if let Err(e @ (Error::Invalid { .. } | Error::Refused { .. })) = &outcome {
            self.audit_refusal(
                Some(&op.id),
                Action::RequestRefused,
                Some(subscriber_id),
                serde_json::json!({"profile": profile_name, "error": e.code(), "message": e.to_string()}),
            )
            .await;
        }
        let id = outcome?;
        self.request(op, &id).await
    }

    async fn submit_checked(
        &self,
        op: &Operator,
        subscriber_id: &str,
        profile_name: &str,
        csr_pem: &str,
    ) -> Result<String> {
        let profile = self.profiles().get(profile_name).ok_or_else(|| {
            let known = self.profiles().names().collect::<Vec<_>>().join(", ");
            Error::refused(
                "unknown_profile",
                format!("no profile named {profile_name:?}; profiles: {known}"),
            )
        })?;
        let csr = CheckedCsr::from_pem(csr_pem)?;
        check_key_for_profile(&csr, profile)?;
        let now = self.now();
        let (subscriber, identifier) = {
            let mut c = self.store().read().await?;
            let vetted = vetted(&mut c, subscriber_id, now.date()).await?;
            refuse_if_blocked(&mut c, csr.key().fingerprint()).await?;
            super::blocklist::refuse_if_listed(&mut c, csr.key()).await?;
            vetted
        };
        if subscriber.kind != profile.subscriber_kind.as_str() {
            return Err(Error::refused(
                "profile_not_for_subscriber",
                format!(
                    "profile {} is for {} subscribers; this one is a {}",
                    profile.name,
                    profile.subscriber_kind.as_str(),
                    subscriber.kind
                ),
            ));
        }
        let who = VettedIdentity {
            name: &subscriber.name,
            organisation: subscriber.organisation.as_deref(),
            email: subscriber.email.as_deref(),
            identifier: identifier.as_deref(),
        };
        let template = Template {
            subject: SubjectSpec::build(profile, &who)?,
            key_usage: profile.key_usage.clone(),
            extended_key_usage: profile.extended_key_usage.clone(),
            validity_days: profile.validity_days,
        };
        let ca = self.ca_for_profile(&profile.name);
        if self.is_embedded(ca.issuing_id()) {
            if let Some(reason) = self.issuing_ca_revocation().await? {
                return Err(Error::refused("ca_refused", reason));
            }
        }
        ca_would_sign(
            ca.as_ref(),
            self.order_urls(ca.as_ref()),
            &csr,
            &template,
            now,
        )?;
        let template_json = serde_json::to_string(&template).map_err(Error::internal)?;
        let id = new_id("req");
        let expires = now + Duration::hours(i64::from(profile.request_expiry_hours));
        let event = Event::new(
            Some(&op.id),
            Action::RequestSubmitted,
            Some(&id),
            serde_json::json!({"subscriber": subscriber_id, "profile": profile.name, "subject": template.subject.display(),
                "key_sha256": csr.key().fingerprint(), "key_type": csr.key().key_type().as_str(), "key_bits": csr.key().bits()}),
        );
        let (rid, sid, pname, requester) = (
            id.clone(),
            subscriber_id.to_string(),
            profile.name.clone(),
            op.id.clone(),
        );
        let required = i64::from(profile.required_approvals);
        self.store()
            .write(job!(|c, log| {
                let row = NewRequest {
                    id: &rid,
                    subscriber_id: &sid,
                    profile: &pname,
                    csr_der: csr.der(),
                    spki_der: csr.key().spki_der(),
                    key_sha256: csr.key().fingerprint(),
                    template_json: &template_json,
                    required_approvals: required,
                    requested_by: &requester,
                    created_at: now.unix_timestamp(),
                    expires_at: expires.unix_timestamp(),
                };
                rows::insert(c, &row).await?;
                audit::record(log, now, event);
                Ok(())
            }))
            .await?;
        Ok(id)
    }

    async fn may_read_requests(&self, op: &Operator, target: Option<&str>) -> Result<()> {
        self.authorize_any(op, &crate::ra::subscribers::READERS, "request.read", target)
            .await
    }

    /// One request.
    pub async fn request(&self, op: &Operator, id: &str) -> Result<RequestView> {
        self.may_read_requests(op, Some(id)).await?;
        let mut c = self.store().read().await?;
        let row = rows::get(&mut c, id)
            .await?
            .ok_or(Error::NotFound("request"))?;
        self.view(&mut c, row).await
    }

    /// A page of requests in submission order after request `after` (None: from the first),
    /// optionally of one status; the console's listing.
    pub async fn requests_page(
        &self,
        op: &Operator,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RequestView>> {
        self.may_read_requests(op, None).await?;
        let status = status_filter(status)?;
        self.expire_overdue().await?;
        let mut c = self.store().read().await?;
        let cursor = match after {
            Some(id) => {
                let row = rows::get(&mut c, id)
                    .await?
                    .ok_or(Error::NotFound("request"))?;
                (row.created_at, row.id)
            }
            None => (i64::MIN, String::new()),
        };
        let mut out = Vec::new();
        for row in
            rows::list_after(&mut c, status, (cursor.0, &cursor.1), limit.clamp(1, 1000)).await?
        {
            out.push(self.view(&mut c, row).await?);
        }
        Ok(out)
    }

    /// Requests, oldest first, optionally of one status and of one subscriber.
    pub async fn list_requests(
        &self,
        op: &Operator,
        status: Option<&str>,
        subscriber_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RequestView>> {
        self.may_read_requests(op, None).await?;
        let status = status_filter(status)?;
        // Persist any expiry that is due, so that status filters agree with what a single
        // request shows.
        self.expire_overdue().await?;
        let mut c = self.store().read().await?;
        let mut out = Vec::new();
        for row in rows::list(&mut c, status, subscriber_id, limit.clamp(1, 1000)).await? {
            out.push(self.view(&mut c, row).await?);
        }
        Ok(out)
    }

    async fn view(&self, conn: &mut Conn, r: RequestRow) -> Result<RequestView> {
        let approvals = rows::approvals(conn, &r.id).await?;
        self.view_with(r, approvals)
    }

    pub(super) fn view_with(
        &self,
        r: RequestRow,
        approvals: Vec<ApprovalRow>,
    ) -> Result<RequestView> {
        let template: Template = serde_json::from_str(&r.template_json).map_err(Error::internal)?;
        let status =
            if r.status == RequestState::Pending && r.expires_at <= self.now().unix_timestamp() {
                RequestState::Expired
            } else {
                r.status
            };
        let issuance = match (r.attempts, r.last_error, r.next_attempt_at) {
            (Some(n), Some(error), Some(next)) if n > 0 && status == RequestState::Approved => {
                Some(IssuanceView {
                    ca: r.intent_ca_id.clone().unwrap_or_default(),
                    failed_attempts: n,
                    last_error: error,
                    next_attempt_at: rfc3339(next),
                })
            }
            _ => None,
        };
        // The key passed these checks at submission; the stored SPKI is its canonical form.
        let (key_type, key_bits) = crate::x509::key::CheckedKey::from_spki(&r.spki_der)
            .map(|k| (k.key_type().as_str().to_string(), k.bits()))
            .unwrap_or_else(|_| ("unknown".to_string(), 0));
        Ok(RequestView {
            id: r.id,
            status,
            key_type,
            key_bits,
            serial: r.serial,
            subscriber_id: r.subscriber_id,
            profile: r.profile,
            subject: template.subject.display(),
            subject_alt_emails: template.subject.emails,
            key_sha256: r.key_sha256,
            validity_days: template.validity_days,
            required_approvals: r.required_approvals,
            approvals: approvals
                .into_iter()
                .map(|a| ApprovalView {
                    operator: a.approver_id,
                    at: rfc3339(a.approved_at),
                })
                .collect(),
            requested_by: r.requested_by,
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
            decided_at: r.decided_at.map(rfc3339),
            rejected_by: r.rejected_by,
            reject_reason: r.reject_reason,
            failure: r.failure,
            cancelled_by: r.cancelled_by,
            cancel_reason: r.cancel_reason,
            issuance,
        })
    }
}

/// Ask `ca` whether it would sign this request as it stands (the encodings and names it checks
/// before signing), so that a request it would refuse never waits for approvers.
fn ca_would_sign(
    ca: &dyn crate::ca::UpstreamCa,
    (crl_urls, ca_issuers_urls, ocsp_urls): (Vec<String>, Vec<String>, Vec<String>),
    csr: &CheckedCsr,
    template: &Template,
    now: OffsetDateTime,
) -> Result<()> {
    let order = IssueOrder {
        serial: Serial::random(),
        spki_der: csr.key().spki_der().to_vec(),
        csr_der: csr.der().to_vec(),
        subject: template.subject.clone(),
        not_before: now,
        not_after: (now + Duration::days(i64::from(template.validity_days)))
            .min(ca.max_not_after()),
        key_usage: template.key_usage.clone(),
        extended_key_usage: template.extended_key_usage.clone(),
        crl_urls,
        ca_issuers_urls,
        ocsp_urls,
    };
    ca.check(&order).map_err(|e| match e {
        CaError::Refused(m) => Error::refused(
            "ca_refused",
            format!("the CA would refuse to sign this request: {m}"),
        ),
        CaError::Unavailable(m) => Error::Upstream(m),
    })
}

/// A listing's status filter: one of the request states, or none.
fn status_filter(status: Option<&str>) -> Result<Option<RequestState>> {
    status
        .map(|s| {
            RequestState::parse(s).ok_or_else(|| {
                Error::invalid(
                    "invalid_field",
                    format!("status must be one of {}", RequestState::names()),
                )
            })
        })
        .transpose()
}
