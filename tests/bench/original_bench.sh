#!/usr/bin/env bash
# original_bench.sh LAYERD CORPUS [RUNS]: time the export of a layer's
# original tar (rebuilt from tar-split data) against its canonical tar, on
# the same layer, and print one row of export_bench.sh's Markdown table to
# stdout. Progress goes to stderr.
#
# The layer: CORPUS as the one layer "bench" of a temporary
# containers-storage store with the vfs driver (STORE/vfs/dir/bench, a
# hard-linked copy of CORPUS: the store wants a real directory there;
# GNU tar and layerd both ignore links to names outside the tree), whose
# tar-split data is made here the way an engine makes it: GNU tar packs
# the tree (`tar -C DIR -cf - .`), `tar-split disasm` records it
# (STORE/vfs-layers/bench.tar-split.gz) and the tar's SHA-256 is the
# diff ID written to layers.json. A first `layerd export --tar original`
# must give that diff ID, or the benchmark fails.
#
#   layerd export --store S bench --tar original  -o /dev/null
#   layerd export --store S bench --tar canonical -o /dev/null
#
# Both compute the SHA-256 of the tar (the original one also checks each
# file's CRC-64 and the diff ID). The row's name says how this binary
# computes the CRC-64 (the export span's "export.crc64": "pclmul" for
# carry-less multiplication folding, else "slicing-by-8"). Target: the
# original tar at >= 0.9x the canonical tar's throughput (speed-up =
# canonical median / original median). Each command runs once untimed,
# then RUNS times, the two alternating; wall times come from the
# nanosecond clock, CPU times (user + system) from /usr/bin/time.
set -euo pipefail

LAYERD=${1:?usage: original_bench.sh LAYERD CORPUS [RUNS]}
CORPUS=${2:?usage: original_bench.sh LAYERD CORPUS [RUNS]}
RUNS=${3:-5}
[[ -x $LAYERD && -d $CORPUS ]] || {
    echo "original_bench.sh: need an executable LAYERD and a CORPUS dir" >&2
    exit 2
}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || {
    echo "original_bench.sh: RUNS must be a positive integer" >&2
    exit 2
}
for t in tar tar-split sha256sum jq /usr/bin/time; do
    command -v "$t" >/dev/null || {
        echo "original_bench.sh: $t is missing (deploy/deps.sh)" >&2
        exit 2
    }
done
CORPUS=$(cd "$CORPUS" && pwd)
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/layerd-original-bench.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT
trap 'exit 130' INT TERM
log() { echo "original_bench: $*" >&2; }

S=$TMPD/store
mkdir -p "$S/vfs-layers" "$S/vfs/dir"
if ! cp -al "$CORPUS" "$S/vfs/dir/bench" 2>/dev/null; then
    log "cannot hard-link the corpus into $TMPD (another file system?): copying it"
    rm -rf "$S/vfs/dir/bench"
    cp -a "$CORPUS" "$S/vfs/dir/bench"
fi
log "packing the layer and recording its tar-split data"
diff=sha256:$(tar -C "$S/vfs/dir/bench" -cf - . |
    tar-split disasm --output "$S/vfs-layers/bench.tar-split.gz" - 2>/dev/null |
    sha256sum | cut -d' ' -f1)
printf '[{"id":"bench","created":"2026-01-01T00:00:00Z","diff-digest":"%s"}]\n' \
    "$diff" >"$S/vfs-layers/layers.json"
SPEC=containers-storage:$S

# The original tar is the packed one, and the CRC method.
"$LAYERD" export --store "$SPEC" bench --tar original -o /dev/null --json \
    --trace "$TMPD/trace.jsonl" >"$TMPD/summary.json" 2>"$TMPD/err" || {
    log "the original export failed: $(cat "$TMPD/err")"
    exit 1
}
got=$(jq -r '"\(.tar) \(.diff_id)"' "$TMPD/summary.json")
[[ $got == "original $diff" ]] || {
    log "the original export gave '$got', not 'original $diff'"
    exit 1
}
crc=$(jq -r 'select(.name == "layer.export") | .attributes["export.crc64"]' \
    "$TMPD/trace.jsonl")
[[ -n $crc && $crc != null ]] || crc=unknown
tar_bytes=$(jq -r .tar_size "$TMPD/summary.json")

L=$(printf '%q' "$LAYERD")
P=$(printf '%q' "$SPEC")
A="$L export --store $P bench --tar original -o /dev/null"
B="$L export --store $P bench --tar canonical -o /dev/null"

# timed FILE CMD: as in export_bench.sh, wall and CPU seconds to FILE;
# the wall time from the nanosecond clock (a small corpus exports in
# tens of milliseconds, below /usr/bin/time's 10 ms steps).
timed() {
    local t0 t1
    t0=$(date +%s%N)
    if ! /usr/bin/time -f '%U %S' -o "$TMPD/time" bash -c "$2" \
        2>"$TMPD/stderr"; then
        log "command failed: $2"
        cat "$TMPD/stderr" >&2
        exit 1
    fi
    t1=$(date +%s%N)
    awk -v ns=$((t1 - t0)) '{ printf "%.4f %.2f\n", ns / 1e9, $1 + $2 }' \
        "$TMPD/time" >>"$1"
}
median() { awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

log "warm-up over $CORPUS ($tar_bytes tar bytes)"
timed "$TMPD/warm" "$A"
timed "$TMPD/warm" "$B"
for ((r = 1; r <= RUNS; r++)); do
    log "run $r/$RUNS"
    timed "$TMPD/a" "$A"
    timed "$TMPD/b" "$B"
done
awk -v a="$(median "$TMPD/a" 1)" -v b="$(median "$TMPD/b" 1)" \
    -v ca="$(median "$TMPD/a" 2)" -v cb="$(median "$TMPD/b" 2)" \
    -v crc="$crc" 'BEGIN {
    s = b / a
    printf "| original tar (tar-split; CRC-64: %s) vs canonical tar, same layer, both SHA-256: `layerd export --tar original` vs `--tar canonical` | %.4f | %.4f | %.2fx | >= 0.9x | %s | %.2f | %.2f |\n",
        crc, a, b, s, (s >= 0.9 ? "yes" : "**no**"), ca, cb }'
