#!/usr/bin/env bash
# layerd needs read access and nothing more: the capabilities the systemd
# unit keeps (deploy/layerd.service) are enough, and the stores may be
# mounted read-only. The server runs here as uid 65534 with exactly
# CAP_DAC_READ_SEARCH and CAP_SYS_ADMIN (ambient, bounding set cut to
# them), in a mount namespace where the engine fixtures' stores
# (root-owned, with 0700 layer directories and 0600 files) are bind-mounted
# read-only; every layer it exports is byte for byte what root's
# `layerd export` gives, canonical and original tars alike, and a 0600
# file comes out through /files.
# Without CAP_SYS_ADMIN it warns at start-up, and rightly: the trusted.*
# xattr that marks an opaque directory is out of reach, so the canonical
# export of the layer that has one loses its whiteouts (the original tar,
# rebuilt from the engine's tar-split data, does not read xattrs).
. "$(dirname "$0")/../integration/lib.sh"
it_init least_privilege 240
need curl jq unshare setpriv

fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
mkdir -p "$IT_TMP/mnt" "$IT_TMP/nobody"
chown 65534:65534 "$IT_TMP/nobody"
# the blob cache must be the server's own: uid 65534's directory
export CACHE_DIRECTORY=$IT_TMP/nobody/cache
root_layerd=$LAYERD

# confined CAPS: a wrapper that runs layerd as uid 65534 with CAPS only,
# with $src bind-mounted read-only on $IT_TMP/mnt; it_serve starts it
# through LAYERD (unshare and setpriv exec, so SERVER_PID is layerd's).
confined() {
    cat >"$IT_TMP/confined.sh" <<SH
#!/bin/bash
exec unshare -m --propagation private bash -c '
mount --bind "\$0" "\$1" && mount -o remount,bind,ro "\$1" || exit 1
exec setpriv --reuid 65534 --regid 65534 --clear-groups \
    --inh-caps -all$1 --ambient-caps -all$1 --bounding-set -all$1 \
    "\$2" "\${@:3}"' "\$SRC" "$IT_TMP/mnt" "$root_layerd" "\$@"
SH
    chmod +x "$IT_TMP/confined.sh"
    LAYERD=$IT_TMP/confined.sh
}

for s in cs-overlay docker; do
    KIND='' ROOT=''
    # shellcheck disable=SC1090
    . "$fix/$s/store.env"
    export SRC=$fix/$ROOT
    confined ,+dac_read_search,+sys_admin
    it_serve --store "$KIND:$IT_TMP/mnt" --trace "$IT_TMP/nobody/trace.log"
    expect_eq "$s: the server runs as uid 65534" 65534 \
        "$(awk '/^Uid:/ {print $3}' "/proc/$SERVER_PID/status")"
    expect_eq "$s: with CAP_DAC_READ_SEARCH and CAP_SYS_ADMIN only" \
        0000000000200004 "$(awk '/^CapEff:/ {print $2}' "/proc/$SERVER_PID/status")"
    check "$s: and no warning about trusted.* xattrs" \
        bash -c "! grep -q CAP_SYS_ADMIN '$SERVER_LOG'"
    while IFS=$'\t' read -r n id _rest; do
        # the canonical tar (the reader walks the layer, xattrs and all)
        # and the original one (rebuilt from the engine's tar-split data)
        for tar in canonical original; do
            it_curl -o "$IT_TMP/got.tar" "$URL/layers/$id/export?tar=$tar" ||
                fail "$s layer $n: $tar export"
            "$root_layerd" export --store "$KIND:$SRC" "$id" --tar "$tar" \
                -o "$IT_TMP/want.tar" 2>/dev/null ||
                fail "$s layer $n: root's $tar export"
            check "$s layer $n: the same $tar tar as root's export" \
                cmp -s "$IT_TMP/got.tar" "$IT_TMP/want.tar"
        done
    done <"$fix/$s/layers.tsv"
    # layer 4 made etc/keep.conf 0600 (root's)
    id=$(sed -n 4p "$fix/$s/layers.tsv" | cut -f2)
    expect_eq "$s: a 0600 file of root's through /files" \
        "$(tar -xOf "$IT_TMP/want.tar" etc/keep.conf)" \
        "$(it_curl "$URL/layers/$id/files/etc/keep.conf")"
    it_stop
done

# Without CAP_SYS_ADMIN: a warning, and the opaque directory of layer 3
# (opt/re, recreated) is not seen.
s=cs-overlay
# shellcheck disable=SC1090
. "$fix/$s/store.env"
export SRC=$fix/$ROOT
confined ,+dac_read_search
it_serve --store "$KIND:$IT_TMP/mnt" --trace "$IT_TMP/nobody/trace.log"
check "without CAP_SYS_ADMIN: a warning at start-up" \
    grep -q "warning: without CAP_SYS_ADMIN the trusted.overlay" "$SERVER_LOG"
id=$(sed -n 3p "$fix/$s/layers.tsv" | cut -f2)
it_curl -o "$IT_TMP/got.tar" "$URL/layers/$id/export?tar=canonical" ||
    fail "export"
"$root_layerd" export --store "$KIND:$SRC" "$id" --tar canonical \
    -o "$IT_TMP/want.tar" 2>/dev/null || fail "root's export"
check "root's export of layer 3 deletes opt/re/r1 (opaque opt/re)" \
    bash -c "tar -tf '$IT_TMP/want.tar' | grep -qx opt/re/.wh.r1"
check "without CAP_SYS_ADMIN that whiteout is lost (what the warning says)" \
    bash -c "! tar -tf '$IT_TMP/got.tar' | grep -qx opt/re/.wh.r1"
it_stop
it_done
