//! The remote CAs of `upstream.toml` and which Vouch profiles each one signs. A profile no remote
//! CA claims is signed by the embedded CA.

use super::upstream_config::{self, CaKind};
use super::{CaError, UpstreamCa};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The remote CAs, by id, and the profile routing. Empty: the embedded CA signs everything.
#[derive(Clone, Default)]
pub struct Upstreams {
    cas: Vec<Arc<dyn UpstreamCa>>,
    by_profile: HashMap<String, usize>,
}

impl Upstreams {
    /// No remote CA.
    pub fn none() -> Self {
        Self::default()
    }

    /// Add `ca`, signing the Vouch profiles `profiles`. The caller has checked (when reading
    /// `upstream.toml`) that ids and profiles are claimed once; a later claim of a profile wins.
    pub fn add(&mut self, ca: Arc<dyn UpstreamCa>, profiles: &[String]) {
        let index = self.cas.len();
        self.cas.push(ca);
        for p in profiles {
            self.by_profile.insert(p.clone(), index);
        }
    }

    /// The remote CA that signs `profile`, if one claims it.
    pub fn for_profile(&self, profile: &str) -> Option<&Arc<dyn UpstreamCa>> {
        self.by_profile.get(profile).map(|&i| &self.cas[i])
    }

    /// The remote CA with id `id`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<dyn UpstreamCa>> {
        self.cas.iter().find(|ca| ca.issuing_id() == id)
    }

    /// Every remote CA, in the file's order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn UpstreamCa>> {
        self.cas.iter()
    }

    /// Whether there is no remote CA.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }
}

/// Reach the CA of `entry` (CFSSL: `/info`; CMP: a genm for its certificates).
pub async fn connect(
    entry: &upstream_config::CaEntry,
) -> std::result::Result<Arc<dyn UpstreamCa>, CaError> {
    Ok(match &entry.kind {
        CaKind::Cfssl(settings) => {
            Arc::new(super::cfssl::CfsslCa::connect(&entry.id, settings).await?)
        }
        CaKind::Cmp(settings) => Arc::new(super::cmp::CmpCa::connect(&entry.id, settings).await?),
    })
}

/// Read `upstream.toml` at `file` (checked against the certificate profile names `profiles`) and
/// reach each CA it names (see [`connect`]), keeping its chain in the data directory. No file: no
/// remote CA. A CA that cannot be reached is served from the chain kept at an earlier start and
/// tried again while running ([`super::standby`]); one never reached before stops the start,
/// naming it.
pub async fn load(
    file: &Path,
    data_dir: &Path,
    profiles: &crate::x509::profile::Profiles,
) -> Result<Upstreams> {
    let known = profiles.names().map(str::to_string).collect();
    let Some(entries) = upstream_config::load(file, data_dir, &known)? else {
        return Ok(Upstreams::none());
    };
    let mut out = Upstreams::none();
    for entry in entries {
        let profiles = entry.profiles.clone();
        let ca: Arc<dyn UpstreamCa> = match connect(&entry).await {
            Ok(ca) => {
                tracing::info!(ca = %entry.id, kind = entry.kind.name(), url = %entry.kind.url(), profiles = ?entry.profiles, "upstream CA ready");
                super::standby::save_chain(data_dir, ca.as_ref());
                ca
            }
            Err(CaError::Refused(m) | CaError::Unavailable(m)) => {
                let id = entry.id.clone();
                let Some(standby) = super::standby::Standby::new(entry, data_dir, m.clone()) else {
                    return Err(Error::environment(format!(
                        "{}: the CA {id} cannot be used: {m} (`vouch upstream check` tests it; \
                         a CA reached once is waited for instead, from the chain kept then)",
                        file.display(),
                    )));
                };
                tracing::warn!(ca = %id, error = %m, file = %super::standby::chain_file(data_dir, &id).display(), "upstream CA not reachable: serving from the chain kept at an earlier start; its issuances wait until it answers");
                Arc::new(standby)
            }
        };
        out.add(ca, &profiles);
    }
    Ok(out)
}
