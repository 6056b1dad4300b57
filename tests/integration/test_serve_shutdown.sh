#!/usr/bin/env bash
# layerd serve, shutdown and signals: SIGHUP leaves the server running
# (and reopens the trace file); SIGTERM stops accepting at once, lets a
# running export finish within --grace (the client gets the complete,
# correct body), and exits 0; an export that outlasts the grace period is
# cut (the client sees a truncated transfer, never a clean end) and the
# server still exits 0, promptly; an idle server exits at once.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan (the same checks, with more time allowed).
set -euo pipefail
: "${LAYERD:?}" "${LAYERD_SOURCE_DIR:?}"

slow=1
[ "${LAYERD_SANITIZED:-0}" = 1 ] && slow=3

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
start_server() {
    : >"$tmp/server.log"
    "$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
        --trace "$tmp/trace.log" "$@" 2>"$tmp/server.log" &
    pid=$!
    for _ in $(seq 200); do
        port=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
            "$tmp/server.log" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || fail "server exited at start-up"
        sleep 0.05
    done
    fail "server did not report its port"
}
# wait_exit SECONDS: wait for the server to exit; sets rc and took (s).
wait_exit() {
    local t0 limit=$(($1 * 10))
    t0=$(date +%s%N)
    for _ in $(seq "$limit"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "server still running after $1 s"
    rc=0
    wait "$pid" || rc=$?
    pid=
    took=$((($(date +%s%N) - t0) / 1000000000))
}
# A layer with one incompressible 12 MiB file: more than the kernel's
# socket buffers hold (tcp_wmem allows 4 MiB), so a slow client really
# holds the stream open on the server.
mkdir -p "$tmp/store/big/fs"
echo '{"kind": "diff"}' >"$tmp/store/big/layer.json"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$tmp/store/big/fs/blob"

# slowget.py PORT PATH RATE PROGRESS: GET PATH at RATE bytes/s through a
# small receive buffer (so little of the stream sits in kernel buffers);
# prints "complete STATUS BYTES SHA256" or "cut STATUS BYTES ERROR", and
# keeps the byte count in PROGRESS.
cat >"$tmp/slowget.py" <<'PY'
import hashlib, http.client, os, socket, ssl, sys, time
port, path, rate, progress = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
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
        with open(progress + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(progress + ".tmp", progress)
        ahead = n / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print("complete", r.status, n, h.hexdigest())
except (http.client.HTTPException, ssl.SSLError, OSError) as e:
    print("cut", r.status, n, type(e).__name__)
PY
# wait_progress N: wait until the slow client has N bytes.
wait_progress() {
    for _ in $(seq 200); do
        [ "$(cat "$tmp/progress" 2>/dev/null || echo 0)" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "the client did not reach $1 bytes"
}
# wait_client: wait (at most 10 s) for the slow client to finish.
wait_client() {
    for _ in $(seq 100); do
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$cpid" 2>/dev/null && fail "the client is still reading"
    wait "$cpid" || true
}

# ---- an idle server exits at once; SIGHUP does not stop it ----
start_server --grace 10
kill -HUP "$pid"
sleep 0.3
kill -0 "$pid" 2>/dev/null || fail "SIGHUP stopped the server"
mv "$tmp/trace.log" "$tmp/trace.old"
kill -HUP "$pid"
sleep 0.3
curl -sSk --max-time 10 -o /dev/null "https://127.0.0.1:$port/healthz"
kill -TERM "$pid"
wait_exit $((2 * slow))
[ "$rc" -eq 0 ] || fail "idle server exited with $rc"
grep -q '"url.path":"/healthz"' "$tmp/trace.log" ||
    fail "SIGHUP did not reopen the trace file"

# ---- SIGTERM: a running export finishes within the grace period ----
start_server --grace 30
curl -sSk --max-time 30 -D "$tmp/h1" -o /dev/null \
    "https://127.0.0.1:$port/layers/big/export"
digest=$(sed -n 's/^Docker-Content-Digest: sha256:\([0-9a-f]*\).*/\1/ip' \
    "$tmp/h1" | tr -d '\r')
[ -n "$digest" ] || fail "no digest trailer"
rm -f "$tmp/progress"
python3 "$tmp/slowget.py" "$port" /layers/big/export 2500000 \
    "$tmp/progress" >"$tmp/client.out" 2>&1 &
cpid=$!
wait_progress 200000
kill -TERM "$pid"
sleep 0.3
# No new connections once draining.
if curl -sSk --max-time 5 -o /dev/null "https://127.0.0.1:$port/healthz" \
    2>/dev/null; then
    fail "a new connection was accepted while draining"
fi
wait_exit $((10 * slow))
[ "$rc" -eq 0 ] || fail "server exited with $rc after draining"
grep -q 'shutting down: 1 request(s) running' "$tmp/server.log" ||
    fail "the export was not running at SIGTERM; nothing was drained"
wait_client
grep -q "^complete 200 [0-9]* $digest\$" "$tmp/client.out" ||
    fail "drained export incomplete or wrong: $(cat "$tmp/client.out")"

# ---- SIGTERM: an export outlasting the grace period is cut ----
start_server --grace 2
rm -f "$tmp/progress"
python3 "$tmp/slowget.py" "$port" /layers/big/export 100000 "$tmp/progress" \
    >"$tmp/client.out" 2>&1 &
cpid=$!
wait_progress 100000
kill -TERM "$pid"
wait_exit $((2 + 4 * slow))
[ "$rc" -eq 0 ] || fail "server exited with $rc after cutting a stream"
[ "$took" -ge 1 ] || fail "the grace period was not waited for"
wait_client
grep -q '^cut 200 ' "$tmp/client.out" ||
    fail "a cut export looked complete to the client: $(cat "$tmp/client.out")"
grep -q 'grace period over' "$tmp/server.log" ||
    fail "the cut was not logged"
grep '"url.path":"/layers/big/export"' "$tmp/trace.log" |
    grep -q '"layerd.outcome":"shutdown"' || fail "span outcome not shutdown"

echo "ok: serve shutdown"
