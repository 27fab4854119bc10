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

# Pending requests to approve.
python3 benches/wrk/pending.py "$BASE" "$CLERK" "$WORK/r.csr" "$REQUESTS" > "$WORK/ids"

echo "approve -> issued, vouch serve (release) on SQLite, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $REQUESTS pending requests:"
[ -n "${PERF_OUT:-}" ] && { perf record -F 999 -g -p "$PID" -o "$PERF_OUT" 2> /dev/null & PERF_PID=$!; }
IDS_FILE="$WORK/ids" APPROVER_TOKEN="$APPROVER" WRK_THREADS=$THREADS \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s benches/wrk/approve.lua "$BASE" | tail -n 1
[ -n "${PERF_OUT:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" || true; }
"$BIN" audit verify --data-dir "$WORK/d"
