#!/usr/bin/env bash
# A whole chain applied by a real OCI consumer: the exports of a chain are
# packed into an OCI image layout (blobs, config with rootfs.diff_ids,
# manifest, index.json) and `umoci unpack` (as root) applies them in
# order. umoci checks the blob digests and sizes; the unpacked rootfs
# must then equal
#   - for the diff chain base -> app -> patch (gzip): the overlayfs-style
#     merge of the three fs/ directories (treecmp.py merged, which honours
#     char 0/0 and xattr whiteouts and opaque=y directories);
#   - for the snapshot chain snap-base -> snap-top (plain tar): snap-top's
#     own tree.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init export_umoci 60
need umoci jq python3 sha256sum

D=$IT_TMP/demo
mkdemo "$D"
S=dir:$D

# blob LAYOUT FILE: move FILE into LAYOUT's blobs, print "DIGEST SIZE".
blob() {
    local h
    h=$(sha256sum "$2" | cut -d' ' -f1)
    mv "$2" "$1/blobs/sha256/$h"
    printf 'sha256:%s %s' "$h" "$(stat -c %s "$1/blobs/sha256/$h")"
}

# image LAYOUT COMPRESSION ID...: an OCI layout at LAYOUT, tag "demo",
# whose layers are the exports of the IDs (base first).
image() {
    local dir=$1 comp=$2 id json digest diff size mt cdigest csize mdigest msize
    shift 2
    mkdir -p "$dir/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    local layers="[]" diffs="[]"
    for id in "$@"; do
        if ! json=$("$LAYERD" export --store "$S" "$id" --compression "$comp" \
            -o "$dir/layer.tmp" --json 2>"$dir/err"); then
            fail "export $id: $(cat "$dir/err")"
            return 1
        fi
        digest=$(jq -r .digest <<<"$json")
        diff=$(jq -r .diff_id <<<"$json")
        size=$(jq -r .size <<<"$json")
        mt=$(jq -r .media_type <<<"$json")
        mv "$dir/layer.tmp" "$dir/blobs/sha256/${digest#sha256:}"
        layers=$(jq -c --arg d "$digest" --arg m "$mt" --argjson s "$size" \
            '. + [{mediaType: $m, digest: $d, size: $s}]' <<<"$layers")
        diffs=$(jq -c --arg d "$diff" '. + [$d]' <<<"$diffs")
    done
    jq -n -c --argjson diffs "$diffs" '{architecture: "amd64", os: "linux",
        config: {}, rootfs: {type: "layers", diff_ids: $diffs},
        history: []}' >"$dir/config.json"
    read -r cdigest csize <<<"$(blob "$dir" "$dir/config.json")"
    jq -n -c --argjson layers "$layers" --arg cd "$cdigest" \
        --argjson cs "$csize" '{schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json",
                 digest: $cd, size: $cs},
        layers: $layers}' >"$dir/manifest.json"
    read -r mdigest msize <<<"$(blob "$dir" "$dir/manifest.json")"
    jq -n -c --arg md "$mdigest" --argjson ms "$msize" '{schemaVersion: 2,
        manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
                     digest: $md, size: $ms,
                     annotations: {"org.opencontainers.image.ref.name":
                                   "demo"}}]}' >"$dir/index.json"
}

# unpack LAYOUT BUNDLE
unpack() {
    if umoci unpack --image "$1:demo" "$2" >"$2.log" 2>&1; then
        ok "umoci unpack $(basename "$1")"
        return 0
    fi
    fail "umoci unpack $(basename "$1"): $(tail -n 5 "$2.log")"
    return 1
}

I1=$IT_TMP/diff-image
if image "$I1" gzip base app patch && unpack "$I1" "$IT_TMP/diff-bundle"; then
    check "diff chain: umoci's rootfs equals the overlay merge" \
        treecmp merged "$IT_TMP/diff-bundle/rootfs" \
        "$D/base/fs" "$D/app/fs" "$D/patch/fs"
    R=$IT_TMP/diff-bundle/rootfs
    check "diff chain: whiteouts applied" \
        test ! -e "$R/etc/motd" -a ! -e "$R/etc/issue" -a \
        ! -e "$R/etc/alternatives" -a ! -e "$R/usr/share/doc/README"
    check "diff chain: opaque dirs replaced their lower content" \
        test ! -e "$R/var/cache/app/old1.dat" -a -f "$R/var/cache/app/new.dat" \
        -a ! -e "$R/var/lib/db/records.db" -a -f "$R/var/lib/db/fresh.db"
    check "diff chain: opaque=x merged with the lower dir" \
        test -f "$R/var/log/base.log" -a -f "$R/var/log/patch.log"
    expect_eq "diff chain: the top layer's version wins" "app v2" \
        "$(sed -n 2p "$R/usr/bin/app" | cut -d'"' -f2)"
fi

I2=$IT_TMP/snap-image
if image "$I2" none snap-base snap-top && unpack "$I2" "$IT_TMP/snap-bundle"; then
    check "snapshot chain: umoci's rootfs equals snap-top's tree" \
        treecmp trees "$D/snap-top/fs" "$IT_TMP/snap-bundle/rootfs"
fi

it_done
