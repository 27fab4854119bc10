#!/usr/bin/env bash
# The console's attribute-certificate pages with 100,000 ACs in the store (SQLite): how long each
# page takes to answer, through a real `vouch serve`, logged in as an auditor with curl.
#
#   benches/console/ac-pages.sh [path/to/vouch]     # default target/release/vouch
#
# The ACs are synthetic rows written straight into the database (their DER is not a real AC: the
# page shows no issuer for them); 1 in 1,000 carries the role "rare", half the application
# "permits", 1 in 50 is revoked, every holder serial has 2. Prints the median of 7 requests per
# page, in milliseconds (curl's time_total).
set -euo pipefail
VOUCH=$(realpath "${1:-target/release/vouch}")
N=${VOUCH_BENCH_ACS:-100000}
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2> /dev/null || true; rm -rf "$WORK"' EXIT
D=$WORK/d
"$VOUCH" init --data-dir "$D" > /dev/null
printf '%s\n' 'a long passphrase here' |
  "$VOUCH" operator add --data-dir "$D" --name audit1 --role auditor --password-stdin > /dev/null
sqlite3 "$D/vouch.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO attribute_certificates (serial, holder_serial, profile, roles_json, groups_json,
  targets_json, not_before, not_after, revocable, der, status, held_with_holder, grant_id,
  granted_by, issued_at)
SELECT printf('7%031x', i * 7919), printf('5%039x', i / 2), 'application-role',
  CASE WHEN i % 1000 = 0 THEN '["rare"]' ELSE '["clerk"]' END, '[]',
  CASE WHEN i % 2 = 0 THEN '["permits"]' ELSE '["office-automation"]' END,
  1700000000 + i, 4000000000, 1, randomblob(600),
  CASE WHEN i % 50 = 0 THEN 'revoked' ELSE 'valid' END, 0, NULL, 'bench', 1700000000 + i FROM n;
INSERT INTO attribute_names (serial, kind, name, issued_at)
  SELECT serial, 'role', json_extract(roles_json, '\$[0]'), issued_at FROM attribute_certificates;
INSERT INTO attribute_names (serial, kind, name, issued_at)
  SELECT serial, 'target', json_extract(targets_json, '\$[0]'), issued_at FROM attribute_certificates;
SQL
PORT=${VOUCH_BENCH_PORT:-18571}
"$VOUCH" serve --data-dir "$D" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -fs "$URL/login" -o /dev/null && break; sleep 0.2; done
JAR=$WORK/cookies
CSRF=$(curl -fs -c "$JAR" "$URL/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null -d "name=audit1" \
  --data-urlencode "password=a long passphrase here" -d "totp=" -d "csrf=$CSRF" "$URL/login"
HOLDER=$(printf '5%039x' 500)
SECOND=$(printf '7%031x' $(( (N - 49) * 7919 )))
for page in "/attribute-certificates" \
  "/attribute-certificates?after=$SECOND" \
  "/attribute-certificates?holder_serial=$HOLDER" \
  "/attribute-certificates?role=rare" \
  "/attribute-certificates?role=clerk&target=permits" \
  "/attribute-certificates?target=permits" \
  "/attribute-certificates?target=nosuch" \
  "/attribute-certificates?status=revoked" \
  "/attribute-certificates?status=valid" \
  "/attribute-certificates/$(printf '7%031x' 7919)" \
  "/attribute-grants"; do
  times=$(for _ in 1 2 3 4 5 6 7; do
    curl -fs -b "$JAR" -o /dev/null -w '%{time_total}\n' "$URL$page"
  done | sort -n | sed -n 4p)
  printf '%8.1f ms  %s\n' "$(echo "$times * 1000" | bc -l)" "$page"
done
