//! What verifications read of Vouch's records, kept between calls: a certificate's row with its
//! status history, and an attribute certificate's status history. Each entry carries the status
//! generation it was read at; every status change (made here, or on another instance and seen
//! within about a second, as the OCSP responder's cache sees it) moves the generation, and an
//! entry of an older one is read again. Only rows that exist are kept: a serial not on record may
//! be issued at any moment, which moves no generation. An entry is also read again after
//! [`MAX_AGE`], so that an instance whose watch of other instances' changes cannot read the
//! database does not answer from old records for long. Bounded by memory.

use crate::error::Result;
use crate::ra::Ra;
use crate::store::certificates::{self as certs, CertificateRow};
use crate::store::history::{self, HistoryKind, HistoryRow};
use std::sync::Arc;

/// Longest an entry is used, whatever the generation.
pub(crate) const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Memory the cached records may take.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// A certificate as Vouch's records have it, with every status change it went through.
pub(crate) struct CertificateRecord {
    /// Its row.
    pub(crate) row: CertificateRow,
    /// Its status changes, in the order they were made.
    pub(crate) history: Vec<HistoryRow>,
}

/// The record in force at `t` among `history` (in the order made): of the changes stamped at or
/// before `t`, the last one made (as [`history::status_at`] reads it from the database).
pub(crate) fn status_at(history: &[HistoryRow], t: i64) -> Option<&HistoryRow> {
    history.iter().rfind(|h| h.at <= t)
}

struct Tagged<T> {
    generation: u64,
    read_at: std::time::Instant,
    value: Arc<T>,
}

impl<T> Tagged<T> {
    fn new(generation: u64, value: Arc<T>) -> Self {
        Tagged {
            generation,
            read_at: std::time::Instant::now(),
            value,
        }
    }

    /// Still usable at `generation`.
    fn fresh(&self, generation: u64) -> bool {
        self.generation == generation && self.read_at.elapsed() < MAX_AGE
    }
}

impl<T> Clone for Tagged<T> {
    fn clone(&self) -> Self {
        Tagged {
            generation: self.generation,
            read_at: self.read_at,
            value: self.value.clone(),
        }
    }
}

fn history_bytes(h: &[HistoryRow]) -> usize {
    h.iter().map(|r| 96 + r.serial.len()).sum()
}

/// The cached records.
pub(crate) struct Records {
    certificates: moka::sync::Cache<String, Tagged<CertificateRecord>>,
    attribute_history: moka::sync::Cache<String, Tagged<Vec<HistoryRow>>>,
    /// SHA-256 of (AA certificate, attribute certificate) pairs whose signature was seen to
    /// hold: the same bytes verify the same way every time.
    signatures_held: moka::sync::Cache<[u8; 32], ()>,
}

/// Most remembered attribute certificate signatures (32 bytes each, and moka's own overhead).
const SIGNATURES_HELD: u64 = 65_536;

impl Records {
    /// Whether the attribute certificate `ac` (its DER `ac_der`) holds a valid signature of the
    /// AA whose certificate is `aa_der`, remembered once it did.
    pub(crate) fn ac_signature_holds(
        &self,
        ac: &crate::x509::ac::AttributeCertificate,
        ac_der: &[u8],
        aa_der: &[u8],
    ) -> bool {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update((aa_der.len() as u64).to_be_bytes());
        h.update(aa_der);
        h.update(ac_der);
        let key: [u8; 32] = h.finalize().into();
        if self.signatures_held.contains_key(&key) {
            return true;
        }
        let holds = crate::x509::ac::check::signature_ok(ac, aa_der);
        if holds {
            self.signatures_held.insert(key, ());
        }
        holds
    }
}

impl Default for Records {
    fn default() -> Self {
        let weigh = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        Records {
            certificates: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES / 2)
                .weigher(move |k: &String, v: &Tagged<CertificateRecord>| {
                    let r = &v.value.row;
                    weigh(k.len() + r.der.len() + 512 + history_bytes(&v.value.history))
                })
                .build(),
            attribute_history: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES / 2)
                .weigher(move |k: &String, v: &Tagged<Vec<HistoryRow>>| {
                    weigh(k.len() + 64 + history_bytes(&v.value))
                })
                .build(),
            signatures_held: moka::sync::Cache::new(SIGNATURES_HELD),
        }
    }
}

impl Ra {
    /// The certificate with serial `serial` (hex) and its status history, from the cache when it
    /// was read at the current status generation.
    pub(super) async fn certificate_record(
        &self,
        serial: &str,
    ) -> Result<Option<Arc<CertificateRecord>>> {
        let records = &self.verify_state().records;
        // The generation is taken before the reads: a change made while they run leaves the
        // entry tagged with the older generation, so the next call reads again.
        let generation = self.status_generation();
        if let Some(hit) = records.certificates.get(serial) {
            if hit.fresh(generation) {
                return Ok(Some(hit.value));
            }
        }
        let mut c = self.store().read().await?;
        let Some(row) = certs::get(&mut c, serial).await? else {
            return Ok(None);
        };
        let history = history::history(&mut c, HistoryKind::Certificate, serial).await?;
        let value = Arc::new(CertificateRecord { row, history });
        records
            .certificates
            .insert(serial.to_string(), Tagged::new(generation, value.clone()));
        Ok(Some(value))
    }

    /// The status history of the attribute certificate `serial` (hex), in the order made.
    pub(super) async fn attribute_history(&self, serial: &str) -> Result<Arc<Vec<HistoryRow>>> {
        let records = &self.verify_state().records;
        let generation = self.status_generation();
        if let Some(hit) = records.attribute_history.get(serial) {
            if hit.fresh(generation) {
                return Ok(hit.value);
            }
        }
        let value = {
            let mut c = self.store().read().await?;
            Arc::new(history::history(&mut c, HistoryKind::Attribute, serial).await?)
        };
        records
            .attribute_history
            .insert(serial.to_string(), Tagged::new(generation, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CertificateStatus;

    fn change(at: i64, status: CertificateStatus) -> HistoryRow {
        HistoryRow {
            serial: "01".into(),
            at,
            status,
            reason: None,
            invalidity_date: None,
        }
    }

    /// An entry serves its own generation only, and not past its age limit.
    #[test]
    fn entries_go_stale_with_the_generation_or_with_age() {
        let t = Tagged::new(7, Arc::new(()));
        assert!(t.fresh(7));
        assert!(!t.fresh(8));
        let old = Tagged {
            read_at: std::time::Instant::now()
                .checked_sub(MAX_AGE)
                .expect("the clock is past its start"),
            ..t
        };
        assert!(!old.fresh(7));
    }

    /// The last change made at or before the time counts, in the order made, not by stamp (two
    /// instances' clocks may disagree): as the database query reads it.
    #[test]
    fn status_at_takes_the_last_change_made_by_then() {
        use CertificateStatus::*;
        let h = [
            change(100, OnHold),
            change(200, Valid),
            change(190, Revoked),
        ];
        assert_eq!(status_at(&h, 99), None);
        assert_eq!(status_at(&h, 100).map(|r| r.status), Some(OnHold));
        assert_eq!(status_at(&h, 195).map(|r| r.status), Some(Revoked));
        assert_eq!(status_at(&h, 200).map(|r| r.status), Some(Revoked));
        assert_eq!(status_at(&[], 500), None);
    }
}
