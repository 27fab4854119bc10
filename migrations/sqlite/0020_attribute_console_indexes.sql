-- The console's attribute-certificate pages (docs/CONSOLE.md) at scale (docs/PERFORMANCE.md): the
-- list pages newest first, through every AC, one holder's, one status's, or the holders of one role
-- or application, and the grant queue through one status in grant order. The first filter given
-- (holder, role, application, status, in that order) is a range over one index in page order,
-- the others are checked on its rows; for that, role and application names carry their AC's
-- issue time.
ALTER TABLE attribute_names ADD COLUMN issued_at INTEGER NOT NULL DEFAULT 0;
UPDATE attribute_names SET issued_at =
    (SELECT a.issued_at FROM attribute_certificates a WHERE a.serial = attribute_names.serial);
CREATE INDEX attribute_names_issued ON attribute_names (kind, name, issued_at, serial);
CREATE INDEX attribute_certificates_issued ON attribute_certificates (issued_at, serial);
CREATE INDEX attribute_certificates_holder_issued
    ON attribute_certificates (holder_serial, issued_at, serial);
CREATE INDEX attribute_certificates_status_issued
    ON attribute_certificates (status, issued_at, serial);
CREATE INDEX attribute_grants_status_created ON attribute_grants (status, created_at, id);
