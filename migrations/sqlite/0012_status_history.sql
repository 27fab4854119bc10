-- Every status change of a certificate or an attribute certificate, appended in the transaction
-- that makes it, so that "what was the status of S at time T" can be answered after a hold was
-- released (which clears the certificate's own revocation fields) or a reason became
-- keyCompromise. One row per change: the status it moved to, from `at` on, with the reason and
-- invalidity date it then had. A certificate with no row at or before T had not changed status
-- by then (it was valid, if issued). Rows are never updated or deleted; `id` orders changes made
-- in the same second.
--
-- The backfill knows only the current status: each certificate and AC now revoked or on hold
-- gets one row, dated its revocation time. Holds released before this migration are not known.

CREATE TABLE status_history (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('certificate', 'attribute')),
    serial          TEXT NOT NULL,
    at              INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('valid', 'on-hold', 'revoked')),
    reason          TEXT,
    invalidity_date INTEGER
);
CREATE INDEX status_history_serial ON status_history (kind, serial, at);

INSERT INTO status_history (kind, serial, at, status, reason, invalidity_date)
SELECT 'certificate', serial, COALESCE(revoked_at, status_changed_at, issued_at), status,
       revocation_reason, invalidity_date
FROM certificates WHERE status IN ('revoked', 'on-hold') ORDER BY serial;

INSERT INTO status_history (kind, serial, at, status, reason, invalidity_date)
SELECT 'attribute', serial, COALESCE(revoked_at, status_changed_at, issued_at), status,
       revocation_reason, invalidity_date
FROM attribute_certificates WHERE status IN ('revoked', 'on-hold') ORDER BY serial;
