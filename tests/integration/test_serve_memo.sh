#!/usr/bin/env bash
# layerd serve, the digest memo (api/digest_memo.h), with curl over HTTPS:
#
# - an immutable layer's first export computes its digests, the next
#   ones (every format) reuse them: the trailers still equal the sha256 of
#   the body and of the tar, and the trace says "computed", then "memo";
# - a file of that layer rewritten with the same size and its old mtime
#   (only the ctime tells) makes the next export cut its stream (curl
#   fails, the trace says "stale"), and the export after that computes
#   the new digests, which match the new bytes;
# - an added file is caught the same way;
# - a mutable layer ("mutable": true) always computes (served under a
#   policy whose anonymous grant reaches mutable layers: no layer of that
#   kind is served to anyone without one);
# - so does every export of a server started with --no-digest-memo.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_memo 60
need curl jq sha256sum gzip zstd

S=$IT_TMP/store
W=$IT_TMP/w
mkdir -p "$S/frozen/fs/etc" "$S/live/fs" "$W"
echo '{"kind": "diff"}' >"$S/frozen/layer.json"
echo '{"kind": "diff", "mutable": true}' >"$S/live/layer.json"
head -c 300000 /dev/urandom >"$S/frozen/fs/blob"
echo "hello" >"$S/frozen/fs/etc/greeting"
echo "live" >"$S/live/fs/file"
cat >"$IT_TMP/policy.json" <<'JSON'
{"anonymous": {"grants": [{"layers": ["*"], "ops": ["list", "read"],
                           "mutable": true}]}}
JSON
IT_STORE=$S
it_serve --auth "$IT_TMP/policy.json"
T=$IT_TMP/trace.log

# get NAME URL-PATH: download to $W/NAME.body with headers and trailers
# in $W/NAME.h; returns curl's status.
get() {
    it_curl -D "$W/$1.h" -o "$W/$1.body" "$URL$2"
}

# digests_ok NAME FORMAT: the trailers equal the sha256 of the body and
# of the decompressed tar.
digests_ok() {
    local tar_digest
    case $2 in
    none) tar_digest=$(sha256_of "$W/$1.body") ;;
    gzip) tar_digest=$(gzip -dc "$W/$1.body" | sha256_of -) ;;
    zstd) tar_digest=$(zstd -dcq "$W/$1.body" | sha256_of -) ;;
    esac
    [[ $(it_hdr "$W/$1.h" Docker-Content-Digest) == "$(sha256_of "$W/$1.body")" &&
        $(it_hdr "$W/$1.h" X-Layer-Diff-Id) == "$tar_digest" ]]
}

# how TRACE-ID: the export.digests attribute of that request's root span.
how() {
    for _ in $(seq 50); do
        if grep -q "\"trace_id\":\"$1\".*\"name\":\"http.request\"" "$T"; then
            jq -r --arg t "$1" \
                'select(.trace_id == $t and .name == "http.request")
                 | .attributes["export.digests"]' "$T"
            return
        fi
        sleep 0.1
    done
    echo "no span"
}

# trace_of NAME: the trace id of a response (its traceparent header).
trace_of() {
    it_hdr "$W/$1.h" traceparent | cut -d- -f2
}

for fmt in none gzip zstd; do
    for run in 1 2 3; do
        n=$fmt$run
        expect_rc "export $fmt #$run" 0 get "$n" "/layers/frozen/export?compression=$fmt"
        check "export $fmt #$run: trailers match the bytes" digests_ok "$n" "$fmt"
        want=memo
        [[ $run == 1 ]] && want=computed
        expect_eq "export $fmt #$run: digests $want" "$want" "$(how "$(trace_of "$n")")"
    done
    check "export $fmt: the same bytes every time" \
        cmp -s "$W/${fmt}1.body" "$W/${fmt}3.body"
done

# Same size, old mtime: only the ctime moved.
old=$(stat -c %y "$S/frozen/fs/blob")
head -c 300000 /dev/urandom >"$S/frozen/fs/blob"
touch -d "$old" "$S/frozen/fs/blob"
expect_rc "export after a silent rewrite is cut" 18 \
    get stale "/layers/frozen/export?compression=none"
expect_eq "the cut export says stale" stale "$(how "$(trace_of stale)")"
check "the cut stream has no trailers" \
    test -z "$(it_hdr "$W/stale.h" Docker-Content-Digest)"
expect_rc "the retry" 0 get fresh "/layers/frozen/export?compression=none"
check "the retry's trailers match the new bytes" digests_ok fresh none
expect_eq "the retry computes" computed "$(how "$(trace_of fresh)")"
check "the new bytes differ from the old" \
    bash -c "! cmp -s '$W/none1.body' '$W/fresh.body'"
expect_rc "then the memo again" 0 get again "/layers/frozen/export?compression=none"
expect_eq "then memo" memo "$(how "$(trace_of again)")"
check "memo trailers match" digests_ok again none

echo "new" >"$S/frozen/fs/etc/added"
expect_rc "export after an added file is cut" 18 \
    get added "/layers/frozen/export?compression=gzip"
expect_rc "its retry" 0 get added2 "/layers/frozen/export?compression=gzip"
check "its retry's trailers match" digests_ok added2 gzip

# always_computed DESC LAYER NAME: two exports of LAYER, both hashed.
always_computed() {
    local run
    for run in 1 2; do
        expect_rc "$1 export #$run" 0 get "$3$run" "/layers/$2/export"
        check "$1 #$run: trailers match" digests_ok "$3$run" none
        expect_eq "$1 #$run: computed" computed "$(how "$(trace_of "$3$run")")"
    done
}

always_computed "mutable layer" live live
it_stop

it_serve --no-digest-memo
always_computed --no-digest-memo frozen off
it_stop
it_done
