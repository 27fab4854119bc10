-- Indexes for the console's attribute-certificate pages (docs/CONSOLE.md): the list pages
-- through every AC newest first, and the grant queue through one status in grant order.
CREATE INDEX attribute_certificates_issued ON attribute_certificates (issued_at, serial);
CREATE INDEX attribute_grants_status_created ON attribute_grants (status, created_at, id);
