#!/usr/bin/env bash
# A store writer races the server: while /files and /export requests run,
# a helper exchanges a layer's directory with a symlink to a directory
# holding a marker file (renameat2 RENAME_EXCHANGE, so the name always
# exists: a real directory one moment, a symlink the next), 5,000 times.
# Not one response may hold the marker: every path below a store's root is
# resolved with no symlink on the way, and what was resolved is read
# through its descriptors, never looked up again. For each store:
#   - dir:                 <store>/race/fs
#   - containers-storage:  overlay/<id> of the overlay store the engine
#                          fixture made (tests/fixtures/mkengines.sh)
#   - docker:              overlay2/<cache-id> of the dockerd fixture
# 2,000 /files and 200 /export requests run against each (two clients at
# once, each going on until the 5,000 exchanges are made). The swaps must have been seen (some answers are errors: a lookup
# met the symlink) and the layer still be served (some answers are its
# real bytes). Loopback only; every loop is bounded.
. "$(dirname "$0")/../integration/lib.sh"
it_init symlink_race 300
need curl jq

SWAPS=5000
FILES=2000
EXPORTS=200
if [[ ${LAYERD_SANITIZED:-0} == 1 ]]; then
    FILES=1000
    EXPORTS=100
fi
MARKER=MARKER-$RANDOM$RANDOM-OUTSIDE-THE-STORE
py=$(it_python)
here=$(cd "$(dirname "$0")" && pwd)

# A directory outside every store, readable only by root, holding the
# marker under the names the layers hold.
outside=$IT_TMP/outside
mkdir -p "$outside/diff/etc" "$outside/etc"
for f in secret etc/motd diff/etc/motd; do
    printf '%s\n' "$MARKER" >"$outside/$f"
done
chmod -R go-rwx "$outside"

# race LABEL SPEC ID FILEPATH DIR EVIL: serve SPEC; exchange DIR with the
# symlink EVIL while the requests run; check the answers.
race() {
    local label=$1 spec=$2 id=$3 file=$4 a=$5 b=$6 swaps res real
    it_serve --store "$spec"
    real=$(it_curl "$URL/layers/$id/files/$file") ||
        die "$label: /files before the race"
    [[ $real != *MARKER* && -n $real ]] || die "$label: the real file holds the marker"
    rm -f "$IT_TMP/stop" "$IT_TMP/ready" "$IT_TMP/swapped"
    ("$py" "$here/swap.py" "$a" "$b" "$SWAPS" 100 "$IT_TMP/stop" \
        "$IT_TMP/ready" >"$IT_TMP/swaps" && : >"$IT_TMP/swapped") &
    local swapper=$!
    for ((i = 0; i < 100; i++)); do
        [[ -e $IT_TMP/ready ]] && break
        sleep 0.05
    done
    [[ -e $IT_TMP/ready ]] || die "$label: the swapper did not start"
    # each client makes its count of requests, and goes on while the
    # swapper has exchanges left to make
    "$py" "$here/hammer.py" --until "$IT_TMP/swapped" "$URL" "$MARKER" \
        "/layers/$id/files/$file" "$FILES" >"$IT_TMP/files.json" &
    local h1=$!
    "$py" "$here/hammer.py" --until "$IT_TMP/swapped" "$URL" "$MARKER" \
        "/layers/$id/export" "$EXPORTS" >"$IT_TMP/export.json" &
    local h2=$!
    wait "$h1" || fail "$label: the /files client failed"
    wait "$h2" || fail "$label: the /export client failed"
    # the swapper made its exchanges while both clients ran, unless they
    # gave up at their most: then stop it
    : >"$IT_TMP/stop"
    wait "$swapper" || fail "$label: the swapper failed"
    swaps=$(cat "$IT_TMP/swaps")
    [[ -d $a && ! -L $a && -L $b ]] || die "$label: the swapper left $a swapped"
    for kind in files export; do
        res=$IT_TMP/$kind.json
        it_log "$label $kind: $(cat "$res"), $swaps exchanges"
        expect_eq "$label: no /$kind answer holds the marker" 0 \
            "$(jq .marker "$res")"
        check "$label: /$kind answered with the layer's bytes during the race" \
            test "$(jq '.status["200"] // 0' "$res")" -gt 0
        # a stream cut midway would mean that something was looked up by
        # path again (the original tar's checks refuse what it found)
        expect_eq "$label: no /$kind answer was cut" 0 "$(jq .cut "$res")"
    done
    expect_eq "$label: $SWAPS exchanges while the requests ran" "$SWAPS" "$swaps"
    check "$label: at least $FILES /files and $EXPORTS /export requests" \
        test "$(jq .requests "$IT_TMP/files.json")" -ge "$FILES" -a \
        "$(jq .requests "$IT_TMP/export.json")" -ge "$EXPORTS"
    # The swaps were seen: a lookup that met the symlink was refused
    # (500, broken store) rather than followed.
    check "$label: lookups that met the symlink were refused" \
        test "$(jq -s '[.[] | .status["500"] // 0] | add' \
            "$IT_TMP/files.json" "$IT_TMP/export.json")" -gt 0
    expect_eq "$label: the layer is served as before after the race" "$real" \
        "$(it_curl "$URL/layers/$id/files/$file")"
    it_stop
}

# ---- dir: ----
store=$IT_TMP/store
mkdir -p "$store/race/fs/etc"
echo '{"kind": "diff"}' >"$store/race/layer.json"
echo "harmless" >"$store/race/fs/secret"
echo "motd" >"$store/race/fs/etc/motd"
ln -s "$outside" "$store/race/fs.evil"
race dir "dir:$store" race secret "$store/race/fs" "$store/race/fs.evil"

# ---- the engines' stores (copies: the fixture is shared) ----
fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
for s in cs-overlay docker; do
    KIND='' ROOT=''
    # shellcheck disable=SC1090
    . "$fix/$s/store.env"
    copy=$IT_TMP/$s
    mkdir -p "$copy"
    cp -a "$fix/$ROOT/." "$copy/" || die "cannot copy the $s store"
    # layer 2 (COPY tree/): etc/motd, over layer 1
    IFS=$'\t' read -r _n id _diff _ref _asm _ts dir < <(sed -n 2p "$fix/$s/layers.tsv")
    layerdir=$copy/${dir#"$ROOT"/}
    top=$(dirname "$layerdir") # overlay/<id> or overlay2/<cache-id>
    [[ -d $top && $(basename "$layerdir") == diff ]] || die "$s: no $top/diff"
    ln -s "$outside" "$top.evil"
    race "$s" "$KIND:$copy" "$id" etc/motd "$top" "$top.evil"
done

it_done
