//! The audit actions: one variant per kind of entry the RA records, named by the documented
//! action string that is stored in the log (and covered by each entry's hash). The strings are
//! part of the interface: docs/API.md ("Audit actions") lists every one, and a test here holds
//! the enum and that list to each other.

use std::fmt;
use std::str::FromStr;

/// Declares [`Action`], its strings and the list of all variants from one table, so the three
/// cannot drift apart.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)+) => {
        /// What an audit entry records. [`Action::as_str`] is the string stored in the log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            /// Every action, in the order of the documented list.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The documented action string, exactly as stored in the log.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $text,)+
                }
            }
        }
    };
}

actions! {
    /// At the first start on a database: the data directory's issuing CA key is bound to it
    /// (actor null).
    CaBound = "ca.bound",
    /// An operator was created (API, `vouch operator create`, or the bootstrap admin of
    /// `vouch init`).
    OperatorCreated = "operator.created",
    /// An operator was disabled.
    OperatorDisabled = "operator.disabled",
    /// An operator's console password was set (`vouch operator add|set-password
    /// --password-stdin` on the host, an admin creating the operator or setting their own, or a
    /// second admin's approval of an `operator.reset_requested`; `via` in the details); their
    /// console sessions ended.
    OperatorPasswordSet = "operator.password_set",
    /// An operator confirmed their TOTP enrolment with a first code.
    OperatorTotpEnrolled = "operator.totp_enrolled",
    /// An operator's TOTP was reset (a second admin's approval of an `operator.reset_requested`,
    /// or `vouch operator reset-totp` on the host; `via` in the details); they enrol again at their
    /// next login, and their console sessions ended.
    OperatorTotpReset = "operator.totp_reset",
    /// An operator was locked out of the console after repeated failed logins (until when, in
    /// the details; actor null).
    OperatorLocked = "operator.locked",
    /// An operator's console lock was lifted on the host (`vouch operator unlock`).
    OperatorUnlocked = "operator.unlocked",
    /// An admin asked for another operator's TOTP reset or password change (`kind`, `reason`
    /// and the operator in the details; never the password); a second admin must approve it.
    OperatorResetRequested = "operator.reset_requested",
    /// A second admin approved a reset; the change (`operator.totp_reset` or
    /// `operator.password_set`) follows in the same transaction.
    OperatorResetApproved = "operator.reset_approved",
    /// An approval of a reset was refused: by the admin who asked (`own_reset`) or by the
    /// operator concerned (`own_account`).
    OperatorResetApprovalRefused = "operator.reset_approval_refused",
    /// An admin rejected a reset (the reason in the details); nothing changed.
    OperatorResetRejected = "operator.reset_rejected",
    /// The admin who asked for a reset cancelled it, or was disabled (the reason in the
    /// details); nothing changed.
    OperatorResetCancelled = "operator.reset_cancelled",
    /// A reset was still pending at its expiry, 24 hours after it was asked (actor null);
    /// nothing changed.
    OperatorResetExpired = "operator.reset_expired",
    /// A subscriber was registered.
    SubscriberRegistered = "subscriber.registered",
    /// Registering a subscriber or adding evidence to one was refused for a bad field.
    SubscriberRefused = "subscriber.refused",
    /// Evidence records were added to a subscriber.
    SubscriberEvidenceAdded = "subscriber.evidence_added",
    /// A certificate request was accepted, pending approval.
    RequestSubmitted = "request.submitted",
    /// A certificate request was refused (400 or 422).
    RequestRefused = "request.refused",
    /// An operator's approval of a request was counted.
    RequestApproved = "request.approved",
    /// An approval was refused: `self_approval`, `evidence_expired`, `blocked_key`, or the key
    /// checked again at approval (`weak_key`, `unsupported_key_size`, `bad_csr`).
    RequestApprovalRefused = "request.approval_refused",
    /// The last approval is in: the issuance intent (reserved serial) was committed before the CA
    /// is asked to sign.
    IssuanceIntent = "issuance.intent",
    /// The CA could not sign when an approval asked it to; the intent stays for reconciliation
    /// (actor null).
    IssuanceFailed = "issuance.failed",
    /// A certificate was issued and stored (actor null).
    CertificateIssued = "certificate.issued",
    /// A remote CA returned a certificate that does not match the approved order: not accepted,
    /// never delivered, kept in the entry (base64 DER, SHA-256, the mismatch); the request fails
    /// (actor null).
    CertificateQuarantined = "certificate.quarantined",
    /// An admin acknowledged a quarantined certificate (dealt with at the CA, or nothing to
    /// do), with the reason; `vouch upstream queue` lists it no more (actor null: the host).
    CertificateQuarantineAcknowledged = "certificate.quarantine_acknowledged",
    /// A pending request was rejected.
    RequestRejected = "request.rejected",
    /// A pending request past its expiry was stored as expired (by the sweep, a listing, an
    /// approval or a rejection).
    RequestExpired = "request.expired",
    /// The CA refused an approved request's order for good; the request is failed (actor null).
    RequestFailed = "request.failed",
    /// An admin cancelled an approved request that was not issued.
    RequestCancelled = "request.cancelled",
    /// The start-up re-keying changed key fingerprints or revoked siblings of blocked keys
    /// (actor null).
    KeysRekeyed = "keys.rekeyed",
    /// A key was added to the block list (by an admin, or by a keyCompromise revocation).
    KeyBlocked = "key.blocked",
    /// A certificate was revoked (directly, by an approved revocation request, by propagation of
    /// keyCompromise, by self-revocation, by the start-up re-keying, or at issuance of a blocked key).
    CertificateRevoked = "certificate.revoked",
    /// A revocation or hold of a certificate a remote CA issued was forwarded to that CA.
    CertificateRevocationForwarded = "certificate.revocation_forwarded",
    /// A revocation or hold of a certificate a remote CA issued could not be forwarded to that
    /// CA (the CA's error, the attempts and the next attempt in the details); the local status is
    /// revoked all the same, and the forward stays queued and is retried.
    CertificateRevocationForwardFailed = "certificate.revocation_forward_failed",
    /// A revocation or hold of a certificate a remote CA issued was found with no forward queued
    /// (the start-up re-keying revoked it, or a process stopped before queueing) and was queued.
    CertificateRevocationForwardQueued = "certificate.revocation_forward_queued",
    /// An admin asked again for a revocation forward (failed, waiting for its next attempt, or
    /// dropped); the retry task tries it at its next round.
    CertificateRevocationForwardRetried = "certificate.revocation_forward_retried",
    /// An admin gave up a revocation forward (the reason in the details): the remote CA is not
    /// told; the certificate stays revoked here.
    CertificateRevocationForwardDropped = "certificate.revocation_forward_dropped",
    /// A remote CA's CRL lists a certificate Vouch held as valid (or on hold): recorded as
    /// revoked (or on hold) with the CRL entry's reason and date (actor null; the CA, the CRL's
    /// URL and thisUpdate in the details).
    CertificateRevokedUpstream = "certificate.revoked_upstream",
    /// A certificate a remote CA's CRL (or OCSP responder) had put on hold here is no longer
    /// listed by a newer CRL of that CA (or its responder says good): the CA lifted the hold, and
    /// it is released here too (actor null; the CA, the CRL's or OCSP responder's URL and
    /// thisUpdate, and the thisUpdate of the CRL or OCSP answer that set the hold,
    /// `held_by_this_update`, in the details).
    CertificateReleasedUpstream = "certificate.released_upstream",
    /// A remote CA's CRL could not be read or did not verify (logged at each read, audited when
    /// its reads start failing); nothing was changed, the status from its last good CRL stands.
    UpstreamCrlUnreadable = "upstream.crl_unreadable",
    /// A remote CA's CRL was used though its nextUpdate has passed (audited once per CRL): the CA
    /// publishes no newer one.
    UpstreamCrlStale = "upstream.crl_stale",
    /// A revoked certificate's reason was changed to keyCompromise.
    CertificateRevocationUpdated = "certificate.revocation_updated",
    /// A four-eyes revocation request was made.
    RevocationRequested = "revocation.requested",
    /// A revocation request was approved (the revocation follows in the same transaction).
    RevocationApproved = "revocation.approved",
    /// A revocation request was rejected.
    RevocationRejected = "revocation.rejected",
    /// An approval of a revocation request was refused (`self_approval`).
    RevocationApprovalRefused = "revocation.approval_refused",
    /// A self-revocation was refused because the caller did not prove the key.
    RevocationByKeyRefused = "revocation.by_key_refused",
    /// A valid certificate was put on hold.
    CertificateHeld = "certificate.held",
    /// A certificate on hold was released.
    CertificateReleased = "certificate.released",
    /// A CRL was signed (actor null).
    CrlSigned = "crl.signed",
    /// The CA issued this instance's OCSP responder certificate (actor null).
    OcspResponderIssued = "ocsp.responder_issued",
    /// The issuing CA certificate was re-issued by the root (`vouch ca reissue-issuing`, or at
    /// start when the root key is in the data directory).
    CaIssuingReissued = "ca.issuing_reissued",
    /// The root signed an ARL.
    CaArlSigned = "ca.arl_signed",
    /// The root revoked the issuing CA's certificates (`vouch ca revoke-issuing`).
    CaIssuingRevoked = "ca.issuing_revoked",
    /// The root key was moved out of the data directory (`vouch ca move-root-key`).
    CaRootKeyMoved = "ca.root_key_moved",
    /// The root issued the attribute authority's certificate (`vouch init`, at start when the root key is in the data directory, or `vouch ca issue-aa`).
    CaAaIssued = "ca.aa_issued",
    /// An attribute certificate was issued: at once, or at its grant's last approval.
    AttributeIssued = "attribute.issued",
    /// An attribute grant was recorded, awaiting approval by another `aa` operator (the AC profile asks for it).
    AttributeGrantRequested = "attribute.grant_requested",
    /// An approval of an attribute grant was counted.
    AttributeGrantApproved = "attribute.grant_approved",
    /// An attribute grant was rejected.
    AttributeGrantRejected = "attribute.grant_rejected",
    /// An attribute grant was still pending at its expiry.
    AttributeGrantExpired = "attribute.grant_expired",
    /// An attribute grant could not be issued at its last approval: the holder certificate was no longer valid.
    AttributeGrantFailed = "attribute.grant_failed",
    /// A grant was refused for a bad field, a profile rule or a holder certificate that is not valid.
    AttributeRefused = "attribute.refused",
    /// An attribute certificate was revoked, on its own or with its holder certificate (the details say which).
    AttributeRevoked = "attribute.revoked",
    /// A revoked attribute certificate's reason became keyCompromise with its holder
    /// certificate's.
    AttributeRevocationUpdated = "attribute.revocation_updated",
    /// An attribute certificate was put on hold with its holder certificate.
    AttributeHeld = "attribute.held",
    /// An attribute certificate was released from hold with its holder certificate.
    AttributeReleased = "attribute.released",
    /// A submission was verified (`POST /api/v1/verify`): the decision, reasons, signer serials, content SHA-256, application and role; never the content.
    Verification = "verification.decided",
    /// The CA issued a new receipt-signing certificate (first verification, or renewal).
    ReceiptSignerIssued = "receipt.signer_issued",
    /// Failed bearer-token authentications: the first of a window, then a summary of the window.
    AuthFailed = "auth.failed",
    /// An operator logged in to the console (`stage`: `full`, or `enrol` until TOTP is enrolled).
    ConsoleLogin = "console.login",
    /// A console login for an existing operator failed (wrong password or TOTP code; the
    /// failures in a row in the details, never the password; actor null).
    ConsoleLoginFailed = "console.login_failed",
    /// An operator logged out of the console; the session is ended server-side.
    ConsoleLogout = "console.logout",
    /// An operator lacked the role an operation needs.
    AccessForbidden = "access.forbidden",
    /// A key block list file was imported (`vouch keys import-blocklist`).
    BlocklistImported = "blocklist.imported",
    /// The running server found a break in the audit chain (actor null).
    AuditChainBroken = "audit.chain_broken",
    /// An admin acknowledged breaks in the audit chain (`vouch audit acknowledge`); the details
    /// list them under `breaks`.
    AuditAcknowledged = "audit.acknowledged",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown audit action {:?}", self.0)
    }
}

impl std::error::Error for UnknownAction {}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::Action;
    use std::collections::BTreeSet;

    /// The actions listed in docs/API.md's "Audit actions" table, in its order.
    fn documented() -> Vec<String> {
        let api = include_str!("../../docs/API.md");
        let start = api
            .find("#### Audit actions")
            .expect("docs/API.md has an \"Audit actions\" section");
        api[start..]
            .lines()
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let first = l.trim_start_matches('|').split('|').next()?.trim();
                let name = first.strip_prefix('`')?.strip_suffix('`')?;
                Some(name.to_string())
            })
            .collect()
    }

    #[test]
    fn the_enum_and_the_documented_list_agree() {
        let documented = documented();
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            documented, names,
            "docs/API.md's audit action table and audit::Action must list the same strings, in \
             the same order"
        );
        let distinct: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            names.len(),
            "an action string is used twice"
        );
    }

    #[test]
    fn strings_are_the_stored_ones() {
        // Stored in every database and covered by the hash chain: these never change.
        assert_eq!(Action::RequestApproved.as_str(), "request.approved");
        assert_eq!(Action::CertificateRevoked.as_str(), "certificate.revoked");
        assert_eq!(Action::CaArlSigned.as_str(), "ca.arl_signed");
        assert_eq!(Action::AuditAcknowledged.as_str(), "audit.acknowledged");
        assert_eq!(Action::AccessForbidden.to_string(), "access.forbidden");
    }

    #[test]
    fn every_string_parses_back_to_its_action() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(*a));
        }
        assert!("test.event".parse::<Action>().is_err());
        assert!("Request.Approved".parse::<Action>().is_err());
    }
}
