#!/usr/bin/env bash
# Symlinks planted below a store's root, without any race: a
# containers-storage overlay/<id> that is itself a symlink (to a directory
# holding diff/ with a marker), a dir: store's fs/, a docker
# overlay2/<cache-id>. Each is refused with a clear error naming the path
# (HTTP 500 broken-store, the request's span in the server's log says why
# and where; the CLI exits 1 with the message), and nothing behind the
# link is read. On the command line, --layer DIR and --parent DIR may be
# reached through symlinks (whoever typed them chose them); nothing below
# them is followed: a folder's Files/ that is a symlink is refused.
. "$(dirname "$0")/../integration/lib.sh"
it_init symlinked_dirs 120
need curl jq

MARKER=MARKER-$RANDOM$RANDOM-BEHIND-A-SYMLINK
outside=$IT_TMP/outside
mkdir -p "$outside/diff/etc" "$outside/Files"
printf '%s\n' "$MARKER" >"$outside/diff/etc/motd"
printf '%s\n' "$MARKER" >"$outside/etc-motd"
printf '%s\n' "$MARKER" >"$outside/Files/secret"
cp "$outside/etc-motd" "$outside/motd"

fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"

# refused LABEL SPEC ID PATH: the layer ID of SPEC, whose directory PATH
# is a symlink, is refused by the server and the CLI, naming PATH.
refused() {
    local label=$1 spec=$2 id=$3 path=$4 code
    it_serve --store "$spec"
    code=$(it_curl -o "$IT_TMP/body" -w '%{http_code}' "$URL/layers/$id/export")
    expect_eq "$label: export answered 500" 500 "$code"
    expect_eq "$label: as a broken store" \
        "https://layerd.dev/problems/broken-store" "$(jq -r .type "$IT_TMP/body")"
    check "$label: the answer holds nothing from behind the link" \
        bash -c "! grep -q '$MARKER' '$IT_TMP/body'"
    code=$(it_curl -o "$IT_TMP/body" -w '%{http_code}' \
        "$URL/layers/$id/files/etc/motd")
    expect_eq "$label: /files answered 500" 500 "$code"
    it_stop
    check "$label: the server's log names the path and the symlink" \
        grep -qF "$path is a symlink or has one on its path (refused)" \
        "$IT_TMP/trace.log"
    expect_rc "$label: layerd export exits 1" 1 \
        "$LAYERD" export --store "$spec" "$id" -o "$IT_TMP/out.tar"
    check "$label: layerd export names the path" \
        grep -qF "$path is a symlink" "$IT_TMP/err"
    check "$label: layerd export leaves no file" \
        test ! -e "$IT_TMP/out.tar" -a ! -e "$IT_TMP/out.tar.tmp"
}

for s in cs-overlay docker; do
    KIND='' ROOT=''
    # shellcheck disable=SC1090
    . "$fix/$s/store.env"
    copy=$IT_TMP/$s
    mkdir -p "$copy"
    cp -a "$fix/$ROOT/." "$copy/" || die "cannot copy the $s store"
    IFS=$'\t' read -r _n id _diff _ref _asm _ts dir < <(sed -n 2p "$fix/$s/layers.tsv")
    top=$(dirname "$copy/${dir#"$ROOT"/}")
    mv "$top" "$top.real"
    ln -s "$outside" "$top"
    refused "$s" "$KIND:$copy" "$id" "$top/diff"
done

store=$IT_TMP/store
mkdir -p "$store/lnk" "$store/real/fs/etc"
echo '{}' >"$store/lnk/layer.json"
echo '{}' >"$store/real/layer.json"
echo real >"$store/real/fs/etc/motd"
ln -s "$outside/diff" "$store/lnk/fs"
refused dir "dir:$store" lnk "$store/lnk/fs"

# ---- the command line ----
ln -s "$store/real/fs" "$IT_TMP/named"
expect_rc "--layer through a symlink is read" 0 \
    "$LAYERD" export --layer "$IT_TMP/named" -o "$IT_TMP/named.tar"
expect_eq "--layer through a symlink: its own files" "real" \
    "$(tar -xOf "$IT_TMP/named.tar" etc/motd)"
ln -s "$store/real/fs" "$IT_TMP/named-parent"
expect_rc "--parent through a symlink is read" 0 \
    "$LAYERD" entries --layer "$store/real/fs" --kind snapshot \
    --parent "$IT_TMP/named-parent"
expect_eq "--parent through a symlink: nothing changed against itself" "" \
    "$(cat "$IT_TMP/out")"
mkdir -p "$IT_TMP/folder"
printf 'Version 1.0\n' >"$IT_TMP/folder/tombstones.txt"
ln -s "$outside/Files" "$IT_TMP/folder/Files"
expect_rc "a folder whose Files/ is a symlink is refused" 1 \
    "$LAYERD" export --layer "$IT_TMP/folder" --kind folder -o "$IT_TMP/f.tar"
check "... saying so" grep -q "Files is a symlink (refused)" "$IT_TMP/err"
check "... and nothing behind it is read" \
    bash -c "! grep -qs '$MARKER' '$IT_TMP/out' '$IT_TMP/f.tar'"
it_done
