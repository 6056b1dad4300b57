#!/usr/bin/env bash
# layerd serve, concurrency: 50 exports at once (plain, gzip and zstd, over
# kept-alive and fresh connections) all complete, each body matching the
# digest sent in its trailer, and the same compression always gives the
# same bytes; past --max-exports an export is answered 503 with
# Retry-After while other routes keep working, and the slot frees when an
# export ends.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan (25 exports; the same checks).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_concurrent 60
need curl gzip zstd sha256sum

n=50
[ "${LAYERD_SANITIZED:-0}" = 1 ] && n=25

tmp=$IT_TMP
IT_STORE=$tmp/store

# A 1 MiB layer: half random, half compressible text, so gzip and zstd
# both have work to do.
mkdir -p "$IT_STORE/big/fs/text"
echo '{"kind": "diff"}' >"$IT_STORE/big/layer.json"
head -c $((512 * 1024)) /dev/urandom >"$IT_STORE/big/fs/random.bin"
for i in $(seq 64); do
    seq $((i * 1000)) $((i * 1000 + 1800)) >"$IT_STORE/big/fs/text/f$i.txt"
done

# All the clients come from 127.0.0.1: lift the per-client cap (32) that
# would otherwise stand for many separate clients, and the memory cap
# (50 exports at once are the point here).
it_serve --max-exports 64 --max-per-client 128 --max-export-memory 1024
base="$URL/layers/big/export"

# get I: one export into $tmp/b.I with headers and trailers in $tmp/h.I.
# Every third client makes two requests on one kept-alive connection.
get() {
    local i=$1 comp
    comp=$(echo none gzip zstd | cut -d' ' -f$((i % 3 + 1)))
    if [ $((i % 3)) -eq 0 ]; then
        it_curl --max-time 120 -D "$tmp/h.$i" -o "$tmp/b.$i" \
            "$base?compression=$comp" -o /dev/null "$URL/layers/big" \
            2>"$tmp/e.$i"
    else
        it_curl --max-time 120 -D "$tmp/h.$i" -o "$tmp/b.$i" \
            "$base?compression=$comp" 2>"$tmp/e.$i"
    fi
    echo "$comp" >"$tmp/c.$i"
}
pids=()
for i in $(seq "$n"); do
    get "$i" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
    wait "$p" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || die "$failed of $n exports failed: $(cat "$tmp"/e.* | sort | uniq -c)"

# Check every export with a few processes in all (spawning is slow on
# small machines): digests of the bodies, trailers of the headers.
declare -A sum trailer status first
while read -r h f; do
    sum[${f##*.}]=$h
done < <(sha256sum "$tmp"/b.*)
while read -r i st d; do
    status[$i]=$st
    trailer[$i]=$d
done < <(awk '
    FNR == 1 { st[FILENAME] = $2 }
    tolower($1) == "docker-content-digest:" { d[FILENAME] = $2 }
    END { for (f in st) { n = f; sub(/.*\./, "", n); sub(/\r$/, "", d[f]);
          sub(/^sha256:/, "", d[f]); print n, st[f], (d[f] == "" ? "-" : d[f]) } }
' "$tmp"/h.*)
for i in $(seq "$n"); do
    [ "${status[$i]:-}" = 200 ] || die "export $i: status ${status[$i]:-none}"
    [ "${trailer[$i]}" != - ] || die "export $i: no digest trailer"
    [ "${sum[$i]}" = "${trailer[$i]}" ] ||
        die "export $i: body ${sum[$i]}, trailer ${trailer[$i]}"
    comp=$(<"$tmp/c.$i")
    if [ -z "${first[$comp]:-}" ]; then
        first[$comp]=${sum[$i]}
    else
        [ "${first[$comp]}" = "${sum[$i]}" ] ||
            die "export $i ($comp) differs from an earlier one"
    fi
done
[ "${#first[@]}" -eq 3 ] || die "not every compression was exported"
[ "${first[none]}" != "${first[gzip]}" ] || die "gzip output equals plain"
# b.1 is gzip (i % 3 + 1 = 2nd word), b.2 zstd.
gzip -dc <"$tmp/b.1" | sha256sum | grep -q "^${first[none]} " ||
    die "gzip export does not decompress to the plain one"
zstd -dc <"$tmp/b.2" | sha256sum | grep -q "^${first[none]} " ||
    die "zstd export does not decompress to the plain one"
it_stop
grep '"url.path":"/layers/big/export"' "$tmp/trace.log" |
    grep -c '"layerd.outcome":"completed"' | grep -qx "$n" ||
    die "not every export was logged as completed"

# ---- the export cap ----
cat >"$tmp/hold.py" <<'PY'
# hold.py PORT PATH GO: start an export, read its headers, then wait for
# the file GO to exist before reading the rest.
import http.client, os, ssl, sys, time
port, path, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
c.request("GET", path)
r = c.getresponse()
print(r.status, flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
print(len(r.read()), flush=True)
PY
# The layer grows so one export cannot sit whole in socket buffers.
head -c $((12 * 1024 * 1024)) /dev/urandom >"$IT_STORE/big/fs/random.bin"
it_serve --max-exports 2 --no-cache # every export needs a slot
base="$URL/layers/big/export"
hold_pids=()
for k in 1 2; do
    "$(it_python)" "$tmp/hold.py" "$PORT" /layers/big/export "$tmp/go$k" \
        >"$tmp/hold$k.out" &
    hold_pids+=($!)
done
for _ in $(seq 200); do
    [ -s "$tmp/hold1.out" ] && [ -s "$tmp/hold2.out" ] && break
    sleep 0.05
done
[ "$(head -n 1 "$tmp/hold1.out")" = 200 ] && [ "$(head -n 1 "$tmp/hold2.out")" = 200 ] ||
    die "the two held exports did not start"
code=$(it_curl -D "$tmp/h503" -o "$tmp/b503" \
    -w '%{http_code}' "$base")
[ "$code" = 503 ] || die "third export: status $code, expected 503"
grep -qi '^Retry-After: [0-9]' "$tmp/h503" || die "503 without Retry-After"
grep -qi '^Content-Type: application/problem+json' "$tmp/h503" ||
    die "503 is not a problem document"
it_curl -o /dev/null "$URL/layers/big" ||
    die "other routes blocked while exports are capped"
# Ending one held export frees its slot.
touch "$tmp/go1"
for _ in $(seq 200); do
    [ "$(wc -l <"$tmp/hold1.out")" -ge 2 ] && break
    sleep 0.05
done
[ "$(sed -n 2p "$tmp/hold1.out")" -gt $((12 * 1024 * 1024)) ] ||
    die "held export incomplete"
freed=
for _ in $(seq 50); do
    code=$(it_curl --max-time 30 -o /dev/null -w '%{http_code}' "$base")
    [ "$code" = 200 ] && freed=1 && break
    sleep 0.1
done
[ -n "$freed" ] || die "the slot of a finished export was not freed"
touch "$tmp/go2"
wait "${hold_pids[@]}"
it_stop

echo "ok: serve concurrent ($n exports)"
