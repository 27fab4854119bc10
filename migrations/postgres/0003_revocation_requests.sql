-- Revocations that a profile says need a second operator: pending until another revoker approves
-- (then applied) or anyone with the revoker role rejects them.

CREATE TABLE revocation_requests (
    id              TEXT PRIMARY KEY,
    serial          TEXT NOT NULL REFERENCES certificates (serial),
    reason          TEXT NOT NULL,
    invalidity_date BIGINT,
    comment         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by    TEXT NOT NULL REFERENCES operators (id),
    created_at      BIGINT NOT NULL,
    decided_by      TEXT REFERENCES operators (id),
    decided_at      BIGINT,
    reject_reason   TEXT
);
-- At most one pending revocation per certificate.
CREATE UNIQUE INDEX revocation_requests_pending ON revocation_requests (serial) WHERE status = 'pending';
