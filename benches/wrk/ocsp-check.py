"""Before a measurement: send every request of a wrk request file (see ocsp-requests.lua) once to an
OCSP responder and check each answer with `openssl ocsp`: HTTP 200, response signed by a key that
chains to the CA (WORK/chain.pem), and the certificate's expected status (good or revoked, from
WORK/certs.json, same order as the request file). Then ask for one good and one revoked serial the
way an OCSP client does (`openssl ocsp -url`, POST). Exits non-zero on the first wrong answer.
  python3 benches/wrk/ocsp-check.py NAME BASE_URL REQUESTS_FILE WORK OCSP_URL
"""
import http.client, json, subprocess, sys, urllib.parse

name, base, req_file, work, ocsp_url = sys.argv[1:6]
u = urllib.parse.urlsplit(base)
certs = json.load(open(work + "/certs.json"))
lines = [l.split() for l in open(req_file) if l.strip()]
assert len(lines) == len(certs), (len(lines), len(certs))


def expected(cert):
    return "revoked" if cert["status"] == "revoked" else "good"


def check(cert, args, label):
    out = subprocess.run(["openssl", "ocsp", "-no_nonce", "-issuer", work + "/issuing.pem",
                          "-serial", "0x" + cert["serial"], "-CAfile", work + "/chain.pem"] + args,
                         capture_output=True, text=True)
    status = next((l.split(":", 1)[1].strip() for l in out.stdout.splitlines() if l.startswith("0x")), None)
    if out.returncode != 0 or "Response verify OK" not in out.stderr or status != expected(cert):
        sys.exit("%s: %s for serial %s: expected %s, openssl said:\n%s%s"
                 % (name, label, cert["serial"], expected(cert), out.stdout, out.stderr))


methods = {}
for cert, (method, path, *hexbody) in zip(certs, lines):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = bytes.fromhex(hexbody[0]) if hexbody else None
    conn.request(method, path, body, {"Content-Type": "application/ocsp-request"} if body else {})
    r = conn.getresponse(); der = r.read(); conn.close()
    if r.status != 200:
        sys.exit("%s: %s %s answered HTTP %d" % (name, method, path, r.status))
    open(work + "/check.der", "wb").write(der)
    check(cert, ["-respin", work + "/check.der"], method)
    methods[method] = methods.get(method, 0) + 1
for want in ("good", "revoked"):
    check(next(c for c in certs if expected(c) == want), ["-url", ocsp_url], "openssl ocsp -url")
print("%s: all %d requests answered 200 with a verified response and the expected status (%s); "
      "openssl ocsp -url agrees on a good and a revoked serial"
      % (name, len(lines), ", ".join("%d %s" % (n, m) for m, n in sorted(methods.items()))))
