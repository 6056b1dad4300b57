#!/usr/bin/env bash
# export_bench.sh LAYERD CORPUS [RUNS]: time `layerd export` against the
# shell pipelines that do the same work, on one corpus directory, and print
# a Markdown table (one row per pair) to stdout. Progress goes to stderr.
#
#   layerd export -o /dev/null                vs  tar -cf - . | openssl dgst -sha256
#   layerd export --compression gzip          vs  tar -cf - . | pigz -1
#   layerd export --compression zstd --level 3 vs tar -cf - . | zstd -3 -T2
#
# Each command runs once untimed (warm-up: the page cache is warm for
# everyone; the sandbox cannot drop caches), then RUNS times, the pairs
# interleaved so drift hits both sides alike. Reported: the median wall
# time, the speed-up (baseline median / layerd median) against its target,
# the median CPU time (user + system, all processes) of each side, and for
# the compressed pairs the output sizes. layerd's output goes to
# /dev/null and the baselines' to /dev/null, so no disk write is timed.
set -euo pipefail

LAYERD=${1:?usage: export_bench.sh LAYERD CORPUS [RUNS]}
CORPUS=${2:?usage: export_bench.sh LAYERD CORPUS [RUNS]}
RUNS=${3:-5}
[[ -x $LAYERD && -d $CORPUS ]] || {
    echo "export_bench.sh: need an executable LAYERD and a CORPUS dir" >&2
    exit 2
}
for t in tar openssl pigz zstd /usr/bin/time; do
    command -v "$t" >/dev/null || {
        echo "export_bench.sh: $t is missing (deploy/deps.sh --bench)" >&2
        exit 2
    }
done
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT

L=$(printf '%q' "$LAYERD")
C=$(printf '%q' "$CORPUS")
# name ; layerd command ; baseline command ; baseline shown ; target
PAIRS=(
    "plain tar + sha256;$L export --layer $C -o /dev/null;tar -cf - -C $C . | openssl dgst -sha256 >/dev/null;tar -cf - DIR \\| openssl dgst -sha256;1.2"
    "gzip;$L export --layer $C --compression gzip -o /dev/null;tar -cf - -C $C . | pigz -1 >/dev/null;tar -cf - DIR \\| pigz -1;4.0"
    "zstd level 3;$L export --layer $C --compression zstd --level 3 -o /dev/null;tar -cf - -C $C . | zstd -q -3 -T2 >/dev/null;tar -cf - DIR \\| zstd -3 -T2;1.0"
)

# timed FILE CMD: run CMD with bash; append its wall time and its CPU time
# (user + system of every process of the pipeline, seconds) to FILE.
timed() {
    if ! /usr/bin/time -f '%e %U %S' -o "$TMPD/time" bash -c "$2" \
        2>"$TMPD/stderr"; then
        echo "export_bench.sh: command failed: $2" >&2
        cat "$TMPD/stderr" >&2
        exit 1
    fi
    awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$TMPD/time" >>"$1"
}

# median FILE COLUMN
median() { awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "export_bench: warm-up pass over $CORPUS" >&2
for p in "${PAIRS[@]}"; do
    IFS=';' read -r name a b shown target <<<"$p"
    timed "$TMPD/warm" "$a"
    timed "$TMPD/warm" "$b"
done
for ((r = 1; r <= RUNS; r++)); do
    echo "export_bench: run $r/$RUNS" >&2
    i=0
    for p in "${PAIRS[@]}"; do
        IFS=';' read -r name a b shown target <<<"$p"
        timed "$TMPD/a$i" "$a"
        timed "$TMPD/b$i" "$b"
        i=$((i + 1))
    done
done

# Output sizes of the compressed forms (one extra untimed run each).
size_layerd() {
    "$LAYERD" export --layer "$CORPUS" "$@" -o /dev/null --json 2>/dev/null |
        sed -n 's/.*"size":\([0-9]*\).*/\1/p'
}
tar_size=$(size_layerd)
gz_l=$(size_layerd --compression gzip)
gz_b=$(tar -cf - -C "$CORPUS" . | pigz -1 | wc -c)
zs_l=$(size_layerd --compression zstd --level 3)
zs_b=$(tar -cf - -C "$CORPUS" . | zstd -q -3 -T2 | wc -c)

echo "| Work | layerd export (median wall s) | baseline (median wall s) | speed-up | target | met | layerd CPU s | baseline CPU s |"
echo "|---|---:|---:|---:|---:|---|---:|---:|"
i=0
for p in "${PAIRS[@]}"; do
    IFS=';' read -r name a b shown target <<<"$p"
    ma=$(median "$TMPD/a$i" 1)
    mb=$(median "$TMPD/b$i" 1)
    ca=$(median "$TMPD/a$i" 2)
    cb=$(median "$TMPD/b$i" 2)
    BASE=$shown awk -v n="$name" -v a="$ma" -v b="$mb" -v ca="$ca" -v cb="$cb" \
        -v t="$target" 'BEGIN {
        s = b / a; base = ENVIRON["BASE"]
        printf "| %s: `layerd export` vs `%s` | %.3f | %.3f | %.2fx | >= %.1fx | %s | %.2f | %.2f |\n",
            n, base, a, b, s, t, (s >= t ? "yes" : "**no**"), ca, cb }'
    i=$((i + 1))
done
echo
echo "| Output size | layerd export (bytes) | baseline (bytes) | ratio | target | met |"
echo "|---|---:|---:|---:|---:|---|"
awk -v a="$gz_l" -v b="$gz_b" 'BEGIN {
    r = a / b
    printf "| gzip: layerd / `pigz -1` | %d | %d | %.3fx | <= 1.03x | %s |\n",
        a, b, r, (r <= 1.03 ? "yes" : "**no**") }'
awk -v a="$zs_l" -v b="$zs_b" 'BEGIN {
    printf "| zstd: layerd level 3 / `zstd -3` | %d | %d | %.3fx | - | - |\n",
        a, b, a / b }'
echo
echo "Uncompressed tar from layerd: $tar_size bytes. Runs per command: $RUNS,"
echo "after one untimed warm-up run of each."
