#!/usr/bin/env bash
# Tombstones of a transport folder (tombstones.txt) come from whoever wrote
# the folder. Each must be a canonical relative path, naming one path and
# only that one: ".", "etc/." would become the whiteouts ".wh.." and
# "etc/.wh.." (of the directory itself), "a/./b", "a//b", "/a", "a/" are
# other spellings that tar consumers clean each their own way. Each is
# refused, by `layerd entries` and `layerd export` (exit 1) and by the
# server (500 broken-store; a stream already started is cut), with a
# message naming the file and the line number; nothing is written.
. "$(dirname "$0")/../integration/lib.sh"
it_init tombstones 120
need curl jq

store=$IT_TMP/store
folder=$store/f/fs
mkdir -p "$folder/Files/etc"
echo '{"kind": "folder"}' >"$store/f/layer.json"
echo keep >"$folder/Files/etc/keep"

line=3
for bad in . etc/. a/./b a//b /a a/ .. a/../b ./a; do
    printf 'Version 1.0\nok/one\n%s\nok/two\n' "$bad" >"$folder/tombstones.txt"
    want="tombstones.txt: line $line: not a canonical relative path"
    expect_rc "entries: tombstone '$bad' refused" 1 \
        "$LAYERD" entries --layer "$folder" --kind folder
    check "entries: '$bad': the message names the line" \
        grep -qF "$want" "$IT_TMP/err"
    expect_rc "export: tombstone '$bad' refused" 1 \
        "$LAYERD" export --layer "$folder" --kind folder -o "$IT_TMP/out.tar"
    check "export: '$bad': the message names the line" \
        grep -qF "$want" "$IT_TMP/err"
    check "export: '$bad': no tar left" \
        test ! -e "$IT_TMP/out.tar" -a ! -e "$IT_TMP/out.tar.tmp"
done

# The same rules hold in a folder exported from a folder.
printf 'Version 1.0\nok/one\n.\n' >"$folder/tombstones.txt"
expect_rc "a folder's folder: refused" 1 \
    "$LAYERD" export --layer "$folder" --kind folder --output-dir "$IT_TMP/copy"
check "a folder's folder: nothing left" test ! -e "$IT_TMP/copy"

# The server: a bad first tombstone (met before the answer starts), or one
# after 20,000 good ones (met mid-stream).
it_serve --store "dir:$store"
printf 'Version 1.0\netc/.\n' >"$folder/tombstones.txt"
code=$(it_curl -o "$IT_TMP/body" -w '%{http_code}' "$URL/layers/f/export")
expect_eq "server: a bad first tombstone is a broken layer" 500 "$code"
check "server: the problem names the line" \
    it_wait 10 grep -qF "line 2: not a canonical relative path" "$IT_TMP/trace.log"
{
    printf 'Version 1.0\n'
    seq -f 'a%05g' 0 19999
    printf 'zz/./b\n'
} >"$folder/tombstones.txt"
it_curl -o "$IT_TMP/body" "$URL/layers/f/entries"
rc=$?
check "server: a later bad tombstone cuts the entries stream (curl $rc)" \
    test "$rc" -ne 0
check "server: ... after the entries before it" \
    grep -q '"path":"a00000","change":"delete"' "$IT_TMP/body"
check "server: ... and never lists it" \
    bash -c "! grep -q 'zz' '$IT_TMP/body'"
it_stop
it_done
