-- Every request state has a way out. An approved request whose order the CA refuses ends in
-- `failed` with the CA's reason; an admin can `cancel` an approved request that was never issued.
-- Issuance intents remember their failed attempts, so that retries against an unavailable CA back
-- off, and operators can see why a request is still approved.
--
-- SQLite cannot alter a CHECK constraint, so the table is made anew. Foreign keys are checked at
-- commit (defer_foreign_keys): dropping the old table counts its children as orphans, and
-- inserting the same rows into the new one counts them back, so the commit proves that every
-- approval, intent and certificate still has its request.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE requests_before_0007 AS SELECT * FROM requests;
DROP TABLE requests;
CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id),
    profile            TEXT NOT NULL,
    csr_der            BLOB NOT NULL,
    spki_der           BLOB NOT NULL,
    key_sha256         TEXT NOT NULL,
    template_json      TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'issued', 'rejected', 'expired', 'failed', 'cancelled')),
    required_approvals INTEGER NOT NULL CHECK (required_approvals >= 1),
    requested_by       TEXT NOT NULL REFERENCES operators (id),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    rejected_by        TEXT REFERENCES operators (id),
    reject_reason      TEXT,
    failure            TEXT,
    cancelled_by       TEXT REFERENCES operators (id),
    cancel_reason      TEXT
);
INSERT INTO requests (id, subscriber_id, profile, csr_der, spki_der, key_sha256, template_json, status,
    required_approvals, requested_by, created_at, expires_at, decided_at, rejected_by, reject_reason)
SELECT id, subscriber_id, profile, csr_der, spki_der, key_sha256, template_json, status,
    required_approvals, requested_by, created_at, expires_at, decided_at, rejected_by, reject_reason
FROM requests_before_0007;
DROP TABLE requests_before_0007;
CREATE INDEX requests_status ON requests (status, created_at);
CREATE INDEX requests_subscriber ON requests (subscriber_id);

ALTER TABLE issuance_intents ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issuance_intents ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issuance_intents ADD COLUMN last_error TEXT;
