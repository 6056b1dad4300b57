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
#   - `layerd export` (auto: the original tar, from the same tar-split
#     data) gives exactly the recorded diff ID, and bytes identical to the
#     engine's export (skopeo, docker save) and to `tar-split asm`'s;
#   - `layerd export --tar canonical` gives layerd's own profile, whose
#     entries equal the reference tar's (tarcmp.py tars: the same members
#     and metadata, the same paths left after applying it to the layers
#     below, whatever the whiteout form), and so do `layerd entries`';
#   - over HTTP, /layers/{id} reports the recorded diff ID and an original
#     tar, and /layers/{id}/export in all three compressions decompresses
#     to bytes that hash to the diff ID (X-Layer-Tar: original, the
#     X-Layer-Diff-Id trailer the same).
# And the stopped container of each containers-storage store: its layer
# lists and exports its own changes, in the canonical tar (it is mutable:
# it has no original tar).
. "$(dirname "$0")/lib.sh"
it_init engine_stores 600
need tar-split jq sha256sum cmp curl zstd gzip

fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
[[ -d $fix && -e $fix/.complete ]] || die "no engine stores at '$fix'"

tarcmp() {
    "$(it_python)" "$IT_HERE/tarcmp.py" "$@"
}

# http_layer WHAT ID DIFF: the layer over HTTP from the running server.
http_layer() {
    local what=$1 id=$2 diff=$3 c got
    it_curl -o "$IT_TMP/layer.json" "$URL/layers/$id" ||
        fail "$what: GET /layers/{id}"
    expect_eq "$what: /layers/{id} diff_id" "$diff" \
        "$(jq -r .diff_id "$IT_TMP/layer.json")"
    expect_eq "$what: /layers/{id} original_tar" true \
        "$(jq -r .original_tar "$IT_TMP/layer.json")"
    for c in none gzip zstd; do
        if ! it_curl -D "$IT_TMP/h" -o "$IT_TMP/body" \
            "$URL/layers/$id/export?compression=$c"; then
            fail "$what: GET export ($c)"
            continue
        fi
        case $c in
        none) got=$(sha256_of "$IT_TMP/body") ;;
        gzip) got=$(gzip -dc "$IT_TMP/body" | sha256_of -) ;;
        zstd) got=$(zstd -dcq "$IT_TMP/body" | sha256_of -) ;;
        esac
        expect_eq "$what: HTTP $c decompresses to the diff ID" "$diff" "$got"
        expect_eq "$what: HTTP $c X-Layer-Tar" original \
            "$(it_hdr "$IT_TMP/h" X-Layer-Tar)"
        expect_eq "$what: HTTP $c X-Layer-Diff-Id trailer" "$diff" \
            "$(it_hdr "$IT_TMP/h" X-Layer-Diff-Id)"
        expect_eq "$what: HTTP $c Docker-Content-Digest trailer" \
            "$(sha256_of "$IT_TMP/body")" \
            "$(it_hdr "$IT_TMP/h" Docker-Content-Digest)"
    done
}

# The container layers are mutable: only a grant that says so reaches them.
cat >"$IT_TMP/policy.json" <<'JSON'
{"anonymous": {"grants": [{"layers": ["*"], "ops": ["list", "read"],
                           "mutable": true}]}}
JSON

layers=0
for store in cs-vfs cs-overlay docker; do
    KIND='' ROOT='' LAYERS='' CONTAINER_LAYER=''
    # shellcheck disable=SC1090
    . "$fix/$store/store.env"
    spec=$KIND:$fix/$ROOT
    lower=()
    seen=0
    IT_STORE='' it_serve --insecure-http --store "$spec" \
        --auth "$IT_TMP/policy.json"
    while IFS=$'\t' read -r n id diff ref asm ts dir; do
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
        # the original tar (auto)
        expect_rc "$what: layerd export (auto)" 0 "$LAYERD" export \
            --store "$spec" "$id" -o "$IT_TMP/orig.tar" --json
        expect_eq "$what: auto gives the original tar" original \
            "$(jq -r .tar "$IT_TMP/out" 2>/dev/null)"
        expect_eq "$what: the export's diff ID is the recorded one" "$diff" \
            "$(jq -r .diff_id "$IT_TMP/out" 2>/dev/null)"
        expect_eq "$what: the export hashes to it" "$diff" \
            "$(sha256_of "$IT_TMP/orig.tar")"
        check "$what: byte-identical to the engine's export ($ref)" \
            cmp -s "$IT_TMP/orig.tar" "$fix/$ref"
        check "$what: byte-identical to tar-split asm's" \
            cmp -s "$IT_TMP/orig.tar" "$fix/$asm"
        # the canonical tar
        expect_rc "$what: layerd entries" 0 "$LAYERD" entries --store "$spec" "$id"
        cp "$IT_TMP/out" "$IT_TMP/entries.ndjson"
        expect_rc "$what: layerd export --tar canonical" 0 "$LAYERD" export \
            --store "$spec" "$id" --tar canonical -o "$IT_TMP/export.tar" --json
        expect_eq "$what: the canonical tar" canonical \
            "$(jq -r .tar "$IT_TMP/out" 2>/dev/null)"
        expect_eq "$what: the reported diff ID is the canonical export's" \
            "$(sha256_of "$IT_TMP/export.tar")" \
            "$(jq -r .diff_id "$IT_TMP/out" 2>/dev/null)"
        if tarcmp tars "$IT_TMP/export.tar" "$fix/$ref" "${lower[@]}" \
            >"$IT_TMP/cmp" 2>&1; then
            ok "$what: canonical export entries equal the reference tar's"
            sed -n 's/^tarcmp: note: /    note: /p' "$IT_TMP/cmp"
        else
            fail "$what: canonical export entries differ from $ref:"
            sed 's/^/    /' "$IT_TMP/cmp"
        fi
        if tarcmp entries "$IT_TMP/entries.ndjson" "$fix/$ref" "${lower[@]}" \
            >"$IT_TMP/cmp" 2>&1; then
            ok "$what: listed entries equal the reference tar's"
        else
            fail "$what: listed entries differ from $ref:"
            sed 's/^/    /' "$IT_TMP/cmp"
        fi
        http_layer "$what" "$id" "$diff"
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
            -o "$IT_TMP/ctr.tar" --json
        expect_eq "$store: a mutable layer gets the canonical tar" canonical \
            "$(jq -r .tar "$IT_TMP/out" 2>/dev/null)"
        expect_eq "$store: the container layer's tar" \
            "etc/|etc/.wh.keep.conf|opt/|opt/written|" \
            "$(tar -tf "$IT_TMP/ctr.tar" | tr '\n' '|')"
        expect_rc "$store: --tar original of the mutable layer" 4 \
            "$LAYERD" export --store "$spec" "$CONTAINER_LAYER" --tar original \
            -o "$IT_TMP/ctr2.tar"
        check "$store: ... says why" grep -q "has no original tar: it is mutable" \
            "$IT_TMP/err"
        check "$store: ... and leaves no file" test ! -e "$IT_TMP/ctr2.tar"
        expect_eq "$store: /layers/{id} of the mutable layer: no original tar" \
            false "$(it_curl "$URL/layers/$CONTAINER_LAYER" | jq -r .original_tar)"
        expect_eq "$store: ?tar=original of the mutable layer is a 422" 422 \
            "$(it_curl -o "$IT_TMP/body" -w '%{http_code}' \
                "$URL/layers/$CONTAINER_LAYER/export?tar=original")"
        expect_eq "$store: ... no-original-tar" \
            "https://layerd.dev/problems/no-original-tar" \
            "$(jq -r .type "$IT_TMP/body")"
    fi
    it_stop
done
expect_eq "layers checked" 12 "$layers"

# The comparison can fail: a layer against the next one's reference.
. "$fix/docker/store.env"
read -r _ id3 _ _ _ _ _ < <(sed -n 3p "$fix/docker/layers.tsv")
ref4=$(sed -n 4p "$fix/docker/layers.tsv" | cut -f4)
"$LAYERD" export --store "docker:$fix/$ROOT" --tar canonical "$id3" \
    -o "$IT_TMP/l3.tar" 2>"$IT_TMP/err" || fail "docker layer 3: layerd export"
if tarcmp tars "$IT_TMP/l3.tar" "$fix/$ref4" >/dev/null 2>&1; then
    fail "tarcmp.py finds no difference between different layers"
else
    ok "tarcmp.py tells different layers apart"
fi
it_done
