-- Signed self-revocation statements already used (by SHA-256 of the CMS), so none is replayed.
CREATE TABLE self_revocation_statements (
    sha256  TEXT PRIMARY KEY,
    serial  TEXT NOT NULL,
    used_at BIGINT NOT NULL
);
