#!/usr/bin/env bash
# Approve -> issued through a remote CA, beside the embedded CA and beside the CA driven directly,
# in one run, to show what Vouch's RA layer (approval checks, intent, journal, the check of the
# returned certificate against the order, records, audit) costs on top of the CA:
#   1. the embedded CA (profile person-auth), as benches/wrk/approve.sh;
#   2. CFSSL (Debian golang-cfssl, `cfssl serve` with a certificate database, the profile taking
#      Vouch's serials) behind `upstream.toml` for person-signing;
#   3. a CMP CA made of Bouncy Castle's CMP classes (tests/cmp/BcCmpCa.java, on Debian's
#      libbcpkix-java; `openssl cmp`'s mock answers every request with one fixed certificate, so
#      it cannot issue thousands) behind `upstream.toml` for a copy of person-signing named
#      bench-cmp: ir, ip signed by the CA, certConf, pkiConf, signature protection both ways;
#   4. CFSSL's own /api/v1/cfssl/authsign driven by wrk with the same CSR, no RA.
#   benches/wrk/upstream.sh                    # 3000 requests each, 2 wrk threads, 32 connections
#   REQUESTS=6000 DURATION=10 benches/wrk/upstream.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-3000}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
AUTH_KEY=0123456789abcdef0123456789abcdef
command -v cfssl > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-cfssl sqlite3; }
[ -f /usr/share/java/bcpkix.jar ] && command -v javac > /dev/null || { apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless libbcprov-java libbcpkix-java libbcutil-java; }
BC_CP=/usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar
[ -f /usr/share/java/bcutil.jar ] && BC_CP=$BC_CP:/usr/share/java/bcutil.jar
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

before_serve() {
  local c="$WORK/cfssl"
  mkdir -p "$c"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=Bench Remote CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout "$c/ca-key.pem" -out "$c/ca.pem" 2> /dev/null
  # CFSSL's certificate database; the key columns as TEXT (its bytea gets NUMERIC affinity in
  # SQLite, which would round 20-byte decimal serials).
  sqlite3 "$c/certdb.sqlite" "CREATE TABLE certificates (serial_number TEXT NOT NULL,
    authority_key_identifier TEXT NOT NULL, ca_label bytea, status bytea NOT NULL, reason int,
    expiry timestamp, revoked_at timestamp, pem bytea NOT NULL,
    PRIMARY KEY(serial_number, authority_key_identifier));
    CREATE TABLE ocsp_responses (serial_number TEXT NOT NULL, authority_key_identifier TEXT NOT NULL,
    body bytea NOT NULL, expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));"
  echo "{\"driver\": \"sqlite3\", \"data_source\": \"$c/certdb.sqlite\"}" > "$c/db.json"
  local usages='["digital signature", "content committment", "email protection"]'
  cat > "$c/config.json" <<JSON
{"signing": {"default": {"auth_key": "vouch", "expiry": "8760h", "usages": $usages},
  "profiles": {
    "person": {"auth_key": "vouch", "expiry": "8760h", "usages": $usages, "ClientProvidesSerialNumbers": true},
    "direct": {"auth_key": "vouch", "expiry": "8760h", "usages": $usages}}},
 "auth_keys": {"vouch": {"type": "standard", "key": "$AUTH_KEY"}}}
JSON
  CFSSL_PORT=$(free_port)
  cfssl serve -address 127.0.0.1 -port "$CFSSL_PORT" -ca "$c/ca.pem" -ca-key "$c/ca-key.pem" \
    -config "$c/config.json" -db-config "$c/db.json" > /dev/null 2> "$c/cfssl.log" &
  STOP_PIDS="$STOP_PIDS $!"
  until curl -s -o /dev/null "http://127.0.0.1:$CFSSL_PORT/"; do sleep 0.1; done
  cat > "$WORK/d/upstream.toml" <<TOML
[[ca]]
id = "bench-cfssl"
kind = "cfssl"
url = "http://127.0.0.1:$CFSSL_PORT"
auth_key = "$AUTH_KEY"
cfssl_profile = "person"
profiles = ["person-signing"]
TOML
  cmp_ca
  chmod 600 "$WORK/d/upstream.toml"
}

cmp_ca() { # the Bouncy Castle CMP CA, its RA certificate for Vouch, and its upstream.toml entry
  local c="$WORK/cmp"
  mkdir -p "$c/classes"
  javac -Xlint:-options -d "$c/classes" -cp "$BC_CP" tests/cmp/BcCmpCa.java
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/O=Bench/CN=Bench CMP CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout "$c/ca.key" -out "$c/ca.pem" 2> /dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Bench/CN=Vouch RA" \
    -keyout "$c/ra.key" -out "$c/ra.csr" 2> /dev/null
  printf 'keyUsage=critical,digitalSignature\n' > "$c/ra.ext"
  openssl x509 -req -in "$c/ra.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial -days 365 \
    -extfile "$c/ra.ext" -out "$c/ra.pem" 2> /dev/null
  chmod 600 "$c/ra.key"
  java -cp "$c/classes:$BC_CP" BcCmpCa "$c/port" "$c/ca.pem" "$c/ca.key" > /dev/null 2> "$c/log" &
  STOP_PIDS="$STOP_PIDS $!"
  until [ -f "$c/port" ]; do sleep 0.1; done
  sed 's/^name = .*/name = "bench-cmp"/' pki/profiles/person-signing.toml > "$WORK/d/profiles/bench-cmp.toml"
  cat >> "$WORK/d/upstream.toml" <<TOML

[[ca]]
id = "bench-cmp"
kind = "cmp"
url = "http://127.0.0.1:$(cat "$c/port")/pkix"
recipient = "/O=Bench/CN=Bench CMP CA"
trust_anchor_file = "$c/ca.pem"
protection = "signature"
ra_certificate_file = "$c/ra.pem"
ra_key_file = "$c/ra.key"
request = "ir"
profiles = ["bench-cmp"]
TOML
}

# shellcheck source=serve.sh
. benches/wrk/serve.sh
CLERK=$(operator clerk clerk)
APPROVER=$(operator approver approver)

pending() { # PROFILE: REQUESTS pending request ids, one per line
  python3 benches/wrk/pending.py "$BASE" "$CLERK" "$WORK/r.csr" "$REQUESTS" "$1"
}
approve() { # LABEL IDS_FILE
  echo "$1: $(IDS_FILE=$2 APPROVER_TOKEN="$APPROVER" WRK_THREADS=$THREADS \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s benches/wrk/approve.lua "$BASE" | tail -n 1)"
}
pending person-auth > "$WORK/embedded.ids"
pending person-signing > "$WORK/cfssl.ids"
pending bench-cmp > "$WORK/cmp.ids"
echo "approve -> issued, vouch serve (release) on SQLite, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $REQUESTS pending requests each, $(nproc) cores"
approve "embedded CA                        " "$WORK/embedded.ids"
approve "CFSSL through Vouch                " "$WORK/cfssl.ids"
approve "CMP (Bouncy Castle) through Vouch  " "$WORK/cmp.ids"
python3 - "$WORK/r.csr" "$AUTH_KEY" > "$WORK/sign.json" <<'PY'
import base64, hashlib, hmac, json, sys
csr, key = open(sys.argv[1]).read(), bytes.fromhex(sys.argv[2])
request = json.dumps({"certificate_request": csr, "profile": "direct", "hosts": ["bench@example.org"],
                      "subject": {"CN": "Bench Person", "names": []}}).encode()
token = hmac.new(key, request, hashlib.sha256).digest()
print(json.dumps({"token": base64.b64encode(token).decode(), "request": base64.b64encode(request).decode()}))
PY
echo "CFSSL authsign driven directly     : $(BODY_FILE=$WORK/sign.json POST_PATH=/api/v1/cfssl/authsign \
  MATCH='"certificate":"-----BEGIN CERTIFICATE' COUNT_WORD=signed wrk -t"$THREADS" -c"$CONNECTIONS" \
  -d"${DURATION}s" -s benches/wrk/post.lua "http://127.0.0.1:$CFSSL_PORT" | tail -n 1)"
echo "certificates in CFSSL's database: $(sqlite3 -cmd '.timeout 10000' "$WORK/cfssl/certdb.sqlite" 'SELECT COUNT(*) FROM certificates')"
"$BIN" upstream queue --data-dir "$WORK/d" | grep -E "^(pending|quarantined)"
"$BIN" audit verify --data-dir "$WORK/d"
