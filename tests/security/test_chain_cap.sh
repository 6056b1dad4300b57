#!/usr/bin/env bash
# One cap on parent chains, LAYER_CHAIN_MAX (lib/include/layer/reader.h),
# for the command line, the stores and the C API (the Check tests of
# test_reader, test_export and test_folder hold the API's side). The
# reader's parent index once was a signed char: 129 parents read out of
# bounds and 200 lost tombstones. Now:
#   - `layerd entries|export --layer L` with LAYER_CHAIN_MAX --parent
#     options works: every parent's name is a tombstone under L's opaque
#     root, the farthest one's included;
#   - one --parent more is a usage error (exit 2) with a clear message,
#     before anything is read;
#   - a dir: store whose chain is LAYER_CHAIN_MAX parents long serves the
#     layer; one parent more is a broken store (500, exit 1).
. "$(dirname "$0")/../integration/lib.sh"
it_init chain_cap 120
need curl jq

max=$(sed -n 's/^#define LAYER_CHAIN_MAX \([0-9]*\).*/\1/p' \
    "$LAYERD_SOURCE_DIR/lib/include/layer/reader.h")
[[ $max =~ ^[0-9]+$ ]] || die "LAYER_CHAIN_MAX not found in reader.h"

dirs=$IT_TMP/dirs
mkdir -p "$dirs/top"
setfattr -n trusted.overlay.opaque -v y "$dirs/top" ||
    die "cannot set trusted.overlay.opaque"
args=()
for ((i = 0; i <= max; i++)); do
    p=$(printf 'p%03d' "$i")
    mkdir -p "$dirs/$p"
    echo "$i" >"$dirs/$p/$(printf 'f%03d' "$i")"
    args+=(--parent "$dirs/$p")
done

expect_rc "entries with $max parents" 0 \
    "$LAYERD" entries --layer "$dirs/top" "${args[@]:0:$((2 * max))}"
expect_eq "entries with $max parents: one tombstone per parent" "$max" \
    "$(jq -r 'select(.change == "delete") | .path' "$IT_TMP/out" | wc -l)"
expect_eq "entries with $max parents: the farthest parent's name too" \
    "$(printf 'f%03d' $((max - 1)))" \
    "$(jq -r .path "$IT_TMP/out" | tail -n 1)"
expect_rc "export with $max parents" 0 \
    "$LAYERD" export --layer "$dirs/top" "${args[@]:0:$((2 * max))}" \
    -o "$IT_TMP/max.tar"
expect_eq "export with $max parents: $max whiteouts" "$max" \
    "$(tar -tf "$IT_TMP/max.tar" | grep -c '^\.wh\.f')"
for cmd in entries export; do
    expect_rc "$cmd with $((max + 1)) parents: usage error" 2 \
        "$LAYERD" "$cmd" --layer "$dirs/top" "${args[@]}"
    check "$cmd with $((max + 1)) parents: says why" \
        grep -qF "$((max + 1)) --parent options: a layer has at most $max parents" \
        "$IT_TMP/err"
done

# A dir: store: l0 <- l1 <- ... <- l(max+1)
store=$IT_TMP/store
for ((i = 0; i <= max + 1; i++)); do
    mkdir -p "$store/l$i/fs"
    if ((i == 0)); then
        echo '{}' >"$store/l$i/layer.json"
    else
        printf '{"parent": "l%d"}\n' $((i - 1)) >"$store/l$i/layer.json"
    fi
done
expect_rc "store: a chain of $max parents is served" 0 \
    "$LAYERD" export --store "dir:$store" "l$max" -o /dev/null
expect_rc "store: one parent more is a broken store" 1 \
    "$LAYERD" export --store "dir:$store" "l$((max + 1))" -o /dev/null
check "store: ... saying so" grep -q "parent chain longer than $max" "$IT_TMP/err"
it_serve --store "dir:$store"
expect_eq "server: a chain of $max parents is served" 200 \
    "$(it_curl -o /dev/null -w '%{http_code}' "$URL/layers/l$max/export")"
expect_eq "server: one parent more is 500" 500 \
    "$(it_curl -o /dev/null -w '%{http_code}' "$URL/layers/l$((max + 1))/export")"
it_stop
it_done
