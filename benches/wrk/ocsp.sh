#!/usr/bin/env bash
# OCSP responses/s of a `vouch serve` process (release build) for a mixed good/revoked workload
# over many distinct serials, driven by wrk (2 threads, 32 connections).
#   benches/wrk/ocsp.sh                 # 400 certificates (half revoked), 10 s
#   CERTS=1000 DURATION=20 benches/wrk/ocsp.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CERTS=${CERTS:-400}
DURATION=${DURATION:-10}
command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q
BIN=$PWD/target/release/vouch
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2> /dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$BIN" serve --data-dir "$WORK/d" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$WORK/serve.log" &
PID=$!
until curl -sf "$BASE/healthz" > /dev/null; do sleep 0.2; done
CLERK=$("$BIN" operator add --data-dir "$WORK/d" --name clerk --role clerk | tail -n 1)
APPROVER=$("$BIN" operator add --data-dir "$WORK/d" --name approver --role approver | tail -n 1)
REVOKER=$("$BIN" operator add --data-dir "$WORK/d" --name revoker --role revoker | tail -n 1)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench \
  -keyout "$WORK/k.pem" -out "$WORK/r.csr" 2> /dev/null
curl -sf "$BASE/ca/issuing.pem" > "$WORK/issuing.pem"

# Issue CERTS certificates, revoke every other one, and write one OCSP request per certificate.
python3 - "$BASE" "$CLERK" "$APPROVER" "$REVOKER" "$WORK" "$CERTS" <<'PY'
import base64, http.client, json, subprocess, sys
base, clerk, approver, revoker, work, n = sys.argv[1:7]
host, port = base.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))
def call(method, path, token, body=None, expect=(200, 201)):
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse(); data = r.read()
    assert r.status in expect, (r.status, data)
    return json.loads(data)
sub = call("POST", "/api/v1/subscribers", clerk, {"kind": "person", "name": "Bench Person",
    "identifiers": [{"type": "national-id", "number": "1", "issuer": "X", "valid_until": "2099-01-01"}]})["id"]
csr = open(work + "/r.csr").read()
paths = []
for i in range(int(n)):
    req = call("POST", "/api/v1/requests", clerk, {"subscriber_id": sub, "profile": "person-signing", "csr": csr})
    serial = call("POST", "/api/v1/requests/%s/approve" % req["id"], approver)["serial"]
    if i % 2:
        call("POST", "/api/v1/certificates/%s/revoke" % serial, revoker, {"reason": "superseded"})
    out = subprocess.run(["openssl", "ocsp", "-no_nonce", "-issuer", work + "/issuing.pem", "-serial", "0x" + serial,
                          "-reqout", "/dev/stdout"], capture_output=True, check=True).stdout
    paths.append("/ocsp/" + base64.urlsafe_b64encode(out).decode().rstrip("="))
open(work + "/paths", "w").write("\n".join(paths) + "\n")
PY

echo "OCSP GET, vouch serve (release), $CERTS certificates (half revoked), wrk -t2 -c32 -d${DURATION}s:"
PATHS_FILE="$WORK/paths" wrk -t2 -c32 -d"${DURATION}s" -s benches/wrk/ocsp.lua "$BASE" | grep -E "Requests/sec|Latency|Non-2xx"
