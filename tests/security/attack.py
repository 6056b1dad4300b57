#!/usr/bin/env python3
"""Hostile and slow HTTP(S) clients for the tests in tests/security/.

Each subcommand plays one kind of client against a server on loopback and
prints one JSON object with what it saw; the calling script asserts on it.
Every wait is bounded, so a run always ends by itself.

  slowheaders  N clients that send a request line, then one header line
               every --interval seconds, never ending their headers
  keepalive    one request answered, then on the same connection the next
               request's line and one header line every --interval s
  genuine      one client making --count requests one after another, each
               on a new connection; latency of each
  bigheaders   N clients each sending --size bytes of headers; the server's
               RSS (--pid) before, while they hold, and after
  slowread     N clients reading a response at --rate bytes/s
  noread       N clients that send a request and never read the answer
  hold         N clients that connect and send nothing

Common options: --port, --host (default 127.0.0.1), --source (the client
address to bind, e.g. 127.0.0.2: loopback answers on all of 127/8, so a
test can be several clients), --plain (HTTP instead of HTTPS).
"""

import argparse
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time

TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def rss_kib(pid):
    """Resident set of a process in KiB (0 if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def connect(args, timeout=10.0, rcvbuf=None):
    """A connected socket (TLS unless --plain), or raise OSError."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    try:
        if args.source:
            s.bind((args.source, 0))
        s.connect((args.host, args.port))
        if not args.plain:
            s = TLS.wrap_socket(s, server_hostname=args.host)
    except (OSError, ssl.SSLError):
        s.close()
        raise
    return s


def request(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode()


def read_status(s, limit=65536):
    """The status code of the response on s, or None if the server closed
    (or reset) the connection before sending one."""
    buf = b""
    try:
        while b"\r\n" not in buf and len(buf) < limit:
            b = s.recv(4096)
            if not b:
                return None
            buf += b
    except (OSError, ssl.SSLError):
        return None
    parts = buf.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def run_threads(n, fn):
    results = [None] * n
    threads = []
    for i in range(n):
        def body(i=i):
            try:
                results[i] = fn(i)
            except Exception as e:  # report, never hang the run
                results[i] = {"error": type(e).__name__ + ": " + str(e)}
        t = threading.Thread(target=body, daemon=True)
        t.start()
        threads.append(t)
    return results, threads


def join_all(threads, deadline):
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


# ---- slowheaders ----

def cmd_slowheaders(args):
    t0 = time.monotonic()
    end = t0 + args.duration

    def client(i):
        try:
            s = connect(args)
        except (OSError, ssl.SSLError) as e:
            return {"connected": False, "closed_at": time.monotonic() - t0,
                    "why": type(e).__name__}
        try:
            s.sendall(("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").encode())
            n = 0
            while time.monotonic() < end:
                # Wait one interval, watching for the server hanging up.
                s.settimeout(min(args.interval, max(0.01, end - time.monotonic())))
                try:
                    b = s.recv(4096)
                    if not b:
                        return {"connected": True,
                                "closed_at": time.monotonic() - t0,
                                "why": "eof"}
                    # an answer (e.g. 408) before the headers ended
                    return {"connected": True,
                            "closed_at": time.monotonic() - t0,
                            "why": "answered"}
                except socket.timeout:
                    pass
                except (OSError, ssl.SSLError) as e:
                    return {"connected": True,
                            "closed_at": time.monotonic() - t0,
                            "why": type(e).__name__}
                if time.monotonic() >= end:
                    break
                n += 1
                try:
                    s.sendall(("X-Slow-%d: %d\r\n" % (n, n)).encode())
                except (OSError, ssl.SSLError) as e:
                    return {"connected": True,
                            "closed_at": time.monotonic() - t0,
                            "why": type(e).__name__}
            return {"connected": True, "closed_at": None, "lines": n}
        finally:
            s.close()

    results, threads = run_threads(args.clients, client)
    join_all(threads, end + 15)
    held = sorted(r["closed_at"] for r in results
                  if r and r.get("connected") and r.get("closed_at") is not None)
    refused = sorted(r["closed_at"] for r in results
                     if r and r.get("connected") is False)
    print(json.dumps({
        "clients": args.clients,
        # connected: the TLS handshake completed; refused: it did not
        # (the server closed the connection at once)
        "connected": sum(1 for r in results if r and r.get("connected")),
        "refused": len(refused),
        "refused_at_max": refused[-1] if refused else None,
        "dropped": len(held),
        "dropped_at_min": held[0] if held else None,
        "dropped_at_max": held[-1] if held else None,
        "open_at_end": sum(1 for r in results
                           if r and r.get("connected") and r.get("closed_at") is None),
        "errors": [r["error"] for r in results if r and "error" in r][:5],
    }))


# ---- keepalive ----

def cmd_keepalive(args):
    """One request answered on a kept-alive connection, a pause, then the
    next request line and header lines trickled: when does the server
    close?"""
    s = connect(args)
    try:
        s.sendall(request("/healthz"))
        buf, want = b"", None
        while want is None or len(buf) < want:
            b = s.recv(4096)
            if not b:
                print(json.dumps({"error": "closed after the first request"}))
                return
            buf += b
            if want is None and b"\r\n\r\n" in buf:
                head = buf.split(b"\r\n\r\n", 1)[0]
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        want = len(head) + 4 + int(v)
        first = int(buf.split(b"\r\n", 1)[0].split()[1])
        time.sleep(args.pause)
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        n = 0
        s.settimeout(args.interval)
        while time.monotonic() - t0 < args.duration:
            try:
                b = s.recv(4096)
                how = "eof" if not b else "answered"
                break
            except socket.timeout:
                pass
            except (OSError, ssl.SSLError) as e:
                how = type(e).__name__
                break
            n += 1
            try:
                s.sendall(("X-Slow-%d: %d\r\n" % (n, n)).encode())
            except (OSError, ssl.SSLError) as e:
                how = type(e).__name__
                break
        else:
            how = "open"
        print(json.dumps({"first": first, "closed_after": time.monotonic() - t0,
                          "how": how, "lines": n}))
    finally:
        s.close()


# ---- genuine ----

def cmd_genuine(args):
    lat, fails = [], []
    t_end = time.monotonic() + args.count * (args.timeout + 1) + 5
    for i in range(args.count):
        if time.monotonic() > t_end:
            fails.append("out of time")
            break
        t = time.monotonic()
        try:
            s = connect(args, timeout=args.timeout)
            try:
                s.sendall(request(args.path))
                st = read_status(s)
            finally:
                s.close()
        except (OSError, ssl.SSLError) as e:
            st = None
            fails.append("%d: %s" % (i, type(e).__name__))
        dt = time.monotonic() - t
        lat.append(dt)
        if st != args.status:
            fails.append("%d: status %s after %.2f s" % (i, st, dt))
        if args.pause:
            time.sleep(args.pause)
    lat.sort()
    print(json.dumps({
        "count": len(lat),
        "ok": len(lat) - len({f.split(":")[0] for f in fails}),
        "max": lat[-1] if lat else None,
        "median": lat[len(lat) // 2] if lat else None,
        "within": sum(1 for x in lat if x <= args.timeout),
        "failures": fails[:10],
    }))


# ---- bigheaders ----

def cmd_bigheaders(args):
    pid = args.pid
    line_len = 8000
    before = rss_kib(pid) if pid else 0
    ready = threading.Barrier(args.clients + 1)
    finish = threading.Event()

    def client(i):
        res = {"status": None, "sent": 0}
        try:
            s = connect(args, timeout=20)
        except (OSError, ssl.SSLError) as e:
            res["refused"] = type(e).__name__
            try:
                ready.wait(30)
            except threading.BrokenBarrierError:
                pass
            return res
        try:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                k = 0
                while res["sent"] < args.size:
                    val = "a" * min(line_len, args.size - res["sent"])
                    line = ("X-Big-%d: %s\r\n" % (k, val)).encode()
                    s.sendall(line)
                    res["sent"] += len(line)
                    k += 1
            except (OSError, ssl.SSLError) as e:
                res["send_error"] = type(e).__name__
            try:
                ready.wait(60)
            except threading.BrokenBarrierError:
                pass
            finish.wait(60)
            try:
                s.sendall(b"\r\n")
            except (OSError, ssl.SSLError):
                pass
            res["status"] = read_status(s)
            return res
        finally:
            s.close()

    results, threads = run_threads(args.clients, client)
    try:
        ready.wait(90)
    except threading.BrokenBarrierError:
        pass
    # Every client has sent what it could: the server holds it now.
    held = 0
    t_end = time.monotonic() + args.hold
    while True:
        if pid:
            held = max(held, rss_kib(pid))
        if time.monotonic() >= t_end:
            break
        time.sleep(0.1)
    finish.set()
    join_all(threads, time.monotonic() + 60)
    statuses = {}
    for r in results:
        k = str(r.get("status")) if r else "None"
        statuses[k] = statuses.get(k, 0) + 1
    print(json.dumps({
        "clients": args.clients,
        "rss_before_kib": before,
        "rss_held_kib": held,
        "rss_after_kib": rss_kib(pid) if pid else 0,
        "statuses": statuses,
        "send_errors": sum(1 for r in results if r and "send_error" in r),
        "sent_max": max((r.get("sent", 0) for r in results if r), default=0),
        "errors": [r["error"] for r in results if r and "error" in r][:5],
    }))


# ---- slowread ----

def cmd_slowread(args):
    t0 = time.monotonic()

    def client(i):
        s = connect(args, timeout=args.timeout, rcvbuf=32768)
        try:
            s.sendall(request(args.path))
            n, h = 0, hashlib.sha256()
            head = b""
            status = None
            start = time.monotonic()
            try:
                while time.monotonic() - t0 < args.duration:
                    if args.stop_file and os.path.exists(args.stop_file):
                        break
                    b = s.recv(16384)
                    if not b:
                        break
                    if status is None:
                        head += b
                        if b"\r\n\r\n" not in head:
                            continue
                        hdr, b = head.split(b"\r\n\r\n", 1)
                        status = int(hdr.split(b"\r\n", 1)[0].split()[1])
                    n += len(b)
                    h.update(b)
                    ahead = n / args.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
                how = "eof"
            except (OSError, ssl.SSLError) as e:
                how = type(e).__name__
            if time.monotonic() - t0 >= args.duration or (
                    args.stop_file and os.path.exists(args.stop_file)):
                how = "stopped"
            return {"status": status, "bytes": n, "end": how,
                    "at": time.monotonic() - t0}
        finally:
            s.close()

    results, threads = run_threads(args.clients, client)
    join_all(threads, t0 + args.duration + 30)
    print(json.dumps({"clients": results}))


# ---- noread / hold ----

def cmd_noread(args):
    socks, errors = [], []
    for i in range(args.clients):
        try:
            s = connect(args, timeout=10, rcvbuf=4096)
            s.sendall(request(args.path))
            socks.append(s)
        except (OSError, ssl.SSLError) as e:
            errors.append(type(e).__name__)
    print(json.dumps({"connected": len(socks), "errors": errors[:5]}),
          flush=True)
    # Hold without reading until told to stop (the file) or for --hold s.
    t_end = time.monotonic() + args.hold
    while time.monotonic() < t_end:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        time.sleep(0.1)
    for s in socks:
        s.close()


def cmd_hold(args):
    socks, refused = [], 0
    for i in range(args.clients):
        try:
            socks.append(connect(args, timeout=10))
        except (OSError, ssl.SSLError):
            refused += 1
    print(json.dumps({"connected": len(socks), "refused": refused}),
          flush=True)
    t_end = time.monotonic() + args.hold
    while time.monotonic() < t_end:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        time.sleep(0.1)
    for s in socks:
        s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default=None)
    p.add_argument("--plain", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    a = sub.add_parser("slowheaders")
    a.add_argument("--clients", type=int, default=64)
    a.add_argument("--interval", type=float, default=2.0)
    a.add_argument("--duration", type=float, default=30.0)

    a = sub.add_parser("keepalive")
    a.add_argument("--pause", type=float, default=1.0)
    a.add_argument("--interval", type=float, default=0.5)
    a.add_argument("--duration", type=float, default=20.0)

    a = sub.add_parser("genuine")
    a.add_argument("--count", type=int, default=50)
    a.add_argument("--path", default="/healthz")
    a.add_argument("--status", type=int, default=200)
    a.add_argument("--timeout", type=float, default=2.0)
    a.add_argument("--pause", type=float, default=0.0)

    a = sub.add_parser("bigheaders")
    a.add_argument("--clients", type=int, default=100)
    a.add_argument("--size", type=int, default=900000)
    a.add_argument("--pid", type=int, default=0)
    a.add_argument("--hold", type=float, default=2.0)

    a = sub.add_parser("slowread")
    a.add_argument("--clients", type=int, default=8)
    a.add_argument("--path", required=True)
    a.add_argument("--rate", type=float, default=100000)
    a.add_argument("--duration", type=float, default=30.0)
    a.add_argument("--timeout", type=float, default=30.0)
    a.add_argument("--stop-file", default=None)

    a = sub.add_parser("noread")
    a.add_argument("--clients", type=int, default=8)
    a.add_argument("--path", required=True)
    a.add_argument("--hold", type=float, default=30.0)
    a.add_argument("--stop-file", default=None)

    a = sub.add_parser("hold")
    a.add_argument("--clients", type=int, default=8)
    a.add_argument("--hold", type=float, default=30.0)
    a.add_argument("--stop-file", default=None)

    args = p.parse_args()
    {"slowheaders": cmd_slowheaders, "keepalive": cmd_keepalive,
     "genuine": cmd_genuine,
     "bigheaders": cmd_bigheaders, "slowread": cmd_slowread,
     "noread": cmd_noread, "hold": cmd_hold}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
