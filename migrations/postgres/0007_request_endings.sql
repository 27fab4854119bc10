-- Every request state has a way out. An approved request whose order the CA refuses ends in
-- `failed` with the CA's reason; an admin can `cancel` an approved request that was never issued.
-- Issuance intents remember their failed attempts, so that retries against an unavailable CA back
-- off, and operators can see why a request is still approved.
ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
    CHECK (status IN ('pending', 'approved', 'issued', 'rejected', 'expired', 'failed', 'cancelled'));
ALTER TABLE requests ADD COLUMN failure TEXT;
ALTER TABLE requests ADD COLUMN cancelled_by TEXT REFERENCES operators (id);
ALTER TABLE requests ADD COLUMN cancel_reason TEXT;

ALTER TABLE issuance_intents ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issuance_intents ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issuance_intents ADD COLUMN last_error TEXT;
