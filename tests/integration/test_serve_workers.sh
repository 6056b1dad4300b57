#!/usr/bin/env bash
# layerd serve, the acceptor: connections opened in a burst are spread
# over the HTTP worker threads (each goes to the one with the fewest; no
# two workers differ by more than one), as /metrics'
# layerd_http_connections{worker} shows; --max-per-client counts a client
# address over all listening sockets together, and the connections past
# it are closed at once and counted; closed connections give their
# places back.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_workers 60
need curl jq

IT_STORE=$IT_TMP/demo
mkdemo "$IT_STORE"
cap=12
it_serve --max-per-client "$cap" --header-timeout 60 --idle-timeout 60 \
    --listen 127.0.0.1:0
mapfile -t ports < <(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
    "$SERVER_LOG")
expect_eq "two listening sockets" 2 "${#ports[@]}"

# The metrics come from another address, so they count against nobody's
# cap; their own connection is one more on some worker.
metrics() { it_curl --interface 127.0.0.2 "$URL/metrics"; }
# spread: "SUM MIN MAX" of layerd_http_connections over the workers.
spread() {
    metrics | awk '/^layerd_http_connections\{/ {
        s += $2; n++
        if (n == 1 || $2 < lo) lo = $2
        if (n == 1 || $2 > hi) hi = $2
    } END { printf "%d %d %d\n", s, lo, hi }'
}
workers=$(metrics | grep -c '^layerd_http_connections{' || true)
check "the workers are listed ($workers)" test "$workers" -ge 2

# hold A B SECONDS: open A connections to the first socket, then B to the
# second, all from 127.0.0.1 and silent; after 1 s say how many the
# server closed, and keep the rest open for SECONDS.
hold() {
    "$(it_python)" - "${ports[0]}" "${ports[1]}" "$@" <<'EOF'
import json, select, socket, sys, time
pa, pb, a, b, keep = map(int, sys.argv[1:6])
socks = []
for port, n in ((pa, a), (pb, b)):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
time.sleep(1)
closed = 0
for s in socks:
    r, _, _ = select.select([s], [], [], 0)
    if r and s.recv(1) == b"":
        closed += 1
print(json.dumps({"closed": closed}), flush=True)
time.sleep(keep)
EOF
}

# A burst of 8 on one socket: spread evenly.
hold 8 0 4 >"$IT_TMP/burst.json" &
holder=$!
sleep 1.5
read -r sum lo hi < <(spread)
echo "burst: open $sum, fewest $lo, most $hi on $workers workers"
expect_eq "burst: 8 held and the metrics request are open" 9 "$sum"
check "burst: no worker has two more than another ($lo..$hi)" \
    test $((hi - lo)) -le 1
wait "$holder"
expect_eq "burst: none closed" 0 "$(jq .closed "$IT_TMP/burst.json")"
# Closed connections give their places back.
it_wait 10 test "$(spread | cut -d' ' -f1)" = 1 ||
    fail "connections still counted after their clients closed: $(spread)"

# The cap counts both sockets together: 8 + 8 against 12.
hold 8 8 0 >"$IT_TMP/cap.json"
expect_eq "past --max-per-client over two sockets: closed at once" 4 \
    "$(jq .closed "$IT_TMP/cap.json")"
expect_eq "... and counted" 4 \
    "$(metrics | awk '$1 == "layerd_http_dropped_total{reason=\"max_per_client\"}" { print $2 }')"
it_wait 10 test "$(spread | cut -d' ' -f1)" = 1 ||
    fail "connections still counted after their clients closed: $(spread)"

# After all that, the client gets its full cap again.
hold "$cap" 0 0 >"$IT_TMP/again.json"
expect_eq "the cap is whole again" 0 "$(jq .closed "$IT_TMP/again.json")"
check "healthz" it_curl -o /dev/null "$URL/healthz"
it_stop
it_done
