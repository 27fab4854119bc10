-- Finding subscribers and certificates at scale (docs/CONSOLE.md, "Finding subscribers and
-- certificates"; docs/PERFORMANCE.md): the words of each subscriber's name, e-mail address and
-- organisation, and every tail of their evidence numbers, lower-cased, so that a search is a
-- prefix range over this table's primary key instead of a LIKE '%q%' scan. Written with the
-- subscriber and its evidence; filled for earlier subscribers once at start. The terms compare
-- byte by byte (COLLATE "C"), as on SQLite, so that a prefix is one range of the index whatever
-- the database's collation.
CREATE TABLE search_terms (
    term          TEXT COLLATE "C" NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    PRIMARY KEY (term, subscriber_id)
);
-- The other words of a query are checked per subscriber found by the first.
CREATE INDEX search_terms_subscriber ON search_terms (subscriber_id, term);
-- Newest first: the subscriber list, and the certificates found, in keyset pages.
CREATE INDEX subscribers_created ON subscribers (created_at, id);
CREATE INDEX certificates_issued ON certificates (issued_at, serial);
-- The audit log by date (a day long ago is a short range here, not a walk back through the log).
CREATE INDEX audit_log_at ON audit_log (at);
