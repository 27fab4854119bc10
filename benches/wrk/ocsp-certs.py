"""Issue N certificates through a running `vouch serve`, revoke every other one, and write, in WORK:

  paths      one `GET /ocsp/{base64url}` path per certificate (the request Vouch's wrk runs cycle through)
  requests   one line per certificate: serial (hex), base64 (standard) of the DER OCSP request
  certs.json the certificates as the API shows them (serial, status, not_after, revoked_at, pem, ...)

Used by ocsp.sh and ocsp-peers.sh:
  python3 benches/wrk/ocsp-certs.py BASE CLERK_TOKEN APPROVER_TOKEN REVOKER_TOKEN WORK N
WORK must hold the issuing CA certificate (issuing.pem) and a CSR (r.csr).
"""
import base64, http.client, json, subprocess, sys

base, clerk, approver, revoker, work, n = sys.argv[1:7]
host, port = base.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))


def call(method, path, token, body=None, expect=(200, 201)):
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse(); data = r.read()
    assert r.status in expect, (r.status, data)
    return json.loads(data)


sub = call("POST", "/api/v1/subscribers", clerk, {"kind": "person", "name": "Bench Person",
    "identifiers": [{"type": "national-id", "number": "1", "issuer": "X", "valid_until": "2099-01-01"}]})["id"]
csr = open(work + "/r.csr").read()
paths, requests, certs = [], [], []
for i in range(int(n)):
    req = call("POST", "/api/v1/requests", clerk, {"subscriber_id": sub, "profile": "person-signing", "csr": csr})
    serial = call("POST", "/api/v1/requests/%s/approve" % req["id"], approver)["serial"]
    if i % 2:
        call("POST", "/api/v1/certificates/%s/revoke" % serial, revoker, {"reason": "superseded"})
    certs.append(call("GET", "/api/v1/certificates/%s" % serial, clerk))
    out = subprocess.run(["openssl", "ocsp", "-no_nonce", "-issuer", work + "/issuing.pem", "-serial", "0x" + serial,
                          "-reqout", "/dev/stdout"], capture_output=True, check=True).stdout
    paths.append("/ocsp/" + base64.urlsafe_b64encode(out).decode().rstrip("="))
    requests.append(serial + " " + base64.b64encode(out).decode())
open(work + "/paths", "w").write("\n".join(paths) + "\n")
open(work + "/requests", "w").write("\n".join(requests) + "\n")
json.dump(certs, open(work + "/certs.json", "w"))
