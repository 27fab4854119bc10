-- The root CA's publications. Every issuing CA certificate the embedded root made (the first one,
-- and each re-issue with the same key) is recorded, so that revoking the issuing CA revokes them
-- all; the ARLs (the root's CRLs of CA certificates, served at /crl/root.crl) are kept, the
-- highest number being the current one. The ARL is signed wherever the root key is (a server with
-- the key in its data directory, or the offline ceremony), and served by every instance.
CREATE TABLE ca_certificates (
    serial      TEXT PRIMARY KEY,
    ca_id       TEXT NOT NULL,
    der         BLOB NOT NULL,
    recorded_at INTEGER NOT NULL,
    revoked_at  INTEGER,
    reason      TEXT
);

CREATE TABLE arls (
    number      INTEGER PRIMARY KEY,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    der         BLOB NOT NULL
);
