//! Revocation: revoke (with an RFC 5280 reason, optional invalidity date), hold and release, key
//! compromise propagation, and the full CRL of the issuing CA.

use super::{Operator, Ra, Role};
use crate::audit::{self, Event};
use crate::ca::{CrlEntry, CrlOrder};
use crate::error::{Error, Result};
use crate::store::certificates as rows;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use serde::Serialize;
use std::sync::atomic::Ordering;
use time::{Duration, OffsetDateTime};

/// How long a CRL is valid (nextUpdate - thisUpdate); it is re-signed at half-life, or at once
/// when a status changes.
pub const CRL_VALIDITY: Duration = Duration::hours(24);
pub const MAX_COMMENT_CHARS: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct RevocationOutcome {
    pub serial: String,
    /// revoked | on-hold | valid
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Other live certificates with the same key, revoked with it (keyCompromise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_revoked: Vec<String>,
}

/// A signed CRL kept until a status changes or it reaches half its validity.
pub(crate) struct CachedCrl {
    generation: u64,
    this_update: OffsetDateTime,
    der: Vec<u8>,
}

fn serial_of(text: &str) -> Result<String> {
    Serial::normalise(text).ok_or_else(|| Error::invalid("invalid_serial", "serial must be hex"))
}

fn check_comment(comment: Option<&str>) -> Result<Option<String>> {
    match comment.map(str::trim) {
        None | Some("") => Ok(None),
        Some(c)
            if c.chars().count() <= MAX_COMMENT_CHARS
                && !c.chars().any(|ch| ch.is_control() && ch != '\n') =>
        {
            Ok(Some(c.to_string()))
        }
        Some(_) => Err(Error::invalid(
            "invalid_field",
            format!("comment: at most {MAX_COMMENT_CHARS} characters"),
        )),
    }
}

fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Error::invalid(
            "invalid_field",
            format!("{name} must be an RFC 3339 time, e.g. 2026-11-26T09:30:00Z"),
        )
    })
}

impl Ra {
    /// Revoke a certificate (expired ones too). keyCompromise also blocks the key and revokes
    /// every other live certificate with it, with the same reason.
    pub async fn revoke(
        &self,
        op: &Operator,
        serial: &str,
        reason: &str,
        invalidity_date: Option<&str>,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.authorize(op, Role::Revoker, "certificate.revoke", Some(serial))
            .await?;
        let serial = serial_of(serial)?;
        let reason = Reason::parse(reason)?;
        if reason == Reason::CertificateHold {
            return Err(Error::invalid(
                "invalid_reason",
                "use POST /certificates/{serial}/hold for certificateHold",
            ));
        }
        let now = self.now();
        let invalidity = match invalidity_date {
            Some(t) => {
                let t = parse_time("invalidity_date", t)?;
                if t > now {
                    return Err(Error::invalid(
                        "invalid_field",
                        "invalidity_date is in the future",
                    ));
                }
                Some(t.unix_timestamp())
            }
            None => None,
        };
        let comment = check_comment(comment)?;
        let cert = {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?
        };
        let (by, target, key) = (op.id.clone(), serial.clone(), cert.key_sha256.clone());
        let revoked = self
            .store()
            .write(move |c, log| {
                Box::pin(async move {
                    let ts = now.unix_timestamp();
                    let action = if rows::revoke(c, &target, reason.as_str(), ts, invalidity).await? {
                        "certificate.revoked"
                    } else if reason == Reason::KeyCompromise && rows::escalate_to_key_compromise(c, &target, invalidity).await? {
                        // RFC 5280 5.3.1: a revoked certificate's reason may change to keyCompromise.
                        "certificate.revocation_updated"
                    } else {
                        return Ok(None);
                    };
                    let details = serde_json::json!({"reason": reason.as_str(), "invalidity_date": invalidity, "comment": comment});
                    audit::record(log, now, Event::new(Some(&by), action, Some(&target), details));
                    let mut others = Vec::new();
                    if reason == Reason::KeyCompromise {
                        if rows::block_key(c, &key, "keyCompromise", Some(&by), ts).await? {
                            let details = serde_json::json!({"reason": "keyCompromise", "certificate": target});
                            audit::record(log, now, Event::new(Some(&by), "key.blocked", Some(&key), details));
                        }
                        for other in rows::live_with_key(c, &key).await? {
                            if rows::revoke(c, &other, reason.as_str(), ts, invalidity).await? {
                                let details = serde_json::json!({"reason": "keyCompromise", "propagated_from": target});
                                audit::record(log, now, Event::new(Some(&by), "certificate.revoked", Some(&other), details));
                                others.push(other);
                            }
                        }
                    }
                    Ok(Some(others))
                })
            })
            .await?;
        let Some(also_revoked) = revoked else {
            return Err(Error::conflict(
                "already_revoked",
                "the certificate is already revoked",
            ));
        };
        self.status_changed();
        Ok(RevocationOutcome {
            serial,
            status: "revoked".into(),
            reason: Some(reason.as_str().into()),
            also_revoked,
        })
    }

    /// Suspend a certificate (certificateHold); `release` makes it good again.
    pub async fn hold(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.set_hold(op, serial, comment, true).await
    }

    pub async fn release(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
    ) -> Result<RevocationOutcome> {
        self.set_hold(op, serial, comment, false).await
    }

    async fn set_hold(
        &self,
        op: &Operator,
        serial: &str,
        comment: Option<&str>,
        hold: bool,
    ) -> Result<RevocationOutcome> {
        let action = if hold {
            "certificate.hold"
        } else {
            "certificate.release"
        };
        self.authorize(op, Role::Revoker, action, Some(serial))
            .await?;
        let serial = serial_of(serial)?;
        let comment = check_comment(comment)?;
        let now = self.now();
        {
            let mut c = self.store().read().await?;
            rows::get(&mut c, &serial)
                .await?
                .ok_or(Error::NotFound("certificate"))?;
        }
        let (by, target) = (op.id.clone(), serial.clone());
        let changed = self
            .store()
            .write(move |c, log| {
                Box::pin(async move {
                    let changed = if hold {
                        rows::hold(c, &target, now.unix_timestamp()).await?
                    } else {
                        rows::release(c, &target).await?
                    };
                    if changed {
                        let event = if hold {
                            "certificate.held"
                        } else {
                            "certificate.released"
                        };
                        audit::record(
                            log,
                            now,
                            Event::new(
                                Some(&by),
                                event,
                                Some(&target),
                                serde_json::json!({"comment": comment}),
                            ),
                        );
                    }
                    Ok(changed)
                })
            })
            .await?;
        if !changed {
            let want = if hold { "valid" } else { "on hold" };
            return Err(Error::conflict(
                "invalid_status",
                format!("the certificate is not {want}"),
            ));
        }
        self.status_changed();
        Ok(RevocationOutcome {
            serial,
            status: if hold { "on-hold" } else { "valid" }.into(),
            reason: hold.then(|| "certificateHold".to_string()),
            also_revoked: Vec::new(),
        })
    }

    /// Any status change makes the cached CRL stale.
    pub(crate) fn status_changed(&self) {
        self.crl_generation().fetch_add(1, Ordering::SeqCst);
    }

    /// The current full CRL (DER) of the issuing CA `ca_id`; re-signed when a status changed since
    /// the last one, or when it has used half its validity.
    pub async fn crl(&self, ca_id: &str) -> Result<Vec<u8>> {
        if ca_id != self.ca().issuing_id() {
            return Err(Error::NotFound("CRL"));
        }
        let mut cache = self.crl_cache().lock().await;
        let now = self.now();
        let generation = self.crl_generation().load(Ordering::SeqCst);
        if let Some(c) = cache.as_ref() {
            if c.generation == generation && now < c.this_update + CRL_VALIDITY / 2 {
                return Ok(c.der.clone());
            }
        }
        let entries = {
            let mut c = self.store().read().await?;
            rows::revoked(&mut c, ca_id).await?
        };
        let entries = entries
            .into_iter()
            .map(|r| {
                let ts = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal);
                Ok(CrlEntry {
                    serial: Serial::parse(&r.serial)
                        .ok_or_else(|| Error::internal("stored serial is malformed"))?,
                    revoked_at: ts(r.revoked_at)?,
                    reason: Reason::parse(&r.revocation_reason)?,
                    invalidity_date: r.invalidity_date.map(ts).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (ca, count) = (ca_id.to_string(), entries.len());
        let number = self
            .store()
            .write(move |c, log| {
                Box::pin(async move {
                    let number = rows::next_crl_number(c, &ca).await?;
                    let details = serde_json::json!({"number": number, "entries": count});
                    audit::record(log, now, Event::new(None, "crl.signed", Some(&ca), details));
                    Ok(number)
                })
            })
            .await?;
        let order = CrlOrder {
            number: u64::try_from(number).map_err(Error::internal)?,
            this_update: now,
            next_update: now + CRL_VALIDITY,
            entries,
        };
        let der = self
            .ca()
            .sign_crl(&order)
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        *cache = Some(CachedCrl {
            generation,
            this_update: now,
            der: der.clone(),
        });
        Ok(der)
    }
}
