-- Weak-key blocklists an administrator imports (`vouch keys import-blocklist`). An entry names a
-- public key as "spki-sha256:<64 hex>" (SHA-256 of its SubjectPublicKeyInfo) or, for RSA keys from
-- Debian's openssl-blacklist lists, "debian-rsa-<bits>:<20 hex>" (low 80 bits of the SHA-1 of
-- "Modulus=<HEX>\n"). A request whose key matches an entry is refused at submission.
CREATE TABLE key_blocklist (
    entry       TEXT PRIMARY KEY,
    -- Which import added the entry: "<file name> sha256:<hash of the file>".
    list        TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
