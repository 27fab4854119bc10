//! What an [`Ra`](super::Ra) is configured with. It arrives whole at construction
//! ([`Ra::new`](super::Ra::new)); nothing is set later, so no setting depends on call order.

use super::root::ArlSettings;
use crate::ca::aa::AttributeAuthority;
use crate::ca::local::LocalCa;
use crate::x509::ac::AttributeNames;
use std::sync::Arc;
use time::Duration;

/// The settings of one RA. [`RaConfig::default`] is a server with no public URL (certificates
/// name no CRL, OCSP or CA-certificate URLs), 24-hour CRLs, the default ARL settings, no embedded
/// CA, a 64 MiB OCSP answer cache, no attribute authority and the default attribute namespace.
#[derive(Clone)]
pub struct RaConfig {
    /// The base URL relying parties reach this RA at: issued certificates name their CRL, OCSP and
    /// CA-certificate URLs under it (a trailing `/` is dropped). `app::start` fills in the address
    /// it listens on when none is given.
    pub public_url: Option<String>,
    /// Whether `public_url` was given by the operator (`--public-url`) rather than taken from the
    /// listening address: only a given one is reason to re-issue a CA certificate that names other
    /// URLs.
    pub public_url_given: bool,
    /// How long a full CRL is valid (nextUpdate - thisUpdate).
    pub crl_validity: Duration,
    /// ARL validity and warning margin.
    pub arl: ArlSettings,
    /// The embedded CA, for the root's own duties (ARL, issuing CA certificate); none with a
    /// remote CA.
    pub embedded_ca: Option<Arc<LocalCa>>,
    /// Memory kept for signed OCSP answers, in bytes.
    pub ocsp_cache_bytes: u64,
    /// The attribute authority (signs attribute certificates and the AC CRL); none when the data
    /// directory has none yet (the root key offline when it was first needed).
    pub attribute_authority: Option<Arc<AttributeAuthority>>,
    /// How role and application names become URIs (`attribute_namespace` in `vouch.toml`).
    pub attribute_names: AttributeNames,
    /// The TSA certificates (DER) whose RFC 3161 timestamps the verification API trusts
    /// (`<data-dir>/tsa/*.pem`).
    pub tsa_anchors: Vec<Vec<u8>>,
    /// Root certificates (DER) of other CAs whose subscribers' signatures the verification API
    /// accepts (`<data-dir>/anchors/*.pem`), their status read from the CRLs they name.
    pub trust_anchors: Vec<Vec<u8>>,
    /// The remote CAs of `<data-dir>/upstream.toml` and the profiles each signs; none: the
    /// embedded CA signs everything.
    pub upstreams: crate::ca::upstreams::Upstreams,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            public_url: None,
            public_url_given: false,
            crl_validity: super::publish::CRL_VALIDITY,
            arl: ArlSettings::default(),
            embedded_ca: None,
            ocsp_cache_bytes: super::ocsp::DEFAULT_CACHE_MB << 20,
            attribute_authority: None,
            attribute_names: AttributeNames::default(),
            tsa_anchors: Vec::new(),
            trust_anchors: Vec::new(),
            upstreams: Default::default(),
        }
    }
}
