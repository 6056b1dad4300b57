#!/usr/bin/env bash
# layerd over stores that the real engines made (tests/fixtures/mkengines.sh,
# built once per checkout and shared): buildah's containers-storage with
# the vfs and the overlay drivers, and dockerd's overlay2 data root, each
# holding the same four-layer image (deletions, a deleted directory, an
# opaque directory, a modified file, a mode change, symlinks, a hard link
# pair, UTF-8 and Latin-1 names, an empty file, a file owned by 1234:5678).
#
# For every layer of every store:
#   - the fixture still holds: the engine's reference tar hashes to the
#     diff ID the store recorded, and `tar-split asm` over the store's
#     tar-split data and the layer's directory rebuilds it byte for byte;
#   - `layerd entries --store KIND:ROOT ID` and `layerd export` succeed;
#   - the export's entries equal the reference tar's (tarcmp.py tars: the
#     same members and metadata, the same paths left after applying it to
#     the layers below, whatever the whiteout form), and so do the
#     entries' (tarcmp.py entries).
# And the stopped container of each containers-storage store: its layer
# lists and exports its own changes.
# The canonical tar profile gives other bytes than the engines' tars, so
# the diff IDs differ; how many match is reported, not asserted.
. "$(dirname "$0")/lib.sh"
it_init engine_stores 600
need tar-split jq sha256sum cmp

fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
[[ -d $fix && -e $fix/.complete ]] || die "no engine stores at '$fix'"

tarcmp() {
    "$(it_python)" "$IT_HERE/tarcmp.py" "$@"
}

layers=0
matched=0
for store in cs-vfs cs-overlay docker; do
    KIND='' ROOT='' LAYERS='' CONTAINER_LAYER=''
    # shellcheck disable=SC1090
    . "$fix/$store/store.env"
    spec=$KIND:$fix/$ROOT
    lower=()
    seen=0
    while IFS=$'\t' read -r n id diff ref _asm ts dir; do
        seen=$((seen + 1))
        layers=$((layers + 1))
        what="$store layer $n"
        # the fixture itself
        expect_eq "$what: reference tar hashes to the recorded diff ID" \
            "$diff" "$(sha256_of "$fix/$ref")"
        if tar-split asm --input "$fix/$ts" --path "$fix/$dir" \
            --output "$IT_TMP/asm.tar" 2>"$IT_TMP/asm.err" &&
            cmp -s "$IT_TMP/asm.tar" "$fix/$ref"; then
            ok "$what: tar-split asm rebuilds the reference tar"
        else
            fail "$what: tar-split asm: $(tail -n 1 "$IT_TMP/asm.err")"
        fi
        # layerd
        expect_rc "$what: layerd entries" 0 "$LAYERD" entries --store "$spec" "$id"
        cp "$IT_TMP/out" "$IT_TMP/entries.ndjson"
        expect_rc "$what: layerd export" 0 "$LAYERD" export --store "$spec" \
            "$id" -o "$IT_TMP/export.tar" --json
        got=$(jq -r .diff_id "$IT_TMP/out" 2>/dev/null)
        expect_eq "$what: the reported diff ID is the export's" \
            "$(sha256_of "$IT_TMP/export.tar")" "$got"
        if [[ $got == "$diff" ]]; then
            matched=$((matched + 1))
        fi
        if tarcmp tars "$IT_TMP/export.tar" "$fix/$ref" "${lower[@]}" \
            >"$IT_TMP/cmp" 2>&1; then
            ok "$what: export entries equal the reference tar's"
            sed -n 's/^tarcmp: note: /    note: /p' "$IT_TMP/cmp"
        else
            fail "$what: export entries differ from $ref:"
            sed 's/^/    /' "$IT_TMP/cmp"
        fi
        if tarcmp entries "$IT_TMP/entries.ndjson" "$fix/$ref" "${lower[@]}" \
            >"$IT_TMP/cmp" 2>&1; then
            ok "$what: listed entries equal the reference tar's"
        else
            fail "$what: listed entries differ from $ref:"
            sed 's/^/    /' "$IT_TMP/cmp"
        fi
        lower+=(--lower "$fix/$ref")
    done <"$fix/$store/layers.tsv"
    expect_eq "$store: every layer of the image checked" "$LAYERS" "$seen"
    # The stopped container's own layer (containers-storage lists it; a
    # docker container's layer is not a layer of layerd's docker store).
    if [[ $KIND == containers-storage ]]; then
        expect_rc "$store: layerd entries of the container layer" 0 \
            "$LAYERD" entries --store "$spec" "$CONTAINER_LAYER"
        expect_eq "$store: the container's changes" \
            "add file opt/written|delete  etc/keep.conf|" \
            "$(jq -r 'select(.type != "dir") | "\(.change) \(.type // "") \(.path)"' \
                "$IT_TMP/out" | sort | tr '\n' '|')"
        expect_rc "$store: layerd export of the container layer" 0 \
            "$LAYERD" export --store "$spec" "$CONTAINER_LAYER" \
            -o "$IT_TMP/ctr.tar"
        expect_eq "$store: the container layer's tar" \
            "etc/|etc/.wh.keep.conf|opt/|opt/written|" \
            "$(tar -tf "$IT_TMP/ctr.tar" | tr '\n' '|')"
    fi
done
expect_eq "layers checked" 12 "$layers"

# The comparison can fail: a layer against the next one's reference.
. "$fix/docker/store.env"
read -r _ id3 _ _ _ _ _ < <(sed -n 3p "$fix/docker/layers.tsv")
ref4=$(sed -n 4p "$fix/docker/layers.tsv" | cut -f4)
"$LAYERD" export --store "docker:$fix/$ROOT" "$id3" -o "$IT_TMP/l3.tar" \
    2>"$IT_TMP/err" || fail "docker layer 3: layerd export"
if tarcmp tars "$IT_TMP/l3.tar" "$fix/$ref4" >/dev/null 2>&1; then
    fail "tarcmp.py finds no difference between different layers"
else
    ok "tarcmp.py tells different layers apart"
fi

it_log "diff IDs: $matched of $layers canonical exports match the diff ID" \
    "the store recorded (byte-exact export from tar-split comes later)"
it_done
