#!/usr/bin/env bash
# Count what a `vouch serve` process does for a fixed set of OCSP GET requests, so that two builds
# can be compared without wall-clock noise: instructions (valgrind's callgrind) or system calls
# (strace -c). The server is set up as for ocsp.sh (CERTS certificates, half revoked), restarted
# under the tool, warmed up (every response signed and cached), then counted over REQUESTS GETs sent
# by ocsp-fixed.py over CONNECTIONS keep-alive connections. The callgrind summary gives the whole
# process and the connection tasks alone (`api::listener`, or `axum::serve` in builds before it):
# compare the latter, since background tasks run by the clock, not by the requests (the audit watch
# costs about 9 million instructions every 5 seconds, in one run's window or not).
#   VOUCH_BIN=target/release/vouch benches/wrk/ocsp-count.sh OUTDIR            # callgrind
#   TOOL=strace VOUCH_BIN=target/release/vouch benches/wrk/ocsp-count.sh OUTDIR
# Results: OUTDIR/summary.txt; the callgrind dump OUTDIR/callgrind.out.*.1 for callgrind_annotate.
# Needs valgrind and strace (Debian packages of those names).
set -euo pipefail
cd "$(dirname "$0")/../.."
CERTS=${CERTS:-400}
REQUESTS=${REQUESTS:-3000}
CONNECTIONS=${CONNECTIONS:-4}
TOOL=${TOOL:-callgrind}
OUT=$(realpath -m "${1:?usage: ocsp-count.sh OUTDIR}")
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out.*
# shellcheck source=serve.sh
. benches/wrk/serve.sh
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)
REVOKER=$(operator revoker revoker)
curl -sf "$BASE/ca/issuing.pem" > "$WORK/issuing.pem"
python3 benches/wrk/ocsp-certs.py "$BASE" "$CLERK" "$APPROVER" "$REVOKER" "$WORK" "$CERTS"
kill "$PID"
wait "$PID" || true

case "$TOOL" in
  callgrind)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
      "$BIN" serve --data-dir "$WORK/d" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$OUT/valgrind.log" &
    ;;
  strace)
    "$BIN" serve --data-dir "$WORK/d" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$WORK/serve.log" &
    ;;
  *) echo "TOOL is callgrind or strace" >&2; exit 2 ;;
esac
PID=$!
until curl -sf "$BASE/healthz" > /dev/null; do sleep 0.5; done
python3 benches/wrk/ocsp-fixed.py "$BASE" "$WORK/paths" $((2 * CERTS)) "$CONNECTIONS"

case "$TOOL" in
  callgrind)
    callgrind_control -z "$PID" > /dev/null
    start=$(date +%s.%N)
    python3 benches/wrk/ocsp-fixed.py "$BASE" "$WORK/paths" "$REQUESTS" "$CONNECTIONS"
    end=$(date +%s.%N)
    callgrind_control -d requests "$PID" > /dev/null
    kill "$PID"
    wait "$PID" || true
    PID=""
    # Inclusive instructions of the functions matching $1 (one row per function; the largest).
    inclusive() {
      callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$OUT"/callgrind.out.*.1 2> /dev/null |
        grep -E "$1" | grep "\[$BIN\]" | awk '{gsub(",", "", $1); print $1}' | sort -n | tail -1 || true
    }
    total=$(callgrind_annotate --auto=no "$OUT"/callgrind.out.*.1 2> /dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    conns=$(inclusive 'listener::run::\{\{closure\}\}::\{\{closure\}\} |serve::handle_connection::\{\{closure\}\}::\{\{closure\}\} ')
    {
      echo "binary: $BIN"
      echo "requests: $REQUESTS over $CONNECTIONS connections in $(echo "$end - $start" | bc) s"
      echo "instructions, whole process: $total ($((total / REQUESTS)) per request)"
      echo "instructions, connection tasks: ${conns:-0} ($((${conns:-0} / REQUESTS)) per request)"
      echo "instructions, the rest (runtime, background tasks, database threads): $((total - ${conns:-0}))"
    } | tee "$OUT/summary.txt"
    ;;
  strace)
    strace -f -c -o "$OUT/strace.txt" -p "$PID" 2> /dev/null &
    STRACE=$!
    sleep 1
    python3 benches/wrk/ocsp-fixed.py "$BASE" "$WORK/paths" "$REQUESTS" "$CONNECTIONS"
    kill -INT "$STRACE"
    wait "$STRACE" || true
    { echo "binary: $BIN"; echo "requests: $REQUESTS over $CONNECTIONS connections"; cat "$OUT/strace.txt"; } | tee "$OUT/summary.txt"
    ;;
esac
