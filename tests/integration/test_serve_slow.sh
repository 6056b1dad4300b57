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
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_slow 60
need curl

cpu_pct=15
[ "${LAYERD_SANITIZED:-0}" = 1 ] && cpu_pct=30

tmp=$IT_TMP
IT_STORE=$tmp/store
# 6 MiB, incompressible: 10 s at 630 KB/s, and more than the kernel's
# socket buffers take (tcp_wmem grows a send buffer to 4 MiB).
it_big_layer "$IT_STORE" 6

it_serve
url="$URL/layers/big/export"

it_curl --max-time 30 -D "$tmp/h" -o /dev/null "$url" ||
    die "reference export failed"
digest=$(it_hdr "$tmp/h" Docker-Content-Digest)
digest=${digest#sha256:}
[ -n "$digest" ] || die "no digest trailer"

# CPU time (user + system, in clock ticks) of the server so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
hz=$(getconf CLK_TCK)

t0=$(date +%s%N)
c0=$(cpu_ticks)
slow_pids=()
for i in 1 2 3 4; do
    it_slowget "$PORT" /layers/big/export 630000 >"$tmp/slow$i.out" 2>&1 &
    slow_pids+=($!)
done
sleep 2
# A fast client is not held up by four slow ones.
f0=$(date +%s%N)
it_curl --max-time 30 -o /dev/null "$url" || die "fast export failed"
fast_ms=$((($(date +%s%N) - f0) / 1000000))
[ "$fast_ms" -lt 5000 ] ||
    die "a fast export took $fast_ms ms next to slow clients"
wait_all=0
for j in "${slow_pids[@]}"; do
    wait "$j" || wait_all=1
done
[ "$wait_all" -eq 0 ] || die "a slow client failed"
wall_ms=$((($(date +%s%N) - t0) / 1000000))
cpu_ms=$((($(cpu_ticks) - c0) * 1000 / hz))

for i in 1 2 3 4; do
    grep -q "^complete 200 [0-9]* $digest\$" "$tmp/slow$i.out" ||
        die "slow transfer $i: $(cat "$tmp/slow$i.out")"
done
[ "$wall_ms" -ge 8000 ] || die "slow transfers took only $wall_ms ms"
[ $((cpu_ms * 100)) -le $((wall_ms * cpu_pct)) ] ||
    die "server used $cpu_ms ms CPU over $wall_ms ms of slow transfers"

it_stop
# The server really held the streams: the request spans lasted seconds,
# not the milliseconds of producing into kernel buffers.
held=$(grep '"name":"http.request"' "$tmp/trace.log" |
    grep '"url.path":"/layers/big/export"' |
    sed -n 's/.*"duration_ms":\([0-9]*\).*/\1/p' | sort -n | tail -n 4 |
    head -n 1)
[ "${held:-0}" -ge 2000 ] ||
    die "slow streams ended on the server after ${held:-0} ms"

# ---- a client that stops reading is dropped after --idle-timeout ----
it_serve --trace "$tmp/trace2.log" --idle-timeout 2
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
t.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
t.recv(1)
time.sleep(60)
PY
"$(it_python)" "$tmp/stall.py" "$PORT" /layers/big/export &
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
[ -n "$dropped" ] || die "a stalled client was not dropped"
it_curl -o /dev/null "$URL/healthz" ||
    die "server does not serve after dropping a stalled client"
it_stop

echo "ok: serve slow (cpu ${cpu_ms} ms over ${wall_ms} ms)"
