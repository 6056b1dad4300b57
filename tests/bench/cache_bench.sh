#!/usr/bin/env bash
# cache_bench.sh LAYERD CORPUS OUT_MD: the blob cache's benchmark rows,
# appended to OUT_MD as a Markdown section. Progress goes to stderr.
#
# CORPUS is served as layer "corpus" of a temporary dir: store (a
# hard-linked copy), by `layerd serve` with a private --cache-dir; nginx
# (Debian's, HTTPS on loopback, sendfile on) serves the blob file the
# cache kept. Rows, medians of BENCH_RUNS timed runs, sides alternating:
#
#   1. 8 concurrent pulls of the cached gzip blob (8 curl clients at
#      once, TLS 1.3 each), total MiB/s, layerd against nginx serving the
#      same file to 8 clients; target >= 0.8x.
#   2. One cached blob, one client: layerd against nginx; target >= 0.85x.
#   3. The cold first pull (an empty cache: the export fills it as it is
#      sent) against the export of a --no-cache server (today's export);
#      target >= 1.0x (no slower).
#   4. zstd level 3 on a corpus where a quarter of the bytes are
#      incompressible random chunks (CORPUS plus random files of a third
#      of its size): `layerd export --compression zstd --level 3` against
#      `tar -cf - . | zstd -3 -T2`; target >= 1.0x.
#
#   BENCH_RUNS       timed runs per measurement (default 5)
#   CACHE_BENCH_GZIP the layer's format for rows 1-3 (default gzip)
set -euo pipefail

[[ $# -eq 3 ]] || {
    echo "usage: cache_bench.sh LAYERD CORPUS OUT_MD" >&2
    exit 2
}
LAYERD=$1
CORPUS=$2
OUT=$3
RUNS=${BENCH_RUNS:-5}
FMT=${CACHE_BENCH_GZIP:-gzip}
CLIENTS=8
CIPHER=TLS_AES_256_GCM_SHA384
log() { echo "cache_bench: $*" >&2; }
for t in curl nginx openssl zstd tar; do
    command -v "$t" >/dev/null || {
        log "$t is missing (deploy/deps.sh --bench)"
        exit 2
    }
done

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/layerd-cache-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STORE=$TMPD/store
mkdir -p "$STORE/corpus"
echo '{"kind": "diff"}' >"$STORE/corpus/layer.json"
cp -al "$CORPUS" "$STORE/corpus/fs" 2>/dev/null || cp -a "$CORPUS" "$STORE/corpus/fs"

free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# start_layerd NAME ARG...: sets NAME_PID, NAME_URL
start_layerd() {
    local name=$1 port='' pid
    shift
    : >"$TMPD/$name.log" # read below maybe before the server's `2>` made it
    "$LAYERD" serve --store "dir:$STORE" --listen 127.0.0.1:0 --trace none \
        --max-exports 32 --max-streams 64 --max-per-client 64 "$@" \
        2>"$TMPD/$name.log" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 400); do
        port=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
            "$TMPD/$name.log")
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || {
            log "layerd ($name) exited: $(tail -n 3 "$TMPD/$name.log")"
            exit 1
        }
        sleep 0.05
    done
    [[ -n $port ]] || exit 1
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_URL" '%s' "https://127.0.0.1:$port"
}
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

C=(curl -sS -k --tlsv1.3 --tls13-ciphers "$CIPHER" --max-time 3600)
# seconds CMD...: wall seconds of CMD
seconds() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pull() { "${C[@]}" -o /dev/null "$1"; }
pull_n() {
    local i pids=()
    for ((i = 0; i < CLIENTS; i++)); do
        "${C[@]}" -o /dev/null "$1" &
        pids+=($!)
    done
    wait "${pids[@]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; }
met() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print (b / a >= t) ? "yes" : "no" }'; }
mibs() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", n / 1048576 / s }'; }

# ---- the cached blob and nginx over it ----
start_layerd WARM --cache-dir "$TMPD/cache"
# shellcheck disable=SC2154
URL_L=$WARM_URL/layers/corpus/export?compression=$FMT
pull "$URL_L"
sleep 1 # the commit runs after the last byte
BLOB=$(find "$TMPD/cache/blobs/sha256" -type f | head -n 1)
[[ -n $BLOB ]] || {
    log "no blob was kept"
    exit 1
}
BYTES=$(stat -c %s "$BLOB")
mkdir -p "$TMPD/www" "$TMPD/nginx/logs" "$TMPD/nginx/tmp"
cp "$BLOB" "$TMPD/www/blob"
chmod 0755 "$TMPD" "$TMPD/www"
chmod 0644 "$TMPD/www/blob"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMPD/nginx.key" -out "$TMPD/nginx.crt" -days 1 \
    -subj /CN=localhost 2>/dev/null
NPORT=$(free_port)
cat >"$TMPD/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
pid $TMPD/nginx/nginx.pid;
error_log $TMPD/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $TMPD/nginx/tmp/body;
    proxy_temp_path $TMPD/nginx/tmp/proxy;
    fastcgi_temp_path $TMPD/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMPD/nginx/tmp/uwsgi;
    scgi_temp_path $TMPD/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $TMPD/nginx.crt;
        ssl_certificate_key $TMPD/nginx.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $TMPD/www;
    }
}
EOF
nginx -p "$TMPD/nginx" -c "$TMPD/nginx/nginx.conf" -g 'daemon off;' \
    2>"$TMPD/nginx/stderr" &
PIDS+=($!)
URL_N=https://127.0.0.1:$NPORT/blob
for _ in $(seq 100); do
    pull "$URL_N" 2>/dev/null && break
    sleep 0.05
done

log "8 concurrent pulls and one pull of the cached blob ($BYTES bytes), $RUNS runs"
pull_n "$URL_L"
pull_n "$URL_N"
for ((r = 0; r < RUNS; r++)); do
    seconds pull_n "$URL_L" >>"$TMPD/c8.l"
    seconds pull_n "$URL_N" >>"$TMPD/c8.n"
    seconds pull "$URL_L" >>"$TMPD/c1.l"
    seconds pull "$URL_N" >>"$TMPD/c1.n"
done
stop_pid "$WARM_PID"

# ---- the cold first pull against a --no-cache export ----
log "cold first pull against --no-cache, $RUNS runs"
start_layerd NOCACHE --no-cache
# shellcheck disable=SC2154
URL_X=$NOCACHE_URL/layers/corpus/export?compression=$FMT
pull "$URL_X"
# ticks PID: user + system CPU of process PID so far, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# cpu_pull PID URL WALL_FILE CPU_FILE: one timed pull, and the server's
# CPU seconds over it.
cpu_pull() {
    local t0
    t0=$(ticks "$1")
    seconds pull "$2" >>"$3"
    awk -v a="$t0" -v b="$(ticks "$1")" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f\n", (b - a) / hz }' >>"$4"
}
for ((r = 0; r < RUNS; r++)); do
    rm -rf "$TMPD/cold"
    start_layerd COLD --cache-dir "$TMPD/cold"
    # shellcheck disable=SC2154
    cpu_pull "$COLD_PID" "$COLD_URL/layers/corpus/export?compression=$FMT" \
        "$TMPD/cold.l" "$TMPD/cold.lc"
    stop_pid "$COLD_PID"
    cpu_pull "$NOCACHE_PID" "$URL_X" "$TMPD/cold.x" "$TMPD/cold.xc"
done
stop_pid "$NOCACHE_PID"

# What the fill adds to an export is writing the blob into the page
# cache. On a virtual machine that gives free memory back to its host,
# new page cache costs more when its memory has been free a while: dd the
# blob into a new file right after deleting a file of its size, and again
# after 5 s, 3 times each; system CPU seconds.
# dd_sys: system CPU seconds of one dd of the blob into a new file.
dd_sys() {
    local TIMEFORMAT=%S
    { time dd if="$BLOB" of="$TMPD/touch" bs=256k 2>/dev/null; } 2>&1
}
dd if="$BLOB" of="$TMPD/touch" bs=256k 2>/dev/null
for ((r = 0; r < 3; r++)); do
    rm -f "$TMPD/touch"
    dd_sys >>"$TMPD/touch.hot"
    rm -f "$TMPD/touch"
    sleep 5
    dd_sys >>"$TMPD/touch.cold"
done
rm -f "$TMPD/touch"

# ---- zstd -3 on a quarter of random bytes ----
log "zstd -3 on a corpus with a quarter of random bytes, $RUNS runs"
MIX=$TMPD/mix
cp -al "$CORPUS" "$MIX" 2>/dev/null || cp -a "$CORPUS" "$MIX"
cbytes=$(du -sb --apparent-size "$CORPUS" | cut -f1)
want=$((cbytes / 3)) # a third of the corpus: a quarter of the whole
mkdir -p "$MIX/random"
i=0
while ((want > 0)); do
    n=$((want < 4194304 ? want : 4194304))
    head -c "$n" /dev/urandom >"$MIX/random/chunk$i"
    want=$((want - n))
    i=$((i + 1))
done
mbytes=$(du -sb --apparent-size "$MIX" | cut -f1)
zl() { "$LAYERD" export --layer "$MIX" --compression zstd --level 3 -o /dev/null 2>/dev/null; }
zt() { tar -C "$MIX" -cf - . | zstd -3 -T2 -q -c >/dev/null; }
zl
zt
for ((r = 0; r < RUNS; r++)); do
    seconds zl >>"$TMPD/z.l"
    seconds zt >>"$TMPD/z.t"
done

c8l=$(median "$TMPD/c8.l")
c8n=$(median "$TMPD/c8.n")
c1l=$(median "$TMPD/c1.l")
c1n=$(median "$TMPD/c1.n")
cl=$(median "$TMPD/cold.l")
cx=$(median "$TMPD/cold.x")
clc=$(median "$TMPD/cold.lc")
cxc=$(median "$TMPD/cold.xc")
touch_hot=$(median "$TMPD/touch.hot")
touch_cold=$(median "$TMPD/touch.cold")
zlm=$(median "$TMPD/z.l")
ztm=$(median "$TMPD/z.t")
{
    echo
    echo "## The blob cache"
    echo
    echo "\`tests/bench/cache_bench.sh\`: the corpus as one $FMT layer ($BYTES"
    echo "bytes as a blob), served from \`layerd serve\`'s blob cache against"
    echo "nginx serving the same blob file (HTTPS, TLS 1.3 $CIPHER, sendfile);"
    echo "medians of $RUNS runs, the sides alternating. MiB/s are of the"
    echo "blob's bytes (all clients together for the concurrent row)."
    echo
    echo "| Work | layerd | reference | ratio | target | met |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "| $CLIENTS concurrent pulls of the cached blob, MiB/s (ref: nginx) | $(mibs "$c8l" $((BYTES * CLIENTS))) | $(mibs "$c8n" $((BYTES * CLIENTS))) | $(ratio "$c8l" "$c8n") | 0.8x | $(met "$c8l" "$c8n" 0.8) |"
    echo "| One pull of the cached blob, MiB/s (ref: nginx) | $(mibs "$c1l" "$BYTES") | $(mibs "$c1n" "$BYTES") | $(ratio "$c1l" "$c1n") | 0.85x | $(met "$c1l" "$c1n" 0.85) |"
    echo "| The cold first pull (the fill), MiB/s (ref: --no-cache export) | $(mibs "$cl" "$BYTES") | $(mibs "$cx" "$BYTES") | $(ratio "$cl" "$cx") | 1.0x | $(met "$cl" "$cx" 1.0) |"
    echo "| zstd -3, a quarter random ($((mbytes / 1048576)) MiB), MiB/s of input (ref: \`tar \\| zstd -3 -T2\`) | $(mibs "$zlm" "$mbytes") | $(mibs "$ztm" "$mbytes") | $(ratio "$zlm" "$ztm") | 1.0x | $(met "$zlm" "$ztm" 1.0) |"
    echo
    echo "The cold row's server CPU per pull (medians): the fill $clc s, the"
    echo "--no-cache export $cxc s. The fill also writes the blob into the page"
    echo "cache: \`dd\` of the blob into a new file (256 KiB writes) took $touch_hot s"
    echo "of system CPU right after a file of its size was deleted, and"
    echo "$touch_cold s 5 s after (medians of 3): on a virtual machine that gives"
    echo "free memory back to its host, new page cache is slow to touch, and"
    echo "each cold run's fill writes into memory freed seconds before."
} >>"$OUT"
log "appended to $OUT"
