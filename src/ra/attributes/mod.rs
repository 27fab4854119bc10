//! The attribute authority's decisions: granting RFC 5755 attribute certificates (roles in named
//! applications) to holders of identity certificates Vouch issued, at once or after approvals by
//! other `aa` operators (four eyes, as the AC profile says), revoking them, and carrying their
//! holder certificate's revocation, hold and release over to them in the same transaction.
//!
//! Grant state machine (when the profile needs approvals):
//!
//! ```text
//! pending --last approval, holder valid--> granted (the AC is issued)
//!    |  \--last approval, holder no longer valid--> failed
//!    |--reject--> rejected
//!    \--expires_at passed--> expired
//! ```

mod approvals;
mod certificates;
pub(crate) mod crl;
mod grants;

use super::requests::ApprovalView;
use super::{rfc3339, Ra};
use crate::audit::{self, Action, Event};
use crate::ca::aa::AttributeAuthority;
use crate::error::{Error, Result};
use crate::state::{CertificateStatus, GrantState};
use crate::store::attributes::{self as rows, AcRow, GrantRow};
use crate::store::certificates as certs;
use crate::store::{AuditLog, Conn};
use crate::x509::profile::AcRevocationMode;
use crate::x509::revocation::Reason;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The AC profile a grant uses when it names none.
pub const DEFAULT_PROFILE: &str = "application-role";

/// How far before now a grant's not_before may be (clock skew between the caller and Vouch). An
/// AC may not say a role was held before it was granted: the verification API reads roles at a
/// signing time.
pub const NOT_BEFORE_SKEW: Duration = Duration::minutes(5);

/// A grant as the API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// The holder's identity certificate (hex serial).
    pub holder_serial: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Group names (optional).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Application names (targets).
    pub targets: Vec<String>,
    /// Validity start, RFC 3339 (default: now).
    #[serde(default)]
    pub not_before: Option<String>,
    /// Validity end, RFC 3339.
    pub not_after: String,
    /// The AC profile (default `application-role`).
    #[serde(default)]
    pub profile: Option<String>,
}

/// Which ACs a page lists (every filter optional), and where the page starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcQuery<'a> {
    /// Of this holder certificate (hex serial).
    pub holder_serial: Option<&'a str>,
    /// Carrying this role.
    pub role: Option<&'a str>,
    /// For this application.
    pub target: Option<&'a str>,
    /// `valid` (and not expired), `expired`, `on-hold` or `revoked`.
    pub status: Option<&'a str>,
    /// The serial of the last AC of the previous page.
    pub after: Option<&'a str>,
}

/// A checked grant: what the AC will say. Stored as the pending grant's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    holder_serial: String,
    profile: String,
    /// The profile's revocation mode when the grant was made: an approval under a profile that
    /// changed it is refused rather than issuing what the granter did not ask for.
    revocation: AcRevocationMode,
    roles: Vec<String>,
    groups: Vec<String>,
    targets: Vec<String>,
    not_before: i64,
    not_after: i64,
}

/// An attribute certificate, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AcView {
    /// Serial (hex).
    pub serial: String,
    /// `valid`, `on-hold` or `revoked` (expiry is read from `not_after`).
    pub status: CertificateStatus,
    /// Whether `not_after` has passed.
    pub expired: bool,
    /// The holder's identity certificate.
    pub holder_serial: String,
    /// The issuer (the attribute authority's name, as the AC encodes it).
    pub issuer: String,
    /// The AC profile.
    pub profile: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Application names.
    pub targets: Vec<String>,
    /// roleName URIs as encoded.
    pub role_uris: Vec<String>,
    /// targetName URIs as encoded.
    pub target_uris: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// `crl` (listed on `/crl/aa.crl`) or `no-rev-avail`.
    pub revocation: &'static str,
    /// When it was revoked or put on hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// The grant it was issued for, when it needed approvals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// The operator who granted it.
    pub granted_by: String,
    /// When it was issued.
    pub issued_at: String,
    /// The AC, base64 DER.
    pub der: String,
    /// The AC, PEM (`ATTRIBUTE CERTIFICATE`).
    pub pem: String,
}

/// A grant awaiting (or past) its approvals.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// The grant's id.
    pub id: String,
    /// pending | granted | rejected | expired | failed
    pub status: GrantState,
    /// The holder's identity certificate.
    pub holder_serial: String,
    /// The AC profile.
    pub profile: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Application names.
    pub targets: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Approvals needed.
    pub required_approvals: i64,
    /// Who approved (operator ids) and when, as requests show theirs.
    pub approvals: Vec<ApprovalView>,
    /// The granting operator (id).
    pub requested_by: String,
    /// When the grant was made.
    pub created_at: String,
    /// When it expires if still pending.
    pub expires_at: String,
    /// Why it was rejected or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The AC issued for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// What a grant did: an AC issued (201), or a grant awaiting approval (202).
#[derive(Debug, Clone)]
pub enum GrantOutcome {
    /// Issued at once.
    Issued(Box<AcView>),
    /// Recorded; another `aa` operator must approve.
    Pending(Box<GrantView>),
}

fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(Error::internal)
}

fn unix(t: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal)
}

impl Ra {
    /// The attribute authority, or why there is none.
    fn attribute_authority(&self) -> Result<&Arc<AttributeAuthority>> {
        self.config().attribute_authority.as_ref().ok_or_else(|| {
            Error::conflict(
                "aa_unavailable",
                "this server has no attribute authority: its data directory has no ca/aa.pem and \
                 the root key is offline; run `vouch ca issue-aa --root-key FILE`",
            )
        })
    }

    /// The AA certificate (DER), when there is an AA.
    pub fn aa_certificate(&self) -> Option<&[u8]> {
        self.config()
            .attribute_authority
            .as_ref()
            .map(|aa| aa.certificate_der())
    }

    /// The AC view of a stored AC.
    pub(crate) fn ac_view(&self, row: &AcRow) -> Result<AcView> {
        use base64::Engine;
        let names = &self.config().attribute_names;
        let roles = json_list(&row.roles_json)?;
        let targets = json_list(&row.targets_json)?;
        Ok(AcView {
            serial: row.serial.clone(),
            status: row.status,
            expired: row.not_after < self.now().unix_timestamp(),
            holder_serial: row.holder_serial.clone(),
            issuer: issuer_text(&row.der),
            profile: row.profile.clone(),
            role_uris: roles.iter().map(|r| names.role_uri(r)).collect(),
            target_uris: targets.iter().map(|t| names.target_uri(t)).collect(),
            roles,
            groups: json_list(&row.groups_json)?,
            targets,
            not_before: rfc3339(row.not_before),
            not_after: rfc3339(row.not_after),
            revocation: if row.revocable == 1 {
                "crl"
            } else {
                "no-rev-avail"
            },
            revoked_at: row.revoked_at.map(rfc3339),
            revocation_reason: row.revocation_reason.clone(),
            grant_id: row.grant_id.clone(),
            granted_by: row.granted_by.clone(),
            issued_at: rfc3339(row.issued_at),
            der: base64::engine::general_purpose::STANDARD.encode(&row.der),
            pem: crate::x509::pem_encode("ATTRIBUTE CERTIFICATE", &row.der),
        })
    }

    async fn grant_view(&self, row: &GrantRow) -> Result<GrantView> {
        let grant: Grant = serde_json::from_str(&row.grant_json).map_err(Error::internal)?;
        let approvals = {
            let mut c = self.store().read().await?;
            rows::grant_approvers(&mut c, &row.id).await?
        };
        Ok(GrantView {
            id: row.id.clone(),
            status: row.status,
            holder_serial: row.holder_serial.clone(),
            profile: row.profile.clone(),
            roles: grant.roles,
            groups: grant.groups,
            targets: grant.targets,
            not_before: rfc3339(grant.not_before),
            not_after: rfc3339(grant.not_after),
            required_approvals: row.required_approvals,
            approvals: approvals
                .into_iter()
                .map(|(operator, at)| ApprovalView {
                    operator,
                    at: rfc3339(at),
                })
                .collect(),
            requested_by: row.requested_by.clone(),
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339(row.expires_at),
            reason: row.reason.clone(),
            serial: row.serial.clone(),
        })
    }

    /// Where the AC CRL is published: `<public URL>/crl/aa.crl`.
    pub(crate) fn ac_crl_urls(&self) -> Vec<String> {
        match self.public_url() {
            Some(base) => vec![format!("{base}/crl/{}.crl", crate::ca::aa::AA_ID)],
            None => Vec::new(),
        }
    }
}

/// The AC's v2Form issuerName as text (`CN=…, O=…`); empty when it cannot be read, which an AC
/// this server signed never is.
fn issuer_text(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    crate::x509::ac::parse::parse(der)
        .ok()
        .and_then(|ac| ac.issuer_name)
        .and_then(|dn| {
            x509_parser::x509::X509Name::from_der(&dn)
                .ok()
                .map(|(_, name)| name.to_string())
        })
        .unwrap_or_default()
}

/// A holder certificate can be granted roles only while it is valid.
fn check_holder(holder: &certs::CertificateRow, now: OffsetDateTime) -> Result<()> {
    let why = match holder.status {
        CertificateStatus::Revoked => Some("revoked".to_string()),
        CertificateStatus::OnHold => Some("on hold".to_string()),
        CertificateStatus::Valid if holder.not_after < now.unix_timestamp() => {
            Some(format!("expired at {}", rfc3339(holder.not_after)))
        }
        CertificateStatus::Valid if holder.not_before > now.unix_timestamp() => {
            Some(format!("not valid before {}", rfc3339(holder.not_before)))
        }
        CertificateStatus::Valid => None,
    };
    match why {
        Some(why) => Err(Error::conflict(
            "holder_not_valid",
            format!("the holder certificate {} is {why}", holder.serial),
        )),
        None => Ok(()),
    }
}

/// What happened to a holder certificate, carried over to its ACs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HolderChange {
    /// Revoked with this reason and invalidity date.
    Revoked(Reason, Option<i64>),
    /// Already revoked, its reason now keyCompromise (with this invalidity date, if given).
    KeyCompromised(Option<i64>),
    /// Put on hold.
    Held,
    /// Released from hold.
    Released,
}

/// Carry a holder certificate's status change over to its ACs, inside the same write job;
/// audited per AC (actor `by`; none for the server's own changes). Returns the ACs changed.
pub(crate) async fn follow_holder(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    by: Option<&str>,
    holder: &str,
    change: HolderChange,
) -> Result<Vec<String>> {
    let at = now.unix_timestamp();
    let (changed, action, details) = match change {
        HolderChange::Revoked(reason, invalidity) => (
            rows::revoke_with_holder(c, holder, reason.as_str(), at, invalidity).await?,
            Action::AttributeRevoked,
            serde_json::json!({"reason": reason.as_str(), "with_holder": holder}),
        ),
        HolderChange::KeyCompromised(invalidity) => (
            rows::escalate_with_holder(c, holder, invalidity, at).await?,
            Action::AttributeRevocationUpdated,
            serde_json::json!({"reason": "keyCompromise", "with_holder": holder}),
        ),
        HolderChange::Held => (
            rows::hold_with_holder(c, holder, at).await?,
            Action::AttributeHeld,
            serde_json::json!({"with_holder": holder}),
        ),
        HolderChange::Released => (
            rows::release_with_holder(c, holder, at).await?,
            Action::AttributeReleased,
            serde_json::json!({"with_holder": holder}),
        ),
    };
    for serial in &changed {
        audit::record(
            log,
            now,
            Event::new(by, action, Some(serial), details.clone()),
        );
    }
    Ok(changed)
}

/// Revoke the ACs of every holder certificate the CA `ca_id` issued, inside the write job that
/// revokes that CA; audited per AC. Returns the ACs revoked.
pub(crate) async fn follow_issuing_ca(
    c: &mut Conn,
    log: &mut AuditLog,
    now: OffsetDateTime,
    ca_id: &str,
    reason: Reason,
) -> Result<Vec<String>> {
    let revoked = rows::revoke_of_ca(c, ca_id, reason.as_str(), now.unix_timestamp()).await?;
    let details = serde_json::json!({"reason": reason.as_str(), "with_issuing_ca": ca_id});
    for serial in &revoked {
        audit::record(
            log,
            now,
            Event::new(
                None,
                Action::AttributeRevoked,
                Some(serial),
                details.clone(),
            ),
        );
    }
    Ok(revoked)
}
