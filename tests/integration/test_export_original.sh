#!/usr/bin/env bash
# The original tar (--tar / ?tar=, DESIGN.md section 10) when the layer
# or its tar-split data is not what the engine stored, on a private copy
# of dockerd's store from tests/fixtures/mkengines.sh (the shared cache
# is never written):
#
# - a file changed in a layer's diff directory after the fact (same
#   size, another size): auto and original exit 1 naming the file and
#   leave no output file, canonical still works (with the new bytes);
#   over HTTP the stream is cut without trailers, in every compression;
#   ?tar=canonical still works;
# - a segment of the tar-split data changed (every file intact): the
#   SHA-256 check at the end fails the export, naming both digests;
# - hostile tar-split data, each a clear error and no file (exit 1; 4
#   for the line over the cap, like other caps; one of them over HTTP):
#   truncated gzip, a 64 MiB line, a name with "..", an absolute name, a
#   size that disagrees with the file, a negative position, invalid
#   base64;
# - tar-split data that is a symlink is no data: auto gives the canonical
#   tar, original exits 4, /layers/{id} says original_tar false;
# - choices: --tar and ?tar= values, serve --tar canonical and its
#   override, a dir: store (no tar-split: canonical, ?tar=original is a
#   422), HEAD says X-Layer-Tar, SOURCE_DATE_EPOCH from the environment
#   leaves auto original while --source-date-epoch makes it canonical;
# - the blob cache keys on the tar: original and canonical exports of
#   the same layer and format each end with their own digests.
. "$(dirname "$0")/lib.sh"
it_init export_original 300
need jq curl gzip zstd sha256sum cmp tar

fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached) ||
    die "building the engine stores failed (tests/fixtures/mkengines.sh)"
[[ -d $fix && -e $fix/.complete ]] || die "no engine stores at '$fix'"

ROOT=''
# shellcheck disable=SC1090
. "$fix/docker/store.env"
cp -a "$fix/$ROOT" "$IT_TMP/data" || die "cannot copy the docker store"
spec=docker:$IT_TMP/data
# layer 3: the RUN step with opt/hl1, opt/owned, ... (paths below the
# data root, as in the fixture)
IFS=$'\t' read -r _ id diff _ _ ts dir < <(sed -n 3p "$fix/docker/layers.tsv")
ts=$IT_TMP/data/${ts#"$ROOT"/}
dir=$IT_TMP/data/${dir#"$ROOT"/}
[[ -f $ts && -d $dir/opt ]] || die "layer 3 of the copy is not where expected"
cp "$ts" "$IT_TMP/ts.orig.gz"
py=$(it_python)

# export_fails WHAT EXIT NEEDLE [ARGS...]: layerd export of layer 3 exits
# EXIT, says NEEDLE on stderr and leaves no file.
export_fails() {
    local what=$1 want=$2 needle=$3
    shift 3
    rm -f "$IT_TMP/x.tar"
    expect_rc "$what: exit $want" "$want" "$LAYERD" export --store "$spec" \
        "$id" -o "$IT_TMP/x.tar" "$@"
    if grep -qF -- "$needle" "$IT_TMP/err"; then
        ok "$what: says '$needle'"
    else
        fail "$what: stderr lacks '$needle': $(head -c 400 "$IT_TMP/err")"
    fi
    check "$what: no output file" test ! -e "$IT_TMP/x.tar"
    check "$what: no temporary file" test ! -e "$IT_TMP/x.tar.tmp"
}

# get NAME QUERY: GET layer 3's export into $IT_TMP/NAME.{h,body}.
get() {
    it_curl -D "$IT_TMP/$1.h" -o "$IT_TMP/$1.body" \
        "$URL/layers/$id/export?$2"
}

# expect_cut WHAT QUERY: the export starts (200, X-Layer-Tar original) and is
# cut: curl fails, no trailers.
expect_cut() {
    local rc=0
    get cut "$2" 2>/dev/null || rc=$?
    check "$1: curl sees a cut stream (exit $rc)" test "$rc" -ne 0
    expect_eq "$1: status 200 went out" 200 \
        "$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$IT_TMP/cut.h")"
    expect_eq "$1: X-Layer-Tar" original "$(it_hdr "$IT_TMP/cut.h" X-Layer-Tar)"
    expect_eq "$1: no X-Layer-Diff-Id trailer" "" \
        "$(it_hdr "$IT_TMP/cut.h" X-Layer-Diff-Id)"
    expect_eq "$1: no Docker-Content-Digest trailer" "" \
        "$(it_hdr "$IT_TMP/cut.h" Docker-Content-Digest)"
}

# ---- the copy as stored ----
expect_rc "the copy: auto export" 0 "$LAYERD" export --store "$spec" "$id" \
    -o "$IT_TMP/good.tar" --json
expect_eq "the copy: original, the recorded diff ID" "original $diff" \
    "$(jq -r '"\(.tar) \(.diff_id)"' "$IT_TMP/out")"

# ---- a file changed after the fact ----
[[ $(cat "$dir/opt/owned") == owned ]] || die "opt/owned is not as built"
printf 'OWNED\n' >"$dir/opt/owned"
export_fails "same size, other content: auto" 1 \
    "opt/owned: other content than in the original tar"
export_fails "same size, other content: --tar original" 1 \
    "opt/owned: other content than in the original tar" --tar original
expect_rc "same size, other content: --tar canonical" 0 "$LAYERD" export \
    --store "$spec" "$id" --tar canonical -o "$IT_TMP/canon.tar"
expect_eq "the canonical tar has the new bytes" OWNED \
    "$(tar -xOf "$IT_TMP/canon.tar" opt/owned)"
IT_STORE='' it_serve --insecure-http --store "$spec"
for c in none gzip zstd; do
    expect_cut "changed file, HTTP $c" "compression=$c"
done
expect_rc "changed file, HTTP ?tar=canonical" 0 get canon "tar=canonical"
expect_eq "... X-Layer-Tar canonical" canonical \
    "$(it_hdr "$IT_TMP/canon.h" X-Layer-Tar)"
check "... its diff ID trailer (or header) is the canonical tar's" test \
    "$(it_hdr "$IT_TMP/canon.h" X-Layer-Diff-Id)" = "$(sha256_of "$IT_TMP/canon.tar")"
it_stop
printf 'owned, and longer\n' >"$dir/opt/owned"
export_fails "another size" 1 \
    "opt/owned: 18 bytes in the layer directory, 6 in the original tar"
rm "$dir/opt/owned"
export_fails "a file removed" 1 "opt/owned: missing from the layer directory"
ln -s ../etc/keep.conf "$dir/opt/owned"
export_fails "a file replaced by a symlink" 1 \
    "opt/owned: a symlink in the layer directory"
rm "$dir/opt/owned"
printf 'owned\n' >"$dir/opt/owned"
chown 1234:5678 "$dir/opt/owned"
expect_rc "the file restored: auto export" 0 "$LAYERD" export \
    --store "$spec" "$id" -o "$IT_TMP/again.tar"
check "... the original bytes again" cmp -s "$IT_TMP/again.tar" "$IT_TMP/good.tar"

# ---- hostile or changed tar-split data ----
# mangle HOW: write the tar-split file of layer 3 from the original one,
# changed as HOW says (tests/integration's own, Python).
mangle() {
    "$py" - "$IT_TMP/ts.orig.gz" "$ts" "$1" <<'PY' || die "mangle $1 failed"
import base64, gzip, json, sys
src, dst, how = sys.argv[1:4]
raw = gzip.open(src, "rb").read()
lines = [json.loads(l) for l in raw.splitlines()]
files = [e for e in lines if e["type"] == 1 and e.get("size", 0) > 0]
out = None
if how == "truncated":
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: len(data) // 2])
    sys.exit(0)
if how == "long-line":
    with gzip.open(dst, "wb", compresslevel=1) as f:
        f.write(b'{"type":2,"payload":"')
        chunk = b"A" * (1 << 20)
        for _ in range(64):
            f.write(chunk)
        f.write(b'","position":0}\n')
    sys.exit(0)
if how == "dotdot":
    files[0]["name"] = "../../../../etc/hostname"
elif how == "absolute":
    files[0]["name"] = "/etc/hostname"
elif how == "size":
    files[-1]["size"] += 1
elif how == "negative":
    lines[0]["position"] = -1
elif how == "base64":
    lines[0]["payload"] = "not base64!"
elif how == "segment":
    # one byte of a header's mtime: every file stays intact
    b = bytearray(base64.b64decode(lines[0]["payload"]))
    b[136] = ord("7") if b[136] != ord("7") else ord("6")
    lines[0]["payload"] = base64.b64encode(bytes(b)).decode()
else:
    sys.exit("unknown " + how)
with gzip.open(dst, "wb") as f:
    for e in lines:
        f.write(json.dumps(e, separators=(",", ":")).encode() + b"\n")
PY
}

label="image/overlay2/layerdb/sha256/${id#sha256:}/tar-split.json.gz"
mangle segment
export_fails "a changed segment" 1 "the rebuilt tar hashes to sha256:"
check "... names the recorded diff ID" grep -qF "not to the diff ID $diff" \
    "$IT_TMP/err"
mangle truncated
export_fails "truncated gzip" 1 "$label: line "
check "... says truncated" grep -q "truncated gzip data" "$IT_TMP/err"
IT_STORE='' it_serve --insecure-http --store "$spec"
expect_cut "truncated gzip, HTTP" "compression=gzip"
it_stop
mangle long-line
# a cap, as for other limits: exit 4, the layer cannot be exported
export_fails "a 64 MiB line" 4 \
    "$label: line 1: longer than the cap of 4194304 bytes"
mangle dotdot
export_fails "a name with .." 1 "a \"..\" component in the name"
mangle absolute
export_fails "an absolute name" 1 "an absolute name: \"/etc/hostname\""
mangle size
export_fails "a size that disagrees with the file" 1 \
    "bytes in the layer directory, "
mangle negative
export_fails "a negative position" 1 "$label: line 1: negative \"position\" -1"
mangle base64
export_fails "invalid base64" 1 "$label: line 1: \"payload\" is not valid base64"
for what in dotdot absolute; do
    mangle "$what"
    "$LAYERD" export --store "$spec" "$id" -o "$IT_TMP/x.tar" 2>/dev/null
    check "$what: nothing was written" test ! -e "$IT_TMP/x.tar"
done
cp "$IT_TMP/ts.orig.gz" "$ts"

# ---- tar-split data that is a symlink is none ----
mv "$ts" "$ts.real"
ln -s "$(basename "$ts").real" "$ts"
expect_rc "tar-split symlink: auto export" 0 "$LAYERD" export --store "$spec" \
    "$id" -o "$IT_TMP/sym.tar" --json
expect_eq "... is canonical" canonical "$(jq -r .tar "$IT_TMP/out")"
export_fails "tar-split symlink: --tar original" 4 \
    "has no original tar: its store kept no tar-split data for it" \
    --tar original
IT_STORE='' it_serve --insecure-http --store "$spec"
expect_eq "tar-split symlink: /layers/{id} original_tar" false \
    "$(it_curl "$URL/layers/$id" | jq -r .original_tar)"
it_stop
rm "$ts"
mv "$ts.real" "$ts"

# ---- choosing ----
expect_rc "--tar bogus" 2 "$LAYERD" export --store "$spec" "$id" --tar bogus \
    -o "$IT_TMP/x.tar"
expect_rc "--tar original --all-xattrs" 2 "$LAYERD" export --store "$spec" \
    "$id" --tar original --all-xattrs -o "$IT_TMP/x.tar"
expect_rc "--tar original --output-dir" 2 "$LAYERD" export --store "$spec" \
    "$id" --tar original --output-dir "$IT_TMP/folder"
SOURCE_DATE_EPOCH=1 expect_rc "SOURCE_DATE_EPOCH, auto" 0 "$LAYERD" export \
    --store "$spec" "$id" -o "$IT_TMP/sde.tar" --json
expect_eq "... stays original" "original $diff" \
    "$(jq -r '"\(.tar) \(.diff_id)"' "$IT_TMP/out")"
SOURCE_DATE_EPOCH=1 expect_rc "SOURCE_DATE_EPOCH, --tar canonical" 0 \
    "$LAYERD" export --store "$spec" "$id" --tar canonical -o "$IT_TMP/c1.tar"
expect_rc "--tar canonical --source-date-epoch 1" 0 "$LAYERD" export \
    --store "$spec" "$id" --tar canonical --source-date-epoch 1 \
    -o "$IT_TMP/c2.tar"
check "... the environment's epoch applies to the canonical tar" \
    cmp -s "$IT_TMP/c1.tar" "$IT_TMP/c2.tar"
expect_rc "--source-date-epoch, auto" 0 "$LAYERD" export --store "$spec" \
    "$id" --source-date-epoch 1 -o "$IT_TMP/x.tar" --json
expect_eq "... is canonical" canonical "$(jq -r .tar "$IT_TMP/out")"

IT_STORE='' it_serve --insecure-http --store "$spec" --tar canonical
expect_rc "serve --tar canonical: export" 0 get dflt ""
expect_eq "... X-Layer-Tar canonical" canonical "$(it_hdr "$IT_TMP/dflt.h" X-Layer-Tar)"
expect_rc "... ?tar=original overrides" 0 get over "tar=original"
expect_eq "... X-Layer-Tar original" original "$(it_hdr "$IT_TMP/over.h" X-Layer-Tar)"
expect_eq "... the recorded diff ID" "$diff" "$(sha256_of "$IT_TMP/over.body")"
expect_eq "?tar=bogus is a 400" 400 \
    "$(it_curl -o /dev/null -w '%{http_code}' "$URL/layers/$id/export?tar=bogus")"
expect_eq "HEAD ?tar=auto says original" original \
    "$(it_curl -I "$URL/layers/$id/export?tar=auto" | tr -d '\r' |
        sed -n 's/^X-Layer-Tar: //Ip')"
it_stop

# The cache keys on the tar: each export ends with its own digests.
IT_STORE='' it_serve --insecure-http --store "$spec"
for run in 1 2; do
    [[ $run == 2 ]] && check "cache: the first fills are committed" it_cache_settled
    for t in original canonical; do
        n=cache-$t-$run
        expect_rc "cache: $t gzip #$run" 0 get "$n" "tar=$t&compression=gzip"
        expect_eq "cache: $t gzip #$run: diff ID trailer (or header) is the tar's" \
            "$(gzip -dc "$IT_TMP/$n.body" | sha256_of -)" \
            "$(it_hdr "$IT_TMP/$n.h" X-Layer-Diff-Id)"
        expect_eq "cache: $t gzip #$run: digest trailer (or header) is the body's" \
            "$(sha256_of "$IT_TMP/$n.body")" \
            "$(it_hdr "$IT_TMP/$n.h" Docker-Content-Digest)"
    done
done
expect_eq "cache: the original's diff ID is the recorded one" "$diff" \
    "$(it_hdr "$IT_TMP/cache-original-2.h" X-Layer-Diff-Id)"
check "cache: the canonical one's differs" test \
    "$(it_hdr "$IT_TMP/cache-canonical-2.h" X-Layer-Diff-Id)" != "$diff"
two_hits() { test "$(grep -c '"cache.result":"hit"' "$IT_TMP/trace.log")" -ge 2; }
check "cache: second exports were served from the cache" it_wait 10 two_hits
check "cache: the spans say which tar" \
    it_wait 10 grep -q '"export.tar":"original"' "$IT_TMP/trace.log"
it_stop

# A dir: store has no tar-split data.
mkdir -p "$IT_TMP/dirstore/l/fs"
echo '{"kind": "diff"}' >"$IT_TMP/dirstore/l/layer.json"
echo hi >"$IT_TMP/dirstore/l/fs/f"
expect_rc "dir: store, auto" 0 "$LAYERD" export --store "dir:$IT_TMP/dirstore" \
    l -o "$IT_TMP/d.tar" --json
expect_eq "... canonical" canonical "$(jq -r .tar "$IT_TMP/out")"
IT_STORE=$IT_TMP/dirstore it_serve --insecure-http
expect_eq "dir: store, ?tar=original is a 422" 422 \
    "$(it_curl -o "$IT_TMP/p.json" -w '%{http_code}' "$URL/layers/l/export?tar=original")"
expect_eq "... no-original-tar" "https://layerd.dev/problems/no-original-tar" \
    "$(jq -r .type "$IT_TMP/p.json")"
expect_eq "dir: store, /layers/l original_tar" false \
    "$(it_curl "$URL/layers/l" | jq -r .original_tar)"
it_stop
it_done
