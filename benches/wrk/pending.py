#!/usr/bin/env python3
"""Submit N pending requests for one subscriber (one key for all: the RA allows key reuse across
requests) and print their ids, one per line. Used by the wrk benchmarks.
    pending.py BASE CLERK_TOKEN CSR_FILE N [PROFILE]   (PROFILE: person-signing by default)"""
import http.client, json, sys, threading
base, token, csr_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
profile = sys.argv[5] if len(sys.argv) > 5 else "person-signing"
host, port = base.split("//")[1].split(":")
def call(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse(); data = r.read()
    assert r.status == 201, data
    return json.loads(data)["id"]
conn = http.client.HTTPConnection(host, int(port))
sub = call(conn, "/api/v1/subscribers", {"kind": "person", "name": "Bench Person", "email": "bench@example.org",
    "identifiers": [{"type": "national-id", "number": "1", "issuer": "X", "valid_until": "2099-01-01"}]})
csr = open(csr_file).read()
ids, lock = [], threading.Lock()
def worker(count):
    c = http.client.HTTPConnection(host, int(port))
    for _ in range(count):
        i = call(c, "/api/v1/requests", {"subscriber_id": sub, "profile": profile, "csr": csr})
        with lock:
            ids.append(i)
ts = [threading.Thread(target=worker, args=(n // 8 + (1 if k < n % 8 else 0),)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("\n".join(ids))
