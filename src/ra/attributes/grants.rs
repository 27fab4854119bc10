//! Grants: checking one against its AC profile and the holder certificate (again at each
//! approval), issuing the AC at once or recording a grant that waits for approvals by other `aa`
//! operators (decided in [`super::approvals`]), and issuing an AC.

use super::{
    check_holder, unix, AcView, Grant, GrantInput, GrantOutcome, DEFAULT_PROFILE, NOT_BEFORE_SKEW,
};
use crate::audit::{self, Action, Event};
use crate::ca::aa::AcOrder;
use crate::error::{Error, Result};
use crate::ra::revocation::{parse_time, serial_of};
use crate::ra::{new_id, rfc3339, Operator, Ra, Role};
use crate::state::{CertificateStatus, GrantState};
use crate::store::attributes::{self as rows, AcRow, GrantRow};
use crate::store::certificates as certs;
use crate::store::job;
use crate::x509::ac::{self, AcRevocation};
use crate::x509::profile::{AcRevocationMode, AttributeProfile};
use crate::x509::serial::Serial;
use time::{Duration, OffsetDateTime};

/// Role or application names: each a name the profile allows; duplicates dropped.
fn allowed_names(
    field: &str,
    items: &[String],
    allowed: &[String],
    profile: &str,
) -> Result<Vec<String>> {
    if items.is_empty() {
        return Err(Error::invalid(
            "invalid_field",
            format!("{field}: at least one is required"),
        ));
    }
    if items.len() > ac::MAX_ITEMS {
        return Err(Error::invalid(
            "invalid_field",
            format!("{field}: at most {} entries", ac::MAX_ITEMS),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        ac::check_name(field, item)?;
        if !allowed.contains(item) {
            let code = if field == "roles" {
                "role_not_allowed"
            } else {
                "target_not_allowed"
            };
            return Err(Error::refused(
                code,
                format!(
                    "{field}: {item:?} is not allowed by the profile {profile:?} (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    Ok(out)
}

/// Group names, in NFC, duplicates dropped.
fn group_names(items: &[String]) -> Result<Vec<String>> {
    if items.len() > ac::MAX_ITEMS {
        return Err(Error::invalid(
            "invalid_field",
            format!("groups: at most {} entries", ac::MAX_ITEMS),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let name = ac::check_group(item)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn too_long<T>(message: String) -> Result<T> {
    Err(Error::refused("lifetime_too_long", message))
}

impl Ra {
    /// Check a grant against the profile and the holder certificate as they are now.
    async fn check_grant(
        &self,
        input: &GrantInput,
        now: OffsetDateTime,
    ) -> Result<(Grant, AttributeProfile)> {
        let profile_name = input.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
        let profile = self.attribute_profile(profile_name, |known| {
            Error::refused(
                "unknown_profile",
                format!(
                    "no attribute certificate profile {profile_name:?}; the profiles are: {known}"
                ),
            )
        })?;
        let roles = allowed_names("roles", &input.roles, &profile.allowed_roles, &profile.name)?;
        let targets = allowed_names(
            "targets",
            &input.targets,
            &profile.allowed_targets,
            &profile.name,
        )?;
        let groups = group_names(&input.groups)?;
        let holder_serial = serial_of(&input.holder_serial)?;
        let now_s = now.replace_nanosecond(0).map_err(Error::internal)?;
        let not_before = match &input.not_before {
            Some(t) => parse_time("not_before", t)?,
            None => now_s,
        };
        let not_after = parse_time("not_after", &input.not_after)?;
        if not_before < now - NOT_BEFORE_SKEW {
            return Err(Error::invalid(
                "invalid_field",
                "not_before is in the past: an attribute certificate cannot say a role was held before it was granted",
            ));
        }
        let grant = Grant {
            holder_serial,
            profile: profile.name.clone(),
            revocation: profile.revocation,
            roles,
            groups,
            targets,
            not_before: not_before.unix_timestamp(),
            not_after: not_after.unix_timestamp(),
        };
        self.check_validity(&grant, &profile, now).await?;
        Ok((grant, profile))
    }

    /// The AC profile `name`, or the error `missing` makes of the list of known ones.
    fn attribute_profile(
        &self,
        name: &str,
        missing: impl FnOnce(String) -> Error,
    ) -> Result<AttributeProfile> {
        match self.profiles().attribute(name) {
            Some(p) => Ok(p.clone()),
            None => Err(missing(
                self.profiles()
                    .attribute_names()
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// What must hold whenever an AC is issued for `grant`: the holder certificate valid now (its
    /// issuing CA not revoked), the validity in the future and within the profile's limit, the
    /// holder's notAfter and the AA's.
    async fn check_validity(
        &self,
        grant: &Grant,
        profile: &AttributeProfile,
        now: OffsetDateTime,
    ) -> Result<()> {
        let holder = {
            let mut c = self.store().read().await?;
            certs::get(&mut c, &grant.holder_serial).await?
        }
        .ok_or(Error::NotFound("holder certificate"))?;
        check_holder(&holder, now)?;
        if holder.ca_id == self.ca().issuing_id() {
            if let Some(why) = self.issuing_ca_revocation().await? {
                return Err(Error::conflict(
                    "holder_not_valid",
                    format!("the holder certificate's issuer is revoked: {why}"),
                ));
            }
        }
        let (not_before, not_after) = (unix(grant.not_before)?, unix(grant.not_after)?);
        if not_after <= not_before || not_after <= now {
            return Err(Error::invalid(
                "invalid_field",
                "not_after must be in the future and after not_before",
            ));
        }
        let max = Duration::hours(i64::from(profile.max_validity_hours));
        if not_after - not_before > max {
            return too_long(format!(
                "the profile {:?} allows at most {} hours",
                profile.name, profile.max_validity_hours
            ));
        }
        if grant.not_after > holder.not_after {
            return too_long(format!(
                "not_after is after the holder certificate's notAfter ({})",
                rfc3339(holder.not_after)
            ));
        }
        let aa = self.attribute_authority()?;
        if not_after > aa.not_after() {
            return too_long(format!(
                "not_after is after the attribute authority certificate's notAfter ({})",
                rfc3339(aa.not_after().unix_timestamp())
            ));
        }
        Ok(())
    }

    /// A grant as it is issued at its last approval, `now`: it starts no earlier than now (an AC
    /// does not say a role was held before it was approved), and everything checked when it was
    /// made is checked again against the profile as it is now (same revocation mode, roles and
    /// applications still allowed, validity within the limit and the holder's).
    pub(super) async fn grant_at_approval(
        &self,
        grant: &Grant,
        now: OffsetDateTime,
    ) -> Result<(Grant, AttributeProfile)> {
        let profile = self.attribute_profile(&grant.profile, |_| {
            Error::conflict(
                "unknown_profile",
                format!(
                    "the grant's profile {:?} is no longer configured",
                    grant.profile
                ),
            )
        })?;
        if profile.revocation != grant.revocation {
            return Err(Error::conflict(
                "profile_changed",
                format!(
                    "the profile {:?} changed its revocation mode since the grant was made; make a new grant",
                    profile.name
                ),
            ));
        }
        allowed_names("roles", &grant.roles, &profile.allowed_roles, &profile.name)?;
        allowed_names(
            "targets",
            &grant.targets,
            &profile.allowed_targets,
            &profile.name,
        )?;
        let now_s = now.replace_nanosecond(0).map_err(Error::internal)?;
        let mut at_approval = grant.clone();
        at_approval.not_before = grant.not_before.max(now_s.unix_timestamp());
        self.check_validity(&at_approval, &profile, now).await?;
        Ok((at_approval, profile))
    }

    /// Grant roles in applications to the holder of an identity certificate: the AC is issued at
    /// once, or, when its profile asks for approvals, a pending grant is recorded. Role `aa`.
    pub async fn grant_attributes(
        &self,
        op: &Operator,
        input: &GrantInput,
    ) -> Result<GrantOutcome> {
        self.authorize(op, Role::Aa, "attribute.grant", Some(&input.holder_serial))
            .await?;
        self.attribute_authority()?;
        let now = self.now();
        let (grant, profile) = match self.check_grant(input, now).await {
            Ok(g) => g,
            Err(e) => {
                if !matches!(
                    e,
                    Error::Database(_) | Error::Internal(_) | Error::Environment(_)
                ) {
                    self.audit_refusal(
                        Some(&op.id),
                        Action::AttributeRefused,
                        Some(&input.holder_serial),
                        serde_json::json!({"error": e.code(), "message": e.to_string()}),
                    )
                    .await;
                }
                return Err(e);
            }
        };
        if profile.required_approvals == 0 {
            let view = self
                .issue_ac(&op.id, &grant, &profile, None, now)
                .await?
                .ok_or_else(|| Error::internal("an AC without approvals was not stored"))?;
            return Ok(GrantOutcome::Issued(Box::new(view)));
        }
        let row = GrantRow {
            id: new_id("grant"),
            holder_serial: grant.holder_serial.clone(),
            profile: profile.name.clone(),
            grant_json: serde_json::to_string(&grant).map_err(Error::internal)?,
            status: GrantState::Pending,
            required_approvals: i64::from(profile.required_approvals),
            requested_by: op.id.clone(),
            created_at: now.unix_timestamp(),
            expires_at: (now + Duration::hours(i64::from(profile.grant_expiry_hours)))
                .unix_timestamp(),
            decided_by: None,
            decided_at: None,
            reason: None,
            serial: None,
        };
        let (stored, by) = (row.clone(), op.id.clone());
        let details = serde_json::json!({
            "holder_serial": grant.holder_serial, "profile": profile.name, "roles": grant.roles,
            "targets": grant.targets, "groups": grant.groups,
            "required_approvals": profile.required_approvals,
        });
        self.store()
            .write(job!(|c, log| {
                rows::insert_grant(c, &stored).await?;
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&by),
                        Action::AttributeGrantRequested,
                        Some(&stored.id),
                        details,
                    ),
                );
                Ok(())
            }))
            .await?;
        Ok(GrantOutcome::Pending(Box::new(
            self.grant_view(&row).await?,
        )))
    }

    /// Sign the AC for `grant` and store it, in one transaction that checks again that the holder
    /// certificate is valid (a revocation committed meanwhile wins). For a grant with approvals
    /// (`approval`: its id and how many it needs), the same transaction counts this operator's
    /// approval first, and the AC is stored only when that was the last one needed: None when
    /// more are needed.
    pub(super) async fn issue_ac(
        &self,
        by: &str,
        grant: &Grant,
        profile: &AttributeProfile,
        approval: Option<(&str, i64)>,
        now: OffsetDateTime,
    ) -> Result<Option<AcView>> {
        let aa = self.attribute_authority()?.clone();
        let holder = {
            let mut c = self.store().read().await?;
            certs::get(&mut c, &grant.holder_serial).await?
        }
        .ok_or(Error::NotFound("holder certificate"))?;
        let holder_info = x509_parser::parse_x509_certificate(&holder.der)
            .map_err(|e| Error::internal(format!("stored certificate: {e}")))?
            .1;
        let names = &self.config().attribute_names;
        let role_uris: Vec<String> = grant.roles.iter().map(|r| names.role_uri(r)).collect();
        let target_uris: Vec<String> = grant.targets.iter().map(|t| names.target_uri(t)).collect();
        let crl_urls = self.ac_crl_urls();
        let revocation = match profile.revocation {
            AcRevocationMode::Crl => AcRevocation::Crl(&crl_urls),
            AcRevocationMode::NoRevAvail => AcRevocation::NoRevAvail,
        };
        let serial = Serial::random();
        let der = aa.sign_ac(&AcOrder {
            serial: &serial,
            holder_issuer_der: holder_info.issuer().as_raw(),
            holder_serial: holder_info.raw_serial(),
            not_before: unix(grant.not_before)?,
            not_after: unix(grant.not_after)?,
            role_uris: &role_uris,
            groups: &grant.groups,
            target_uris: &target_uris,
            revocation,
        })?;
        let row = AcRow {
            serial: hex::encode(serial.as_bytes()),
            holder_serial: grant.holder_serial.clone(),
            profile: profile.name.clone(),
            roles_json: serde_json::to_string(&grant.roles).map_err(Error::internal)?,
            groups_json: serde_json::to_string(&grant.groups).map_err(Error::internal)?,
            targets_json: serde_json::to_string(&grant.targets).map_err(Error::internal)?,
            not_before: grant.not_before,
            not_after: grant.not_after,
            revocable: i64::from(profile.revocation == AcRevocationMode::Crl),
            der,
            status: CertificateStatus::Valid,
            held_with_holder: 0,
            grant_id: approval.map(|(id, _)| id.to_string()),
            granted_by: by.to_string(),
            issued_at: now.unix_timestamp(),
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
        };
        let (stored, roles, targets, by) = (
            row.clone(),
            grant.roles.clone(),
            grant.targets.clone(),
            by.to_string(),
        );
        let grant_id = approval.map(|(id, _)| id.to_string());
        let required = approval.map_or(0, |(_, n)| n);
        let details = serde_json::json!({
            "holder_serial": row.holder_serial, "profile": row.profile, "roles": grant.roles,
            "groups": grant.groups, "targets": grant.targets, "not_before": rfc3339(row.not_before),
            "not_after": rfc3339(row.not_after), "grant_id": grant_id,
        });
        let issued = self
            .store()
            .write(job!(|c, log| {
                if let Some(id) = &grant_id {
                    let at = now.unix_timestamp();
                    let Some(n) = rows::approve_grant(c, id, &by, at).await? else {
                        return Ok(Err(Error::conflict(
                            "already_approved",
                            "this operator's approval is already counted, or the grant is no \
                             longer pending",
                        )));
                    };
                    audit::record(
                        log,
                        now,
                        Event::new(
                            Some(&by),
                            Action::AttributeGrantApproved,
                            Some(id),
                            serde_json::json!({"approvals": n, "required": required}),
                        ),
                    );
                    if n < required {
                        return Ok(Ok(false));
                    }
                }
                let holder = certs::get(c, &stored.holder_serial).await?;
                if let Err(e) = holder
                    .as_ref()
                    .map_or(Err(Error::NotFound("holder certificate")), |h| {
                        check_holder(h, now)
                    })
                {
                    if let Some(id) = &grant_id {
                        rows::decide_grant(
                            c,
                            id,
                            GrantState::Failed,
                            Some(&by),
                            now.unix_timestamp(),
                            Some(&e.to_string()),
                            None,
                        )
                        .await?;
                        audit::record(
                            log,
                            now,
                            Event::new(
                                Some(&by),
                                Action::AttributeGrantFailed,
                                Some(id),
                                serde_json::json!({"error": e.code(), "message": e.to_string()}),
                            ),
                        );
                    }
                    return Ok(Err(e));
                }
                if let Some(id) = &grant_id {
                    if !rows::decide_grant(
                        c,
                        id,
                        GrantState::Granted,
                        Some(&by),
                        now.unix_timestamp(),
                        None,
                        Some(&stored.serial),
                    )
                    .await?
                    {
                        return Ok(Err(Error::conflict(
                            "not_pending",
                            "the grant is no longer pending",
                        )));
                    }
                }
                rows::insert(c, &stored, &roles, &targets).await?;
                audit::record(
                    log,
                    now,
                    Event::new(
                        Some(&by),
                        Action::AttributeIssued,
                        Some(&stored.serial),
                        details,
                    ),
                );
                Ok(Ok(true))
            }))
            .await?;
        match issued? {
            true => self.ac_view(&row).map(Some),
            false => Ok(None),
        }
    }
}
