#!/usr/bin/env bash
# Sign a document, have Vouch verify it, keep Vouch's receipt and check it.
#
#   VOUCH_URL=https://vouch.city.example VOUCH_TOKEN_FILE=verifier.token \
#   SIGNER_CERT=li-wei.pem SIGNER_KEY=li-wei.key ROOT_PEM=root.pem DOCUMENT=permit.json \
#   ROLE=approver APPLICATION=permits bash verify.sh
#
# VOUCH_URL         Vouch's base URL
# VOUCH_TOKEN_FILE  a file holding the bearer token of an operator with the role verifier
# SIGNER_CERT       the signer's certificate, PEM (Vouch issued it)
# SIGNER_KEY        the signer's private key, PEM
# ROOT_PEM          Vouch's root certificate (GET /ca/root.pem), fetched once and kept
# DOCUMENT          the file to sign
# ROLE, APPLICATION optional: the role the signer must hold in that application
# SIGNED_OUT        where to keep the signed document (default: DOCUMENT.p7m)
# RECEIPT_OUT       where to keep the receipt (default: DOCUMENT.receipt.der)
#
# Prints the decision and its reasons as the verified receipt states them. Exit status: 0 accept,
# 1 reject, 2 anything else (bad parameters, an HTTP error, a receipt that does not check out).
set -uo pipefail

# The extendedKeyUsage purpose of Vouch's receipt-signing certificates.
RECEIPT_PURPOSE=2.25.176954097262662576915638773024967759201

fail() {
    echo "verify.sh: $*" >&2
    exit 2
}

for name in VOUCH_URL VOUCH_TOKEN_FILE SIGNER_CERT SIGNER_KEY ROOT_PEM DOCUMENT; do
    [ -n "${!name:-}" ] || fail "$name is not set"
done
for file in "$VOUCH_TOKEN_FILE" "$SIGNER_CERT" "$SIGNER_KEY" "$ROOT_PEM" "$DOCUMENT"; do
    [ -r "$file" ] || fail "cannot read $file"
done
SIGNED_OUT="${SIGNED_OUT:-$DOCUMENT.p7m}"
RECEIPT_OUT="${RECEIPT_OUT:-$DOCUMENT.receipt.der}"

# The policy: the role and application are names (a-z, 0-9, '.', '_', '-'), safe to put in JSON.
policy='{}'
if [ -n "${ROLE:-}${APPLICATION:-}" ]; then
    for value in "${ROLE:-}" "${APPLICATION:-}"; do
        [[ "$value" =~ ^[a-z0-9][a-z0-9._-]*$ ]] || fail "ROLE and APPLICATION must both be names"
    done
    policy="{\"role\":\"$ROLE\",\"application\":\"$APPLICATION\"}"
fi

umask 077
work="$(mktemp -d)" || fail "cannot make a temporary directory"
trap 'rm -rf "$work"' EXIT

# 1. Sign: the bytes as they are (-binary), the content inside the CMS (-nodetach), DER.
openssl cms -sign -binary -nodetach -md sha256 -in "$DOCUMENT" \
    -signer "$SIGNER_CERT" -inkey "$SIGNER_KEY" -outform DER -out "$SIGNED_OUT" ||
    fail "openssl cms -sign failed"

# 2. The request: the CMS in base64, and the policy. The token goes in a header file, not on the
#    command line where other users of the machine could see it.
{
    printf '{"cms":"'
    base64 <"$SIGNED_OUT" | tr -d '\n'
    printf '","policy":%s}' "$policy"
} >"$work/request.json"
printf 'Authorization: Bearer %s\n' "$(tr -d '[:space:]' <"$VOUCH_TOKEN_FILE")" >"$work/auth"
status="$(curl -sS -o "$work/answer.json" -w '%{http_code}' -X POST \
    -H @"$work/auth" -H 'Content-Type: application/json' \
    --data-binary @"$work/request.json" "${VOUCH_URL%/}/api/v1/verify")" ||
    fail "cannot reach $VOUCH_URL"
if [ "$status" != 200 ]; then
    fail "HTTP $status: $(cat "$work/answer.json")"
fi

# 3. The receipt: keep it, then check it against the root, and that Vouch's receipt signer made
#    it (any certificate under the root would pass the first check, a subscriber's too).
receipt="$(grep -oE '"receipt":"[A-Za-z0-9+/=]+"' "$work/answer.json" | cut -d'"' -f4)"
[ -n "$receipt" ] || fail "the answer has no receipt: $(cat "$work/answer.json")"
printf '%s' "$receipt" | base64 -d >"$RECEIPT_OUT" || fail "the receipt is not base64"
openssl cms -verify -inform DER -in "$RECEIPT_OUT" -binary -CAfile "$ROOT_PEM" \
    -signer "$work/receipt-signer.pem" -out "$work/receipt.json" 2>"$work/openssl.err" ||
    fail "the receipt does not verify: $(cat "$work/openssl.err")"
purposes="$(openssl x509 -in "$work/receipt-signer.pem" -noout -ext extendedKeyUsage)"
case "$purposes" in
*"$RECEIPT_PURPOSE"*) ;;
*) fail "the receipt's signer is not Vouch's receipt signer" ;;
esac

# 4. What the receipt says. It is compact JSON with sorted keys, so the first "reasons" is the
#    answer's own, before the signers' (the other fields read here are only at the top level).
field() {
    grep -oE "\"$1\":(\"[^\"]*\"|\[[^]]*\])" "$work/receipt.json" | head -n 1 | cut -d: -f2- |
        tr -d '"[]' | sed 's/,/, /g'
}
digest="$(openssl dgst -sha256 -r "$DOCUMENT" | cut -d' ' -f1)"
[ "$(field content_sha256)" = "$digest" ] || fail "the receipt is about another document"
decision="$(field decision)"
reasons="$(field reasons)"
echo "decision: $decision"
echo "reasons: ${reasons:--}"
echo "verified at: $(field verified_at)"
echo "signed document: $SIGNED_OUT"
echo "receipt: $RECEIPT_OUT (checked against $ROOT_PEM)"
case "$decision" in
accept) exit 0 ;;
reject) exit 1 ;;
*) fail "unexpected decision: $decision" ;;
esac
