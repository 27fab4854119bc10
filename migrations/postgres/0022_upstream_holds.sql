-- Holds recorded from a remote CA's CRL (a certificateHold entry for a certificate Vouch held as
-- valid), so that a newer CRL of that CA that no longer lists the certificate lifts the hold here
-- too. A row counts only while the certificate's status_version is the one it names: any later
-- status change here (a release, a revocation) ends it. `crl_this_update` is the thisUpdate of
-- the CRL that set the hold: only a strictly newer CRL may lift it.
CREATE TABLE upstream_holds (
    serial          TEXT PRIMARY KEY,
    ca_id           TEXT NOT NULL,
    status_version  BIGINT NOT NULL,
    crl_this_update BIGINT NOT NULL
);
CREATE INDEX upstream_holds_ca ON upstream_holds (ca_id);
