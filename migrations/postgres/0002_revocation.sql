-- Revocation: status 'valid' | 'on-hold' | 'revoked', with the time, RFC 5280 reason and optional
-- invalidity date; and the last CRL number issued per CA (CRL numbers only grow).

ALTER TABLE certificates ADD COLUMN revoked_at BIGINT;
ALTER TABLE certificates ADD COLUMN revocation_reason TEXT;
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;
CREATE INDEX certificates_ca_status ON certificates (ca_id, status);

CREATE TABLE crl_numbers (
    ca_id       TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);
