#!/usr/bin/env bash
# A file that changes while it is exported: truncated, grown, or
# rewritten in place (same size, mtime put back: only ctime tells) in the
# middle of a 200 MiB export. The bytes a tar holds are the file's, or
# there is no tar:
#   - `layerd export -o FILE` (stopped with SIGSTOP mid-file while the
#     file changes) exits 1, names the file, and leaves neither FILE nor
#     FILE.tmp; with --allow-changing it completes, exit 0, and warns
#     naming the file;
#   - GET /export (the client pauses reading mid-file while it changes)
#     is cut: the chunked body never gets its last chunk, so no trailer
#     and no digest; the request's span ends in error; the blob cache
#     keeps nothing (the next export computes, the one after reuses);
#     with --allow-changing the stream completes with its trailers and
#     the server logs a layer.file_changed span naming the file;
#   - GET /files of the file is cut short of its Content-Length.
# Loopback only; every wait is bounded.
. "$(dirname "$0")/../integration/lib.sh"
it_init changing_files 240
need jq truncate dd

MIB=200
py=$(it_python)
here=$(cd "$(dirname "$0")" && pwd)
store=$IT_TMP/store
data=$store/big/fs/data
mkdir -p "$store/big/fs"
echo '{"kind": "diff"}' >"$store/big/layer.json"

# fresh: the file, MIB MiB (sparse: reading it costs no disk), with an
# mtime in the past.
fresh() {
    rm -f "$data"
    truncate -s "${MIB}M" "$data"
    touch -d @1700000000 "$data"
}

# change HOW: change the file the way HOW says.
change() {
    case $1 in
    truncate) truncate -s 1M "$data" ;;
    grow) head -c 1048576 /dev/zero >>"$data" ;;
    rewrite)
        dd if=/dev/urandom of="$data" bs=1M count=1 seek=150 conv=notrunc \
            status=none
        touch -d @1700000000 "$data"
        ;;
    esac
}

# ---- the command line ----

# cli HOW [ARGS...]: export while the file changes HOW; the exit status in
# $rc, stderr in $IT_TMP/err.
cli() {
    local how=$1 pid i size
    shift
    fresh
    rm -f "$IT_TMP/out.tar" "$IT_TMP/out.tar.tmp"
    "$LAYERD" export --store "dir:$store" big -o "$IT_TMP/out.tar" "$@" \
        2>"$IT_TMP/err" &
    pid=$!
    # stop it once 4 MiB are out: mid-file (the export is at most its
    # rings, a few MiB, ahead of what it wrote)
    for ((i = 0; i < 1000; i++)); do
        size=$(stat -c %s "$IT_TMP/out.tar.tmp" 2>/dev/null || echo 0)
        [[ $size -ge 4194304 ]] && break
        sleep 0.01
    done
    kill -STOP "$pid"
    size=$(stat -c %s "$IT_TMP/out.tar.tmp" 2>/dev/null || echo 0)
    [[ $size -lt $((MIB * 1048576 / 2)) ]] ||
        die "cli $how: the export was past the middle ($size bytes) when stopped"
    change "$how"
    kill -CONT "$pid"
    rc=0
    wait "$pid" || rc=$?
}

for how in truncate grow rewrite; do
    cli "$how"
    expect_eq "cli, $how: exit 1" 1 "$rc"
    check "cli, $how: the message names the file" \
        grep -q "data: file .* while read" "$IT_TMP/err"
    check "cli, $how: no output file, no temporary file" \
        test ! -e "$IT_TMP/out.tar" -a ! -e "$IT_TMP/out.tar.tmp"
    cli "$how" --allow-changing
    expect_eq "cli --allow-changing, $how: exit 0" 0 "$rc"
    check "cli --allow-changing, $how: a warning names the file" \
        grep -q "^layerd export: warning: data: file" "$IT_TMP/err"
    expect_eq "cli --allow-changing, $how: the tar holds the listed size" \
        $((MIB * 1048576)) \
        "$(tar -tvf "$IT_TMP/out.tar" data | awk '{print $3}')"
done

# ---- HTTP ----

# get PATH HOW: GET PATH; once 1 MiB of body is read, change the file HOW
# and read the rest. The client's report in $IT_TMP/get.json.
get() {
    local path=$1 how=$2 i pid
    fresh
    rm -f "$IT_TMP/paused" "$IT_TMP/go"
    "$py" "$here/pauseget.py" "$URL" "$path" 1048576 "$IT_TMP/paused" \
        "$IT_TMP/go" >"$IT_TMP/get.json" &
    pid=$!
    for ((i = 0; i < 600; i++)); do
        [[ -e $IT_TMP/paused ]] && break
        sleep 0.05
    done
    [[ -e $IT_TMP/paused ]] || die "GET $path: the client did not pause"
    change "$how"
    : >"$IT_TMP/go"
    wait "$pid" || die "GET $path: the client failed"
}

j() { jq -c -r "$1" "$IT_TMP/get.json"; }

it_serve --store "dir:$store"
for how in truncate grow rewrite; do
    : >"$IT_TMP/trace.log"
    get /layers/big/export "$how"
    expect_eq "export, $how: 200 at first" 200 "$(j .status)"
    expect_eq "export, $how: the stream is cut" false "$(j .complete)"
    expect_eq "export, $how: no trailers" '{}' "$(j .trailers)"
    check "export, $how: less than the whole tar" \
        test "$(j .bytes)" -lt $((MIB * 1048576))
    check "export, $how: the request's span ends in error, naming the file" \
        grep -q '"name":"layer.export".*"status":"error".*data: file' \
        "$IT_TMP/trace.log"
done
# the cache kept nothing: the next export fills it anew. A span is
# logged when the server is done with the request, which may be after
# curl is: wait (10 s at most) for the new one.
digests_seen() { grep -c '"cache.result":' "$IT_TMP/trace.log"; }
next_digests() {
    local before=$1 i
    for ((i = 0; i < 100; i++)); do
        [[ $(digests_seen) -gt $before ]] && break
        sleep 0.1
    done
    grep -o '"cache.result":"[a-z]*"' "$IT_TMP/trace.log" | tail -n 1
}
n=$(digests_seen)
it_curl --max-time 120 -o /dev/null "$URL/layers/big/export" ||
    fail "a clean export after the failures"
d1=$(next_digests "$n")
n=$(digests_seen)
it_curl --max-time 120 -o /dev/null "$URL/layers/big/export" ||
    fail "a second clean export"
d2=$(next_digests "$n")
expect_eq "after the failed exports, the first clean one fills the cache" \
    '"cache.result":"fill"' "$d1"
check "... and the second is served from it (kept, or still being kept)" \
    grep -Eq '"cache.result":"(hit|wait)"' <<<"$d2"
for how in truncate rewrite; do
    get /layers/big/files/data "$how"
    expect_eq "files, $how: 200 at first" 200 "$(j .status)"
    expect_eq "files, $how: cut short of its Content-Length" false \
        "$(j .complete)"
done
it_stop

it_serve --store "dir:$store" --allow-changing --no-cache
: >"$IT_TMP/trace.log"
get /layers/big/export truncate
expect_eq "export --allow-changing, truncated: the stream completes" true \
    "$(j .complete)"
check "export --allow-changing: with its digest trailer" \
    test -n "$(j '.trailers["docker-content-digest"] // ""')"
expect_eq "export --allow-changing: the tar keeps its listed size" \
    $((512 + MIB * 1048576 + 1024)) "$(j .bytes)"
check "export --allow-changing: the server logs the file that changed" \
    grep -q '"name":"layer.file_changed".*"file.path":"data"' \
    "$IT_TMP/trace.log"
get /layers/big/files/data truncate
expect_eq "files --allow-changing, truncated: complete" true "$(j .complete)"
it_stop
it_done
