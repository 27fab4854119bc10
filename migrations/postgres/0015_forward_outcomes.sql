-- A revocation forward the CA refused for good (not a transport failure: the CA answered no) is no
-- longer retried on its own: `failed_at` says since when, `last_error` keeps the CA's reason. An
-- admin either asks for it again (`vouch upstream queue retry`, which clears `failed_at`) or
-- gives it up (`vouch upstream queue drop --reason`): `dropped_at`, `dropped_by` and
-- `drop_reason` record that decision, and the row stays for `vouch upstream queue --all`. The
-- local status stays revoked either way.
ALTER TABLE revocation_forwards ADD COLUMN failed_at BIGINT;
ALTER TABLE revocation_forwards ADD COLUMN dropped_at BIGINT;
ALTER TABLE revocation_forwards ADD COLUMN dropped_by TEXT;
ALTER TABLE revocation_forwards ADD COLUMN drop_reason TEXT;
