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
python3 benches/wrk/ocsp-certs.py "$BASE" "$CLERK" "$APPROVER" "$REVOKER" "$WORK" "$CERTS"

echo "OCSP GET, vouch serve (release), $CERTS certificates (half revoked), wrk -t2 -c32 -d${DURATION}s:"
PATHS_FILE="$WORK/paths" wrk -t2 -c32 -d"${DURATION}s" -s benches/wrk/ocsp.lua "$BASE" | grep -E "Requests/sec|Latency|Non-2xx"
