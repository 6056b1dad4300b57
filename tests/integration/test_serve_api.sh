#!/usr/bin/env bash
# layerd serve, the REST API end to end with curl over HTTPS, on the demo
# store (tests/fixtures/mkdemo.sh):
#
# - /layers/{id}/export in every format (none, gzip, zstd; by query and
#   by Accept, q-values and wildcards included) is a tar that `tar -x`
#   takes and is byte for byte what `layerd export` writes; the trailers
#   Docker-Content-Digest and X-Layer-Diff-Id are the sha256 of the body
#   and of the uncompressed tar;
# - /layers/{id}/entries as NDJSON and as one JSON array is what `layerd
#   entries` prints; paging with limit=3 and after=<last path>, with and
#   without prefix, gives the whole list once, in order;
# - /layers/{id}/entries/{path} for a file, a directory, a deleted path
#   and a missing one (404);
# - /layers/{id}/files/{path}: whole files, one Range (206, Content-Range,
#   the exact bytes), 416 with Content-Range bytes */N, If-None-Match 304,
#   If-Range, hard links, and format=win32-backup (BACKUP_DATA then
#   BACKUP_EA_DATA);
# - HEAD on every GET route answers the same status and headers without a
#   body;
# - errors (404, 405 with Allow, 406, 400 for bad ids and parameters) are
#   problem documents with status, title, detail and the trace id;
# - /layers paging (limit, after, next, Link), /healthz, /readyz,
#   /openapi.yaml (the file's bytes) and /metrics.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_api 60
need curl jq tar gzip zstd sha256sum cmp od

D=$IT_TMP/demo
W=$IT_TMP/w
mkdir -p "$W"
mkdemo "$D"
IT_STORE=$D
OPENAPI=$LAYERD_SOURCE_DIR/openapi.yaml
it_serve --openapi "$OPENAPI" --no-cache # exports as streams (test_cache.sh: kept blobs)

OCI=application/vnd.oci.image.layer.v1.tar
n_accept=0 n_arr=0 n_nf=0 n_badid=0 n_badreq=0
DOCKER_GZIP=application/vnd.docker.image.rootfs.diff.tar.gzip

# load_headers NAME FILE: the header (and trailer) lines of a `curl -D`
# dump into HDR[NAME|lower-case name] (the first value of each), without
# a process per lookup.
declare -A HDR
load_headers() {
    local name=$1 line key
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ $line == *:* && $line != HTTP/* ]] || continue
        key="$name|${line%%:*}"
        key=${key,,}
        if [[ -z ${HDR[$key]+set} ]]; then
            line=${line#*:}
            HDR[$key]=${line# }
        fi
    done <"$2"
}

# hdr NAME HEADER: a header of the answer to request NAME ('' if none).
hdr() {
    local key="$1|$2"
    printf '%s' "${HDR[${key,,}]:-}"
}

# req NAME PATH [CURL ARGS...]: one request; headers (and trailers) in
# $W/NAME.h and HDR, the body in $W/NAME.b (empty without one); sets
# CODE[NAME]. The path is sent as written (--path-as-is), escapes and all.
declare -A CODE
req() {
    local name=$1 path=$2
    shift 2
    : >"$W/$name.b"
    CODE[$name]=$(it_curl --path-as-is -D "$W/$name.h" -o "$W/$name.b" \
        -w '%{http_code}' "$@" "$URL$path" 2>"$W/$name.err") ||
        CODE[$name]="curl failed: $(head -c 200 "$W/$name.err")"
    load_headers "$name" "$W/$name.h"
}

# expect_status NAME STATUS [CONTENT-TYPE]
expect_status() {
    expect_eq "$1: status" "$2" "${CODE[$1]}"
    if [[ $# -gt 2 ]]; then
        expect_eq "$1: Content-Type" "$3" "$(hdr "$1" Content-Type)"
    fi
}

# expect_problem NAME STATUS [TYPE-SLUG]: a problem document (RFC 9457)
# with the status, a title, a detail and the request's trace id (the one
# in its traceparent).
expect_problem() {
    local name=$1 status=$2 slug=${3:-} tp want_type=about:blank
    expect_status "$name" "$status" application/problem+json
    tp=$(hdr "$name" traceparent | cut -d- -f2)
    [[ -n $slug ]] && want_type=https://layerd.dev/problems/$slug
    # shellcheck disable=SC2016 # jq's variables
    if jqe --argjson s "$status" --arg t "$tp" --arg type "$want_type" '
        .status == $s and (.title | type == "string" and length > 0)
        and (.detail | type == "string" and length > 0)
        and (.trace_id | test("^[0-9a-f]{32}$")) and .trace_id == $t
        and .type == $type' "$W/$name.b"; then
        ok "$name: problem document ($want_type)"
    else
        fail "$name: not the problem expected ($status, $want_type): $(head -c 400 "$W/$name.b")"
    fi
}

# jqe FILTER FILE: jq -e, quiet.
jqe() {
    jq -e "$@" >/dev/null 2>&1
}

# same_bytes DESC WANT_FILE GOT_FILE
same_bytes() {
    local line
    if cmp -s "$2" "$3"; then
        ok "$1"
    else
        line=$(cmp "$2" "$3" 2>&1 | sed -n 's/.* line \([0-9]*\)$/\1/p')
        fail "$1: $(cmp "$2" "$3" 2>&1 | head -n 1) (sizes $(stat -c %s "$2") and $(stat -c %s "$3"))${line:+; want line $line: $(sed -n "${line}p" "$2" | head -c 300); got: $(sed -n "${line}p" "$3" | head -c 300)}"
    fi
}

# ---- exports: every format, against the CLI ----

declare -A TFLAG=([none]='' [gzip]=--gzip [zstd]=--zstd)
declare -A CTYPE=([none]=$OCI [gzip]=$OCI+gzip [zstd]=$OCI+zstd)
for c in none gzip zstd; do
    "$LAYERD" export --store "dir:$D" patch --compression "$c" \
        -o "$W/cli.$c" 2>"$W/cli.$c.err" ||
        die "layerd export --compression $c failed: $(cat "$W/cli.$c.err")"
done
cli_diff_id=$(sha256_of "$W/cli.none")

# export_check NAME COMP [CURL ARGS...]: GET /layers/patch/export piped
# into tar -x; the body must be the CLI's bytes for COMP, the trailers
# its digests.
export_check() {
    local name=$1 c=$2 x=$W/x.$1 rcs
    shift 2
    mkdir -p "$x"
    # shellcheck disable=SC2086 # TFLAG is one word or none
    it_curl -D "$W/$name.h" "$@" "$URL/layers/patch/export" |
        tee "$W/$name.b" | tar -x ${TFLAG[$c]} -C "$x" -f -
    rcs=${PIPESTATUS[*]}
    load_headers "$name" "$W/$name.h"
    expect_eq "$name: curl | tee | tar -x exit statuses" "0 0 0" "$rcs"
    expect_eq "$name: status" 200 "$(head -n 1 "$W/$name.h" | cut -d' ' -f2)"
    same_bytes "$name: body is what 'layerd export --compression $c' writes" \
        "$W/cli.$c" "$W/$name.b"
    expect_eq "$name: Docker-Content-Digest trailer is the body's sha256" \
        "$(sha256_of "$W/$name.b")" "$(hdr "$name" Docker-Content-Digest)"
    expect_eq "$name: X-Layer-Diff-Id trailer is the tar's sha256" \
        "$cli_diff_id" "$(hdr "$name" X-Layer-Diff-Id)"
    expect_eq "$name: Trailer announced" \
        "Docker-Content-Digest, X-Layer-Diff-Id" "$(hdr "$name" Trailer)"
    expect_eq "$name: Vary" Accept "$(hdr "$name" Vary)"
    expect_eq "$name: chunked" chunked "$(hdr "$name" Transfer-Encoding)"
    # What tar extracted: patch's new file, a whiteout, an opaque marker.
    expect_eq "$name: extracted usr/bin/app" '#!/bin/sh
echo "app v2"' "$(cat "$x/usr/bin/app" 2>&1)"
    check "$name: extracted the whiteout usr/share/doc/.wh.README" \
        test -f "$x/usr/share/doc/.wh.README"
    # the opaque var/lib/db as tombstones for what the parents had there
    check "$name: extracted the whiteouts var/lib/db/.wh.{index,records.db}" \
        test -f "$x/var/lib/db/.wh.index" -a -f "$x/var/lib/db/.wh.records.db"
}

for c in none gzip zstd; do
    export_check "query_$c" "$c" --url-query "compression=$c"
    expect_eq "query_$c: Content-Type" "${CTYPE[$c]}" "$(hdr "query_$c" Content-Type)"
    # The query decides even against an Accept that says otherwise.
    export_check "query_accept_$c" "$c" --url-query "compression=$c" \
        -H "Accept: $OCI+zstd;q=0.1, $OCI;q=0.2, $OCI+gzip;q=0.3"
done
# Content negotiation: Accept WANT_COMP WANT_TYPE.
while IFS='|' read -r accept c type; do
    name=accept_$((++n_accept))
    export_check "$name" "$c" -H "Accept: $accept"
    expect_eq "$name ($accept): Content-Type" "$type" "$(hdr "$name" Content-Type)"
done <<EOF
$OCI|none|$OCI
$OCI+gzip|gzip|$OCI+gzip
$OCI+zstd|zstd|$OCI+zstd
$DOCKER_GZIP|gzip|$DOCKER_GZIP
*/*|none|$OCI
application/*|none|$OCI
text/html, */*;q=0.1|none|$OCI
$OCI+gzip;q=0.5, $OCI+zstd|zstd|$OCI+zstd
$OCI;q=0.2, application/*;q=0.9, $OCI+zstd;q=0.9|zstd|$OCI+zstd
EOF
# No Accept at all: uncompressed.
export_check accept_none none -H 'Accept:'
expect_eq "accept_none: Content-Type" "$OCI" "$(hdr accept_none Content-Type)"

req export_html /layers/patch/export -H 'Accept: text/html'
expect_problem export_html 406
req export_zero /layers/patch/export -H "Accept: $OCI;q=0, text/*"
expect_problem export_zero 406
req export_bogus '/layers/patch/export?compression=bogus'
expect_problem export_bogus 400 unsupported-compression
req export_level_none '/layers/patch/export?compression=none&level=3'
expect_problem export_level_none 400 invalid-parameter
req export_level_bad '/layers/patch/export?compression=gzip&level=x'
expect_problem export_level_bad 400 invalid-parameter

# ---- entries: NDJSON and array, against the CLI ----

"$LAYERD" entries --store "dir:$D" patch >"$W/cli.nd" 2>"$W/cli.nd.err" ||
    die "layerd entries patch failed: $(cat "$W/cli.nd.err")"
"$LAYERD" entries --store "dir:$D" base >"$W/cli_base.nd" 2>"$W/cli.nd.err" ||
    die "layerd entries base failed: $(cat "$W/cli.nd.err")"
# Reading a file or a symlink moves its atime, so entries are compared
# without it (layerd reads while it lists and exports).
jq -c 'del(.atime)' "$W/cli.nd" >"$W/cli.jq" || die "the CLI's NDJSON does not parse"
[[ $(wc -l <"$W/cli.jq") -ge 10 ]] || die "the CLI lists too few entries"

req nd /layers/patch/entries
expect_status nd 200 application/x-ndjson
expect_eq "nd: Vary" Accept "$(hdr nd Vary)"
noatime() {
    sed 's/"atime":"[^"]*",//' "$1"
}
same_bytes "nd: NDJSON is byte for byte 'layerd entries' (but atime)" \
    <(noatime "$W/cli.nd") <(noatime "$W/nd.b")
if jq -c 'del(.atime)' "$W/nd.b" >"$W/nd.jq" 2>"$W/nd.jqerr"; then
    same_bytes "nd: parsed with jq, the CLI's entries" "$W/cli.jq" "$W/nd.jq"
else
    fail "nd: jq cannot parse the NDJSON: $(head -c 200 "$W/nd.jqerr")"
fi
req nd_explicit /layers/patch/entries -H 'Accept: application/x-ndjson'
expect_status nd_explicit 200 application/x-ndjson
same_bytes "nd_explicit: same NDJSON" "$W/nd.b" "$W/nd_explicit.b"

for accept in application/json 'application/x-ndjson;q=0.5, application/json'; do
    name=arr_$((++n_arr))
    req "$name" /layers/patch/entries -H "Accept: $accept"
    expect_status "$name" 200 application/json
    if jqe 'type == "array"' "$W/$name.b" &&
        jq -c '.[] | del(.atime)' "$W/$name.b" >"$W/$name.jq"; then
        same_bytes "$name ($accept): the array holds the CLI's entries" \
            "$W/cli.jq" "$W/$name.jq"
    else
        fail "$name: not one JSON array: $(head -c 200 "$W/$name.b")"
    fi
done
req arr_empty '/layers/patch/entries?prefix=nothing/here' -H 'Accept: application/json'
expect_status arr_empty 200 application/json
expect_eq "arr_empty: an empty array" '[]' "$(jq -c . "$W/arr_empty.b" 2>&1)"
req nd_empty '/layers/patch/entries?prefix=nothing/here'
expect_eq "nd_empty: no lines" 0 "$(stat -c %s "$W/nd_empty.b")"
req entries_html /layers/patch/entries -H 'Accept: text/html'
expect_problem entries_html 406
req entries_limit0 '/layers/patch/entries?limit=0'
expect_problem entries_limit0 400 invalid-parameter
req entries_prefix_dots '/layers/patch/entries?prefix=var/../etc'
expect_problem entries_prefix_dots 400 invalid-parameter

# page LAYER PREFIX: fetch the entries 3 at a time, each request's after
# the last path received, into $W/pages (NDJSON); sets PAGES. One curl a
# page and nothing else (processes are slow on small machines).
page() {
    local layer=$1 prefix=$2 after='' args last re='^\{"path":"([^"\\]*)"'
    local -a lines
    : >"$W/pages"
    PAGES=0
    while ((PAGES < 100)); do
        args=(--url-query limit=3)
        [[ -n $prefix ]] && args+=(--url-query "prefix=$prefix")
        [[ -n $after ]] && args+=(--url-query "after=$after")
        if ! it_curl "${args[@]}" -o "$W/page" "$URL/layers/$layer/entries"; then
            fail "page $layer/$prefix after '$after': request failed"
            return
        fi
        PAGES=$((PAGES + 1))
        mapfile -t lines <"$W/page"
        ((${#lines[@]} > 0)) && printf '%s\n' "${lines[@]}" >>"$W/pages"
        ((${#lines[@]} == 3)) || break
        last=${lines[2]}
        if [[ $last =~ $re ]]; then
            after=${BASH_REMATCH[1]}
        else
            after=$(jq -r .path <<<"$last") # escapes: let jq decode them
        fi
    done
}

# paging_check LAYER PREFIX CLI_NDJSON
paging_check() {
    local layer=$1 prefix=$2 want n
    page "$layer" "$prefix"
    jq -c --arg p "$prefix" \
        'select($p == "" or .path == $p or (.path | startswith($p + "/")))
         | del(.atime)' "$3" >"$W/want.jq"
    want=$(wc -l <"$W/want.jq")
    ((want > 3)) || fail "paging $layer '$prefix': the test needs more than 3 entries, has $want"
    jq -c 'del(.atime)' "$W/pages" >"$W/pages.jq" 2>/dev/null || fail "paging $layer '$prefix': pages do not parse"
    same_bytes "paging $layer prefix='$prefix' in $PAGES pages of 3: the whole list" \
        "$W/want.jq" "$W/pages.jq"
    n=$(jq -r .path "$W/pages" | sort | uniq -d | wc -l)
    expect_eq "paging $layer prefix='$prefix': no path twice" 0 "$n"
    expect_eq "paging $layer prefix='$prefix': pages" $(((want + 3) / 3)) "$PAGES"
}
paging_check patch '' "$W/cli.nd"
paging_check patch var "$W/cli.nd"
paging_check base '' "$W/cli_base.nd"
paging_check base etc "$W/cli_base.nd"
paging_check base usr "$W/cli_base.nd"

# ---- one entry ----

# entry_check NAME PATH: /layers/patch/entries/PATH is the CLI's entry.
entry_check() {
    req "$1" "/layers/patch/entries/$2"
    expect_status "$1" 200 application/json
    expect_eq "$1: the CLI's entry for $2" \
        "$(jq -c --arg p "$2" 'select(.path == $p) | del(.atime)' "$W/cli.nd")" \
        "$(jq -c 'del(.atime)' "$W/$1.b" 2>&1)"
}
entry_check entry_file usr/bin/app
expect_eq "entry_file: a modified file" "modify file 24" \
    "$(jq -r '"\(.change) \(.type) \(.size)"' "$W/entry_file.b")"
entry_check entry_dir var/lib/db
expect_eq "entry_dir: an opaque directory" "dir true" \
    "$(jq -r '"\(.type) \(.opaque)"' "$W/entry_dir.b")"
entry_check entry_deleted usr/share/doc/README
expect_eq "entry_deleted: a tombstone" \
    '{"path":"usr/share/doc/README","change":"delete"}' \
    "$(jq -c . "$W/entry_deleted.b")"
req entry_missing /layers/patch/entries/etc/nope
expect_problem entry_missing 404 not-found
req entry_unchanged /layers/patch/entries/etc
expect_problem entry_unchanged 404 not-found
req entry_dots /layers/patch/entries/usr/%2e%2e/etc
expect_problem entry_dots 400 invalid-path
req entry_empty_seg /layers/patch/entries/usr//bin
expect_problem entry_empty_seg 400 invalid-path

# ---- files ----

DATA=$D/base/fs/usr/share/data.bin
SIZE=$(stat -c %s "$DATA")
req file_whole /layers/base/files/usr/share/data.bin
expect_status file_whole 200 application/octet-stream
same_bytes "file_whole: the file's bytes" "$DATA" "$W/file_whole.b"
expect_eq "file_whole: Content-Length" "$SIZE" "$(hdr file_whole Content-Length)"
expect_eq "file_whole: Accept-Ranges" bytes "$(hdr file_whole Accept-Ranges)"
ETAG=$(hdr file_whole ETag)
check "file_whole: a strong ETag ($ETAG)" grep -q '^"[^"]*"$' <<<"$ETAG"

# range_check NAME RANGE FIRST LAST
range_check() {
    req "$1" /layers/base/files/usr/share/data.bin -H "Range: $2"
    expect_status "$1" 206 application/octet-stream
    expect_eq "$1 ($2): Content-Range" "bytes $3-$4/$SIZE" "$(hdr "$1" Content-Range)"
    expect_eq "$1 ($2): Content-Length" $(($4 - $3 + 1)) "$(hdr "$1" Content-Length)"
    tail -c +$(($3 + 1)) "$DATA" | head -c $(($4 - $3 + 1)) >"$W/$1.want"
    same_bytes "$1 ($2): exactly those bytes" "$W/$1.want" "$W/$1.b"
}
range_check range_mid 'bytes=1000-1999' 1000 1999
range_check range_first 'bytes=0-0' 0 0
range_check range_open "bytes=$((SIZE - 10))-" $((SIZE - 10)) $((SIZE - 1))
range_check range_suffix 'bytes=-500' $((SIZE - 500)) $((SIZE - 1))
range_check range_past_end "bytes=$((SIZE - 5))-$((SIZE + 100))" $((SIZE - 5)) $((SIZE - 1))
range_check range_small 'bytes=10-19' 10 19
req range_416 /layers/base/files/usr/share/data.bin -H "Range: bytes=$SIZE-"
expect_problem range_416 416
expect_eq "range_416: Content-Range" "bytes */$SIZE" "$(hdr range_416 Content-Range)"
req range_multi /layers/base/files/usr/share/data.bin -H 'Range: bytes=0-9,20-29'
expect_status range_multi 200 application/octet-stream
same_bytes "range_multi: several ranges give the whole file" "$DATA" "$W/range_multi.b"
req range_if_other /layers/base/files/usr/share/data.bin -H 'Range: bytes=0-9' \
    -H 'If-Range: "not-the-etag"'
expect_status range_if_other 200
same_bytes "range_if_other: a stale If-Range gives the whole file" "$DATA" "$W/range_if_other.b"
req range_if_same /layers/base/files/usr/share/data.bin -H 'Range: bytes=0-9' \
    -H "If-Range: $ETAG"
expect_status range_if_same 206
expect_eq "range_if_same: Content-Range" "bytes 0-9/$SIZE" "$(hdr range_if_same Content-Range)"
req inm /layers/base/files/usr/share/data.bin -H "If-None-Match: $ETAG"
expect_status inm 304
expect_eq "inm: no body" 0 "$(stat -c %s "$W/inm.b")"
expect_eq "inm: ETag" "$ETAG" "$(hdr inm ETag)"
req inm_list /layers/base/files/usr/share/data.bin -H "If-None-Match: \"x\", $ETAG"
expect_status inm_list 304
req inm_other /layers/base/files/usr/share/data.bin -H 'If-None-Match: "other"'
expect_status inm_other 200
same_bytes "inm_other: a different ETag gives the file" "$DATA" "$W/inm_other.b"

req file_app /layers/patch/files/usr/bin/app
expect_status file_app 200 application/octet-stream
same_bytes "file_app: patch's usr/bin/app" "$D/patch/fs/usr/bin/app" "$W/file_app.b"
req file_hardlink /layers/base/files/usr/sbin/tool-admin
expect_status file_hardlink 200 application/octet-stream
same_bytes "file_hardlink: a hard link serves its target's data" \
    "$D/base/fs/usr/bin/tool" "$W/file_hardlink.b"
req file_empty /layers/base/files/etc/empty.conf -H 'Range: bytes=0-9'
expect_status file_empty 200
expect_eq "file_empty: empty, Range ignored" 0 "$(stat -c %s "$W/file_empty.b")"
req file_dir /layers/patch/files/var/lib/db
expect_problem file_dir 409 not-a-file
req file_deleted /layers/patch/files/usr/share/doc/README
expect_problem file_deleted 404 deleted
req file_missing /layers/patch/files/etc/nope
expect_problem file_missing 404 not-found
req file_format_bad '/layers/patch/files/usr/bin/app?format=tar'
expect_problem file_format_bad 400 invalid-parameter

# hexof FILE OFFSET COUNT: bytes as lowercase hex, no spaces.
hexof() {
    od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}
# WIN32_STREAM_ID: StreamId u32, Attributes u32, Size u64, NameSize u32.
stream_id() {
    printf '%02x000000' "$1"
    printf '00000000'
    printf '%016x' "$2" | sed 's/\(..\)/\1 /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}'
    printf '00000000'
}
# A file without xattrs: one BACKUP_DATA stream.
req w32_app '/layers/patch/files/usr/bin/app?format=win32-backup'
expect_status w32_app 200 application/vnd.layerd.win32-backup
app_size=$(stat -c %s "$D/patch/fs/usr/bin/app")
expect_eq "w32_app: a BACKUP_DATA stream header" "$(stream_id 1 "$app_size")" \
    "$(hexof "$W/w32_app.b" 0 20)"
tail -c +21 "$W/w32_app.b" >"$W/w32_app.data"
same_bytes "w32_app: then the file's bytes, and nothing else" \
    "$D/patch/fs/usr/bin/app" "$W/w32_app.data"
# A file with one xattr: BACKUP_DATA, then BACKUP_EA_DATA with one
# FILE_FULL_EA_INFORMATION entry (8 + 18 + 1 + 4 bytes, padded to 32).
OSR=$D/base/fs/etc/os-release
osr_size=$(stat -c %s "$OSR")
req w32_osr '/layers/base/files/etc/os-release?format=win32-backup'
expect_status w32_osr 200 application/vnd.layerd.win32-backup
expect_eq "w32_osr: a BACKUP_DATA stream header" "$(stream_id 1 "$osr_size")" \
    "$(hexof "$W/w32_osr.b" 0 20)"
expect_eq "w32_osr: the file's bytes" "$(hexof "$OSR" 0 "$osr_size")" \
    "$(hexof "$W/w32_osr.b" 20 "$osr_size")"
expect_eq "w32_osr: a BACKUP_EA_DATA stream header" "$(stream_id 2 32)" \
    "$(hexof "$W/w32_osr.b" $((20 + osr_size)) 20)"
expect_eq "w32_osr: the EA entry" \
    "0000000000120400$(printf 'user.layerd.origin' | od -An -tx1 | tr -d ' \n')00$(printf base | od -An -tx1 | tr -d ' \n')00" \
    "$(hexof "$W/w32_osr.b" $((40 + osr_size)) 32)"
expect_eq "w32_osr: length" $((40 + osr_size + 32)) "$(stat -c %s "$W/w32_osr.b")"
expect_eq "w32_osr: Content-Length" $((40 + osr_size + 32)) "$(hdr w32_osr Content-Length)"
req w32_range '/layers/base/files/etc/os-release?format=win32-backup' -H 'Range: bytes=16-23'
expect_status w32_range 206 application/vnd.layerd.win32-backup
expect_eq "w32_range: a range of the encoding" "$(hexof "$W/w32_osr.b" 16 8)" \
    "$(hexof "$W/w32_range.b" 0 8)"
check "w32: another ETag than raw" test "$(hdr w32_osr ETag)" != "$(hdr file_whole ETag)"

# ---- HEAD: the GET's status and headers, no body ----

# header_lines FILE: the header lines of a `curl -D` dump, sorted, without
# the CRs, the trailers (after the empty line), what differs per request
# (Date, traceparent), and the framing, which a HEAD may leave out (RFC
# 9110 9.3.2; Content-Length is compared apart).
header_lines() {
    local line
    while IFS= read -r line; do
        line=${line%$'\r'}
        [[ -z $line ]] && break
        # a HEAD of a chunked GET is answered as HTTP/1.0 (see below)
        line=${line/#HTTP\/1.[01] /HTTP/1.x }
        case ${line,,} in
        date:* | traceparent:* | content-length:* | transfer-encoding:* | connection:*) ;;
        *) printf '%s\n' "$line" ;;
        esac
    done <"$1" | sort
}

# head_check NAME PATH [CURL ARGS...]: GET and HEAD the same request. The
# HEAD is followed by a GET /healthz on the same connection: a body (or
# a chunked terminator) sent after the HEAD's headers would garble it.
head_check() {
    local name=$1 path=$2 g h w body_ok
    shift 2
    req "get_$name" "$path" "$@"
    w=$(it_curl --path-as-is -I -D "$W/head_$name.h" -o /dev/null "$@" \
        "$URL$path" --next -sS -k --max-time 10 -o "$W/head_$name.next" \
        -w '%{http_code} %{num_connects}' "$URL/healthz" 2>"$W/head_$name.err")
    load_headers "head_$name" "$W/head_$name.h"
    expect_eq "HEAD $path: status as GET" "${CODE[get_$name]}" \
        "$(head -n 1 "$W/head_$name.h" | cut -d' ' -f2)"
    # A HEAD whose GET has no length up front (chunked) is answered as
    # HTTP/1.0 and closes the connection, so that no chunk terminator can
    # follow its headers: the next request then needs a new connection.
    if [[ $(hdr "get_$name" Transfer-Encoding) == chunked ]]; then
        body_ok=(test "$w $(cat "$W/head_$name.next" 2>/dev/null)" '=' '200 1 {"status":"ok"}')
        check "HEAD $path: the connection closes after the headers" \
            grep -qi '^connection: close' "$W/head_$name.h"
    else
        body_ok=(test "$w $(cat "$W/head_$name.next" 2>/dev/null)" '=' '200 0 {"status":"ok"}')
    fi
    check "HEAD $path: no body (the next request is intact)" "${body_ok[@]}"
    # Headers but Date and traceparent (per request) and Content-Length
    # (compared below); trailers come after the GET's empty line.
    g=$(header_lines "$W/get_$name.h")
    h=$(header_lines "$W/head_$name.h")
    expect_eq "HEAD $path: the GET's headers" "$g" "$h"
    if [[ ${CODE[get_$name]} == 304 ]]; then
        # a 304 has no body, so no framing either
        check "GET $path: a 304 without Transfer-Encoding" \
            test -z "$(hdr "get_$name" Transfer-Encoding)"
        check "HEAD $path: a 304 without Transfer-Encoding" \
            test -z "$(hdr "head_$name" Transfer-Encoding)"
    fi
    check "HEAD $path: a traceparent" grep -qiE \
        '^traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-01' "$W/head_$name.h"
    g=$(hdr "get_$name" Content-Length)
    h=$(hdr "head_$name" Content-Length)
    if [[ $path == /metrics ]]; then
        # the scrape grows between the two requests: only its presence
        check "HEAD $path: Content-Length as GET has one" test -n "$h" -a -n "$g"
    elif [[ ${CODE[get_$name]} == 304 ]]; then
        # RFC 9110 8.6: a 304 has no Content-Length, or the 200's.
        check "GET $path: a 304 without 'Content-Length: 0' (got '$g')" \
            test "$g" = "" -o "$g" = "$SIZE"
        check "HEAD $path: a 304 without 'Content-Length: 0' (got '$h')" \
            test "$h" = "" -o "$h" = "$SIZE"
    else
        expect_eq "HEAD $path: Content-Length as GET's" "$g" "$h"
    fi
}
head_check layers /layers
head_check layers_page '/layers?limit=2'
head_check layer /layers/patch
head_check export /layers/patch/export
head_check export_gzip '/layers/patch/export?compression=gzip'
head_check export_accept /layers/patch/export -H "Accept: $OCI+zstd"
head_check entries /layers/patch/entries
head_check entries_array '/layers/patch/entries?prefix=var&limit=2' -H 'Accept: application/json'
head_check entry /layers/patch/entries/usr/bin/app
head_check entry_deleted /layers/patch/entries/usr/share/doc/README
head_check file /layers/base/files/usr/share/data.bin
head_check file_range /layers/base/files/usr/share/data.bin -H 'Range: bytes=5-9'
head_check file_304 /layers/base/files/usr/share/data.bin -H "If-None-Match: $ETAG"
head_check file_416 /layers/base/files/usr/share/data.bin -H "Range: bytes=$SIZE-"
head_check file_w32 '/layers/base/files/etc/os-release?format=win32-backup'
head_check healthz /healthz
head_check readyz /readyz
head_check openapi /openapi.yaml
head_check metrics /metrics
head_check missing_layer /layers/nope/export
head_check missing_entry /layers/patch/entries/etc/nope
head_check export_406 /layers/patch/export -H 'Accept: text/html'
check "HEAD export: no Content-Length (no export runs)" \
    test -z "$(hdr head_export Content-Length)"

# ---- errors ----

for p in /layers/nope /layers/nope/export /layers/nope/entries \
    /layers/nope/entries/etc /layers/nope/files/etc/hostname; do
    name=nf_$((++n_nf))
    req "$name" "$p"
    expect_problem "$name" 404 not-found
    expect_eq "$name: instance is the request path" "$p" \
        "$(jq -r .instance "$W/$name.b" 2>&1)"
done
req no_route /nope/at/all
expect_problem no_route 404
for m in POST PUT DELETE PATCH OPTIONS; do
    name=m_$m
    req "$name" /layers/patch -X "$m"
    expect_problem "$name" 405
    expect_eq "$name: Allow" "GET, HEAD" "$(hdr "$name" Allow)"
done
req post_body /layers/patch/export --data-binary 'x=1'
expect_problem post_body 405
expect_eq "post_body: Allow" "GET, HEAD" "$(hdr post_body Allow)"
req post_healthz /healthz -X POST
expect_problem post_healthz 405
for p in /layers/%2e%2e /layers/%2e%2e/export /layers/a%2Fb \
    /layers/a%2Fb/entries /layers/.. /layers/-x; do
    name=badid_$((++n_badid))
    req "$name" "$p"
    expect_problem "$name" 400 invalid-id
done
for p in /layers/%00 /layers/a%00b/export /layers/patch/files/usr/%00 \
    /layers/patch/%zz; do
    name=badreq_$((++n_badreq))
    req "$name" "$p"
    expect_problem "$name" 400 invalid-request
done

# ---- /layers: pages ----

req layers_all /layers
expect_status layers_all 200 application/json
expect_eq "layers: the demo's ids, bytewise" "app base patch snap-base snap-top" \
    "$(jq -r '[.layers[].id] | join(" ")' "$W/layers_all.b")"
check "layers: one page, no next" jqe 'has("next") | not' "$W/layers_all.b"
# shellcheck disable=SC2016 # the inner shell's arguments
check "layers: no host paths" bash -c '! grep -qF "$1" "$2"' _ "$D" "$W/layers_all.b"
expect_eq "layers: patch's fields" \
    '{"id":"patch","parent":"app","kind":"diff","store":"dir","created":"2023-11-15T00:13:20Z","mutable":false}' \
    "$(jq -c '.layers[] | select(.id == "patch")' "$W/layers_all.b")"
req layer_patch /layers/patch
expect_status layer_patch 200 application/json
expect_eq "layer patch: parents" '["app","base"]' "$(jq -c .parents "$W/layer_patch.b")"
ids=
after=
pages=0
while ((pages < 10)); do
    name=lp_$pages
    if [[ -n $after ]]; then
        req "$name" "/layers?limit=2&after=$after"
    else
        req "$name" '/layers?limit=2'
    fi
    pages=$((pages + 1))
    expect_status "$name" 200
    ids="$ids $(jq -r '[.layers[].id] | join(" ")' "$W/$name.b")"
    next=$(jq -r '.next // empty' "$W/$name.b")
    if [[ -z $next ]]; then
        expect_eq "$name: no Link on the last page" '' "$(hdr "$name" Link)"
        break
    fi
    expect_eq "$name: next is the page's last id" \
        "$(jq -r '.layers[-1].id' "$W/$name.b")" "$next"
    expect_eq "$name: Link" "</layers?limit=2&after=$next>; rel=\"next\"" \
        "$(hdr "$name" Link)"
    after=$next
done
expect_eq "layers in pages of 2: every id once, in order" \
    " app base patch snap-base snap-top" "$ids"
expect_eq "layers in pages of 2: 3 pages" 3 "$pages"
req layers_after '/layers?after=patch'
expect_eq "layers after patch" "snap-base snap-top" \
    "$(jq -r '[.layers[].id] | join(" ")' "$W/layers_after.b")"
req layers_max '/layers?limit=1000'
expect_status layers_max 200
req layers_limit_big '/layers?limit=1001'
expect_problem layers_limit_big 400 invalid-parameter
req layers_limit_x '/layers?limit=x'
expect_problem layers_limit_x 400 invalid-parameter
req layers_after_bad '/layers?after=..%2Fx'
expect_problem layers_after_bad 400 invalid-parameter

# ---- operations ----

req healthz /healthz
expect_status healthz 200 application/json
expect_eq "healthz: body" '{"status":"ok"}' "$(jq -c . "$W/healthz.b")"
req readyz /readyz
expect_status readyz 200 application/json
expect_eq "readyz: body" '{"status":"ready"}' "$(jq -c . "$W/readyz.b")"
req openapi /openapi.yaml
expect_status openapi 200 application/yaml
same_bytes "openapi: the contract file's bytes" "$OPENAPI" "$W/openapi.b"
req metrics /metrics
expect_status metrics 200
check "metrics: Content-Type text/plain; version=0.0.4" \
    grep -qiE '^Content-Type: text/plain; version=0\.0\.4(;|$)' "$W/metrics.h"
check "metrics: the exposition format with layerd's series" \
    grep -qE '^# TYPE layerd_[a-z_]+ (counter|gauge|histogram)$' "$W/metrics.b"
check "metrics: counts what this test sent" \
    grep -qE '^layerd_http_requests_total\{.*\} [1-9]' "$W/metrics.b"

it_stop
it_done
