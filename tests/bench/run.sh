#!/usr/bin/env bash
# run.sh LAYERD: the layerd benchmark (`make bench`).
#
#   BENCH_SCALE   default (~20,000 files, ~1 GiB) or small (~2,000 files,
#                 ~50 MiB, for CI smoke runs); default: default
#   BENCH_RUNS    timed runs per command (default 5; 3 at small scale)
#   BENCH_DIR     where corpora and the generator live (default
#                 tests/bench/scratch, gitignored); corpora are generated once
#                 and regenerated only when missing or when gencorpus.c or
#                 its arguments changed
#   BENCH_RESULTS the report (default tests/bench/RESULTS.md at default
#                 scale, $BENCH_DIR/RESULTS-small.md at small scale, so a
#                 smoke run does not overwrite the committed numbers)
#
# Runs export_bench.sh (layerd export vs tar pipelines), original_bench.sh
# (the original tar from tar-split data vs the canonical tar), the peak RSS of
# layerd export on the small corpus and, at default scale, on the default
# one (memory should not grow with the layer), reader_rss.sh, and
# http_bench.sh (layerd serve against nginx, entries against find, tracing
# on and off), cache_bench.sh (the blob cache against nginx, the cold fill,
# zstd on partly random data), registry_bench.sh (manifest requests/s of
# the registry view); writes the report with the machine's description and
# prints it.
set -euo pipefail

LAYERD=${1:?usage: tests/bench/run.sh LAYERD}
[[ -x $LAYERD ]] || {
    echo "run.sh: $LAYERD is not executable" >&2
    exit 2
}
LAYERD=$(cd "$(dirname "$LAYERD")" && pwd)/$(basename "$LAYERD")
HERE=$(cd "$(dirname "$0")" && pwd)
SCALE=${BENCH_SCALE:-default}
case $SCALE in
default) RUNS=${BENCH_RUNS:-5} ;;
small) RUNS=${BENCH_RUNS:-3} ;;
*)
    echo "run.sh: BENCH_SCALE must be small or default, not '$SCALE'" >&2
    exit 2
    ;;
esac
WORK=${BENCH_DIR:-$HERE/scratch}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
if [[ $SCALE == default ]]; then
    RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}
else
    RESULTS=${BENCH_RESULTS:-$WORK/RESULTS-small.md}
fi
[[ -x /usr/bin/time ]] || {
    echo "run.sh: /usr/bin/time is missing (Debian package time)" >&2
    exit 2
}

# The generator, rebuilt when its source changes.
export GENCORPUS=$WORK/gencorpus
if [[ ! -x $GENCORPUS || $HERE/gencorpus.c -nt $GENCORPUS ]]; then
    "${CC:-cc}" -O2 -std=c11 -Wall -Wextra -o "$GENCORPUS" \
        "$HERE/gencorpus.c" -lm
fi

# corpus SCALE: print the corpus directory, generating it if needed.
corpus() {
    local dir=$WORK/corpus-$1 stamp
    stamp="$(sha256sum <"$HERE/gencorpus.c" | cut -d' ' -f1) --scale $1"
    if [[ ! -d $dir || "$(cat "$dir.stamp" 2>/dev/null)" != "$stamp" ]]; then
        echo "run.sh: generating the $1 corpus in $dir" >&2
        rm -rf "$dir" "$dir.tmp" "$dir.stamp"
        "$GENCORPUS" --scale "$1" "$dir.tmp" >&2
        mv "$dir.tmp" "$dir"
        printf '%s\n' "$stamp" >"$dir.stamp"
    fi
    printf '%s' "$dir"
}

# rss DIR ARGS...: peak RSS in MiB of `layerd export --layer DIR ARGS`.
rss() {
    local dir=$1 t
    shift
    t=$(mktemp)
    /usr/bin/time -f '%M' -o "$t" "$LAYERD" export --layer "$dir" "$@" \
        -o /dev/null 2>/dev/null
    awk '{ printf "%.1f", $1 / 1024 }' "$t"
    rm -f "$t"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
MAIN=$(corpus "$SCALE")
corpus small >/dev/null # always built: the RSS flatness baseline
files=$(find "$MAIN" -type f | wc -l)
bytes=$(du -sb --apparent-size "$MAIN" | cut -f1)

echo "run.sh: export benchmark on $MAIN ($RUNS runs)" >&2
export_table=$(bash "$HERE/export_bench.sh" "$LAYERD" "$MAIN" "$RUNS")

echo "run.sh: original tar vs canonical tar ($RUNS runs)" >&2
original_row=$(bash "$HERE/original_bench.sh" "$LAYERD" "$MAIN" "$RUNS")

echo "run.sh: peak RSS of layerd export" >&2
rss_rows=""
declare -A base_rss
cmp_row=""
scales=(small)
[[ $SCALE == default ]] && scales+=(default)
for s in "${scales[@]}"; do
    dir=$(corpus "$s")
    n=$(find "$dir" -type f | wc -l)
    b=$(du -sb --apparent-size "$dir" | cut -f1)
    row="| $s ($n file names, $((b / 1048576)) MiB) |"
    for c in none gzip zstd; do
        m=$(rss "$dir" --compression "$c")
        row+=" $m |"
        [[ $s == small ]] && base_rss[$c]=$m
        if [[ $s == default ]]; then
            cmp_row+=" $(awk -v a="$m" -v b="${base_rss[$c]}" \
                'BEGIN { printf "%.2fx", a / b }') |"
        fi
    done
    rss_rows+="$row"$'\n'
done
if [[ $SCALE == default ]]; then
    rss_rows+="| default / small |${cmp_row}"$'\n'
    rss_note="Target: flat (memory does not grow with the layer's size)."
else
    rss_note="Small scale only: run at default scale for the flatness check."
fi

echo "run.sh: reader peak RSS" >&2
reader_table=$(bash "$HERE/reader_rss.sh" "$LAYERD" "$WORK")

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
{
    echo "# layerd benchmark results"
    echo
    echo "Written by \`tests/bench/run.sh\` (\`make bench\`; \`BENCH_SCALE=small\`"
    echo "for the smoke run). Do not edit by hand."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r)," \
        "work dir on $(stat -f -c %T "$WORK")"
    echo "- layerd: $("$LAYERD" version 2>/dev/null || echo unknown)"
    echo "- Tools: $(tar --version | head -n 1), pigz $(pigz --version 2>&1 |
        awk '{ print $2 }'), zstd $(zstd --version | sed -n 's/.* v\([0-9.]*\).*/\1/p'),"\
        "$(openssl version | awk '{ print "OpenSSL " $2 }')"
    echo "- Scale: $SCALE: $files file names, $bytes bytes ($((bytes / 1048576)) MiB)," \
        "generated by gencorpus.c (deterministic)"
    echo "- Page cache: warm. The sandbox cannot drop caches, so every command"
    echo "  runs once untimed first and the timed runs read from memory; this"
    echo "  measures CPU work (packing, hashing, compressing), not the disk."
    echo "- Medians of $RUNS runs; the two sides of each pair run alternately."
    echo "- Load average (1, 5, 15 min) at the start: $load_start; at the end:"
    echo "  $load_end. With other work on the machine the wall times are noisy;"
    echo "  the CPU-time columns (user + system of every process) are steadier."
    echo
    echo "## Export throughput"
    echo
    printf '%s\n' "$export_table"
    echo
    echo "## Original tar (tar-split) vs canonical tar"
    echo
    echo "The corpus as a containers-storage vfs layer whose tar-split data"
    echo "was recorded from GNU tar's tar of it (\`tar-split disasm\`); both"
    echo "exports hash the tar, the original one also checks every file's"
    echo "CRC-64 (computed as the row says) and the diff ID."
    echo
    echo "| Work | original (median wall s) | canonical (median wall s) | speed-up | target | met | original CPU s | canonical CPU s |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|"
    printf '%s\n' "$original_row"
    echo
    echo "## Peak RSS of \`layerd export -o /dev/null\` (MiB)"
    echo
    echo "| Corpus | none | gzip | zstd |"
    echo "|---|---:|---:|---:|"
    printf '%s' "$rss_rows"
    echo
    echo "$rss_note"
    echo
    echo "## Peak RSS of \`layerd entries --layer DIR > /dev/null\`"
    echo
    printf '%s\n' "$reader_table"
} >"$RESULTS"
echo "run.sh: HTTPS benchmark" >&2
BENCH_RUNS=$RUNS bash "$HERE/http_bench.sh" "$LAYERD" "$MAIN" "$RESULTS"
echo "run.sh: blob cache benchmark" >&2
BENCH_RUNS=$RUNS bash "$HERE/cache_bench.sh" "$LAYERD" "$MAIN" "$RESULTS"
echo "run.sh: registry manifest requests/s" >&2
BENCH_RUNS=$RUNS bash "$HERE/registry_bench.sh" "$LAYERD" "$RESULTS"
cat "$RESULTS"
echo "run.sh: wrote $RESULTS" >&2
