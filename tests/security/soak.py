#!/usr/bin/env python3
"""The soak's clients: N threads, each a client address of its own, that
for DURATION seconds pick one action at a time from a weighted mix and
check its outcome. Run by tests/security/soak.sh.

    soak.py CONFIG.json DURATION CLIENTS

CONFIG lists the servers: [{"name": ..., "port": ..., "big": LAYER or
null}, ...]. Each server's layers and a few of their files are learned
at the start from /layers and /entries.

Genuine actions must succeed: exports (none, gzip or zstd at a level
allowed) whose Docker-Content-Digest (a header when the blob cache kept
the blob, else a trailer) is the SHA-256 of the body and is the same
every time for one layer, format and level; entry
listings (NDJSON, every line an object) of the same length every time;
files, whole and by range, the range being the slice of the whole;
listings, /healthz and /readyz. A 503 with Retry-After is a cap doing its
job: the client waits and tries again, up to RETRY_FOR seconds, and only
then counts a failure.

Hostile and careless actions check what the server does to them: a level
above the ceiling is 400; 100 KB of headers get 431 or a closed
connection; headers trickled forever are cut off by the header deadline;
garbage is 400 or closed; clients that abort a stream, read it at 5 KB/s
or never read it are simply let go (the server must survive them, which
the genuine actions and the end state check).

Prints one JSON summary; exits 1 if a genuine action failed or a hostile
one was not handled as it should be.
"""

import hashlib
import json
import random
import socket
import ssl
import sys
import threading
import time

TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE

RETRY_FOR = 60.0
HEADER_DEADLINE = 5.0  # the servers run with --header-timeout 5
SLACK = 6.0            # a sanitizer build is slow

lock = threading.Lock()
stats = {}
failures = []
seen_digest = {}
seen_count = {}
seen_file = {}
health_lat = []


def note(action, outcome):
    with lock:
        stats.setdefault(action, {}).setdefault(outcome, 0)
        stats[action][outcome] += 1


def failed(action, why):
    with lock:
        failures.append("%s: %s" % (action, why))
    note(action, "FAILED")


class Cut(Exception):
    pass


def connect(srv, source, timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", srv["port"]))
    return TLS.wrap_socket(s, server_hostname="127.0.0.1")


class Reader:
    """Buffered reads off a socket, for status lines, headers and chunks.
    The buffer is a bytearray: appending to bytes copies the whole buffer
    each time, which made reading a 24 MiB body of known length (a blob
    the cache kept) quadratic and starved every other client thread."""

    def __init__(self, sock, rate=None, limit=None):
        self.s, self.buf, self.rate, self.limit = sock, bytearray(), rate, limit
        self.taken, self.t0 = 0, time.monotonic()

    def fill(self):
        if self.limit is not None and self.taken >= self.limit:
            raise Cut("limit")
        b = self.s.recv(16384)
        if not b:
            raise Cut("eof")
        self.buf += b
        self.taken += len(b)
        if self.rate:
            ahead = self.taken / self.rate - (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(ahead)

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                break
            if len(self.buf) > 65536:
                raise Cut("line too long")
            self.fill()
        ln = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return ln

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d


def get(srv, source, path, headers=(), rate=None, limit=None, timeout=60):
    """GET over a fresh connection: (status, headers, body, trailers,
    complete); status None if the connection ended before one."""
    s = connect(srv, source, timeout)
    try:
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path
        for k, v in headers:
            req += "%s: %s\r\n" % (k, v)
        s.sendall((req + "\r\n").encode())
        r = Reader(s, rate, limit)
        try:
            st = r.line().split()
            status = int(st[1])
            hdrs = {}
            while True:
                ln = r.line()
                if not ln:
                    break
                k, _, v = ln.decode("latin-1").partition(":")
                hdrs[k.strip().lower()] = v.strip()
        except (Cut, OSError, ssl.SSLError, IndexError, ValueError):
            return None, {}, b"", {}, False
        body, trailers = [], {}
        try:
            if hdrs.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    n = int(r.line().split(b";")[0], 16)
                    if n == 0:
                        while True:
                            ln = r.line()
                            if not ln:
                                break
                            k, _, v = ln.decode("latin-1").partition(":")
                            trailers[k.strip().lower()] = v.strip()
                        break
                    body.append(r.take(n))
                    r.take(2)
            elif "content-length" in hdrs:
                body.append(r.take(int(hdrs["content-length"])))
            return status, hdrs, b"".join(body), trailers, True
        except (Cut, OSError, ssl.SSLError, ValueError):
            return status, hdrs, b"".join(body), trailers, False
    finally:
        s.close()


def genuine(action, srv, source, path, headers=(), want=200, check=None):
    """A request that must succeed (after waiting out 503s)."""
    t_end = time.monotonic() + RETRY_FOR
    while True:
        try:
            st, h, body, tr, done = get(srv, source, path, headers)
        except (OSError, ssl.SSLError) as e:
            st, h, body, tr, done = None, {}, b"", {}, False
            err = type(e).__name__
        else:
            err = None
        if st == 503 and "retry-after" in h and time.monotonic() < t_end:
            note(action, "503, retried")
            time.sleep(0.2 + random.random())
            continue
        if st != want or not done:
            failed(action, "%s %s: status %s, complete %s%s" % (
                srv["name"], path, st, done, ", " + err if err else ""))
            return None
        if check is not None:
            why = check(h, body, tr)
            if why:
                failed(action, "%s %s: %s" % (srv["name"], path, why))
                return None
        note(action, "ok")
        return body


def do_export(srv, source):
    layer = random.choice(srv["layers"])
    comp = random.choice(["none", "gzip", "zstd", "zstd"])
    q = "compression=" + comp
    if comp != "none" and random.random() < 0.5:
        top = 3 if comp == "gzip" else 9
        q += "&level=%d" % random.randint(1, top)
    path = "/layers/%s/export?%s" % (layer, q)

    def check(h, body, tr):
        dig = "sha256:" + hashlib.sha256(body).hexdigest()
        # a blob the cache kept has its digest in the header; a stream
        # being made, in the trailer
        got = h.get("docker-content-digest") or tr.get("docker-content-digest")
        if got != dig:
            return "digest %s, body %s" % (got, dig)
        if tr.get("docker-content-digest", dig) != dig:
            return "digest trailer %s, header %s" % (tr.get("docker-content-digest"), got)
        key = (srv["name"], path)
        with lock:
            prev = seen_digest.setdefault(key, dig)
        if prev != dig:
            return "digest %s, earlier %s" % (dig, prev)
        return None
    genuine("export", srv, source, path, check=check)


def do_entries(srv, source):
    layer = random.choice(srv["layers"])
    q = random.choice(["", "?depth=1", "?limit=5", "?prefix=etc"])
    path = "/layers/%s/entries%s" % (layer, q)

    def check(h, body, tr):
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for ln in lines:
            if not ln.startswith(b"{") or not ln.endswith(b"}"):
                return "not an object: %r" % ln[:80]
        key = (srv["name"], path)
        with lock:
            prev = seen_count.setdefault(key, len(lines))
        if prev != len(lines):
            return "%d entries, earlier %d" % (len(lines), prev)
        return None
    genuine("entries", srv, source, path, check=check)


def do_file(srv, source):
    if not srv["files"]:
        return do_entries(srv, source)
    layer, fpath = random.choice(srv["files"])
    path = "/layers/%s/files/%s" % (layer, fpath)
    whole = genuine("file", srv, source, path)
    if whole is None or len(whole) < 2:
        return
    a = random.randrange(len(whole))
    b = random.randrange(a, len(whole))

    def check(h, body, tr):
        if body != whole[a:b + 1]:
            return "range %d-%d is not the slice of the whole" % (a, b)
        return None
    genuine("file-range", srv, source, path, headers=[("Range", "bytes=%d-%d" % (a, b))],
            want=206, check=check)


def do_listing(srv, source):
    genuine("listing", srv, source, random.choice(
        ["/layers", "/layers?limit=2", "/layers/%s" % random.choice(srv["layers"])]))


def do_health(srv, source):
    t = time.monotonic()
    genuine("health", srv, source, random.choice(["/healthz", "/readyz"]))
    with lock:
        health_lat.append(time.monotonic() - t)


def do_level(srv, source):
    path = "/layers/%s/export?compression=zstd&level=%d" % (
        random.choice(srv["layers"]), random.randint(10, 19))
    st, h, body, tr, done = get(srv, source, path)
    if st != 400 or b"level-not-allowed" not in body:
        failed("level", "%s: status %s" % (path, st))
    else:
        note("level", "400")


def do_big_headers(srv, source):
    try:
        st, h, body, tr, done = get(srv, source, "/healthz",
                                    headers=[("X-Pad-%d" % i, "a" * 8000) for i in range(13)])
    except (OSError, ssl.SSLError):
        st = None
    if st not in (431, None):
        failed("big-headers", "status %s" % st)
    else:
        note("big-headers", str(st))


def do_slow_headers(srv, source):
    s = connect(srv, source)
    t0 = time.monotonic()
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        s.settimeout(0.5)
        n = 0
        while time.monotonic() - t0 < HEADER_DEADLINE + SLACK:
            try:
                if not s.recv(4096):
                    note("slow-headers", "cut")
                    return
            except socket.timeout:
                pass
            except (OSError, ssl.SSLError):
                note("slow-headers", "cut")
                return
            n += 1
            try:
                s.sendall(b"X-Slow-%d: 1\r\n" % n)
            except (OSError, ssl.SSLError):
                note("slow-headers", "cut")
                return
        failed("slow-headers", "still open after %.1f s" % (time.monotonic() - t0))
    finally:
        s.close()


def do_garbage(srv, source):
    try:
        s = connect(srv, source)
    except (OSError, ssl.SSLError):
        note("garbage", "refused")
        return
    try:
        s.sendall(random.choice([b"\x00\x01\x02garbage\r\n\r\n",
                                 b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                                 b"GET / HTTP/9.9\r\n\r\n",
                                 b"BREW /layers HTTP/1.1\r\nHost: x\r\n\r\n"]))
        st = Reader(s).line().split()[1]
        note("garbage", st.decode())
    except (Cut, OSError, ssl.SSLError, IndexError):
        note("garbage", "closed")
    finally:
        s.close()


def do_abort(srv, source):
    layer = srv["big"] or random.choice(srv["layers"])
    st, h, body, tr, done = get(srv, source, "/layers/%s/export" % layer,
                                limit=random.choice([1, 65536, 1 << 20]))
    note("abort", "cut" if not done else "complete")


def do_slow_read(srv, source):
    layer = srv["big"] or random.choice(srv["layers"])
    try:
        st, h, body, tr, done = get(srv, source, "/layers/%s/export" % layer,
                                    rate=5000, timeout=30)
    except (OSError, ssl.SSLError):
        done = False
    note("slow-read", "complete" if done else "dropped")


def do_no_read(srv, source):
    s = connect(srv, source)
    try:
        layer = srv["big"] or random.choice(srv["layers"])
        s.sendall(b"GET /layers/%s/entries HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % layer.encode())
        time.sleep(5)
        note("no-read", "left")
    finally:
        s.close()


ACTIONS = [
    (do_export, 20), (do_entries, 14), (do_file, 12), (do_listing, 8),
    (do_health, 10), (do_level, 4), (do_big_headers, 4), (do_slow_headers, 3),
    (do_garbage, 4), (do_abort, 8), (do_slow_read, 3), (do_no_read, 3),
]


def learn(srv, source):
    """The server's layers, and up to 6 regular files to read."""
    st, h, body, tr, done = get(srv, source, "/layers")
    if st != 200:
        raise SystemExit("%s: /layers answered %s" % (srv["name"], st))
    doc = json.loads(body)
    items = doc["layers"] if isinstance(doc, dict) else doc
    srv["layers"] = [l["id"] for l in items]
    srv["files"] = []
    for layer in srv["layers"]:
        st, h, body, tr, done = get(srv, source, "/layers/%s/entries?limit=200" % layer)
        for ln in body.split(b"\n"):
            if not ln:
                continue
            e = json.loads(ln)
            if e.get("type") == "file" and e.get("change") != "delete" and \
                    0 < e.get("size", 0) < (1 << 20) and len(srv["files"]) < 6:
                srv["files"].append((layer, e["path"]))
    if srv.get("big") not in srv["layers"]:
        srv["big"] = None


def main():
    servers = json.load(open(sys.argv[1]))
    duration, clients = float(sys.argv[2]), int(sys.argv[3])
    for srv in servers:
        learn(srv, "127.0.0.1")
    funcs = [f for f, w in ACTIONS for _ in range(w)]
    t_end = time.monotonic() + duration

    def worker(i):
        source = "127.0.%d.%d" % (2 + i // 200, 2 + i % 200)
        rng = random.Random(i)
        while time.monotonic() < t_end:
            srv = servers[rng.randrange(len(servers))]
            f = rng.choice(funcs)
            try:
                f(srv, source)
            except Exception as e:  # an unexpected client-side error
                failed(f.__name__, "%s: %s" % (type(e).__name__, e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + RETRY_FOR + 120)
    lat = sorted(health_lat)
    summary = {
        "seconds": duration, "clients": clients,
        "actions": stats,
        "genuine_ok": sum(v.get("ok", 0) for v in stats.values()),
        "retried_503": sum(v.get("503, retried", 0) for v in stats.values()),
        "failures": len(failures), "failure_examples": failures[:20],
        "health_max_s": lat[-1] if lat else None,
        "health_p99_s": lat[int(len(lat) * 0.99)] if lat else None,
        "stuck_clients": sum(1 for t in threads if t.is_alive()),
    }
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 1 if failures or summary["stuck_clients"] else 0


if __name__ == "__main__":
    sys.exit(main())
