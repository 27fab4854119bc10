-- Four eyes on the account changes that hand an operator's console login to someone else: an
-- admin asks for another operator's TOTP reset or password change, and a second admin (neither
-- the one who asked nor the operator concerned) approves it; the change is applied in the same
-- transaction (docs/SECURITY.md). A request nobody decides expires (`expires_at`, 24 hours) by the
-- server's upkeep; the admin who asked can cancel it.
--
-- `password_hash` holds the argon2id PHC string of the new password of a `password` request,
-- hashed when it was asked for (never the password itself); it is cleared when the request is
-- decided, cancelled or expires.
CREATE TABLE operator_resets (
    id              TEXT PRIMARY KEY,
    operator_id     TEXT NOT NULL REFERENCES operators (id),
    kind            TEXT NOT NULL CHECK (kind IN ('totp', 'password')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    reason          TEXT NOT NULL,
    password_hash   TEXT,
    requested_by    TEXT NOT NULL REFERENCES operators (id),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    decided_by      TEXT REFERENCES operators (id),
    decided_at      BIGINT,
    decision_reason TEXT
);
-- At most one pending request of each kind per operator.
CREATE UNIQUE INDEX operator_resets_pending ON operator_resets (operator_id, kind) WHERE status = 'pending';
-- The console lists and the upkeep expires pending requests.
CREATE INDEX operator_resets_status ON operator_resets (status, expires_at);
