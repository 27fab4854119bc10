# Sourced by the wrk benchmarks: build the release binary, start `vouch serve` on a fresh data
# directory and a free loopback port, stop it (by PID) on exit. Sets BIN, WORK, BASE, PID, and
# defines `operator NAME ROLE` (prints the new operator's token) and a P-256 CSR at $WORK/r.csr.
# VOUCH_BIN=/path/to/vouch uses that binary instead of building one. PIDs a script adds to STOP_PIDS
# are stopped (SIGTERM) on exit as well. A script that defines `before_serve` has the data directory
# initialised first (`vouch init`) and that function run before the server starts.
command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
if [ -n "${VOUCH_BIN:-}" ]; then
  BIN=$(realpath "$VOUCH_BIN")
else
  cargo build --release -q
  BIN=$PWD/target/release/vouch
fi
WORK=$(mktemp -d)
PID=""
STOP_PIDS=""
cleanup() {
  for p in $PID $STOP_PIDS; do kill "$p" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
if [ "$(type -t before_serve)" = function ]; then
  "$BIN" init --data-dir "$WORK/d" > "$WORK/init.out"
  before_serve
fi
"$BIN" serve --data-dir "$WORK/d" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2> "$WORK/serve.log" &
PID=$!
until curl -sf "$BASE/healthz" > /dev/null; do sleep 0.2; done
operator() { "$BIN" operator add --data-dir "$WORK/d" --name "$1" --role "$2" | tail -n 1; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench \
  -keyout "$WORK/k.pem" -out "$WORK/r.csr" 2> /dev/null
