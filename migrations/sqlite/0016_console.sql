-- The console (docs/CONSOLE.md): operators log in with a password (argon2id PHC string) and, for
-- the roles that can cause issuance or revocation, a TOTP second factor (RFC 6238). The TOTP
-- secret is sealed (AES-256-GCM) with a key kept in the data directory, so a dump of the database
-- alone does not give it away. `totp_last_step` refuses a code used twice; `failed_logins` and
-- `locked_until` back off and lock an operator after repeated failures.
ALTER TABLE operators ADD COLUMN password_hash TEXT;
ALTER TABLE operators ADD COLUMN totp_sealed BLOB;
ALTER TABLE operators ADD COLUMN totp_enrolled_at INTEGER;
ALTER TABLE operators ADD COLUMN totp_last_step INTEGER;
ALTER TABLE operators ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN locked_until INTEGER;

-- Console sessions: only the SHA-256 of the cookie's token is stored. A session ends (logout,
-- idle or absolute timeout, operator disabled) by setting `ended_at`; rows are never deleted.
-- `stage` is 'enrol' while an operator who must have TOTP has not enrolled yet (the session
-- can do nothing but enrol), 'full' otherwise.
CREATE TABLE console_sessions (
    token_hash   BLOB PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    csrf_token   TEXT NOT NULL,
    stage        TEXT NOT NULL CHECK (stage IN ('enrol', 'full')),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE INDEX console_sessions_operator ON console_sessions (operator_id, ended_at);

-- The console lists requests page by page in submission order, with or without a status filter.
CREATE INDEX requests_created ON requests (created_at, id);
