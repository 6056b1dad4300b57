#!/usr/bin/env bash
# Eight clients ask for the entries of a deep layer and never read: each
# stream's reader stays open, 400 directories down, over a chain of four
# layers. A reader used to hold one descriptor per directory level per
# layer (1,600 here, 12,800 for the eight), enough to make accept() fail
# for everyone; it now holds its budget (layer/reader.h: at most
# 2 * (parents + 1) + 68), whatever the depth. The server's descriptors
# are counted in /proc before, while the eight hang, and after they left:
# bounded while they hang, back to where they were after.
. "$(dirname "$0")/../integration/lib.sh"
it_init deep_layer_fds 120
need curl

DEPTH=400
CLIENTS=8
PARENTS=3
# per stalled client: its reader's budget, its connection, and a few for
# the stream's own machinery
PER=$((2 * (PARENTS + 1) + 68 + 8))
py=$(it_python)
store=$IT_TMP/store

# deep0 <- deep1 <- deep2 <- deep3: the same 400 levels in each; the
# deepest level of deep3 holds 20,000 names (8 MB of entries, more than
# loopback's buffers), so the stream stalls down there.
"$py" - "$store" "$DEPTH" <<'PY' || die "cannot build the deep layers"
import json, os, sys
store, depth = sys.argv[1], int(sys.argv[2])
deep = "/".join(["d"] * depth)
for i in range(4):
    fs = os.path.join(store, "deep%d" % i, "fs")
    os.makedirs(os.path.join(fs, deep))
    meta = {"kind": "diff"}
    if i:
        meta["parent"] = "deep%d" % (i - 1)
    with open(os.path.join(store, "deep%d" % i, "layer.json"), "w") as f:
        json.dump(meta, f)
bottom = os.path.join(store, "deep3", "fs", deep)
open(os.path.join(bottom, "seed"), "w").close()
for n in range(20000):
    os.link(os.path.join(bottom, "seed"),
            os.path.join(bottom, "n%06d" % n + "x" * 200))
PY

it_serve --store "dir:$store"
it_curl -o /dev/null "$URL/healthz" || die "no /healthz"
before=$(it_nfds)

# stall N: N clients that send the request, read nothing, and hold the
# connection until the file $IT_TMP/leave exists (30 s at most)
"$py" - "$PORT" "$CLIENTS" "$IT_TMP/leave" "$IT_TMP/asked" <<'PY' &
import os, socket, ssl, sys, time
port, n, leave, asked = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(b"GET /layers/deep3/entries HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    conns.append(s)
open(asked, "w").close()
for _ in range(600):
    if os.path.exists(leave):
        break
    time.sleep(0.05)
for s in conns:
    s.close()
PY
clients=$!
for ((i = 0; i < 200; i++)); do
    [[ -e $IT_TMP/asked ]] && break
    sleep 0.05
done
[[ -e $IT_TMP/asked ]] || die "the clients did not connect"
# let the streams run into the stall: the count settles
last=-1
for ((i = 0; i < 40; i++)); do
    sleep 0.25
    now=$(it_nfds)
    [[ $now -eq $last ]] && break
    last=$now
done
during=$(it_nfds)
it_log "descriptors: $before before, $during with $CLIENTS stalled streams"
check "$CLIENTS stalled deep streams hold at most $PER descriptors each ($((during - before)) in all)" \
    test $((during - before)) -le $((CLIENTS * PER))
check "the streams did start: their readers hold descriptors" \
    test $((during - before)) -ge $((CLIENTS * (PARENTS + 1)))
expect_eq "/healthz is answered meanwhile" 200 \
    "$(it_curl -o /dev/null -w '%{http_code}' "$URL/healthz")"
: >"$IT_TMP/leave"
wait "$clients" || fail "the clients failed"
after=-1
for ((i = 0; i < 100; i++)); do
    after=$(it_nfds)
    [[ $after -le $before ]] && break
    sleep 0.1
done
it_log "descriptors: $after after the clients left"
check "after the clients left, the descriptors are back ($after <= $before)" \
    test "$after" -le "$before"
it_stop
it_done
