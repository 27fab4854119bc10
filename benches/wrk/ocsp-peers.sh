#!/usr/bin/env bash
# OCSP responses/s of Vouch, OpenSSL's responder and CFSSL's pre-signed responder, measured in the
# same run on the same request set: CERTS certificates issued by Vouch, every other one revoked, one
# OCSP request (no nonce) per certificate, wrk -t2 -c32 for DURATION seconds against each responder
# in turn (all with benches/wrk/ocsp-requests.lua). Prints responses/s, non-2xx/3xx and socket errors
# per responder, and the ratios Vouch/OpenSSL and Vouch/CFSSL.
#   benches/wrk/ocsp-peers.sh                       # CERTS=400 DURATION=10
#   CERTS=1000 DURATION=20 benches/wrk/ocsp-peers.sh
#   VOUCH_BIN=path/to/vouch benches/wrk/ocsp-peers.sh   # use that binary instead of cargo build --release
#
# - Vouch: `vouch serve` (release) on 127.0.0.1, GET /ocsp/{base64url}; then, for a like-for-like
#   figure against CFSSL, the same requests as POST /ocsp.
# - OpenSSL: `openssl ocsp -index index.txt -multi 2`, signing with the issuing CA key of the
#   benchmark's throwaway data directory. It binds all interfaces, so it and its wrk run in a private
#   network namespace (unshare --net) with only lo up. index.txt holds Vouch's certificates (V/R,
#   revocation dates, hex serials). GET /{url-encoded base64}. In OpenSSL 3.0 a worker that gets a
#   connection closed without a complete request spins at 100% CPU and answers nothing more, so
#   readiness is probed with a real request, ocsp-requests.lua skips wrk's test connection, and a
#   responder serves one measurement only (wrk leaves such connections behind when it stops).
# - CFSSL: `cfssl ocspserve` (Debian golang-cfssl, installed if missing) on 127.0.0.1, answering from
#   a file of responses pre-signed with `cfssl ocspsign` by the same CA key. POST: the Debian build
#   (1.2.0+git20160825) answers every GET with 400, because it base64-decodes the path with its
#   leading '/' (later upstream versions strip it); paths with "//" are also redirected by Go's
#   ServeMux.
# Every request is sent once to each responder and its answer verified with `openssl ocsp` (signature
# chains to Vouch's root, expected good/revoked status) before the measurement.
set -euo pipefail
cd "$(dirname "$0")/../.."
CERTS=${CERTS:-400}
DURATION=${DURATION:-10}
command -v cfssl > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-cfssl; }
# A private network namespace for OpenSSL's responder: unprivileged if allowed, else as root.
if unshare -rn true 2> /dev/null; then NETNS=(unshare -rn)
elif [ "$(id -u)" = 0 ] && unshare --net true 2> /dev/null; then NETNS=(unshare --net)
elif sudo -n unshare --net true 2> /dev/null; then NETNS=(sudo -n unshare --net)
else echo "cannot create a network namespace (unshare --net) for OpenSSL's responder" >&2; exit 1
fi
# shellcheck source=serve.sh
. benches/wrk/serve.sh
trap 'exit 130' INT  # an interrupted run stops here, through serve.sh's cleanup (EXIT)
trap 'exit 143' TERM
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)
REVOKER=$(operator revoker revoker)
curl -sf "$BASE/ca/issuing.pem" > "$WORK/issuing.pem"
curl -sf "$BASE/ca/root.pem" | cat "$WORK/issuing.pem" - > "$WORK/chain.pem"
cmp -s "$WORK/issuing.pem" "$WORK/d/ca/issuing.pem" || { echo "unexpected CA files in $WORK/d/ca" >&2; exit 1; }

echo "issuing $CERTS certificates (every other one revoked) ..."
python3 benches/wrk/ocsp-certs.py "$BASE" "$CLERK" "$APPROVER" "$REVOKER" "$WORK" "$CERTS"

# wrk request files for the three responders (same requests, each responder's URL form), OpenSSL's
# index.txt, CFSSL's pre-signed responses.
echo "building OpenSSL's index and CFSSL's pre-signed responses ..."
python3 - "$WORK" <<'PY'
import base64, concurrent.futures, datetime, json, subprocess, sys, urllib.parse
work = sys.argv[1]
certs = json.load(open(work + "/certs.json"))
reqs = [l.split() for l in open(work + "/requests") if l.strip()]
paths = [l.strip() for l in open(work + "/paths") if l.strip()]
assert len(certs) == len(reqs) == len(paths)
# RFC 5280 reason codes and the names OpenSSL's index uses.
REASONS = ["unspecified", "keyCompromise", "CACompromise", "affiliationChanged", "superseded",
           "cessationOfOperation", "certificateHold", None, "removeFromCRL"]
def reason(cert):
    key = (cert.get("revocation_reason") or "unspecified").replace("_", "").replace("-", "").lower()
    return next(i for i, r in enumerate(REASONS) if r and r.lower() == key)
def when(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")
files = {k: open("%s/req-%s" % (work, k), "w") for k in ("vouch", "vouch-post", "openssl", "cfssl")}
for path, (serial, b64) in zip(paths, reqs):
    files["vouch"].write("GET %s\n" % path)
    files["vouch-post"].write("POST /ocsp %s\n" % base64.b64decode(b64).hex())
    files["openssl"].write("GET /%s\n" % urllib.parse.quote(b64, safe=""))
    files["cfssl"].write("POST / %s\n" % base64.b64decode(b64).hex())
for f in files.values():
    f.close()
with open(work + "/index.txt", "w") as idx:
    for cert in certs:
        hexserial = "%X" % int(cert["serial"], 16)
        hexserial = "0" * (len(hexserial) % 2) + hexserial
        expiry = when(cert["not_after"]).strftime("%y%m%d%H%M%SZ")
        revoked = ""
        if cert["status"] == "revoked":
            revoked = when(cert["revoked_at"]).strftime("%y%m%d%H%M%SZ") + "," + REASONS[reason(cert)]
        subject = "/" + cert["subject"].replace(", ", "/")
        idx.write("\t".join(["R" if revoked else "V", expiry, revoked, hexserial, "unknown", subject]) + "\n")
open(work + "/index.txt.attr", "w").write("unique_subject = no\n")
def cfssl_sign(i):
    cert = certs[i]
    pem = "%s/cfssl-%d.pem" % (work, i)
    open(pem, "w").write(cert["pem"])
    args = ["cfssl", "ocspsign", "-loglevel", "5", "-ca", work + "/issuing.pem", "-responder", work + "/issuing.pem",
            "-responder-key", work + "/d/ca/issuing.key", "-cert", pem]
    if cert["status"] == "revoked":
        args += ["-status", "revoked", "-reason", str(reason(cert)),
                 "-revoked-at", when(cert["revoked_at"]).strftime("%Y-%m-%d")]
    return json.loads(subprocess.run(args, capture_output=True, check=True, text=True).stdout)["ocspResponse"]
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    open(work + "/cfssl-responses", "w").write("\n".join(pool.map(cfssl_sign, range(len(certs)))) + "\n")
PY

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # PID URL REQUESTS_FILE: until the first request of the file gets an HTTP answer; fails if PID is gone
  # (A complete request, never a bare connect: see OpenSSL above.)
  until python3 - "$2" "$3" 2> /dev/null <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
method, path, *hexbody = open(sys.argv[2]).readline().split()
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
conn.request(method, path, bytes.fromhex(hexbody[0]) if hexbody else None)
conn.getresponse().read()
PY
  do
    kill -0 "$1" 2> /dev/null || return 1
    sleep 0.2
  done
}
run_wrk() { # NAME URL REQUESTS_FILE: the measurement, output kept in $WORK/wrk-NAME.txt
  echo "load before (1/5/15 min averages, running/all tasks now): $(cut -d' ' -f1-4 /proc/loadavg)" > "$WORK/wrk-$1.txt"
  # In the background, so that a TERM stops the run at once (the PID is stopped on exit).
  REQUESTS_FILE=$3 wrk -t2 -c32 -d"${DURATION}s" -s benches/wrk/ocsp-requests.lua "$2" >> "$WORK/wrk-$1.txt" &
  local wrk_pid=$!
  STOP_PIDS="$STOP_PIDS $wrk_pid"
  wait "$wrk_pid"
  STOP_PIDS=${STOP_PIDS% "$wrk_pid"}
  echo "$1: $(grep 'Requests/sec' "$WORK/wrk-$1.txt")"
}

echo "wrk -t2 -c32 -d${DURATION}s against each responder, $CERTS distinct serials (half revoked), no nonce:"
# 1. Vouch.
python3 benches/wrk/ocsp-check.py Vouch "$BASE" "$WORK/req-vouch" "$WORK" "$BASE/ocsp"
run_wrk vouch "$BASE" "$WORK/req-vouch"
python3 benches/wrk/ocsp-check.py "Vouch (POST)" "$BASE" "$WORK/req-vouch-post" "$WORK" "$BASE/ocsp"
run_wrk vouch-post "$BASE" "$WORK/req-vouch-post"

# 2. OpenSSL, in its own network namespace (it listens on all interfaces; nothing else is there).
{
  declare -f free_port wait_ready run_wrk
  cat <<'NS'
set -euo pipefail
WORK=$1 DURATION=$2 STOP_PIDS=""
ip link set lo up
PORT=$(free_port)
openssl ocsp -index "$WORK/index.txt" -port "$PORT" -rsigner "$WORK/d/ca/issuing.pem" \
  -rkey "$WORK/d/ca/issuing.key" -CA "$WORK/issuing.pem" -multi 2 > "$WORK/openssl.log" 2>&1 &
OPID=$!
# With -multi the responder leads its own process group (itself and its 2 workers); its parent
# only notices SIGTERM once a worker exits, so the group is signalled.
stop() {
  for p in $STOP_PIDS; do kill "$p" 2> /dev/null || true; done
  kill -TERM -- "-$OPID" 2> /dev/null || kill -TERM "$OPID" 2> /dev/null || true
  wait "$OPID" 2> /dev/null || true
}
trap stop EXIT
trap 'exit 143' TERM INT
wait_ready "$OPID" "http://127.0.0.1:$PORT" "$WORK/req-openssl" || { cat "$WORK/openssl.log" >&2; exit 1; }
python3 benches/wrk/ocsp-check.py OpenSSL "http://127.0.0.1:$PORT" "$WORK/req-openssl" "$WORK" "http://127.0.0.1:$PORT"
run_wrk openssl "http://127.0.0.1:$PORT" "$WORK/req-openssl"
NS
} > "$WORK/openssl-ns.sh"
"${NETNS[@]}" bash "$WORK/openssl-ns.sh" "$WORK" "$DURATION" &
NS_PID=$!
STOP_PIDS="$STOP_PIDS $NS_PID"
wait "$NS_PID"
STOP_PIDS=${STOP_PIDS% "$NS_PID"}

# 3. CFSSL.
CFSSL_PORT=$(free_port)
cfssl ocspserve -address 127.0.0.1 -port "$CFSSL_PORT" -responses "$WORK/cfssl-responses" > "$WORK/cfssl.log" 2>&1 &
CFSSL_PID=$!
STOP_PIDS="$STOP_PIDS $CFSSL_PID"
wait_ready "$CFSSL_PID" "http://127.0.0.1:$CFSSL_PORT" "$WORK/req-cfssl" || { cat "$WORK/cfssl.log" >&2; exit 1; }
python3 benches/wrk/ocsp-check.py CFSSL "http://127.0.0.1:$CFSSL_PORT" "$WORK/req-cfssl" "$WORK" "http://127.0.0.1:$CFSSL_PORT"
run_wrk cfssl "http://127.0.0.1:$CFSSL_PORT" "$WORK/req-cfssl"
kill "$CFSSL_PID"
wait "$CFSSL_PID" 2> /dev/null || true
STOP_PIDS=${STOP_PIDS% "$CFSSL_PID"}

python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
rows = {}
for key, name in [("vouch", "Vouch, GET"), ("vouch-post", "Vouch, POST"), ("openssl", "OpenSSL ocsp, GET"),
                  ("cfssl", "CFSSL ocspserve, POST")]:
    text = open("%s/wrk-%s.txt" % (work, key)).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    latency = re.search(r"Latency\s+(\S+)", text).group(1)
    load = re.search(r"load before [^:]*: (.*)", text).group(1)
    rows[key] = rate
    print("%-22s %10.0f responses/s  (%s requests in %s, mean latency %s, non-2xx/3xx %s, socket errors %s, load before %s)"
          % (name, rate, total.group(1), total.group(2), latency, bad.group(1) if bad else 0,
             errors.group(1) if errors else "none", load))
print("Vouch/OpenSSL %.2f   Vouch/CFSSL %.2f   (Vouch POST/CFSSL POST %.2f)"
      % (rows["vouch"] / rows["openssl"], rows["vouch"] / rows["cfssl"], rows["vouch-post"] / rows["cfssl"]))
PY
