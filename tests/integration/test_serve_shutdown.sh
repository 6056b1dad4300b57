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
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_shutdown 60
need curl

slow=1
[ "${LAYERD_SANITIZED:-0}" = 1 ] && slow=3

tmp=$IT_TMP
IT_STORE=$tmp/store
# A layer with one incompressible 12 MiB file: more than the kernel's
# socket buffers hold (tcp_wmem allows 4 MiB), so a slow client really
# holds the stream open on the server.
it_big_layer "$IT_STORE" 12

# wait_progress N: wait until the slow client has N bytes.
wait_progress() {
    for _ in $(seq 200); do
        [ "$(cat "$tmp/progress" 2>/dev/null || echo 0)" -ge "$1" ] && return 0
        sleep 0.05
    done
    die "the client did not reach $1 bytes"
}
# wait_client: wait (at most 10 s) for the slow client to finish.
wait_client() {
    for _ in $(seq 100); do
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$cpid" 2>/dev/null && die "the client is still reading"
    wait "$cpid" || true
}

# ---- an idle server exits at once; SIGHUP does not stop it ----
it_serve --grace 10
kill -HUP "$SERVER_PID"
sleep 0.3
kill -0 "$SERVER_PID" 2>/dev/null || die "SIGHUP stopped the server"
mv "$tmp/trace.log" "$tmp/trace.old"
kill -HUP "$SERVER_PID"
sleep 0.3
it_curl -o /dev/null "$URL/healthz"
kill -TERM "$SERVER_PID"
it_wait_exit $((2 * slow))
[ "$SERVER_RC" -eq 0 ] || die "idle server exited with $SERVER_RC"
grep -q '"url.path":"/healthz"' "$tmp/trace.log" ||
    die "SIGHUP did not reopen the trace file"

# ---- SIGTERM: a running export finishes within the grace period ----
it_serve --grace 30
it_curl --max-time 30 -D "$tmp/h1" -o /dev/null "$URL/layers/big/export"
digest=$(it_hdr "$tmp/h1" Docker-Content-Digest)
digest=${digest#sha256:}
[ -n "$digest" ] || die "no digest trailer"
rm -f "$tmp/progress"
it_slowget "$PORT" /layers/big/export 2500000 "$tmp/progress" \
    >"$tmp/client.out" 2>&1 &
cpid=$!
wait_progress 200000
kill -TERM "$SERVER_PID"
sleep 0.3
# No new connections once draining.
if it_curl --max-time 5 -o /dev/null "$URL/healthz" 2>/dev/null; then
    die "a new connection was accepted while draining"
fi
it_wait_exit $((10 * slow))
[ "$SERVER_RC" -eq 0 ] || die "server exited with $SERVER_RC after draining"
grep -q 'shutting down: 1 request(s) running' "$SERVER_LOG" ||
    die "the export was not running at SIGTERM; nothing was drained"
wait_client
grep -q "^complete 200 [0-9]* $digest\$" "$tmp/client.out" ||
    die "drained export incomplete or wrong: $(cat "$tmp/client.out")"

# ---- SIGTERM: an export outlasting the grace period is cut ----
it_serve --grace 2 --no-cache # the chunked stream, cut
rm -f "$tmp/progress"
it_slowget "$PORT" /layers/big/export 100000 "$tmp/progress" \
    >"$tmp/client.out" 2>&1 &
cpid=$!
wait_progress 100000
kill -TERM "$SERVER_PID"
it_wait_exit $((2 + 4 * slow))
[ "$SERVER_RC" -eq 0 ] || die "server exited with $SERVER_RC after cutting a stream"
[ "$SERVER_TOOK" -ge 1 ] || die "the grace period was not waited for"
wait_client
grep -q '^cut 200 ' "$tmp/client.out" ||
    die "a cut export looked complete to the client: $(cat "$tmp/client.out")"
grep -q 'grace period over' "$SERVER_LOG" || die "the cut was not logged"
grep '"url.path":"/layers/big/export"' "$tmp/trace.log" |
    grep -q '"layerd.outcome":"shutdown"' || die "span outcome not shutdown"

echo "ok: serve shutdown"
