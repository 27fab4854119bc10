-- Revocations of certificates a remote CA issued, to be told to that CA. Vouch's own record changes
-- first (the certificate is revoked or on hold at once); this row is what remains to be forwarded,
-- one per certificate: the status it forwards is the certificate's `status_version` (a later
-- change, e.g. hold then keyCompromise, replaces it and the CA is told again). A failed forward
-- stays here, retried with a growing back-off, until the CA acknowledges it (`acknowledged_at`).
CREATE TABLE revocation_forwards (
    serial          TEXT PRIMARY KEY REFERENCES certificates (serial),
    ca_id           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    revoked_at      BIGINT NOT NULL,
    status_version  BIGINT NOT NULL,
    queued_at       BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE INDEX revocation_forwards_pending ON revocation_forwards (acknowledged_at, next_attempt_at);
