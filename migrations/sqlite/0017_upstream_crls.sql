-- The thisUpdate of the last CRL used for each remote CA (`crl_url` in upstream.toml), kept in the
-- database so that it survives a restart and is shared by every instance: a CRL older than it is
-- not used (no rollback to a replayed or stale CRL). `read_at` is when it was recorded.
CREATE TABLE upstream_crls (
    ca_id       TEXT PRIMARY KEY,
    this_update INTEGER NOT NULL,
    read_at     INTEGER NOT NULL
);
