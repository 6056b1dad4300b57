#!/usr/bin/env python3
"""pauseget.py URL PATH PAUSE_AT PAUSED GO: GET PATH from the layerd at URL
(https:// or http:// on 127.0.0.1) over a raw socket with a small receive
buffer, so that the server cannot run far ahead of what is read. After
PAUSE_AT bytes of body it creates the file PAUSED and reads nothing until
the file GO exists (30 s at most), then reads the rest. Decodes the body
itself (chunked or Content-Length) to see what http.client hides: whether
a chunked body ended with its last chunk, and its trailers. Prints one JSON
object: status, headers (lower-case names), complete (the body ended as
the protocol says it must), trailers, bytes, sha256, end (what ended it)."""
import hashlib
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse


class Conn:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ValueError("line too long")
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n):
        while not self.buf:
            self.fill()
        got, self.buf = self.buf[:n], self.buf[n:]
        return got


def main():
    url, path = sys.argv[1], sys.argv[2]
    pause_at, paused, go = int(sys.argv[3]), sys.argv[4], sys.argv[5]
    u = urllib.parse.urlsplit(url)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.settimeout(60)
    s.connect((u.hostname, u.port))
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=u.hostname)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nTE: trailers\r\n"
               "Connection: close\r\n\r\n" % path).encode())
    c = Conn(s)
    out = {"status": 0, "headers": {}, "complete": False, "trailers": {},
           "bytes": 0, "end": ""}
    h = hashlib.sha256()
    waited = False

    def body(data):
        nonlocal waited
        h.update(data)
        out["bytes"] += len(data)
        if not waited and out["bytes"] >= pause_at:
            waited = True
            open(paused, "w").close()
            for _ in range(600):
                if os.path.exists(go):
                    break
                time.sleep(0.05)

    try:
        out["status"] = int(c.line().split()[1])
        while True:
            line = c.line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            out["headers"][k.strip().lower()] = v.strip()
        if out["headers"].get("transfer-encoding", "") == "chunked":
            while True:
                size = int(c.line().split(b";")[0], 16)
                if size == 0:
                    break
                left = size
                while left:
                    data = c.take(min(left, 65536))
                    left -= len(data)
                    body(data)
                if c.line() != b"":
                    raise ValueError("no CRLF after a chunk")
            while True:
                line = c.line()
                if not line:
                    break
                k, v = line.decode("latin-1").split(":", 1)
                out["trailers"][k.strip().lower()] = v.strip()
            out["complete"] = True
            out["end"] = "last chunk"
        else:
            left = int(out["headers"].get("content-length", "0"))
            while left:
                data = c.take(min(left, 65536))
                left -= len(data)
                body(data)
            out["complete"] = True
            out["end"] = "content-length"
    except (EOFError, OSError, ValueError) as e:
        out["end"] = "%s: %s" % (type(e).__name__, e)
    if not waited:
        open(paused, "w").close()
    out["sha256"] = h.hexdigest()
    print(json.dumps(out, sort_keys=True))


main()
