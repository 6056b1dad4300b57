#!/usr/bin/env bash
# Real tar readers accept every demo export and agree with each other and
# with `layerd entries`: each layer is extracted with GNU tar and bsdtar
# (as root, keeping owners, modes, xattrs), the two trees are compared
# (types, modes, owners, mtimes, contents, symlink targets, hard link
# identity, device numbers, security.capability), and each tree is checked
# against the entry list: every entry present with its metadata, every
# tombstone a `.wh.<name>` file of size 0 and mode 0, nothing else.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init export_tools 60
need tar bsdtar zstd getfattr

D=$IT_TMP/demo
mkdemo "$D"
S=dir:$D
W=$IT_TMP/w
mkdir -p "$W"

for id in base app patch snap-top; do
    t=$W/$id.tar
    if ! "$LAYERD" export --store "$S" "$id" -o "$t" 2>"$W/$id.err"; then
        fail "$id: export failed: $(cat "$W/$id.err")"
        continue
    fi
    if ! "$LAYERD" entries --store "$S" "$id" >"$W/$id.ndjson" \
        2>"$W/$id.err"; then
        fail "$id: entries failed: $(cat "$W/$id.err")"
        continue
    fi
    mkdir -p "$W/$id.gnu" "$W/$id.bsd" "$W/$id.zst"
    tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$t" \
        -C "$W/$id.gnu" 2>"$W/$id.gnu.err"
    expect_eq "$id: GNU tar extracts without error" "0 " \
        "$? $(head -c 300 "$W/$id.gnu.err")"
    bsdtar --numeric-owner -xpf "$t" -C "$W/$id.bsd" 2>"$W/$id.bsd.err"
    expect_eq "$id: bsdtar extracts without error" "0 " \
        "$? $(head -c 300 "$W/$id.bsd.err")"
    check "$id: GNU tar and bsdtar trees are equal" \
        treecmp trees "$W/$id.gnu" "$W/$id.bsd"
    check "$id: the GNU tar tree matches layerd entries" \
        treecmp entries "$W/$id.ndjson" "$W/$id.gnu"
    check "$id: the bsdtar tree matches layerd entries" \
        treecmp entries "$W/$id.ndjson" "$W/$id.bsd"
    # the compressed form reads back to the same tree
    "$LAYERD" export --store "$S" "$id" --compression zstd \
        -o "$W/$id.tar.zst" 2>/dev/null &&
        bsdtar --numeric-owner -xpf "$W/$id.tar.zst" -C "$W/$id.zst"
    check "$id: bsdtar on the zstd export gives the same tree" \
        treecmp trees "$W/$id.gnu" "$W/$id.zst"
done

# The demo's special cases are really in the extraction, not just agreed on.
G=$W/base.gnu
check "base: hard links share one inode" \
    test "$(stat -c %i "$G/usr/bin/tool")" = "$(stat -c %i "$G/usr/sbin/tool-admin")" \
    -a "$(stat -c %i "$G/usr/bin/tool")" = "$(stat -c %i "$G/usr/bin/tool-alias")"
expect_eq "base: setuid bit kept" 4755 "$(stat -c %a "$G/bin/su")"
expect_eq "base: block device 7:0" "b 7 0" \
    "$(stat -c '%F' "$G/dev/loop0" | sed 's/block special file/b/') $(stat -c '%t %T' "$G/dev/loop0")"
expect_eq "base: capability restored" "0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=" \
    "$(getfattr --absolute-names -e base64 -n security.capability "$G/bin/ping" 2>/dev/null |
        sed -n 's/^security.capability=//p')"
check "app: the char 0/0 whiteout became .wh.motd" test -f "$W/app.gnu/etc/.wh.motd"
check "app: the opaque dir is expanded into explicit tombstones" \
    test -f "$W/app.gnu/var/cache/app/.wh.old1.dat" -a \
    ! -e "$W/app.gnu/var/cache/app/.wh..wh..opq"
check "patch: a whiteout of a path no parent has is dropped" \
    test ! -e "$W/patch.gnu/etc/.wh.never-existed"
check "snap-top: the deleted directory is one tombstone" \
    test -f "$W/snap-top.gnu/.wh.olddir" -a ! -e "$W/snap-top.gnu/olddir"

it_done
