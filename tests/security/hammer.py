#!/usr/bin/env python3
"""hammer.py [--until FILE [--max N]] URL MARKER PATH COUNT: GET PATH from
the layerd at URL (https://127.0.0.1:PORT or http://...) COUNT times,
and then on until FILE exists (at most N requests in all, default
10 * COUNT), over keep-alive connections (a new one after an error),
reading every body whole. Prints one JSON object: the number of
requests, of answers by status, of bodies cut short, of connection
errors, and of bodies that hold the bytes MARKER."""
import argparse
import http.client
import json
import os
import ssl
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--until")
    ap.add_argument("--max", type=int)
    ap.add_argument("url")
    ap.add_argument("marker")
    ap.add_argument("path")
    ap.add_argument("count", type=int)
    a = ap.parse_args()
    marker = a.marker.encode()
    most = a.max if a.max is not None else 10 * a.count
    out = {"requests": 0, "status": {}, "cut": 0, "errors": 0, "marker": 0}
    conn = None
    while out["requests"] < most:
        if out["requests"] >= a.count and (a.until is None or
                                           os.path.exists(a.until)):
            break
        out["requests"] += 1
        if conn is None:
            conn = connect(a.url)
        try:
            conn.request("GET", a.path)
            r = conn.getresponse()
            st = str(r.status)
            out["status"][st] = out["status"].get(st, 0) + 1
            try:
                body = r.read()
            except http.client.IncompleteRead as e:
                body = e.partial
                out["cut"] += 1
                conn.close()
                conn = None
            if marker in body:
                out["marker"] += 1
        except (http.client.HTTPException, OSError):
            out["errors"] += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
    print(json.dumps(out, sort_keys=True))


main()
