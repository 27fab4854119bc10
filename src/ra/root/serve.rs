//! The root's duties in a running server: publishing the ARL (signed here while the root key is
//! online), giving the issuing CA certificate its URLs at start, and saying what the root needs
//! in `/readyz` and the log. The ceremonies and records they build on are in the parent module.

use super::*;

/// ARL settings of a server.
#[derive(Debug, Clone, Copy)]
pub struct ArlSettings {
    /// Validity of the ARLs this server signs (root key online).
    pub validity: Duration,
    /// How close to nextUpdate the published ARL must be for a warning.
    pub warn: Duration,
}

impl Default for ArlSettings {
    fn default() -> Self {
        ArlSettings {
            validity: Duration::days(i64::from(DEFAULT_ARL_VALIDITY_DAYS)),
            warn: Duration::days(i64::from(DEFAULT_ARL_WARN_DAYS)),
        }
    }
}

/// The ARL a server publishes, re-read from the database when a status changed or after a minute
/// (another instance, or the ceremony, may have signed a newer one).
pub(crate) struct CachedArl {
    generation: u64,
    read_at: std::time::Instant,
    arl: Arc<PublishedArl>,
}

/// The ARL as served: its DER and what HTTP caches need to know of it.
#[derive(Debug)]
pub struct PublishedArl {
    /// Its ARL number.
    pub number: i64,
    /// The ARL, DER.
    pub der: bytes::Bytes,
    /// thisUpdate, nextUpdate and digest, for HTTP caches.
    pub freshness: crate::x509::freshness::Freshness,
}

impl PublishedArl {
    fn of(row: ArlRow) -> Result<PublishedArl> {
        let ts = |t| OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal);
        Ok(PublishedArl {
            number: row.number,
            freshness: crate::x509::freshness::Freshness::of(
                &row.der,
                ts(row.this_update)?,
                ts(row.next_update)?,
            ),
            der: bytes::Bytes::from(row.der),
        })
    }

    fn row_times(&self) -> (i64, i64) {
        (
            self.freshness.this_update.unix_timestamp(),
            self.freshness.next_update.unix_timestamp(),
        )
    }
}

/// Whether an online root should sign a new ARL: half of the last one's validity is gone.
fn arl_due(this_update: i64, next_update: i64, now: OffsetDateTime, online: bool) -> bool {
    online && now.unix_timestamp() >= this_update + (next_update - this_update) / 2
}

/// How long a server keeps the ARL it read before reading it again.
const ARL_REREAD: std::time::Duration = std::time::Duration::from_secs(60);

impl crate::ra::Ra {
    /// The published ARL (DER and its times). With the root key online, one is signed when there
    /// is none yet or the last has used half its validity.
    pub async fn arl(&self) -> Result<Arc<PublishedArl>> {
        let Some(ca) = self.embedded_ca() else {
            return Err(Error::NotFound("ARL"));
        };
        let generation = self.status_generation();
        let mut cached = self.arl_cache().lock().await;
        let now = self.now();
        if let Some(c) = cached.as_ref() {
            let (this_update, next_update) = c.arl.row_times();
            if c.generation == generation
                && c.read_at.elapsed() < ARL_REREAD
                && !arl_due(this_update, next_update, now, ca.root_key_online())
            {
                return Ok(c.arl.clone());
            }
        }
        let mut arl = current_arl(self.store()).await?;
        if ca.root_key_online()
            && arl
                .as_ref()
                .is_none_or(|a| arl_due(a.this_update, a.next_update, now, true))
        {
            let signed = match ca.root_key(None) {
                Ok(root) => {
                    sign_arl(
                        self.store(),
                        Arc::new(root),
                        now,
                        self.arl_settings().validity,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match signed {
                Ok(new) => arl = Some(new),
                // The last ARL is still valid: keep publishing it (the upkeep tries again).
                Err(e) if arl.is_some() => {
                    tracing::warn!(error = %e, "could not sign the next ARL; serving the last one")
                }
                Err(e) => return Err(e),
            }
        }
        let Some(arl) = arl else {
            return Err(Error::invalid(
                "no_arl",
                "no ARL has been signed yet and the root key is offline: sign one with \
                 `vouch ca sign-arl --root-key FILE`",
            ));
        };
        let arl = Arc::new(PublishedArl::of(arl)?);
        *cached = Some(CachedArl {
            generation,
            read_at: std::time::Instant::now(),
            arl: arl.clone(),
        });
        Ok(arl)
    }

    /// Why nothing can be issued any more, when the embedded issuing CA has been revoked.
    pub(crate) async fn issuing_ca_revocation(&self) -> Result<Option<String>> {
        if self.embedded_ca().is_none() {
            return Ok(None);
        }
        Ok(issuing_revoked(self.store()).await?.map(|r| {
            format!(
                "the issuing CA has been revoked ({}): relying parties would refuse its \
                 certificates",
                r.reason.unwrap_or_default()
            )
        }))
    }

    /// Where the issuing CA certificate should send relying parties: under the public URL.
    pub fn root_publication(&self) -> Option<Publication> {
        self.public_url().map(Publication::under)
    }

    /// At start, once the public URL is known: record the issuing CA certificate and, when it
    /// lacks the ARL's distribution point and the root's caIssuers under this URL, re-issue it
    /// (root key online) or say what to do (offline). A certificate that already names some URLs
    /// is re-issued only for a public URL given explicitly (`explicit_url`): the address a server
    /// happens to listen on is no reason to put a new URL in a CA certificate that lives for
    /// years.
    pub async fn ensure_issuing_publication(&self, explicit_url: bool) -> Result<()> {
        let Some(ca) = self.embedded_ca() else {
            return Ok(());
        };
        let now = self.now();
        record_issuing(self.store(), &ca.issuing_der(), now).await?;
        let Some(expected) = self.root_publication() else {
            return Ok(());
        };
        let found = Publication::of(&ca.issuing_der())?;
        if found == expected {
            return Ok(());
        }
        if !explicit_url && !found.crl_urls.is_empty() {
            tracing::warn!(
                named = %found.crl_urls.join(","),
                served = %expected.crl_urls.join(","),
                "the issuing CA certificate names another address for the root's ARL; give \
                 --public-url to have it re-issued"
            );
            return Ok(());
        }
        if issuing_revoked(self.store()).await?.is_some() {
            tracing::error!("the issuing CA is revoked: relying parties refuse its certificates");
            return Ok(());
        }
        if !ca.root_key_online() {
            tracing::warn!(
                expected = %expected.crl_urls.join(","),
                "the issuing CA certificate does not name this server's ARL and the root key is \
                 offline: run `vouch ca reissue-issuing --public-url URL --root-key FILE`"
            );
            return Ok(());
        }
        let root = ca.root_key(None)?;
        let new = reissue_issuing(self.store(), &ca, &root, &expected, now).await?;
        tracing::info!(
            serial = %serial_of(&new)?,
            crl = %expected.crl_urls.join(","),
            "re-issued the issuing CA certificate (same key and subject) with its ARL distribution \
             point and the root's caIssuers; certificates already issued stay valid"
        );
        Ok(())
    }

    /// The root CA's state, for `/readyz`; `None` without an embedded CA.
    pub async fn root_status(&self) -> Result<Option<RootStatus>> {
        let Some(ca) = self.embedded_ca() else {
            return Ok(None);
        };
        let expected = self.root_publication();
        let mut status = status(
            self.store(),
            &ca,
            expected.as_ref(),
            self.now(),
            self.arl_settings().warn,
        )
        .await?;
        if self.aa_certificate().is_none() {
            status.warnings.push(
                "there is no attribute authority here (ca/aa.pem): attribute certificates cannot \
                 be granted; copy ca/aa.key and ca/aa.pem from another instance on this \
                 database, or, if none has one, run `vouch ca issue-aa --root-key FILE` with the \
                 server stopped"
                    .to_string(),
            );
        }
        Ok(Some(status))
    }

    /// Periodic root upkeep: sign the next ARL when due (root online), and log the root's
    /// warnings (at most once an hour each).
    pub async fn root_upkeep(&self) -> Result<()> {
        if self.embedded_ca().is_none() {
            return Ok(());
        }
        self.arl().await?;
        if let Some(status) = self.root_status().await? {
            let mut last = self.root_warned().lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(3600));
            if due && !status.warnings.is_empty() {
                *last = Some(std::time::Instant::now());
                for w in &status.warnings {
                    tracing::warn!("root CA: {w}");
                }
            }
        }
        Ok(())
    }
}
