#!/usr/bin/env bash
# reader_rss.sh LAYERD [WORKDIR]: peak RSS of `layerd entries --layer DIR`
# over trees of 20,000 and 200,000 small files (0..255 bytes, 200 per
# directory, made by gencorpus --tiny), printed as a Markdown table.
#
# The reader's memory should be bounded by tree depth times directory
# width, not by the number of files, so the two rows should be close.
# Trees are generated once under WORKDIR (default: $BENCH_DIR, else
# tests/bench/scratch) and reused; GENCORPUS names the generator binary (run.sh
# builds it; built here too when missing).
set -euo pipefail

LAYERD=${1:?usage: reader_rss.sh LAYERD [WORKDIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${2:-${BENCH_DIR:-$HERE/scratch}}
SIZES=${READER_RSS_SIZES:-20000 200000}
[[ -x /usr/bin/time ]] || {
    echo "reader_rss.sh: /usr/bin/time is missing (Debian package time)" >&2
    exit 2
}
mkdir -p "$WORK"
GENCORPUS=${GENCORPUS:-$WORK/gencorpus}
if [[ ! -x $GENCORPUS || $HERE/gencorpus.c -nt $GENCORPUS ]]; then
    "${CC:-cc}" -O2 -std=c11 -o "$GENCORPUS" "$HERE/gencorpus.c" -lm
fi

echo "| Tree | entries | peak RSS (MiB) | wall time (s) |"
echo "|---|---:|---:|---:|"
for n in $SIZES; do
    dir=$WORK/tiny-$n
    if [[ ! -d $dir ]]; then
        echo "reader_rss: generating $n small files in $dir" >&2
        rm -rf "$dir.tmp"
        "$GENCORPUS" --tiny "$n" "$dir.tmp" >&2
        mv "$dir.tmp" "$dir"
    fi
    # warm the page cache (and the dentry cache) once, untimed
    "$LAYERD" entries --layer "$dir" >/dev/null
    out=$(mktemp)
    /usr/bin/time -f '%M %e' -o "$out.time" \
        "$LAYERD" entries --layer "$dir" >"$out"
    entries=$(wc -l <"$out")
    read -r kib secs <"$out.time"
    rm -f "$out" "$out.time"
    awk -v n="$n" -v e="$entries" -v k="$kib" -v s="$secs" 'BEGIN {
        printf "| %d files (%d per directory) | %d | %.1f | %.2f |\n",
            n, 200, e, k / 1024, s }'
done
