#!/usr/bin/env bash
# Instructions per verification of a `vouch serve` binary, counted by valgrind's callgrind, so that
# two binaries compare on a busy machine: the setup of verify.sh (one P-256 person-signing
# certificate, a 2 KB detached document made by `openssl cms -sign`), the server under callgrind,
# 50 warm-up verifications, counters zeroed, N sequential verifications, counters dumped.
#   benches/wrk/verify-instructions.sh                  # the release build, N=300
#   VOUCH_BIN=/path/to/vouch N=500 benches/wrk/verify-instructions.sh
# SHA-256 runs in software under valgrind (no SHA extensions), so hashing is overstated.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-300}
command -v valgrind > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
if [ -n "${VOUCH_BIN:-}" ]; then REAL=$(realpath "$VOUCH_BIN"); else cargo build --release -q; REAL=$PWD/target/release/vouch; fi
CG=$(mktemp -d)
cat > "$CG/wrap" <<WRAP
#!/bin/sh
if [ "\$1" = serve ]; then exec valgrind --tool=callgrind --callgrind-out-file=$CG/cg.out "$REAL" "\$@"; fi
exec "$REAL" "\$@"
WRAP
chmod +x "$CG/wrap"
VOUCH_BIN="$CG/wrap"
# shellcheck source=serve.sh
. benches/wrk/serve.sh
STOP_PIDS=""
trap 'cleanup; rm -rf "$CG"' EXIT
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)
VERIFIER=$(operator app verifier)
call() { curl -sf -X "$1" "$BASE$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+--data "$4"}; }
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
python3 -c 'import sys; sys.stdout.write(("abcdefghij" * 205)[:2048])' > "$WORK/content.bin"
openssl cms -sign -binary -in "$WORK/content.bin" -signer "$WORK/cert.pem" -inkey "$WORK/k.pem" \
  -certfile "$WORK/issuing.pem" -md sha256 -outform DER -out "$WORK/doc.der"
python3 - "$WORK" "$PORT" "$VERIFIER" "$N" "$PID" "$CG" <<'PY'
import base64, glob, http.client, json, re, subprocess, sys, time
work, port, token, n, pid, cg = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
b64 = lambda p: base64.b64encode(open(f"{work}/{p}", "rb").read()).decode()
body = json.dumps({"cms": b64("doc.der"), "content": b64("content.bin")})
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def verify():
    conn.request("POST", "/api/v1/verify", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse(); answer = r.read()
    assert r.status == 200 and b'"decision":"accept"' in answer, (r.status, answer[:300])
for _ in range(50):
    verify()
subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
for _ in range(n):
    verify()
subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
time.sleep(1)
total = int(re.search(r"^summary: (\d+)", open(f"{cg}/cg.out.1").read(), re.M).group(1))
print(f"{total // n} instructions per verification ({n} verifications, callgrind)")
PY
