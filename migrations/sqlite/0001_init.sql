-- Enrolment core: operators, subscribers with evidence, requests and approvals, issuance intents,
-- certificates, blocked keys and the hash-chained audit log. Times are Unix seconds (audit: micros).

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    created_by  TEXT,
    disabled_at INTEGER
);

CREATE TABLE subscribers (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('person', 'organisation')),
    name         TEXT NOT NULL,
    email        TEXT,
    organisation TEXT,
    created_by   TEXT NOT NULL REFERENCES operators (id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX subscribers_name ON subscribers (name);

CREATE TABLE evidence (
    id              INTEGER PRIMARY KEY,
    subscriber_id   TEXT NOT NULL REFERENCES subscribers (id),
    doc_type        TEXT NOT NULL,
    number          TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    valid_until     TEXT NOT NULL,
    document_sha256 TEXT,
    recorded_by     TEXT NOT NULL REFERENCES operators (id),
    recorded_at     INTEGER NOT NULL
);
CREATE INDEX evidence_subscriber ON evidence (subscriber_id);
CREATE INDEX evidence_number ON evidence (number);

CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id),
    profile            TEXT NOT NULL,
    csr_der            BLOB NOT NULL,
    spki_der           BLOB NOT NULL,
    key_sha256         TEXT NOT NULL,
    template_json      TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'issued', 'rejected', 'expired')),
    required_approvals INTEGER NOT NULL CHECK (required_approvals >= 1),
    requested_by       TEXT NOT NULL REFERENCES operators (id),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    rejected_by        TEXT REFERENCES operators (id),
    reject_reason      TEXT
);
CREATE INDEX requests_status ON requests (status, created_at);
CREATE INDEX requests_subscriber ON requests (subscriber_id);

CREATE TABLE approvals (
    request_id  TEXT NOT NULL REFERENCES requests (id),
    approver_id TEXT NOT NULL REFERENCES operators (id),
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

-- Written, with the reserved serial, before the CA is asked to sign.
CREATE TABLE issuance_intents (
    serial     TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests (id),
    key_sha256 TEXT NOT NULL,
    ca_id      TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE certificates (
    serial        TEXT PRIMARY KEY REFERENCES issuance_intents (serial),
    request_id    TEXT NOT NULL UNIQUE REFERENCES requests (id),
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    ca_id         TEXT NOT NULL,
    profile       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    key_sha256    TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    der           BLOB NOT NULL,
    status        TEXT NOT NULL DEFAULT 'valid',
    issued_at     INTEGER NOT NULL
);
CREATE INDEX certificates_key ON certificates (key_sha256);
CREATE INDEX certificates_subscriber ON certificates (subscriber_id);

CREATE TABLE blocked_keys (
    key_sha256 TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    blocked_by TEXT,
    blocked_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    target    TEXT,
    details   TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);

-- The newest entry's seq and hash, so that cutting entries off the end is detected too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);

-- The application never edits or deletes audit rows.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
