#!/usr/bin/env bash
# layerd serve and the blob cache (api/blobs.c, layer/blobcache.h), with
# curl over HTTPS and `layerd cache`:
#
# - a first export fills the cache (trailers), the next is a hit with
#   Content-Length, ETag and the same digests as headers; HEAD of a hit
#   has the length; a Range gives 206 with the right bytes, a resume
#   (two ranges) hashes to the digest, a Range past the end 416;
# - 16 concurrent first requests of one uncached layer run exactly one
#   export (counted from the layer.export spans): one fill, the rest
#   waits or hits, every body the same bytes;
# - a waiter finishes when the filling client vanishes; a fill whose only
#   client vanishes is aborted and keeps nothing;
# - an immutable layer changed on disk gets a new digest, whose bytes are
#   the new tar; a mutable layer is never cached (bypass);
# - kill -9 of the server mid-fill, restart: the dead fill's file is gone
#   and the next pull gives the right bytes;
# - eviction at --cache-max-bytes; `layerd cache warm` (layer ids, and
#   an image of a containers-storage store: each of its layers), `ls`,
#   `prune`.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init cache 300
need curl jq sha256sum gzip

S=$IT_TMP/store
W=$IT_TMP/w
C=$IT_TMP/cache
mkdir -p "$S" "$W"
# layers: small (a few files), big (16 MiB incompressible), mid (1 MiB
# incompressible, twice), live (mutable)
mkdir -p "$S/small/fs/etc" "$S/live/fs"
echo '{"kind": "diff"}' >"$S/small/layer.json"
echo hello >"$S/small/fs/etc/greeting"
head -c 200000 /dev/urandom >"$S/small/fs/blob"
echo '{"kind": "diff", "mutable": true}' >"$S/live/layer.json"
echo live >"$S/live/fs/file"
it_big_layer "$S" 16
cp -a "$S/big" "$S/big2" # the same bytes under another key
for m in mid1 mid2; do
    mkdir -p "$S/$m/fs"
    echo '{"kind": "diff"}' >"$S/$m/layer.json"
    head -c 700000 /dev/urandom >"$S/$m/fs/data"
done
cat >"$IT_TMP/policy.json" <<'JSON'
{"anonymous": {"grants": [{"layers": ["*"], "ops": ["list", "read", "metrics"],
                           "mutable": true}]}}
JSON
IT_STORE=$S
T=$IT_TMP/trace.log

# get NAME URL-PATH [CURL ARGS...]: the body in $W/NAME.body, headers and
# trailers in $W/NAME.h; curl's status.
get() {
    local n=$1 p=$2
    shift 2
    it_curl --max-time 60 -D "$W/$n.h" -o "$W/$n.body" "$@" "$URL$p"
}
status_of() { tr -d '\r' <"$W/$1.h" | sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p'; }
digest_of() { it_hdr "$W/$1.h" Docker-Content-Digest; }
# results: the cache.result of every request span, in order
results() { grep -o '"cache.result":"[a-z]*"' "$T" | cut -d'"' -f4 | tr '\n' ' '; }
exports() { grep -c '"name":"layer.export"' "$T"; }
# wait_spans N: until N request spans with a cache.result are logged
wait_spans() {
    local i
    for ((i = 0; i < 200; i++)); do
        [[ $(grep -c '"cache.result"' "$T") -ge $1 ]] && return 0
        sleep 0.05
    done
    return 1
}

it_serve --auth "$IT_TMP/policy.json" --cache-max-bytes 64M
X=/layers/small/export?compression=gzip

# ---- fill, hit, HEAD, Range ----
expect_rc "first export" 0 get fill "$X"
check "the fill has trailers, no Content-Length" \
    grep -qi '^Trailer: Docker-Content-Digest' "$W/fill.h"
expect_eq "the fill's digest trailer is the body's" \
    "$(sha256_of "$W/fill.body")" "$(digest_of fill)"
D=$(digest_of fill)
expect_eq "its diff ID is the tar's" "$(gzip -dc "$W/fill.body" | sha256_of -)" \
    "$(it_hdr "$W/fill.h" X-Layer-Diff-Id)"
check "the fill commits" it_cache_settled
expect_rc "second export" 0 get hit "$X"
expect_eq "the hit: the same bytes" "$D" "$(sha256_of "$W/hit.body")"
expect_eq "the hit: Content-Length" "$(stat -c %s "$W/fill.body")" \
    "$(it_hdr "$W/hit.h" Content-Length)"
expect_eq "the hit: the digest as a header" "$D" "$(digest_of hit)"
expect_eq "the hit: ETag" "\"$D\"" "$(it_hdr "$W/hit.h" ETag)"
expect_eq "the hit: X-Layer-Tar" canonical "$(it_hdr "$W/hit.h" X-Layer-Tar)"
expect_eq "the hit: Accept-Ranges" bytes "$(it_hdr "$W/hit.h" Accept-Ranges)"
wait_spans 2
expect_eq "spans: fill, then hit" "fill hit " "$(results)"
expect_rc "HEAD of a hit" 0 get head "$X" -I
expect_eq "HEAD: Content-Length" "$(stat -c %s "$W/fill.body")" \
    "$(it_hdr "$W/head.h" Content-Length)"
expect_rc "a Range" 0 get r1 "$X" -H "Range: bytes=100-4195"
expect_eq "Range: 206" 206 "$(status_of r1)"
expect_eq "Range: the bytes" "$(tail -c +101 "$W/fill.body" | head -c 4096 | sha256sum)" \
    "$(sha256sum <"$W/r1.body")"
size=$(stat -c %s "$W/fill.body")
half=$((size / 2))
expect_rc "resume: the first half" 0 get p1 "$X" -H "Range: bytes=0-$((half - 1))"
expect_rc "resume: the rest" 0 get p2 "$X" -H "Range: bytes=$half-"
expect_eq "resume: the halves hash to the digest" "$D" \
    "$(cat "$W/p1.body" "$W/p2.body" | sha256_of -)"
expect_eq "resume: Content-Range" "bytes $half-$((size - 1))/$size" \
    "$(it_hdr "$W/p2.h" Content-Range)"
expect_rc "a Range past the end" 0 get r416 "$X" -H "Range: bytes=$size-"
expect_eq "past the end: 416" 416 "$(status_of r416)"
expect_eq "416: Content-Range" "bytes */$size" "$(it_hdr "$W/r416.h" Content-Range)"
expect_rc "If-None-Match" 0 get inm "$X" -H "If-None-Match: \"$D\""
expect_eq "If-None-Match the ETag: 304" 304 "$(status_of inm)"
expect_rc "?tar=original, which the store lacks" 0 get orig "$X&tar=original"
expect_eq "?tar=original: 422" 422 "$(status_of orig)"
expect_rc "zstd is another blob" 0 get z "/layers/small/export?compression=zstd"
check "zstd: another digest" test "$(digest_of z)" != "$D"

# ---- 16 concurrent first requests: one export ----
: >"$T"
pids=()
for i in $(seq 16); do
    get "c$i" /layers/big/export &
    pids+=($!)
done
wait "${pids[@]}" # not the server
ok16=0
want=
for i in $(seq 16); do
    h=$(sha256_of "$W/c$i.body")
    [[ -z $want ]] && want=$h
    [[ $h == "$want" && $(status_of "c$i") == 200 ]] && ok16=$((ok16 + 1))
done
expect_eq "16 concurrent: the same 200 bytes for all" 16 "$ok16"
expect_eq "16 concurrent: $((16 * 1048576 + 1536)) bytes each" \
    $((16 * 1048576 + 1536)) "$(stat -c %s "$W/c1.body")"
wait_spans 16
expect_eq "16 concurrent: exactly one export ran" 1 "$(exports)"
expect_eq "16 concurrent: one fill" 1 "$(results | tr ' ' '\n' | grep -c '^fill$')"
expect_eq "16 concurrent: no bypass" 0 "$(results | tr ' ' '\n' | grep -c '^bypass$')"
big_digest=$want

# ---- a vanishing filler: the waiter finishes; alone, nothing is kept ----
: >"$T"
P=/layers/big/export?compression=gzip
it_slowget "$PORT" "$P" 2000000 "$W/a.prog" >"$W/a.out" &
apid=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $W/a.prog ]] && break
    sleep 0.05
done
w0=$(it_metric layerd_cache_waits_total)
it_slowget "$PORT" "$P" 100000000 >"$W/b.out" &
bpid=$!
# the filler's client goes only once the second request has joined the
# fill (a loaded machine may take longer than any fixed pause to start it)
joined() { [[ $(it_metric layerd_cache_waits_total) -gt $w0 ]]; }
check "the second request joins the fill" it_wait 30 joined
kill -9 $(pgrep -P "$apid") "$apid" 2>/dev/null # the client, its shell
wait "$apid" 2>/dev/null
wait "$bpid"
read -r how _ n sha <"$W/b.out"
expect_eq "the waiter completes when the filler's client vanished" complete "$how"
check "... and the fill commits" it_cache_settled
expect_rc "then a hit" 0 get gz "$P"
expect_eq "... whose bytes are the waiter's" "sha256:$sha" "$(sha256_of "$W/gz.body")"
wait_spans 3
expect_eq "fill, wait, hit" "fill wait hit " "$(results)"
: >"$T"
P=/layers/big/export?compression=zstd
it_slowget "$PORT" "$P" 1000000 "$W/z.prog" >/dev/null &
zpid=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $W/z.prog ]] && break
    sleep 0.05
done
kill -9 $(pgrep -P "$zpid") "$zpid" 2>/dev/null
wait "$zpid" 2>/dev/null
for ((i = 0; i < 100; i++)); do
    [[ -z $(ls -A "$C/tmp") ]] && break
    sleep 0.1
done
expect_eq "an abandoned fill leaves no file" "" "$(ls -A "$C/tmp")"
expect_rc "the next request" 0 get z2 "$P"
wait_spans 2
expect_eq "... fills anew" "fill fill " "$(results)"

# ---- a changed immutable layer; a mutable one ----
: >"$T"
echo changed >"$S/small/fs/new-file"
expect_rc "export of the changed layer" 0 get ch "$X"
check "a new digest" test "$(digest_of ch)" != "$D"
expect_eq "... of the new bytes" "$(sha256_of "$W/ch.body")" "$(digest_of ch)"
check "... which hold the new file" bash -c \
    "gzip -dc '$W/ch.body' | tar -t | grep -qx new-file"
expect_rc "a mutable layer" 0 get live1 /layers/live/export
expect_rc "a mutable layer again" 0 get live2 /layers/live/export
wait_spans 3
expect_eq "changed: fill; mutable: bypass twice" "fill bypass bypass " "$(results)"
check "a mutable layer: trailers, no Content-Length" \
    test -z "$(it_hdr "$W/live2.h" Content-Length)"
curl -sk "$URL/metrics" >"$W/metrics"
check "metrics: cache hits" grep -q '^layerd_cache_hits_total [1-9]' "$W/metrics"
check "metrics: cache misses" grep -q '^layerd_cache_misses_total [1-9]' "$W/metrics"
check "metrics: bytes read" grep -q '^layerd_cache_read_bytes_total [1-9]' "$W/metrics"

# ---- kill -9 mid-fill, restart ----
it_slowget "$PORT" /layers/big2/export 500000 "$W/k.prog" >/dev/null &
kpid=$!
for ((i = 0; i < 100; i++)); do
    [[ -n $(ls -A "$C/tmp") ]] && break
    sleep 0.05
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
kill -9 $(pgrep -P "$kpid") "$kpid" 2>/dev/null
wait "$kpid" 2>/dev/null
check "a fill was in flight at the kill" test -n "$(ls -A "$C/tmp")"
it_serve --auth "$IT_TMP/policy.json" --cache-max-bytes 64M
expect_eq "restart: the dead fill's file is gone" "" "$(ls -A "$C/tmp")"
expect_rc "restart: export" 0 get k1 /layers/big2/export
expect_eq "restart: the right bytes" "$big_digest" "$(sha256_of "$W/k1.body")"
expect_rc "restart: again" 0 get k2 /layers/big2/export
expect_eq "restart: the same bytes" "$big_digest" "$(sha256_of "$W/k2.body")"
it_stop

# ---- eviction at --cache-max-bytes ----
rm -rf "$C"
: >"$T"
it_serve --auth "$IT_TMP/policy.json" --cache-max-bytes 1M
expect_rc "mid1" 0 get m1 /layers/mid1/export
check "mid1 commits" it_cache_settled
expect_rc "mid2" 0 get m2 /layers/mid2/export
check "mid2 commits" it_cache_settled
expect_rc "mid1 again" 0 get m1b /layers/mid1/export
wait_spans 3
expect_eq "past the cap the older blob was evicted: fill fill fill" \
    "fill fill fill " "$(results)"
curl -sk "$URL/metrics" >"$W/metrics"
check "metrics: evictions" grep -q '^layerd_cache_evictions_total [1-9]' "$W/metrics"
expect_eq "mid1 again: the same bytes" "$(sha256_of "$W/m1.body")" \
    "$(sha256_of "$W/m1b.body")"
it_stop

# ---- layerd cache warm, ls, prune ----
rm -rf "$C"
expect_rc "cache warm" 0 "$LAYERD" cache warm --store "dir:$S" small mid1
"$LAYERD" cache warm --store "dir:$S" small >"$W/warm.out"
"$LAYERD" cache ls >"$W/ls.out"
expect_eq "cache ls: two records" 2 "$(wc -l <"$W/ls.out")"
check "cache ls: the warmed digest" grep -q "^$(cut -d' ' -f1 "$W/warm.out") " \
    "$W/ls.out"
expect_rc "cache warm of an unknown name" 3 "$LAYERD" cache warm \
    --store "dir:$S" nope
expect_rc "cache ls with an operand" 2 "$LAYERD" cache ls extra
: >"$T"
it_serve --auth "$IT_TMP/policy.json"
expect_rc "a warmed layer" 0 get w1 "$X"
wait_spans 1
expect_eq "a warmed layer is a hit" "hit " "$(results)"
expect_eq "... with the warmed digest" "$(cut -d' ' -f1 "$W/warm.out")" \
    "$(digest_of w1)"
it_stop
expect_rc "cache prune" 0 "$LAYERD" cache prune
expect_eq "cache ls after prune: empty" 0 "$("$LAYERD" cache ls | wc -l)"

# ---- cache warm of an image the store knows: every layer of it ----
fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
KIND='' ROOT='' IMAGE='' LAYERS=''
# shellcheck disable=SC1091
. "$fix/cs-overlay/store.env"
expect_rc "cache warm IMAGE" 0 "$LAYERD" cache warm --store "$KIND:$fix/$ROOT" \
    "$IMAGE"
"$LAYERD" cache ls >"$W/ls-image.out"
expect_eq "cache warm IMAGE: a blob per layer of the image" "$LAYERS" \
    "$(wc -l <"$W/ls-image.out")"
check "cache warm IMAGE: original tars where the store kept them" \
    grep -q ' original ' "$W/ls-image.out"
it_done
