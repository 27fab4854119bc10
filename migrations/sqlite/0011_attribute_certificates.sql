-- RFC 5755 attribute certificates: what the attribute authority issued (roles held in named
-- applications by the holder of an identity certificate), their status (revoked or held with the
-- holder's certificate, or revoked on their own), and grants awaiting a second operator (four
-- eyes) when the AC profile asks for it. Role and application names are also kept one per row in
-- attribute_names, so that "who holds role R in application A" is an indexed lookup.

CREATE TABLE attribute_grants (
    id                 TEXT PRIMARY KEY,
    holder_serial      TEXT NOT NULL REFERENCES certificates (serial),
    profile            TEXT NOT NULL,
    grant_json         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'rejected', 'expired', 'failed')),
    required_approvals INTEGER NOT NULL CHECK (required_approvals >= 1),
    requested_by       TEXT NOT NULL REFERENCES operators (id),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_by         TEXT REFERENCES operators (id),
    decided_at         INTEGER,
    reason             TEXT,
    serial             TEXT
);
CREATE INDEX attribute_grants_status ON attribute_grants (status, created_at);

CREATE TABLE attribute_grant_approvals (
    grant_id    TEXT NOT NULL REFERENCES attribute_grants (id),
    approver_id TEXT NOT NULL REFERENCES operators (id),
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (grant_id, approver_id)
);

CREATE TABLE attribute_certificates (
    serial            TEXT PRIMARY KEY,
    holder_serial     TEXT NOT NULL REFERENCES certificates (serial),
    profile           TEXT NOT NULL,
    roles_json        TEXT NOT NULL,
    groups_json       TEXT NOT NULL,
    targets_json      TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    revocable         INTEGER NOT NULL CHECK (revocable IN (0, 1)),
    der               BLOB NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('valid', 'on-hold', 'revoked')),
    held_with_holder  INTEGER NOT NULL DEFAULT 0 CHECK (held_with_holder IN (0, 1)),
    grant_id          TEXT REFERENCES attribute_grants (id),
    granted_by        TEXT NOT NULL REFERENCES operators (id),
    issued_at         INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT,
    invalidity_date   INTEGER,
    status_changed_at INTEGER
);
CREATE INDEX attribute_certificates_holder ON attribute_certificates (holder_serial);
CREATE INDEX attribute_certificates_status ON attribute_certificates (status);

CREATE TABLE attribute_names (
    serial TEXT NOT NULL REFERENCES attribute_certificates (serial),
    kind   TEXT NOT NULL CHECK (kind IN ('role', 'target')),
    name   TEXT NOT NULL,
    PRIMARY KEY (serial, kind, name)
);
CREATE INDEX attribute_names_name ON attribute_names (kind, name);
