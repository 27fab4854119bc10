#!/usr/bin/env python3
"""Have Vouch verify a signed document (a CMS SignedData file), keep the receipt and check it.

    VOUCH_URL=https://vouch.city.example VOUCH_TOKEN_FILE=verifier.token ROOT_PEM=root.pem \\
    python3 verify_client.py permit.json.p7m
    python3 verify_client.py --content permit.json permit.json.p7s    # detached
    python3 verify_client.py --role approver --application permits permit.json.p7m

VOUCH_URL, VOUCH_TOKEN_FILE and ROOT_PEM as for verify.sh (or --url, --token-file, --root).
Python 3 standard library, and the openssl command to check the receipt. Exit status: 0 accept,
1 reject, 2 anything else (bad arguments, an HTTP error, a receipt that does not check out).
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

# The extendedKeyUsage purpose of Vouch's receipt-signing certificates.
RECEIPT_PURPOSE = "2.25.176954097262662576915638773024967759201"


class Failure(Exception):
    """Anything that is not a decision: exit status 2."""


def post_verify(url, token, body):
    """POST /api/v1/verify; the answer as a dict, or Failure with Vouch's error code."""
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/verify",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            error = json.loads(text)
            text = "%s: %s" % (error["error"], error["message"])
        except (ValueError, KeyError, TypeError):
            pass
        raise Failure("HTTP %d %s" % (e.code, text)) from None
    except (urllib.error.URLError, OSError) as e:
        raise Failure("cannot reach %s: %s" % (url, e)) from None


def openssl(*args):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure("openssl %s: %s" % (args[0], result.stderr.strip()))
    return result.stdout


def check_receipt(receipt, root_pem):
    """The JSON the receipt signs, once the receipt verifies against the root and its signer is
    Vouch's receipt signer (any certificate under the root would pass the first check)."""
    with tempfile.TemporaryDirectory() as work:
        paths = {n: os.path.join(work, n) for n in ("receipt.der", "signer.pem", "signed.json")}
        with open(paths["receipt.der"], "wb") as f:
            f.write(receipt)
        openssl("cms", "-verify", "-inform", "DER", "-in", paths["receipt.der"], "-binary",
                "-CAfile", root_pem, "-signer", paths["signer.pem"], "-out", paths["signed.json"])
        purposes = openssl("x509", "-in", paths["signer.pem"], "-noout",
                           "-ext", "extendedKeyUsage")
        if RECEIPT_PURPOSE not in purposes:
            raise Failure("the receipt's signer is not Vouch's receipt signer")
        with open(paths["signed.json"], "rb") as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description="Verify a signed document with Vouch.")
    parser.add_argument("cms", help="the signed document: CMS SignedData, DER or PEM")
    parser.add_argument("--content", help="the signed content, when the CMS is detached")
    parser.add_argument("--role", help="the role every signer must hold (with --application)")
    parser.add_argument("--application", help="the application the role is for")
    parser.add_argument("--url", default=os.environ.get("VOUCH_URL"))
    parser.add_argument("--token-file", default=os.environ.get("VOUCH_TOKEN_FILE"))
    parser.add_argument("--root", default=os.environ.get("ROOT_PEM"), help="Vouch's root, PEM")
    parser.add_argument("--receipt-out", help="where to keep the receipt (CMS.receipt.der)")
    args = parser.parse_args()
    for name, value in (("VOUCH_URL", args.url), ("VOUCH_TOKEN_FILE", args.token_file),
                        ("ROOT_PEM", args.root)):
        if not value:
            raise Failure(name + " is not set")
    with open(args.token_file) as f:
        token = f.read().strip()
    with open(args.cms, "rb") as f:
        cms = f.read()

    body = {"cms": cms.decode("ascii") if cms.startswith(b"-----BEGIN") else
            base64.b64encode(cms).decode("ascii")}
    content = None
    if args.content:
        with open(args.content, "rb") as f:
            content = f.read()
        body["content"] = base64.b64encode(content).decode("ascii")
    if args.role or args.application:
        body["policy"] = {"role": args.role, "application": args.application}
    answer = post_verify(args.url, token, body)

    # Keep the receipt, then trust only what it signs: the answer, less the receipt itself.
    receipt = base64.b64decode(answer.pop("receipt"))
    receipt_out = args.receipt_out or args.cms + ".receipt.der"
    with open(receipt_out, "wb") as f:
        f.write(receipt)
    signed = check_receipt(receipt, args.root)
    if signed != answer:
        raise Failure("the receipt does not sign this answer")
    if content is not None and signed["content_sha256"] != hashlib.sha256(content).hexdigest():
        raise Failure("the receipt is about another document")

    print("decision: " + signed["decision"])
    print("reasons: " + (", ".join(signed["reasons"]) or "-"))
    for s in signed["signers"]:
        print("signer: %s, serial %s, profile %s, status %s, signed at %s (%s)%s" % (
            s["subject"], s["serial"], s["profile"], s["certificate_status"], s["signed_at"],
            s["time_source"], ": " + ", ".join(s["reasons"]) if s["reasons"] else ""))
    print("verified at: " + signed["verified_at"])
    print("receipt: %s (checked against %s)" % (receipt_out, args.root))
    return {"accept": 0, "reject": 1}.get(signed["decision"], 2)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failure, OSError, ValueError, KeyError) as e:
        print("verify_client.py: %s" % e, file=sys.stderr)
        sys.exit(2)
