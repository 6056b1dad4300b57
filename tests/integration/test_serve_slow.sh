#!/usr/bin/env bash
# layerd serve, slow readers: a client reading an export at 630 KB/s holds
# the stream open on the server (backpressure reaches the producer) while
# the server stays nearly idle (CPU time far below the transfer time: no
# spinning on a full socket or an empty producer); several slow clients,
# more than the server has worker threads, do not delay a fast one; the
# slow transfer arrives whole; a client that stops reading altogether is
# dropped after --idle-timeout.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan (the same checks, with more CPU allowed).
set -euo pipefail
: "${LAYERD:?}" "${LAYERD_SOURCE_DIR:?}"

cpu_pct=15
[ "${LAYERD_SANITIZED:-0}" = 1 ] && cpu_pct=30

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    jobs -p | xargs -r kill -9 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/server.log" ] && tail -n 20 "$tmp/server.log" >&2
    exit 1
}

# 6 MiB, incompressible: 10 s at 630 KB/s, and more than the kernel's
# socket buffers take (tcp_wmem grows a send buffer to 4 MiB).
mkdir -p "$tmp/store/big/fs"
echo '{"kind": "diff"}' >"$tmp/store/big/layer.json"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$tmp/store/big/fs/blob"

# slowget.py PORT PATH RATE: GET PATH at RATE bytes/s through a small
# receive buffer; prints "complete STATUS BYTES SHA256" or "cut ...".
cat >"$tmp/slowget.py" <<'PY'
import hashlib, http.client, socket, ssl, sys, time
port, path, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
class Conn(http.client.HTTPSConnection):
    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.settimeout(30)
        s.connect((self.host, self.port))
        self.sock = self._context.wrap_socket(s, server_hostname=self.host)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = Conn("127.0.0.1", port, context=ctx)
c.request("GET", path)
r = c.getresponse()
n, t0, h = 0, time.monotonic(), hashlib.sha256()
try:
    while True:
        b = r.read(16384)
        if not b:
            break
        n += len(b)
        h.update(b)
        ahead = n / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print("complete", r.status, n, h.hexdigest())
except (http.client.HTTPException, ssl.SSLError, OSError) as e:
    print("cut", r.status, n, type(e).__name__)
PY

"$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
    --trace "$tmp/trace.log" 2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
        "$tmp/server.log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited at start-up"
    sleep 0.05
done
[ -n "$port" ] || fail "server did not report its port"
url="https://127.0.0.1:$port/layers/big/export"

curl -sSk --max-time 30 -D "$tmp/h" -o /dev/null "$url" ||
    fail "reference export failed"
digest=$(sed -n 's/^Docker-Content-Digest: sha256:\([0-9a-f]*\).*/\1/ip' \
    "$tmp/h" | tr -d '\r')
[ -n "$digest" ] || fail "no digest trailer"

# CPU time (user + system, in clock ticks) of the server so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

t0=$(date +%s%N)
c0=$(cpu_ticks)
slow_pids=()
for i in 1 2 3 4; do
    python3 "$tmp/slowget.py" "$port" /layers/big/export 630000 \
        >"$tmp/slow$i.out" 2>&1 &
    slow_pids+=($!)
done
sleep 2
# A fast client is not held up by four slow ones.
f0=$(date +%s%N)
curl -sSk --max-time 30 -o /dev/null "$url" || fail "fast export failed"
fast_ms=$((($(date +%s%N) - f0) / 1000000))
[ "$fast_ms" -lt 5000 ] ||
    fail "a fast export took $fast_ms ms next to slow clients"
wait_all=0
for j in "${slow_pids[@]}"; do
    wait "$j" || wait_all=1
done
[ "$wait_all" -eq 0 ] || fail "a slow client failed"
wall_ms=$((($(date +%s%N) - t0) / 1000000))
cpu_ms=$((($(cpu_ticks) - c0) * 1000 / hz))

for i in 1 2 3 4; do
    grep -q "^complete 200 [0-9]* $digest\$" "$tmp/slow$i.out" ||
        fail "slow transfer $i: $(cat "$tmp/slow$i.out")"
done
[ "$wall_ms" -ge 8000 ] || fail "slow transfers took only $wall_ms ms"
[ $((cpu_ms * 100)) -le $((wall_ms * cpu_pct)) ] ||
    fail "server used $cpu_ms ms CPU over $wall_ms ms of slow transfers"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "server exited with $rc"
# The server really held the streams: the request spans lasted seconds,
# not the milliseconds of producing into kernel buffers.
held=$(grep '"name":"http.request"' "$tmp/trace.log" |
    grep '"url.path":"/layers/big/export"' |
    sed -n 's/.*"duration_ms":\([0-9]*\).*/\1/p' | sort -n | tail -n 4 |
    head -n 1)
[ "${held:-0}" -ge 2000 ] ||
    fail "slow streams ended on the server after ${held:-0} ms"

# ---- a client that stops reading is dropped after --idle-timeout ----
"$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
    --trace "$tmp/trace2.log" --idle-timeout 2 2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
        "$tmp/server.log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited at start-up"
    sleep 0.05
done
[ -n "$port" ] || fail "server did not report its port"
cat >"$tmp/stall.py" <<'PY'
import socket, ssl, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("127.0.0.1", port))
t = ctx.wrap_socket(s)
t.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
t.recv(1)
time.sleep(60)
PY
python3 "$tmp/stall.py" "$port" /layers/big/export &
stall=$!
dropped=
for _ in $(seq 200); do
    if grep '"url.path":"/layers/big/export"' "$tmp/trace2.log" 2>/dev/null |
        grep -q '"layerd.outcome":"timeout"'; then
        dropped=1
        break
    fi
    sleep 0.1
done
kill "$stall" 2>/dev/null || true
wait "$stall" 2>/dev/null || true
[ -n "$dropped" ] || fail "a stalled client was not dropped"
curl -sSk --max-time 10 -o /dev/null "https://127.0.0.1:$port/healthz" ||
    fail "server does not serve after dropping a stalled client"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "server exited with $rc"

echo "ok: serve slow (cpu ${cpu_ms} ms over ${wall_ms} ms)"
