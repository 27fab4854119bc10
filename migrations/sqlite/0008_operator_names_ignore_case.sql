-- Operator names are unique regardless of case: "Alice" and "alice" would read as one person in
-- the audit log and the console. Names are ASCII ([A-Za-z0-9._@-]), so lower() folds them fully.
--
-- A database may already hold names that differ only in case. The operator created first (by
-- created_at, then id) keeps its name; each later one is renamed to "<name>.dup-<id>", which is
-- unique because ids are. Tokens, roles and ids are unchanged, so nothing stops working;
-- `vouch operator list` shows the new names.
UPDATE operators
SET name = name || '.dup-' || id
WHERE EXISTS (
    SELECT 1 FROM operators AS earlier
    WHERE lower(earlier.name) = lower(operators.name)
      AND (earlier.created_at < operators.created_at
           OR (earlier.created_at = operators.created_at AND earlier.id < operators.id))
);

CREATE UNIQUE INDEX operators_name_lower ON operators (lower(name));
