#!/usr/bin/env bash
# Verification throughput of a `vouch serve` process (release build, SQLite, durable audit) driven
# by wrk: a 2 KB submission signed detached with a P-256 person-signing certificate (the signer's
# and the issuing CA's certificates in the CMS, made by `openssl cms -sign`), posted to
# POST /api/v1/verify: signature, status at the signing time, a signed receipt and an audit entry
# each; then the same with a role check through an attribute certificate. In the same run: the
# server's CPU time per verification (from /proc), the machine's P-256 limit by `openssl speed`,
# and `openssl cms -verify` of the same document (signature and chain to the root) in a loop,
# two processes at a time, for what a relying party gets without Vouch.
#   benches/wrk/verify.sh                      # 2 wrk threads, 32 connections, 10 s each
#   DURATION=20 CONNECTIONS=64 benches/wrk/verify.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
# shellcheck source=serve.sh
. benches/wrk/serve.sh
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)
VERIFIER=$(operator app verifier)
AA=$(operator aa aa)

call() { # METHOD PATH TOKEN [JSON]: the answer's body; fails on an HTTP error
  curl -sf -X "$1" "$BASE$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
    ${4:+--data "$4"}
}
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

SUB=$(call POST /api/v1/subscribers "$CLERK" '{"kind": "person", "name": "Bench Signer",
  "identifiers": [{"type": "national-id", "number": "110101199003070011", "issuer": "PSB",
  "valid_until": "2099-12-31"}]}' | field id)
CSR=$(python3 -c 'import json, sys; print(json.dumps(open(sys.argv[1]).read()))' "$WORK/r.csr")
REQ=$(call POST /api/v1/requests "$CLERK" \
  "{\"subscriber_id\": \"$SUB\", \"profile\": \"person-signing\", \"csr\": $CSR}" | field id)
SERIAL=$(call POST "/api/v1/requests/$REQ/approve" "$APPROVER" | field serial)
call GET "/api/v1/certificates/$SERIAL" "$CLERK" | field pem > "$WORK/cert.pem"
curl -sf "$BASE/ca/issuing.pem" > "$WORK/issuing.pem"
NOT_AFTER=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
call POST /api/v1/attribute-certificates "$AA" "{\"holder_serial\": \"$SERIAL\",
  \"roles\": [\"approver\"], \"targets\": [\"permits\"], \"not_after\": \"$NOT_AFTER\"}" > /dev/null

python3 -c 'import sys; sys.stdout.write(("abcdefghij" * 205)[:2048])' > "$WORK/content.bin"
openssl cms -sign -binary -in "$WORK/content.bin" -signer "$WORK/cert.pem" -inkey "$WORK/k.pem" \
  -certfile "$WORK/issuing.pem" -md sha256 -outform DER -out "$WORK/doc.der"
python3 - "$WORK" <<'PY'
import base64, json, sys
w = sys.argv[1]
b64 = lambda p: base64.b64encode(open(f"{w}/{p}", "rb").read()).decode()
plain = {"cms": b64("doc.der"), "content": b64("content.bin")}
json.dump(plain, open(f"{w}/plain.json", "w"))
plain["policy"] = {"role": "approver", "application": "permits"}
json.dump(plain, open(f"{w}/role.json", "w"))
PY

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat"; }
# benches/wrk/post.lua posts the body, counting the answers that accept.
export POST_PATH=/api/v1/verify MATCH='"decision":"accept"' TOKEN=$VERIFIER COUNT_WORD=accepted
bench() { # LABEL BODY_FILE
  # Warm up: the receipt signer is issued on first use, caches fill.
  BODY_FILE=$2 wrk -t1 -c4 -d1s -s benches/wrk/post.lua "$BASE" > /dev/null
  local before after out
  before=$(cpu_ticks)
  out=$(BODY_FILE=$2 \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s benches/wrk/post.lua "$BASE" | tail -n 1)
  after=$(cpu_ticks)
  local accepted
  accepted=$(echo "$out" | awk '{ print $2 }' | tr -d ,)
  echo "$1: $out; server CPU $(( (after - before) * 10000 / (accepted > 0 ? accepted : 1) )) µs each"
}
echo "vouch serve (release) on SQLite, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $(nproc) cores"
bench "verify (signature, status, receipt, audit)" "$WORK/plain.json"
bench "verify with a role check (AC)            " "$WORK/role.json"
SPEED=$(openssl speed -seconds 3 ecdsap256 2> /dev/null | awk '/ecdsa \(nistp256\)/ { print $NF }')
echo "openssl speed ecdsap256: $SPEED verify/s per core; x $(nproc) cores / 3 operations per verification = $(python3 -c "print(round($SPEED * $(nproc) / 3))")/s"
curl -sf "$BASE/ca/root.pem" > "$WORK/root.pem"
cms_loop() {
  local end=$((SECONDS + 5)) n=0
  while [ $SECONDS -lt $end ]; do
    openssl cms -verify -binary -inform DER -in "$WORK/doc.der" -content "$WORK/content.bin" \
      -CAfile "$WORK/root.pem" -purpose any -out /dev/null 2> /dev/null || { echo "cms -verify failed" >&2; exit 1; }
    n=$((n + 1))
  done
  echo "$n"
}
cms_loop > "$WORK/l1" &
L1=$!
cms_loop > "$WORK/l2" &
wait "$L1" $!
LOOPS=$(( $(cat "$WORK/l1") + $(cat "$WORK/l2") ))
echo "openssl cms -verify in a loop (2 at a time, a process each): $((LOOPS / 5))/s"
"$BIN" audit verify --data-dir "$WORK/d"
