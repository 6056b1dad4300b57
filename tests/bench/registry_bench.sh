#!/usr/bin/env bash
# registry_bench.sh LAYERD [RESULTS]: requests/s of the registry view's
# manifest of a cached image (GET /v2/layers/patch/manifests/latest over
# the demo store, its blobs made and kept by one untimed request first),
# keep-alive, 8 connections from 2 wrk threads over TLS, for 5 s; the
# median of BENCH_RUNS runs (3 by default). Appends a section with one
# table row to RESULTS (stdout when not given). Needs wrk (Debian
# package wrk) and root (the demo store's device nodes).
set -euo pipefail

LAYERD=$1
OUT=${2:-/dev/stdout}
RUNS=${BENCH_RUNS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
TARGET=5000

command -v wrk >/dev/null || {
    echo "registry_bench.sh: wrk is missing (deploy/deps.sh --bench)" >&2
    exit 1
}
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/layerd-registry-bench.XXXXXX")
PID=
cleanup() {
    if [[ -n $PID ]]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf -- "$TMPD"
}
trap cleanup EXIT

bash "$HERE/../fixtures/mkdemo.sh" "$TMPD/demo" >/dev/null
: >"$TMPD/server.log" # read below maybe before the server's `2>` made it
CACHE_DIRECTORY=$TMPD/cache "$LAYERD" serve --listen 127.0.0.1:0 \
    --store "dir:$TMPD/demo" --trace "$TMPD/trace.log" 2>"$TMPD/server.log" &
PID=$!
PORT=
for ((i = 0; i < 200; i++)); do
    PORT=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
        "$TMPD/server.log" | head -n 1)
    [[ -n $PORT ]] && break
    sleep 0.05
done
[[ -n $PORT ]] || {
    echo "registry_bench.sh: the server did not start" >&2
    cat "$TMPD/server.log" >&2
    exit 1
}
URL=https://127.0.0.1:$PORT/v2/layers/patch/manifests/latest
curl -sSfk -o /dev/null "$URL"
curl -sSfk -D "$TMPD/h" -o /dev/null "$URL"
grep -qi '^content-length:' "$TMPD/h" || {
    echo "registry_bench.sh: the manifest is not answered from the cache" >&2
    exit 1
}

: >"$TMPD/rps"
for ((r = 0; r < RUNS; r++)); do
    wrk -t2 -c8 -d5s "$URL" >"$TMPD/wrk.out"
    if grep -q 'Non-2xx' "$TMPD/wrk.out"; then
        echo "registry_bench.sh: errors under load:" >&2
        cat "$TMPD/wrk.out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { print $2 }' "$TMPD/wrk.out" >>"$TMPD/rps"
done
median=$(sort -n "$TMPD/rps" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
{
    echo
    echo "## Registry view"
    echo
    echo "Written by \`tests/bench/registry_bench.sh\`: $(wrk -v 2>&1 | head -n 1 |
        cut -d' ' -f1-2), 2 threads, 8 keep-alive connections over TLS, 5 s per run,"
    echo "the median of $RUNS runs; layerd with \`--trace FILE\`, client and server on"
    echo "the same $(nproc) CPUs. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| Work | layerd | target | met |"
    echo "|---|---:|---:|---|"
    awk -v m="$median" -v t="$TARGET" 'BEGIN {
        printf "| Manifest of a cached image (`GET /v2/layers/patch/manifests/latest`), requests/s | %.0f | >= %d | %s |\n",
            m, t, (m >= t ? "yes" : "**no**") }'
} >>"$OUT"
