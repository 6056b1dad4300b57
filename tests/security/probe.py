#!/usr/bin/env python3
"""probe.py COMMAND URL ...: timed requests to a layerd at URL
(https://127.0.0.1:PORT), over keep-alive connections. Prints one JSON
object.

  list URL                   page through /layers?limit=1000 following
                             "next": {"count", "pages", "seconds"}
  time URL PATH N            N requests of PATH: {"status": [...],
                             "ms": [...]} in order
  busy URL K SECONDS STOP    K threads page through /layers again and
                             again, until the file STOP exists or SECONDS
                             pass: {"listings"}
  until URL PATH STATUS MAX [SRC DST]
                             rename SRC to DST (the change to see), then
                             request PATH every 10 ms until it answers
                             STATUS, MAX seconds at most: {"seconds"} since
                             the rename (-1: never)
"""
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse


def connect(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                           timeout=30)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def listing(conn, parse=True):
    """Every layer id, page by page; (count, pages)."""
    count, pages, after = 0, 0, None
    while True:
        path = "/layers?limit=1000"
        if after is not None:
            path += "&after=" + urllib.parse.quote(after, safe="")
        status, body = get(conn, path)
        if status != 200:
            raise RuntimeError("GET %s: %d" % (path, status))
        pages += 1
        doc = json.loads(body)
        count += len(doc["layers"])
        after = doc.get("next")
        if after is None:
            return count, pages


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    if cmd == "list":
        conn = connect(url)
        t0 = time.monotonic()
        count, pages = listing(conn)
        print(json.dumps({"count": count, "pages": pages,
                          "seconds": time.monotonic() - t0}))
    elif cmd == "time":
        path, n = sys.argv[3], int(sys.argv[4])
        conn = connect(url)
        get(conn, "/healthz")  # the connection is up before timing
        out = {"status": [], "ms": []}
        for _ in range(n):
            t0 = time.monotonic()
            status, _ = get(conn, path)
            out["ms"].append((time.monotonic() - t0) * 1000)
            out["status"].append(status)
        print(json.dumps(out))
    elif cmd == "busy":
        k, seconds, stop = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
        done = [0]
        lock = threading.Lock()
        end = time.monotonic() + seconds

        def run():
            conn = connect(url)
            while time.monotonic() < end and not os.path.exists(stop):
                listing(conn)
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=run) for _ in range(k)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps({"listings": done[0]}))
    elif cmd == "until":
        path, want, most = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        conn = connect(url)
        get(conn, "/healthz")  # the connection is up before timing
        t0 = time.monotonic()
        if len(sys.argv) > 7:
            os.rename(sys.argv[6], sys.argv[7])
        while time.monotonic() - t0 < most:
            status, _ = get(conn, path)
            if status == want:
                print(json.dumps({"seconds": time.monotonic() - t0}))
                return
            time.sleep(0.01)
        print(json.dumps({"seconds": -1}))
    else:
        sys.exit("probe.py: unknown command " + cmd)


main()
