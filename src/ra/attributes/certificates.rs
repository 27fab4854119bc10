//! Attribute certificates once issued: reading one, listing them by holder, role and application,
//! and revoking one on its own (its holder certificate's changes are carried over in
//! [`super::follow_holder`]).

use super::{AcQuery, AcView};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::ra::revocation::{check_comment, serial_of};
use crate::ra::{Operator, Ra, Role};
use crate::state::CertificateStatus;
use crate::store::attributes::{self as rows, AcFilter, AcPage};
use crate::store::job;
use crate::x509::ac;
use crate::x509::revocation::Reason;

impl Ra {
    /// One AC (roles `aa`, `auditor`, `revoker`).
    pub async fn attribute_certificate(&self, op: &Operator, serial: &str) -> Result<AcView> {
        self.authorize_any(
            op,
            &[Role::Aa, Role::Auditor, Role::Revoker],
            "attribute.read",
            Some(serial),
        )
        .await?;
        let serial = serial_of(serial)?;
        let row = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial).await?
        }
        .ok_or(Error::NotFound("attribute certificate"))?;
        self.ac_view(&row)
    }

    /// ACs of a holder, or carrying a role, or for an application (roles `aa`, `auditor`,
    /// `revoker`); at least one filter.
    pub async fn attribute_certificates(
        &self,
        op: &Operator,
        holder_serial: Option<&str>,
        role: Option<&str>,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AcView>> {
        self.authorize_any(
            op,
            &[Role::Aa, Role::Auditor, Role::Revoker],
            "attribute.read",
            None,
        )
        .await?;
        if holder_serial.is_none() && role.is_none() && target.is_none() {
            return Err(Error::invalid(
                "invalid_field",
                "give holder_serial, role or target (or several)",
            ));
        }
        let filter = ac_filter(holder_serial, role, target)?;
        let rows = {
            let mut c = self.store().read().await?;
            rows::list(&mut c, &filter, limit.clamp(1, 1000)).await?
        };
        rows.iter().map(|r| self.ac_view(r)).collect()
    }

    /// A page of ACs, newest first, after the AC `q.after` (None: from the newest), each filter
    /// optional (roles `aa`, `auditor`, `revoker`); the console's listing.
    pub async fn attribute_certificates_page(
        &self,
        op: &Operator,
        q: &AcQuery<'_>,
        limit: i64,
    ) -> Result<Vec<AcView>> {
        self.authorize_any(
            op,
            &[Role::Aa, Role::Auditor, Role::Revoker],
            "attribute.read",
            None,
        )
        .await?;
        let filter = ac_filter(q.holder_serial, q.role, q.target)?;
        let now = self.now().unix_timestamp();
        let (status, not_after_from, not_after_to) = match q.status {
            None => (None, i64::MIN, i64::MAX),
            Some("valid") => (Some(CertificateStatus::Valid), now, i64::MAX),
            Some("expired") => (Some(CertificateStatus::Valid), i64::MIN, now),
            Some(s) => match CertificateStatus::parse(s) {
                Some(s) => (Some(s), i64::MIN, i64::MAX),
                None => {
                    return Err(Error::invalid(
                        "invalid_status",
                        "status: one of valid, expired, on-hold, revoked",
                    ))
                }
            },
        };
        let mut c = self.store().read().await?;
        let before = match q.after {
            Some(serial) => {
                let row = rows::get(&mut c, &serial_of(serial)?)
                    .await?
                    .ok_or(Error::NotFound("attribute certificate"))?;
                (row.issued_at, row.serial)
            }
            None => (i64::MAX, String::new()),
        };
        let page = AcPage {
            filter,
            status,
            not_after_from,
            not_after_to,
            before,
        };
        let rows = rows::page(&mut c, &page, limit.clamp(1, 1000)).await?;
        rows.iter().map(|r| self.ac_view(r)).collect()
    }

    /// Revoke an AC (role `revoker`) with an RFC 5280 reason (not certificateHold; typically
    /// privilegeWithdrawn or affiliationChanged).
    pub async fn revoke_attribute_certificate(
        &self,
        op: &Operator,
        serial: &str,
        reason: &str,
        comment: Option<&str>,
    ) -> Result<AcView> {
        self.authorize(op, Role::Revoker, "attribute.revoke", Some(serial))
            .await?;
        let serial = serial_of(serial)?;
        let reason = Reason::parse(reason)?;
        if reason == Reason::CertificateHold {
            return Err(Error::invalid(
                "invalid_reason",
                "attribute certificates are held only with their holder certificate",
            ));
        }
        let comment = check_comment(comment)?;
        let now = self.now();
        let exists = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial).await?
        };
        if exists.is_none() {
            return Err(Error::NotFound("attribute certificate"));
        }
        let (target, by) = (serial.clone(), op.id.clone());
        let changed = self
            .store()
            .write(job!(|c, log| {
                let changed =
                    rows::revoke(c, &target, reason.as_str(), now.unix_timestamp(), None).await?;
                if changed {
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            Action::AttributeRevoked,
                            Some(&target),
                            serde_json::json!({"reason": reason.as_str(), "comment": comment}),
                        ),
                    );
                }
                Ok(changed)
            }))
            .await?;
        if !changed {
            return Err(Error::conflict(
                "already_revoked",
                "the attribute certificate is already revoked",
            ));
        }
        self.status_changed();
        self.attribute_certificate_row(&serial).await
    }

    async fn attribute_certificate_row(&self, serial: &str) -> Result<AcView> {
        let row = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, serial).await?
        }
        .ok_or(Error::NotFound("attribute certificate"))?;
        self.ac_view(&row)
    }
}

/// The holder, role and application filters, checked.
fn ac_filter(
    holder_serial: Option<&str>,
    role: Option<&str>,
    target: Option<&str>,
) -> Result<AcFilter> {
    Ok(AcFilter {
        holder_serial: holder_serial.map(serial_of).transpose()?,
        role: role
            .map(|r| ac::check_name("role", r).map(|_| r.to_string()))
            .transpose()?,
        target: target
            .map(|t| ac::check_name("target", t).map(|_| t.to_string()))
            .transpose()?,
    })
}
