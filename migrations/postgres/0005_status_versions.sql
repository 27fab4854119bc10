-- Every certificate status change takes the next number from one counter, and the certificate
-- remembers it. A delta CRL lists what changed after its base CRL's number; every instance sharing
-- the database polls the counter to know when its cached CRLs and OCSP responses are stale.

CREATE TABLE status_counter (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO status_counter (id, version) VALUES (1, 0);

ALTER TABLE certificates ADD COLUMN status_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN status_changed_at BIGINT;
CREATE INDEX certificates_status_version ON certificates (ca_id, status_version);
