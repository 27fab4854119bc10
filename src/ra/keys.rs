//! Key identity in stored data. A public key is known by the SHA-256 of its canonical
//! SubjectPublicKeyInfo (`x509::key`). Databases written before that rule hashed the SPKI as the
//! client sent it, so one key could be stored under several fingerprints: a block on one missed
//! the others, and a key-compromise revocation left sibling certificates valid. [`rekey`] moves
//! every stored fingerprint to the canonical one, once per database, carries blocks over, and
//! revokes the live certificates of blocked keys that the old fingerprints hid.

use crate::audit::{self, Action, Event};
use crate::error::Result;
use crate::ra::attributes::{follow_holder, HolderChange};
use crate::store::job;
use crate::store::{certificates, keys as rows, meta, Store};
use crate::x509::key;
use crate::x509::revocation::Reason;
use time::OffsetDateTime;

/// `instance_meta` key recording which key identity the stored fingerprints use.
pub const META_KEY: &str = "key_identity";
/// The current rule: SHA-256 of the canonical SubjectPublicKeyInfo.
pub const CANONICAL: &str = "sha256-canonical-spki";
const PAGE: i64 = 500;

/// What [`rekey`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// Requests whose key fingerprint changed.
    pub requests: usize,
    /// Certificates whose key fingerprint changed.
    pub certificates: usize,
    /// Key blocks carried over to the new fingerprint.
    pub blocks_carried: usize,
    /// Live certificates of blocked keys, revoked for keyCompromise.
    pub revoked: Vec<String>,
}

/// One stored fingerprint to change.
#[derive(Clone)]
struct Change {
    id: String,
    spki: Option<Vec<u8>>,
    old: String,
    new: String,
}

/// Re-key stored fingerprints to the canonical identity, unless the database says it was done.
/// Safe to run on several instances at once: every step is idempotent.
pub async fn rekey(store: &Store, now: OffsetDateTime) -> Result<Rekeyed> {
    {
        let mut c = store.read().await?;
        if meta::get(&mut c, META_KEY).await?.as_deref() == Some(CANONICAL) {
            return Ok(Rekeyed::default());
        }
    }
    let mut done = Rekeyed::default();
    let mut new_keys = Vec::new();
    for certificates_pass in [false, true] {
        let mut after = String::new();
        loop {
            let page = {
                let mut c = store.read().await?;
                if certificates_pass {
                    rows::certificate_keys_after(&mut c, &after, PAGE).await?
                } else {
                    rows::request_keys_after(&mut c, &after, PAGE).await?
                }
            };
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            let changes: Vec<Change> = page
                .into_iter()
                .filter_map(|(id, der, old)| {
                    let (spki, new) = if certificates_pass {
                        (None, certificate_identity(&der))
                    } else {
                        let canonical = key::canonical_spki(&der).ok();
                        let new = canonical.as_ref().map(|c| crate::x509::sha256_hex(c));
                        (canonical, new)
                    };
                    match new {
                        Some(new) if new != old => Some(Change { id, spki, old, new }),
                        Some(_) => None,
                        None => {
                            tracing::warn!(
                                id,
                                "stored key cannot be re-encoded; its fingerprint stays"
                            );
                            None
                        }
                    }
                })
                .collect();
            if changes.is_empty() {
                continue;
            }
            if certificates_pass {
                done.certificates += changes.len();
            } else {
                done.requests += changes.len();
            }
            new_keys.extend(changes.iter().map(|c| c.new.clone()));
            done.blocks_carried += store
                .write(job!(|c, _| {
                    let mut carried = 0;
                    for ch in &changes {
                        match &ch.spki {
                            Some(spki) => rows::set_request_key(c, &ch.id, spki, &ch.new).await?,
                            None => rows::set_certificate_key(c, &ch.id, &ch.new).await?,
                        }
                        carried += usize::from(rows::carry_block(c, &ch.old, &ch.new).await?);
                    }
                    Ok(carried)
                }))
                .await?;
        }
    }
    new_keys.sort();
    new_keys.dedup();
    let summary = done.clone();
    done.revoked = store
        .write(job!(|c, log| {
            let ts = now.unix_timestamp();
            let mut revoked = Vec::new();
            for k in &new_keys {
                if certificates::is_key_blocked(c, k).await?.is_none() {
                    continue;
                }
                for serial in certificates::live_with_key(c, k).await? {
                    if certificates::revoke(c, &serial, "keyCompromise", ts, None).await? {
                        let details = serde_json::json!({"reason": "keyCompromise", "blocked_key": k,
                            "found_by": "canonical key identity"});
                        audit::record(log, now, Event::new(None, Action::CertificateRevoked, Some(&serial), details));
                        let change = HolderChange::Revoked(Reason::KeyCompromise, None);
                        follow_holder(c, log, now, None, &serial, change).await?;
                        revoked.push(serial);
                    }
                }
            }
            let changed = summary.requests + summary.certificates + summary.blocks_carried
                + revoked.len();
            if meta::get(c, META_KEY).await?.as_deref() != Some(CANONICAL) {
                meta::set(c, META_KEY, CANONICAL).await?;
            }
            // A new database, or one whose keys were all canonical already, changes nothing
            // worth an entry.
            if changed > 0 {
                let details = serde_json::json!({"identity": CANONICAL, "requests": summary.requests,
                    "certificates": summary.certificates, "blocks_carried": summary.blocks_carried,
                    "revoked": revoked});
                audit::record(log, now, Event::new(None, Action::KeysRekeyed, None, details));
            }
            Ok(revoked)
        }))
        .await?;
    if done != Rekeyed::default() {
        tracing::info!(
            requests = done.requests,
            certificates = done.certificates,
            blocks_carried = done.blocks_carried,
            revoked = done.revoked.len(),
            "stored key fingerprints moved to the canonical key identity"
        );
    }
    Ok(done)
}

fn certificate_identity(der: &[u8]) -> Option<String> {
    let cert = crate::x509::certificate::read(der).ok()?;
    key::identity(&cert.spki).ok()
}
