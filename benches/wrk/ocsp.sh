#!/usr/bin/env bash
# OCSP responses/s of a `vouch serve` process (release build) for a mixed good/revoked workload
# over many distinct serials, driven by wrk (2 threads, 32 connections).
#   benches/wrk/ocsp.sh                 # 400 certificates (half revoked), 10 s
#   CERTS=1000 DURATION=20 benches/wrk/ocsp.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CERTS=${CERTS:-400}
DURATION=${DURATION:-10}
# shellcheck source=serve.sh
. benches/wrk/serve.sh
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)
REVOKER=$(operator revoker revoker)
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
