#!/usr/bin/env bash
# `layerd export` as a command: usage and exit statuses, the terminal
# guard, -o atomicity, the --json summary and its digests (checked against
# sha256sum, gzip and zstd), determinism, SOURCE_DATE_EPOCH, --all-xattrs,
# tracing, the --output-dir transport folder read back as a layer, and
# error messages wrapped once (the CLI and the span each add the operation
# to the raising site's message, nothing else does).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init export_cli 60
need jq gzip zstd tar sha256sum cmp setfattr

D=$IT_TMP/demo
mkdemo "$D"
S=dir:$D
W=$IT_TMP/w
mkdir -p "$W"
X() { "$LAYERD" export "$@"; }

# ---- help and usage errors ----
expect_rc "--help" 0 X --help
check "--help prints the usage" grep -q '^usage: layerd export' "$IT_TMP/out"
check "--help documents where --json goes" grep -q 'standard error when the' \
    "$IT_TMP/out"
expect_rc "no layer" 2 X -o "$W/x.tar"
expect_rc "unknown option" 2 X --bogus --store "$S" base
expect_rc "bad compression" 2 X --store "$S" base --compression lz4 -o "$W/x"
expect_rc "--level without compression" 2 X --store "$S" base --level 3 \
    -o "$W/x"
expect_rc "--level not a number" 2 X --store "$S" base --compression gzip \
    --level fast -o "$W/x"
expect_rc "--level out of range for gzip" 2 X --store "$S" base \
    --compression gzip --level 99 -o "$W/x"
expect_rc "-o with --output-dir" 2 X --store "$S" base -o "$W/x" \
    --output-dir "$W/d"
expect_rc "--output-dir with compression" 2 X --store "$S" base \
    --output-dir "$W/d" --compression zstd
expect_rc "--store and --layer" 2 X --store "$S" base --layer "$D/base/fs" \
    -o "$W/x"
expect_rc "--store without ID" 2 X --store "$S" -o "$W/x"
expect_rc "two IDs" 2 X --store "$S" base app -o "$W/x"
expect_rc "negative --source-date-epoch" 2 X --store "$S" base \
    --source-date-epoch -5 -o "$W/x"
expect_rc "malformed SOURCE_DATE_EPOCH" 2 env SOURCE_DATE_EPOCH=soon \
    "$LAYERD" export --store "$S" base -o "$W/x"
check "usage errors name the command" grep -q '^layerd' "$IT_TMP/err"
expect_rc "bad --kind" 2 X --layer "$D/base/fs" --kind weird -o "$W/x"
check "usage errors leave no output" test ! -e "$W/x" -a ! -e "$W/x.tmp"

# ---- not found ----
expect_rc "unknown layer id" 3 X --store "$S" no-such-layer -o "$W/x"
expect_rc "missing store" 3 X --store "dir:$IT_TMP/nostore" base -o "$W/x"
expect_rc "missing layer directory" 3 X --layer "$IT_TMP/nodir" -o "$W/x"
check "message says layerd export" grep -q '^layerd export: ' "$IT_TMP/err"
check "not-found exports leave no output" test ! -e "$W/x" -a ! -e "$W/x.tmp"

# ---- the terminal guard ----
if command -v script >/dev/null; then
    script -qec "'$LAYERD' export --store '$S' base" /dev/null \
        >"$IT_TMP/tty.out" 2>&1
    rc=$?
    expect_eq "tar to a terminal is refused" 2 "$rc"
    check "the refusal says why" grep -q 'terminal' "$IT_TMP/tty.out"
    check "nothing binary reached the terminal" \
        bash -c "! grep -qa 'ustar' '$IT_TMP/tty.out'"
else
    skip "the terminal guard: script(1) is not installed"
fi

# ---- -o atomicity: a failing export leaves FILE as it was ----
R=$IT_TMP/redirect
mkdir -p "$R/a" "$R/z/moved"
head -c 3000000 /dev/urandom >"$R/a/big.bin"
setfattr -n trusted.overlay.redirect -v /elsewhere "$R/z/moved"
echo "previous content" >"$W/keep.tar"
expect_rc "redirect dir refused" 4 X --layer "$R" -o "$W/keep.tar"
check "the error names the redirect" grep -qi 'redirect' "$IT_TMP/err"
expect_eq "FILE kept its old content" "previous content" "$(cat "$W/keep.tar")"
check "no FILE.tmp left" test ! -e "$W/keep.tar.tmp"
expect_rc "failing export to a new file" 4 X --layer "$R" -o "$W/new.tar" \
    --compression gzip
check "no FILE and no FILE.tmp" test ! -e "$W/new.tar" -a ! -e "$W/new.tar.tmp"
expect_rc "failing export to stdout" 4 X --layer "$R" -o -
expect_rc "failing --output-dir" 4 X --layer "$R" --output-dir "$W/rfolder"
check "no folder left" test ! -e "$W/rfolder"
expect_eq "nothing else left in the output dir" \
    "keep.tar" "$(ls -A "$W" | tr '\n' ' ' | sed 's/ $//')"

# ---- a signal mid-export removes FILE.tmp ----
SIGL=$IT_TMP/slow
mkdir -p "$SIGL"
head -c 16000000 /dev/urandom >"$SIGL/random.bin" # zstd -19: seconds of work
"$LAYERD" export --layer "$SIGL" --compression zstd --level 19 \
    -o "$W/sig.tar.zst" 2>/dev/null &
pid=$!
for _ in $(seq 100); do
    [[ -e $W/sig.tar.zst.tmp ]] && break
    sleep 0.05
done
check "FILE.tmp exists while the export runs" test -e "$W/sig.tar.zst.tmp"
kill -TERM "$pid"
wait "$pid"
expect_eq "SIGTERM ends the export with the signal's status" 143 "$?"
check "SIGTERM leaves neither FILE nor FILE.tmp" \
    test ! -e "$W/sig.tar.zst" -a ! -e "$W/sig.tar.zst.tmp"

# ---- digests and --json, per compression ----
for comp in none gzip zstd; do
    f=$W/base.$comp
    expect_rc "export $comp -o FILE --json" 0 X --store "$S" base \
        --compression "$comp" -o "$f" --json
    cp "$IT_TMP/out" "$f.json"
    cp "$IT_TMP/err" "$f.err"
    expect_eq "$comp: --json has exactly the summary fields" \
        '["diff_id","digest","entries","media_type","size","tar","tar_size","warnings"]' \
        "$(jq -c 'keys' "$f.json")"
    expect_eq "$comp: field types" \
        '["string","string","number","string","number","string","number","array"]' \
        "$(jq -c '[to_entries[] | .value | type]' <(jq -S . "$f.json"))"
    expect_eq "$comp: a dir: store layer gets the canonical tar" canonical \
        "$(jq -r .tar "$f.json")"
    case $comp in
    none) dec=(cat) mt=application/vnd.oci.image.layer.v1.tar ;;
    gzip) dec=(gzip -dc) mt=application/vnd.oci.image.layer.v1.tar+gzip ;;
    zstd) dec=(zstd -dcq) mt=application/vnd.oci.image.layer.v1.tar+zstd ;;
    esac
    expect_eq "$comp: media_type" "$mt" "$(jq -r .media_type "$f.json")"
    expect_eq "$comp: digest is sha256 of the file" "$(sha256_of "$f")" \
        "$(jq -r .digest "$f.json")"
    expect_eq "$comp: size is the file size" "$(stat -c %s "$f")" \
        "$(jq -r .size "$f.json")"
    "${dec[@]}" "$f" >"$f.tar"
    expect_eq "$comp: diff_id is sha256 of the tar" "$(sha256_of "$f.tar")" \
        "$(jq -r .diff_id "$f.json")"
    expect_eq "$comp: tar_size is the tar size" "$(stat -c %s "$f.tar")" \
        "$(jq -r .tar_size "$f.json")"
    expect_eq "$comp: entries counts the tar members" \
        "$(tar -tf "$f.tar" | wc -l)" "$(jq -r .entries "$f.json")"
    expect_eq "$comp: no warnings" "[]" "$(jq -c .warnings "$f.json")"
    check "$comp: stderr reports the diff_id" \
        grep -qx "diff_id $(jq -r .diff_id "$f.json")" "$f.err"
    check "$comp: stderr reports the digest" \
        grep -qx "digest $(jq -r .digest "$f.json")" "$f.err"
    check "$comp: the tar ends with two zero blocks" \
        test "$(tail -c 1024 "$f.tar" | tr -d '\0' | wc -c)" -eq 0
    # the same bytes again, to stdout; the JSON then goes to stderr alone
    X --store "$S" base --compression "$comp" --json -o - \
        >"$f.again" 2>"$f.again.err"
    check "$comp: deterministic (second run, via stdout, byte-identical)" \
        cmp -s "$f" "$f.again"
    expect_eq "$comp: with the tar on stdout, stderr is only the JSON" \
        "$(jq -c . "$f.json")" "$(jq -c . "$f.again.err" 2>&1)"
done
check "gzip -t accepts the gzip export" gzip -t "$W/base.gzip"
check "zstd -t accepts the zstd export" zstd -tq "$W/base.zstd"
check "all compressions carry the same tar" \
    bash -c "cmp -s '$W/base.none.tar' '$W/base.gzip.tar' &&
             cmp -s '$W/base.none.tar' '$W/base.zstd.tar'"
expect_eq "none: digest equals diff_id" "$(jq -r .diff_id "$W/base.none.json")" \
    "$(jq -r .digest "$W/base.none.json")"
expect_rc "zstd --level 19" 0 X --store "$S" base --compression zstd \
    --level 19 -o "$W/l19.zst" --json
check "zstd level 19 decompresses to the same tar" \
    bash -c "zstd -dcq '$W/l19.zst' | cmp -s - '$W/base.none.tar'"
"$LAYERD" export --store "$S" base >"$W/plain-stdout.tar" 2>/dev/null
check "no -o: the tar goes to a non-terminal stdout" \
    cmp -s "$W/plain-stdout.tar" "$W/base.none"
expect_rc "--output=FILE form" 0 X --store "$S" base --output="$W/eq.tar"
check "--output=FILE writes the same tar" cmp -s "$W/eq.tar" "$W/base.none"
expect_rc "-o into a missing directory" 3 X --store "$S" base \
    -o "$W/missing/x.tar"
expect_rc "-o onto a directory" 1 X --store "$S" base -o "$W"
expect_rc "export to /dev/null (not a regular file)" 0 X --store "$S" base \
    --compression gzip -o /dev/null
check "no /dev/null.tmp" test ! -e /dev/null.tmp
expect_rc "snapshot layer with --layer/--kind/--parent" 0 X \
    --layer "$D/snap-top/fs" --kind snapshot --parent "$D/snap-base/fs" \
    -o "$W/snap-dirs.tar"
X --store "$S" snap-top -o "$W/snap-store.tar" 2>/dev/null
check "--layer form equals the --store form" \
    cmp -s "$W/snap-dirs.tar" "$W/snap-store.tar"

# ---- SOURCE_DATE_EPOCH ----
E=1600000000 # 2020-09-13 12:26:40 UTC, before the demo's 2023 mtimes
expect_rc "--source-date-epoch" 0 X --store "$S" app \
    --source-date-epoch "$E" -o "$W/app.sde"
tar -tv --full-time --utc -f "$W/app.sde" >"$W/app.sde.list"
expect_eq "mtimes clamped to the epoch (whiteouts stay at 0)" "" \
    "$(awk '{ t = $4 " " $5 } $6 ~ /(^|\/)\.wh\./ { if (t != "1970-01-01 00:00:00") print } $6 !~ /(^|\/)\.wh\./ { if (t != "2020-09-13 12:26:40") print }' "$W/app.sde.list")"
check "the listing is not empty" test -s "$W/app.sde.list"
SOURCE_DATE_EPOCH=$E "$LAYERD" export --store "$S" app -o "$W/app.env" \
    2>/dev/null
check "SOURCE_DATE_EPOCH in the environment does the same" \
    cmp -s "$W/app.sde" "$W/app.env"
X --store "$S" app -o "$W/app.plain" 2>/dev/null
SOURCE_DATE_EPOCH=2000000000 "$LAYERD" export --store "$S" app \
    -o "$W/app.late" 2>/dev/null
check "an epoch after every mtime changes nothing" \
    cmp -s "$W/app.plain" "$W/app.late"
check "without an epoch the mtimes are kept" \
    grep -q '2023-11-14 22:13:20' <(tar -tv --full-time --utc -f "$W/app.plain")

# ---- xattrs ----
check "security.capability is exported by default" \
    grep -qa 'SCHILY.xattr.security.capability' "$W/base.none"
check "other xattrs are not exported by default" \
    bash -c "! grep -qa 'SCHILY.xattr.user.layerd.origin' '$W/base.none'"
expect_rc "--all-xattrs" 0 X --store "$S" base --all-xattrs -o "$W/base.all"
check "--all-xattrs exports user.* xattrs" \
    grep -qa 'SCHILY.xattr.user.layerd.origin=base' "$W/base.all"

# ---- tracing ----
expect_rc "--trace FILE" 0 X --store "$S" base -o "$W/t.tar" \
    --trace "$W/trace.jsonl"
check "the trace holds an ok layer.export span" \
    jq -e -s >/dev/null 'map(select(.name == "layer.export" and .status == "ok")) |
              length == 1' "$W/trace.jsonl"
expect_rc "--trace on a failing export" 4 X --layer "$R" -o "$W/t2.tar" \
    --trace "$W/trace2.jsonl"
check "the failed export's span has status error" \
    jq -e -s >/dev/null 'map(select(.name == "layer.export" and .status == "error")) |
              length == 1' "$W/trace2.jsonl"

# ---- the transport folder ----
for id in base app patch snap-top; do
    F=$W/folder-$id
    expect_rc "$id: --output-dir" 0 X --store "$S" "$id" --output-dir "$F"
    check "$id: Files/ exists" test -d "$F/Files"
    expect_eq "$id: tombstones.txt starts with Version 1.0" "Version 1.0" \
        "$(head -n 1 "$F/tombstones.txt")"
    expect_rc "$id: export of the folder" 0 X --layer "$F" --kind folder \
        -o "$W/folder-$id.tar"
    X --store "$S" "$id" -o "$W/direct-$id.tar" 2>/dev/null
    check "$id: the folder exports to the same tar bytes" \
        cmp -s "$W/folder-$id.tar" "$W/direct-$id.tar"
done
expect_eq "app: tombstones list the deletions in reader order" \
    "etc/alternatives etc/issue etc/motd var/cache/app/old1.dat var/cache/app/old2.dat" \
    "$(tail -n +2 "$W/folder-app/tombstones.txt" | tr '\n' ' ' | sed 's/ $//')"
check "app: a modified file is in Files/" \
    grep -qx app "$W/folder-app/Files/etc/hostname"
expect_rc "--output-dir onto an existing path" 1 X --store "$S" app \
    --output-dir "$W/folder-app"
expect_eq "the existing folder is untouched" "Version 1.0" \
    "$(head -n 1 "$W/folder-app/tombstones.txt")"

# ---- error messages: said once where raised, wrapped once ----
# The status message of the span named $2 in trace file $1.
span_error() {
    jq -r -s --arg n "$2" 'map(select(.name == $n and .status == "error")) |
                           .[0].status_message // "none"' "$1"
}
expect_rc "folder onto an existing path, traced" 1 X --store "$S" app \
    --output-dir "$W/folder-app" --trace "$W/err1.jsonl"
expect_eq "CLI: the folder writer's message, once" \
    "layerd export: $W/folder-app exists" "$(cat "$IT_TMP/err")"
expect_eq "span: the operation, then the message" \
    "layer.export failed: $W/folder-app exists" \
    "$(span_error "$W/err1.jsonl" layer.export)"
expect_rc "folder below a missing directory, traced" 3 X --store "$S" app \
    --output-dir "$W/missing/deeper" --trace "$W/err2.jsonl"
expect_eq "CLI: the failed call, its object and strerror" \
    "layerd export: open $W/missing: No such file or directory" \
    "$(cat "$IT_TMP/err")"
expect_eq "span: the errno name once, at the end" \
    "layer.export failed: open $W/missing: No such file or directory (ENOENT)" \
    "$(span_error "$W/err2.jsonl" layer.export)"
B=$IT_TMP/broken
mkdir -p "$B/syntax/fs"
printf '{"parent": "a",}' >"$B/syntax/layer.json"
expect_rc "a store whose layer.json is not JSON, traced" 1 \
    "$LAYERD" entries --store "dir:$B" syntax --trace "$W/err3.jsonl"
json_err="layer syntax: layer.json: invalid JSON at line 1, column 16 (byte 16): string or '}' expected near '}'"
expect_eq "CLI: the document, where and what" "layerd: $json_err" \
    "$(cat "$IT_TMP/err")"
expect_eq "span: store.resolve adds its title once" \
    "store.resolve failed: $json_err" \
    "$(span_error "$W/err3.jsonl" store.resolve)"
check "no module prefix or doubled title in any message" \
    bash -c "! cat '$W'/err[123].jsonl | grep -E 'layer\.folder:|failed: [a-z._]+ failed|: [a-z._]+: open failed'"

it_done
