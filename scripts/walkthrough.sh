#!/usr/bin/env bash
# From an empty data directory to a verified certificate and an attribute certificate granting its
# holder a role, then both revoked, with the `vouch` client.
# Run it from the repository root: bash scripts/walkthrough.sh
set -euo pipefail

# Its own port, directory and database, so that it runs beside `cargo run --release -- serve`
# (127.0.0.1:8080, ./vouch-data); your VOUCH_* settings are ignored. May be set: WALKTHROUGH_LISTEN,
# WALKTHROUGH_DIR, WALKTHROUGH_DATABASE_URL (default: SQLite in the data directory) and VOUCH (the
# absolute path of a built vouch: then nothing is built). With port 0 the server picks a free one.
LISTEN=${WALKTHROUGH_LISTEN:-127.0.0.1:8089}
WORK=${WALKTHROUGH_DIR:-walkthrough}
if [ -z "${VOUCH:-}" ]; then
  echo "== building vouch (cargo build --release; the first build takes several minutes)"
  cargo build --release
  VOUCH=$(realpath "${CARGO_TARGET_DIR:-target}/release/vouch")
fi
unset "${!VOUCH_@}"
[ -z "${WALKTHROUGH_DATABASE_URL:-}" ] || export VOUCH_DATABASE_URL=$WALKTHROUGH_DATABASE_URL
vouch() { "$VOUCH" "$@"; }
field() { awk -v key="$1:" '$1 == key { print $2 }'; } # the value of a `key: value` line
refused() { if "$@"; then echo "not refused: $*" >&2; exit 1; fi; }
umask 077 # the token files below are for your eyes only

# 1. Start Vouch on a new data directory (WORK/data). Once it serves, it prints the bootstrap
#    admin token on its last line of output; wait for it, at most 60 s.
if [ -e "$WORK" ] && [ ! -e "$WORK/.walkthrough" ]; then
  echo "$WORK exists and is not the walkthrough's: move it or set WALKTHROUGH_DIR" >&2
  exit 1
fi
rm -rf "$WORK"; mkdir "$WORK"; touch "$WORK/.walkthrough"; cd "$WORK"
# (Started as "$VOUCH", not through the function, so that $! is the server's own process.)
"$VOUCH" serve --data-dir data --listen "$LISTEN" > serve.out 2> serve.log &
SERVER=$!
stop() {
  local status=$?
  kill "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null || true
  if [ "$status" != 0 ]; then echo "walkthrough failed; the server's log: $PWD/serve.log" >&2; fi
}
trap stop EXIT
deadline=$((SECONDS + 60))
until grep -q '^vouch_' serve.out; do
  if ! kill -0 "$SERVER" 2> /dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "vouch serve did not start within 60 s on $LISTEN (in use? set WALKTHROUGH_LISTEN):" >&2
    cat serve.log >&2
    exit 1
  fi
  sleep 0.2
done
head -n 1 serve.out
# The server every client command below talks to, at the address it says it serves at.
VOUCH_URL=$(sed -n 's/^Vouch RA serving at \([^ ]*\) .*/\1/p' serve.out)
export VOUCH_URL
grep '^vouch_' serve.out > admin.token

# 2. The admin adds operators over the API (`--url`: even where VOUCH_DATABASE_URL is set); each
#    token is the last line of the output. Alice is clerk and approver, bob approver, carol
#    revoker, dave auditor.
ADMIN=(--url "$VOUCH_URL" --token-file admin.token)
vouch operator add "${ADMIN[@]}" --name alice --role clerk --role approver | tail -n 1 > alice.token
vouch operator add "${ADMIN[@]}" --name bob --role approver | tail -n 1 > bob.token
vouch operator add "${ADMIN[@]}" --name carol --role revoker | tail -n 1 > carol.token
vouch operator add "${ADMIN[@]}" --name dave --role auditor | tail -n 1 > dave.token
vouch operator list "${ADMIN[@]}"

# 3. The clerk registers a citizen with the identity document she examined.
SUBSCRIBER=$(vouch subscriber add --token-file alice.token --kind person --name 'Li Wei' \
  --email li.wei@example.org \
  --id 'national-id:110101199003070011:Public Security Bureau:2035-01-01' | field id)
echo "subscriber: $SUBSCRIBER"

# 4. The applicant makes a key and CSR (its subject is ignored); the clerk submits the request.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=anything" \
  -keyout li-wei.key -out li-wei.csr 2> /dev/null
vouch request submit --token-file alice.token --subscriber "$SUBSCRIBER" \
  --profile person-signing --csr li-wei.csr | tee request.txt
REQUEST=$(field id < request.txt)

# 5. Four eyes: alice may not approve her own request; bob's approval issues the certificate.
refused vouch request approve "$REQUEST" --token-file alice.token
vouch request approve "$REQUEST" --token-file bob.token | tee approved.txt
SERIAL=$(field serial < approved.txt)

# 6. Fetch the certificate and its chain. OpenSSL verifies them against the root in the data
#    directory, checking the whole chain for revocation: the issuing CA's CRL for the certificate,
#    the root's ARL for the issuing CA. The OCSP responder the certificate names says good.
vouch cert get "$SERIAL" --token-file alice.token --out li-wei.pem
vouch cert get "$SERIAL" --token-file alice.token --chain --out chain.pem
vouch crl get --pem --out crl.pem
vouch crl get --ca root --pem --out arl.pem
cat crl.pem arl.pem > crls.pem
openssl verify -crl_check_all -CAfile data/ca/root.pem -untrusted chain.pem -CRLfile crls.pem \
  li-wei.pem
openssl x509 -in li-wei.pem -noout -subject -serial -ext keyUsage,extendedKeyUsage,subjectAltName
vouch ocsp check li-wei.pem

# 7. A role in an application: the admin adds erin, who grants attribute certificates (role aa).
#    She grants Li Wei's certificate the role approver in the application permits, in the group
#    planning-bureau, for 30 days (+30d: vouch counts from now). OpenSSL reads the RFC 5755 AC:
#    the role attribute, the validity (GeneralizedTime), the group, the targeting extension; the
#    role and application URIs are in the DER it writes out.
vouch operator add "${ADMIN[@]}" --name erin --role aa | tail -n 1 > erin.token
vouch attribute grant --token-file erin.token --holder "$SERIAL" --role approver \
  --target permits --group planning-bureau --not-after +30d --out li-wei-approver.ac.pem \
  | tee granted.txt
AC=$(field serial < granted.txt)
openssl asn1parse -i -in li-wei-approver.ac.pem -out li-wei-approver.ac.der \
  | grep -E 'GENERALIZEDTIME|:role|:id-aca-group|:planning-bureau|AC Targeting'
grep -a -o 'urn:vouch:[a-z:-]*' li-wei-approver.ac.der

# 8. The revoker revokes the certificate; the new CRL and the OCSP responder both say so. The
#    attribute certificate followed its holder: the auditor reads it revoked.
vouch cert revoke "$SERIAL" --reason keyCompromise --token-file carol.token
vouch crl get --pem --out crl.pem --force
cat crl.pem arl.pem > crls.pem
refused openssl verify -crl_check_all -CAfile data/ca/root.pem -untrusted chain.pem \
  -CRLfile crls.pem li-wei.pem
refused vouch ocsp check li-wei.pem
vouch attribute show "$AC" --token-file dave.token | tee ac.txt
[ "$(field status < ac.txt)" = revoked ] || { echo "the AC is not revoked" >&2; exit 1; }

# 9. The auditor reads the last entries over the API; on the host, the hash chain is checked.
vouch audit tail -n 4 --token-file dave.token
vouch audit verify --data-dir data
