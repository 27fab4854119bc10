//! The embedded root CA's publications, as the RA runs them: the ARL at `/crl/root.crl`, the
//! issuing CA certificate's own CRL distribution point and caIssuers (re-issued when they are
//! missing or name another public URL), revoking the issuing CA, and the offline root.
//!
//! Everything that needs the root key takes a [`RootKey`]: from the data directory when the root
//! is online, from a file brought in for a ceremony otherwise. A server without the root key
//! serves the last ARL the ceremony signed and says, in `/readyz` and its log, when that ARL
//! nears its nextUpdate.

use crate::audit::{self, Action, Event};
use crate::ca::local::LocalCa;
use crate::ca::root::{Publication, RootKey};
use crate::ca::CrlEntry;
use crate::error::{Error, Result};
use crate::store::ca::{self as rows, ArlRow};
use crate::store::job;
use crate::store::Store;
use crate::x509::revocation::Reason;
use crate::x509::serial::Serial;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod serve;
pub(crate) use serve::CachedArl;
pub use serve::{ArlSettings, PublishedArl};

/// How long an ARL is valid unless told otherwise: an offline root is brought out for a ceremony
/// every few weeks to months.
pub const DEFAULT_ARL_VALIDITY_DAYS: u16 = 90;
/// How close to its nextUpdate the published ARL must be for `/readyz` and the log to warn.
pub const DEFAULT_ARL_WARN_DAYS: u16 = 14;
/// `ca_certificates.ca_id` of issuing CA certificates.
const ISSUING: &str = "issuing";

pub(crate) fn serial_of(der: &[u8]) -> Result<String> {
    let cert = crate::x509::certificate::read(der)
        .map_err(|e| Error::internal(format!("CA certificate: {e}")))?;
    Ok(hex::encode(cert.serial))
}

/// Record the issuing CA certificate in use, so that revoking the issuing CA lists it.
pub async fn record_issuing(store: &Store, der: &[u8], now: OffsetDateTime) -> Result<()> {
    let serial = serial_of(der)?;
    let der = der.to_vec();
    store
        .write(job!(|c, _| {
            rows::record(c, &serial, ISSUING, &der, now.unix_timestamp()).await?;
            Ok(())
        }))
        .await
}

/// Whether the issuing CA has been revoked (any of its certificates is on the ARL's list).
pub async fn issuing_revoked(store: &Store) -> Result<Option<rows::CaCertificateRow>> {
    let mut c = store.read().await?;
    Ok(rows::list(&mut c, ISSUING)
        .await?
        .into_iter()
        .find(|r| r.revoked_at.is_some()))
}

/// Sign the next ARL, valid for `validity` from `now`, listing every revoked CA certificate.
/// Audited as `ca.arl_signed`.
pub async fn sign_arl(
    store: &Store,
    root: Arc<RootKey>,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<ArlRow> {
    store
        .write(job!(|c, log| {
            let arl = sign_in(c, &root, now, validity).await?;
            // Every instance re-reads what it publishes within a second or so.
            crate::store::certificates::bump_status_version(c).await?;
            audit::record(log, now, arl_event(&arl, None));
            Ok(arl)
        }))
        .await
}

fn arl_event(arl: &ArlRow, cause: Option<&str>) -> Event {
    Event::new(
        None,
        Action::CaArlSigned,
        Some("root"),
        serde_json::json!({
            "number": arl.number,
            "this_update": crate::ra::rfc3339(arl.this_update),
            "next_update": crate::ra::rfc3339(arl.next_update),
            "sha256": crate::x509::sha256_hex(&arl.der),
            "cause": cause,
        }),
    )
}

async fn sign_in(
    c: &mut crate::store::Conn,
    root: &RootKey,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<ArlRow> {
    let number = crate::store::certificates::next_crl_number(c, "root").await?;
    let mut entries = Vec::new();
    for r in rows::revoked(c).await? {
        let at = r.revoked_at.unwrap_or(r.recorded_at);
        entries.push(CrlEntry {
            serial: Serial::parse(&r.serial).ok_or_else(|| {
                Error::internal(format!(
                    "CA certificate serial {} cannot be listed",
                    r.serial
                ))
            })?,
            revoked_at: OffsetDateTime::from_unix_timestamp(at).map_err(Error::internal)?,
            reason: Reason::parse(r.reason.as_deref().unwrap_or("unspecified"))?,
            invalidity_date: None,
        });
    }
    // Whole seconds: what the CRL's times can say.
    let this_update =
        OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).map_err(Error::internal)?;
    let next_update = this_update + validity;
    let der = root.sign_arl(
        u64::try_from(number).map_err(Error::internal)?,
        this_update,
        next_update,
        &entries,
    )?;
    let arl = ArlRow {
        number,
        this_update: this_update.unix_timestamp(),
        next_update: next_update.unix_timestamp(),
        der,
    };
    rows::insert_arl(c, &arl).await?;
    Ok(arl)
}

/// The ARL now published, if any has been signed.
pub async fn current_arl(store: &Store) -> Result<Option<ArlRow>> {
    let mut c = store.read().await?;
    rows::current_arl(&mut c).await
}

/// Re-issue the issuing CA certificate with `publication` (same key, subject, validity and key
/// identifiers; a new serial), put it in place in the data directory and record it; audited as
/// `ca.issuing_reissued`. Refused once the issuing CA has been revoked. Returns the new DER.
pub async fn reissue_issuing(
    store: &Store,
    ca: &LocalCa,
    root: &RootKey,
    publication: &Publication,
    now: OffsetDateTime,
) -> Result<Vec<u8>> {
    if let Some(r) = issuing_revoked(store).await? {
        return Err(Error::conflict(
            "issuing_ca_revoked",
            format!(
                "the issuing CA was revoked ({}, certificate {}): it is not re-issued",
                r.reason.unwrap_or_default(),
                r.serial
            ),
        ));
    }
    let old = ca.issuing_der();
    // The certificate in use is on record before it is replaced, so a later revocation lists it.
    record_issuing(store, &old, now).await?;
    let new = root.reissue_issuing(&old, publication)?;
    let (old_serial, new_serial) = (serial_of(&old)?, serial_of(&new)?);
    let details = serde_json::json!({
        "old_serial": old_serial,
        "new_serial": new_serial,
        "crl_urls": publication.crl_urls,
        "ca_issuers_urls": publication.ca_issuers_urls,
        "sha256": crate::x509::sha256_hex(&new),
    });
    let recorded = new.clone();
    store
        .write(job!(|c, log| {
            // Checked again here, in the transaction that records the new certificate: a
            // revocation committed since the check above must not be outrun.
            if rows::list(c, ISSUING)
                .await?
                .iter()
                .any(|r| r.revoked_at.is_some())
            {
                return Err(Error::conflict(
                    "issuing_ca_revoked",
                    "the issuing CA was revoked meanwhile: it is not re-issued",
                ));
            }
            rows::record(c, &new_serial, ISSUING, &recorded, now.unix_timestamp()).await?;
            audit::record(
                log,
                now,
                Event::new(None, Action::CaIssuingReissued, Some("issuing"), details),
            );
            Ok(())
        }))
        .await?;
    ca.replace_issuing(&new)?;
    Ok(new)
}

/// What revoking the issuing CA did.
#[derive(Debug, Serialize)]
pub struct IssuingRevocation {
    /// The issuing CA certificates revoked, hex serials.
    pub serials: Vec<String>,
    /// The RFC 5280 reason.
    pub reason: String,
    /// The number of the ARL that lists them.
    pub arl_number: i64,
}

/// Revoke the issuing CA: every certificate the root made for it, then sign the ARL that lists
/// them. Caches of every instance are dropped (the status version moves). Audited as
/// `ca.issuing_revoked` and `ca.arl_signed`.
pub async fn revoke_issuing(
    store: &Store,
    ca: &LocalCa,
    root: Arc<RootKey>,
    reason: &str,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<IssuingRevocation> {
    let reason = Reason::parse(reason)?;
    if matches!(
        reason,
        Reason::CertificateHold | Reason::AaCompromise | Reason::PrivilegeWithdrawn
    ) {
        return Err(Error::invalid(
            "invalid_reason",
            format!(
                "{} is not a reason to revoke a CA certificate: use keyCompromise, cACompromise, \
                 affiliationChanged, superseded, cessationOfOperation or unspecified",
                reason.as_str()
            ),
        ));
    }
    record_issuing(store, &ca.issuing_der(), now).await?;
    store
        .write(job!(|c, log| {
            let at = now.unix_timestamp();
            let serials = rows::revoke_all(c, ISSUING, reason.as_str(), at).await?;
            if serials.is_empty() {
                return Err(Error::conflict(
                    "already_revoked",
                    "the issuing CA is already revoked",
                ));
            }
            crate::store::certificates::bump_status_version(c).await?;
            // The attribute certificates of its holders end with it.
            crate::ra::attributes::follow_issuing_ca(c, log, now, ISSUING, reason).await?;
            let arl = sign_in(c, &root, now, validity).await?;
            audit::record(
                log,
                now,
                Event::new(
                    None,
                    Action::CaIssuingRevoked,
                    Some("issuing"),
                    serde_json::json!({"serials": serials, "reason": reason.as_str()}),
                ),
            );
            audit::record(log, now, arl_event(&arl, Some("issuing CA revoked")));
            Ok(IssuingRevocation {
                serials,
                reason: reason.as_str().to_string(),
                arl_number: arl.number,
            })
        }))
        .await
}

/// Take the root key out of the data directory into `out` (created 0600; it must not exist):
/// first a fresh ARL is signed, so the server has one to publish for `validity`, then the key is
/// written out, read back and checked, and only then removed from the data directory. Audited as
/// `ca.root_key_moved`.
pub async fn move_root_key(
    store: &Store,
    ca: &LocalCa,
    out: &Path,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<ArlRow> {
    let inside = ca.root_key_path();
    if !ca.root_key_online() {
        return Err(Error::invalid(
            "root_key_offline",
            format!(
                "{} does not exist: the root key is already offline",
                inside.display()
            ),
        ));
    }
    if out.exists() {
        return Err(Error::invalid(
            "output_exists",
            format!("{} exists; give a new file", out.display()),
        ));
    }
    let root = Arc::new(ca.root_key(None)?);
    let arl = sign_arl(store, root, now, validity).await?;
    let pem = zeroize::Zeroizing::new(
        std::fs::read(&inside)
            .map_err(|e| Error::internal(format!("reading {}: {e}", inside.display())))?,
    );
    crate::datadir::write_secret_file(out, &pem)
        .map_err(|e| Error::invalid("cannot_write_key", format!("{}: {e}", out.display())))?;
    // The copy must be the key, readable as a key file (owner only: a file system that cannot
    // keep the mode, such as FAT, cannot hold it) before the original goes; a copy that is not is
    // removed again.
    if let Err(e) = ca.root_key(Some(out)) {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    let details = serde_json::json!({
        "arl_number": arl.number,
        "arl_next_update": crate::ra::rfc3339(arl.next_update),
    });
    store
        .write(job!(|_, log| {
            audit::record(
                log,
                now,
                Event::new(None, Action::CaRootKeyMoved, Some("root"), details),
            );
            Ok(())
        }))
        .await?;
    std::fs::remove_file(&inside)
        .map_err(|e| Error::internal(format!("removing {}: {e}", inside.display())))?;
    if let Some(dir) = inside.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::internal)?;
    }
    Ok(arl)
}

/// The root CA's state, for `/readyz`, `vouch ca status` and the log.
#[derive(Debug, Clone, Serialize)]
pub struct RootStatus {
    /// "online" (the key is in the data directory) or "offline".
    pub root_key: &'static str,
    /// The published ARL, if any.
    pub arl: Option<ArlStatus>,
    /// The issuing CA certificate in use.
    pub issuing_serial: String,
    /// The ARL URLs the issuing CA certificate names.
    pub issuing_crl_urls: Vec<String>,
    /// The root certificate URLs the issuing CA certificate names.
    pub issuing_ca_issuers_urls: Vec<String>,
    /// Set when the issuing CA has been revoked: its reason.
    pub issuing_revoked: Option<String>,
    /// What needs a person's attention; empty when all is well.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
/// The published ARL.
pub struct ArlStatus {
    /// Its ARL number.
    pub number: i64,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339.
    pub next_update: String,
    /// "ok", "expiring" (within the warning margin) or "expired".
    pub state: &'static str,
}

/// The root CA's state; `expected` is where the issuing CA certificate should point (the RA's
/// public URL), when known.
pub async fn status(
    store: &Store,
    ca: &LocalCa,
    expected: Option<&Publication>,
    now: OffsetDateTime,
    warn: Duration,
) -> Result<RootStatus> {
    let issuing = ca.issuing_der();
    let found = Publication::of(&issuing)?;
    let online = ca.root_key_online();
    let mut warnings = Vec::new();
    let arl = current_arl(store).await?.map(|a| {
        let next = a.next_update;
        let state = if now.unix_timestamp() >= next {
            "expired"
        } else if now.unix_timestamp() + warn.whole_seconds() >= next {
            "expiring"
        } else {
            "ok"
        };
        ArlStatus {
            number: a.number,
            this_update: crate::ra::rfc3339(a.this_update),
            next_update: crate::ra::rfc3339(next),
            state,
        }
    });
    match &arl {
        None if !online => warnings.push(
            "no ARL has been signed and the root key is offline: sign one with \
             `vouch ca sign-arl --root-key FILE`"
                .to_string(),
        ),
        Some(a) if a.state != "ok" && !online => warnings.push(format!(
            "the published ARL (number {}) {} at {}: sign the next one with \
             `vouch ca sign-arl --root-key FILE`",
            a.number,
            if a.state == "expired" {
                "expired"
            } else {
                "expires"
            },
            a.next_update
        )),
        _ => {}
    }
    let revoked = issuing_revoked(store).await?;
    if let Some(r) = &revoked {
        warnings.push(format!(
            "the issuing CA is revoked ({}): relying parties refuse every certificate it signed",
            r.reason.clone().unwrap_or_default()
        ));
    }
    if let Some(expected) = expected {
        if &found != expected && revoked.is_none() {
            warnings.push(format!(
                "the issuing CA certificate names {} for its revocation status, not {}: run \
                 `vouch ca reissue-issuing --public-url URL --root-key FILE`",
                if found.crl_urls.is_empty() {
                    "nothing".to_string()
                } else {
                    found.crl_urls.join(", ")
                },
                expected.crl_urls.join(", ")
            ));
        }
    }
    Ok(RootStatus {
        root_key: if online { "online" } else { "offline" },
        arl,
        issuing_serial: serial_of(&issuing)?,
        issuing_crl_urls: found.crl_urls,
        issuing_ca_issuers_urls: found.ca_issuers_urls,
        issuing_revoked: revoked.and_then(|r| r.reason),
        warnings,
    })
}

/// The `instance_meta` key naming the deployment's attribute authority: the SHA-256 of its
/// SubjectPublicKeyInfo. Every instance on a database signs ACs with that one key.
pub const AA_KEY_META: &str = "attribute_authority_key_sha256";

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, hex.
fn key_of(der: &[u8]) -> Result<String> {
    let cert = crate::x509::certificate::read(der)
        .map_err(|e| Error::internal(format!("attribute authority certificate: {e}")))?;
    Ok(crate::x509::sha256_hex(&cert.spki))
}

/// The attribute authority key the database is bound to, if any.
pub async fn bound_aa(store: &Store) -> Result<Option<String>> {
    let mut c = store.read().await?;
    crate::store::meta::get(&mut c, AA_KEY_META).await
}

/// Bind the database to the attribute authority whose certificate is `der` (when it is bound to
/// none yet), or check that it is the one bound: `aa_mismatch` when the database names another
/// (a data directory that made an AA of its own instead of receiving a copy of the deployment's).
pub async fn bind_aa(store: &Store, der: &[u8]) -> Result<()> {
    let key = key_of(der)?;
    let mine = key.clone();
    let recorded = store
        .write(job!(|c, _| {
            use crate::store::meta;
            match meta::get(c, AA_KEY_META).await? {
                Some(recorded) => Ok(recorded),
                None => {
                    meta::put(c, AA_KEY_META, &mine).await?;
                    Ok(mine)
                }
            }
        }))
        .await?;
    if recorded != key {
        return Err(aa_mismatch(&recorded, &key));
    }
    Ok(())
}

fn aa_mismatch(recorded: &str, mine: &str) -> Error {
    Error::invalid(
        "aa_mismatch",
        format!(
            "this database belongs to the attribute authority {recorded} (key SHA-256), but the \
             data directory holds {mine}; give every instance a copy of the same ca/aa.key and \
             ca/aa.pem"
        ),
    )
}

/// Give the data directory's CA directory `ca_dir` an attribute authority certificate issued by
/// `root` with `publication`'s URLs: a new AA (key and certificate) when there is none, else a
/// new certificate for the AA's key; the database is bound to the AA's key ([`bind_aa`]). A new AA
/// is refused when the database is bound to another one (copy that one's files instead), and one
/// that lost a race with another instance making its own is removed again. Audited as
/// `ca.aa_issued`. Returns the certificate (DER).
pub async fn issue_aa(
    store: &Store,
    ca_dir: &Path,
    root: &RootKey,
    publication: Option<&Publication>,
    now: OffsetDateTime,
) -> Result<Vec<u8>> {
    use crate::ca::aa::AttributeAuthority;
    let created = !AttributeAuthority::exists(ca_dir);
    if created {
        if let Some(recorded) = bound_aa(store).await? {
            return Err(aa_mismatch(&recorded, "none"));
        }
    }
    let der = if created {
        AttributeAuthority::create(ca_dir, root, publication, now)?
    } else {
        AttributeAuthority::reissue(ca_dir, root, publication, now)?
    };
    if let Err(e) = bind_aa(store, &der).await {
        if created {
            AttributeAuthority::remove(ca_dir)?;
        }
        return Err(e);
    }
    let details = serde_json::json!({
        "serial": serial_of(&der)?,
        "new_key": created,
        "key_sha256": key_of(&der)?,
        "crl_urls": publication.map(|p| p.crl_urls.clone()).unwrap_or_default(),
        "sha256": crate::x509::sha256_hex(&der),
    });
    store
        .write(job!(|_, log| {
            audit::record(
                log,
                now,
                Event::new(
                    None,
                    Action::CaAaIssued,
                    Some(crate::ca::aa::AA_ID),
                    details,
                ),
            );
            Ok(())
        }))
        .await?;
    Ok(der)
}
