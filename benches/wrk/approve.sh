#!/usr/bin/env bash
# End-to-end approve -> issued throughput of a `vouch serve` process (release build, SQLite, durable
# commits, audit chain) driven by wrk, the C load generator the peers' figures were taken with.
#   benches/wrk/approve.sh                     # 30000 requests, 2 wrk threads, 32 connections, 5 s
#   REQUESTS=60000 DURATION=10 benches/wrk/approve.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-30000}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
# shellcheck source=serve.sh
. benches/wrk/serve.sh
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)

# Pending requests to approve (one key for all: the RA allows key reuse across requests).
python3 - "$BASE" "$CLERK" "$WORK/r.csr" "$REQUESTS" > "$WORK/ids" <<'PY'
import http.client, json, sys, threading
base, token, csr_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = base.split("//")[1].split(":")
def call(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse(); data = r.read()
    assert r.status == 201, data
    return json.loads(data)["id"]
conn = http.client.HTTPConnection(host, int(port))
sub = call(conn, "/api/v1/subscribers", {"kind": "person", "name": "Bench Person", "email": "bench@example.org",
    "identifiers": [{"type": "national-id", "number": "1", "issuer": "X", "valid_until": "2099-01-01"}]})
csr = open(csr_file).read()
ids, lock = [], threading.Lock()
def worker(count):
    c = http.client.HTTPConnection(host, int(port))
    for _ in range(count):
        i = call(c, "/api/v1/requests", {"subscriber_id": sub, "profile": "person-signing", "csr": csr})
        with lock:
            ids.append(i)
ts = [threading.Thread(target=worker, args=(n // 8 + (1 if k < n % 8 else 0),)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("\n".join(ids))
PY

echo "approve -> issued, vouch serve (release) on SQLite, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $REQUESTS pending requests:"
[ -n "${PERF_OUT:-}" ] && { perf record -F 999 -g -p "$PID" -o "$PERF_OUT" 2> /dev/null & PERF_PID=$!; }
IDS_FILE="$WORK/ids" APPROVER_TOKEN="$APPROVER" WRK_THREADS=$THREADS \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s benches/wrk/approve.lua "$BASE" | tail -n 1
[ -n "${PERF_OUT:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" || true; }
"$BIN" audit verify --data-dir "$WORK/d"
