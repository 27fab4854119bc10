//! The AC CRL (`/crl/aa.crl`): the attribute authority's CRL of revoked and held attribute
//! certificates, signed by the AA key with its own CRL numbers (`crl_numbers`, id `aa`), an
//! issuingDistributionPoint with onlyContainsAttributeCerts, and re-signed whenever a status
//! changes (any instance's change reaches this one through the status watch within a second) or
//! at half its validity. Only revocable ACs are listed; noRevAvail ones carry no CDP.

use super::Ra;
use crate::audit::{self, Action, Event};
use crate::ca::aa::AA_ID;
use crate::ca::CrlEntry;
use crate::error::{Error, Result};
use crate::store::attributes as rows;
use crate::store::certificates::next_crl_number;
use crate::store::job;
use crate::x509::freshness::Freshness;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use std::sync::Arc;
use time::OffsetDateTime;

/// The signed AC CRL, kept until a status changes or it reaches half its validity.
pub(crate) struct CachedAcCrl {
    generation: u64,
    this_update: OffsetDateTime,
    der: bytes::Bytes,
    freshness: Freshness,
}

/// The AC CRL's cache and signing lock; one per RA.
#[derive(Default)]
pub(crate) struct AcCrlPublisher {
    current: std::sync::Mutex<Option<Arc<CachedAcCrl>>>,
    signing: tokio::sync::Mutex<()>,
}

impl AcCrlPublisher {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<CachedAcCrl>>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ra {
    fn fresh_ac_crl(&self) -> Option<Arc<CachedAcCrl>> {
        let current = self.ac_crl_publisher().slot().clone()?;
        let due = current.this_update + self.config().crl_validity / 2;
        (current.generation == self.status_generation() && self.now() < due).then_some(current)
    }

    /// The current AC CRL (DER) with its thisUpdate, nextUpdate and digest.
    pub async fn ac_crl(&self) -> Result<(bytes::Bytes, Freshness)> {
        if let Some(c) = self.fresh_ac_crl() {
            return Ok((c.der.clone(), c.freshness.clone()));
        }
        let _signing = self.ac_crl_publisher().signing.lock().await;
        if let Some(c) = self.fresh_ac_crl() {
            return Ok((c.der.clone(), c.freshness.clone()));
        }
        let signed = Arc::new(self.sign_ac_crl().await?);
        *self.ac_crl_publisher().slot() = Some(signed.clone());
        Ok((signed.der.clone(), signed.freshness.clone()))
    }

    async fn sign_ac_crl(&self) -> Result<CachedAcCrl> {
        let aa = self.aa_or_not_found()?;
        // Read before the rows: a change after this moves the generation again.
        let generation = self.status_generation();
        let now = self.now();
        // The number and the entries are taken in one write transaction (write transactions of
        // all instances run one after another), so a higher number never lists less.
        let (number, revoked) = self
            .store()
            .write(job!(|c, _| {
                let number = next_crl_number(c, AA_ID).await?;
                Ok((number, rows::revoked(c).await?))
            }))
            .await?;
        let number = u64::try_from(number).map_err(Error::internal)?;
        let unix = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal);
        let entries = revoked
            .iter()
            .map(|r| {
                Ok(CrlEntry {
                    serial: Serial::parse(&r.serial)
                        .ok_or_else(|| Error::internal("stored AC serial is malformed"))?,
                    revoked_at: unix(r.revoked_at)?,
                    reason: Reason::parse(&r.revocation_reason)?,
                    invalidity_date: r.invalidity_date.map(unix).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_update = now + self.config().crl_validity;
        let der = aa.sign_crl(number, now, next_update, &entries, &self.ac_crl_urls())?;
        let freshness = Freshness::of(&der, now, next_update);
        let details = serde_json::json!({"number": number, "entries": entries.len()});
        self.store()
            .write(job!(|_, log| {
                audit::record(
                    log,
                    now,
                    Event::new(None, Action::CrlSigned, Some(AA_ID), details),
                );
                Ok(())
            }))
            .await?;
        Ok(CachedAcCrl {
            generation,
            this_update: now,
            der: der.into(),
            freshness,
        })
    }

    fn aa_or_not_found(&self) -> Result<Arc<crate::ca::aa::AttributeAuthority>> {
        self.config()
            .attribute_authority
            .clone()
            .ok_or(Error::NotFound("AC CRL"))
    }
}
