#!/usr/bin/env bash
# layerd serve, client aborts: 200 clients that hang up in the middle of
# an export (after the request line, after 1 byte, 64 KiB or 1 MiB of the
# body; and curl closing its pipe early) leave nothing behind: afterwards
# the server's open descriptors and threads are back to their baseline,
# the export gauge is back to 0, every abort is counted and logged as
# client_aborted, and a full export still comes out whole and matching
# its digest.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan (a smaller layer; the same checks).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_abort 60
need curl sha256sum

aborts=200
mib=12
# Under ASan: smaller exports, the same aborts and checks.
[ "${LAYERD_SANITIZED:-0}" = 1 ] && mib=8

tmp=$IT_TMP
IT_STORE=$tmp/store
# A layer bigger than what the kernel's socket buffers hold, so every
# aborted export is cut while the server is still producing it.
it_big_layer "$IT_STORE" "$mib"

it_serve --max-exports 64
url="$URL/layers/big/export"

full_export() {
    it_curl --max-time 60 -D "$tmp/h" -o "$tmp/body" "$url" ||
        die "full export failed"
    want=$(it_hdr "$tmp/h" Docker-Content-Digest)
    [ -n "$want" ] || die "no digest trailer"
    [ "$(sha256_of "$tmp/body")" = "$want" ] ||
        die "export does not match its digest trailer"
    [ "$(stat -c %s "$tmp/body")" -gt $((mib * 1024 * 1024)) ] ||
        die "export shorter than its content"
}

# Warm up (thread pools, allocator arenas), then take the baseline.
full_export
full_export
sleep 0.5
base_fds=$(it_nfds)
base_threads=$(it_nthreads)

# aborter.py PORT PATH N: N clients (4 at a time) that hang up: a quarter
# after sending only the request line, the others after reading 1 byte,
# 64 KiB or 1 MiB of the response, with an RST. Small receive buffers keep
# the server from pushing the whole stream into kernel buffers first.
cat >"$tmp/aborter.py" <<'PY'
import socket, ssl, struct, sys, threading
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
errors, lock, todo = [], threading.Lock(), list(range(n))
def one(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    t = ctx.wrap_socket(s)
    if i % 4 == 0:
        t.sendall(("GET %s HTTP/1.1\r\n" % path).encode())
    else:
        t.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        want, got = (1, 65536, 1 << 20)[i % 4 - 1], 0
        while got < want:
            b = t.recv(min(65536, want - got))
            if not b:
                raise RuntimeError("server closed after %d bytes" % got)
            got += len(b)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t.close()
def worker():
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop()
        try:
            one(i)
        except Exception as e:
            with lock:
                errors.append(repr(e))
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    sys.exit("%d clients failed, e.g. %s" % (len(errors), errors[0]))
PY
"$(it_python)" "$tmp/aborter.py" "$PORT" /layers/big/export "$aborts" ||
    die "abort clients failed"
# And curl, closing its output pipe early.
for _ in $(seq 10); do
    it_curl --max-time 30 "$url" 2>/dev/null | head -c 65536 >/dev/null ||
        true
done
# Every export request: the aborts that sent a whole request, the curls.
expect=$((aborts - aborts / 4 + 10))

# Everything is released: descriptors and threads back to the baseline
# (a little slack for a connection the kernel is still tearing down).
released=
for _ in $(seq 100); do
    if [ "$(it_nfds)" -le $((base_fds + 2)) ] &&
        [ "$(it_nthreads)" -le "$base_threads" ]; then
        released=1
        break
    fi
    sleep 0.1
done
[ -n "$released" ] ||
    die "after $aborts aborts: fds $(it_nfds) (baseline $base_fds)," \
        "threads $(it_nthreads) (baseline $base_threads)"

it_curl "$URL/metrics" >"$tmp/metrics" || die "no /metrics"
grep -q '^layerd_exports_active 0$' "$tmp/metrics" ||
    die "export gauge not back to 0: $(grep exports_active "$tmp/metrics")"
counted=$(sed -n 's|^layerd_http_client_aborts_total{route="/layers/{id}/export"} \([0-9]*\)$|\1|p' \
    "$tmp/metrics")
[ "${counted:-0}" -eq "$expect" ] ||
    die "client aborts counted: ${counted:-0}, expected $expect"

# Still serving, and correctly.
full_export
it_stop
logged=$(grep '"url.path":"/layers/big/export"' "$tmp/trace.log" |
    grep -c '"layerd.outcome":"client_aborted"' || true)
[ "$logged" -eq "$expect" ] ||
    die "aborts logged as client_aborted: $logged, expected $expect"

echo "ok: serve abort ($aborts aborts)"
