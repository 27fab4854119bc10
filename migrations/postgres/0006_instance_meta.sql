-- Settings of the deployment kept in the database: which issuing CA it belongs to, so an instance
-- started with a different CA is refused.
CREATE TABLE instance_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
