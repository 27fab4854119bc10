"""Send a fixed set of OCSP GET requests over a few keep-alive connections and check every answer.

  python3 benches/wrk/ocsp-fixed.py BASE PATHS_FILE REQUESTS [CONNECTIONS]

Connection c sends REQUESTS / CONNECTIONS requests, one after the other, cycling through the paths
in PATHS_FILE from offset c. The same arguments always send the same requests, so a server's work
for them can be counted (ocsp-count.sh) and compared between builds.
"""
import http.client, sys, threading

base, paths_file, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
connections = int(sys.argv[4]) if len(sys.argv) > 4 else 4
host, port = base.split("//")[1].split(":")
paths = [p for p in open(paths_file).read().split("\n") if p]
failures = []


def run(c):
    conn = http.client.HTTPConnection(host, int(port))
    for i in range(total // connections):
        conn.request("GET", paths[(c * 97 + i) % len(paths)])
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or r.getheader("Content-Type") != "application/ocsp-response" or not body:
            failures.append((r.status, body[:80]))
    conn.close()


threads = [threading.Thread(target=run, args=(c,)) for c in range(connections)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    sys.exit("%d bad answers, first: %r" % (len(failures), failures[0]))
