-- Indexes for the console's pages at scale (docs/PERFORMANCE.md): the approvers' queue pages
-- through one status in submission order, and auditors filter the log by actor, action or
-- object, newest first.
CREATE INDEX requests_status_created ON requests (status, created_at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
