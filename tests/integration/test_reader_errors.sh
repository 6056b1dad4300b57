#!/usr/bin/env bash
# The reader's errors end to end, wrapped once: the reader records what
# failed and with which object ("layer DIR: ...", "parent DIR: ...",
# "d: overlay redirect ..."), and each caller adds its operation exactly
# once: the CLI its "layerd entries: " / "layerd export: " prefix, a span
# "<name> failed: " (and the errno name), the API the problem's title
# around the message as its detail. No "layer.reader:" or "open failed:"
# appears anywhere.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init reader_errors 60
need curl jq setfattr

M=$IT_TMP/missing
L=$IT_TMP/layer
mkdir -p "$L"
echo x >"$L/f"
REDIRECT='d: overlay redirect (redirect_dir) cannot be exported from the layer directory'
D=$IT_TMP/store
mkdir -p "$D/redir/fs/d"
echo '{"kind": "diff"}' >"$D/redir/layer.json"
setfattr -n trusted.overlay.redirect -v /elsewhere "$D/redir/fs/d"

# ---- the CLI ----

expect_rc "missing layer" 3 "$LAYERD" entries --layer "$M"
expect_eq "missing layer: the message" \
    "layerd entries: layer $M: No such file or directory" "$(cat "$IT_TMP/err")"
expect_rc "missing parent" 3 "$LAYERD" entries --layer "$L" --parent "$M"
expect_eq "missing parent: the message" \
    "layerd entries: parent $M: No such file or directory" "$(cat "$IT_TMP/err")"
check "missing parent: no entry printed" test ! -s "$IT_TMP/out"
expect_rc "redirect dir refused" 4 "$LAYERD" entries --layer "$D/redir/fs"
expect_eq "redirect dir refused: the message" "layerd entries: $REDIRECT" \
    "$(cat "$IT_TMP/err")"
expect_rc "redirect dir refused by export" 4 "$LAYERD" export \
    --layer "$D/redir/fs" -o "$IT_TMP/x.tar"
expect_eq "redirect dir refused by export: the message" \
    "layerd export: $REDIRECT" "$(cat "$IT_TMP/err")"

# ---- the spans of the CLI ----

# span_messages FILE: "name: status_message" of the spans with an error
span_messages() {
    jq -r 'select(.status == "error") | "\(.name): \(.status_message)"' "$1" |
        sort
}

expect_rc "missing parent, traced" 3 "$LAYERD" entries --layer "$L" \
    --parent "$M" --trace "$IT_TMP/t1.log"
expect_eq "missing parent: each span wraps the message once" \
    "layer.entries: layer.entries failed: parent $M: No such file or directory (ENOENT)
layer.reader: layer.reader failed: parent $M: No such file or directory (ENOENT)" \
    "$(span_messages "$IT_TMP/t1.log")"
expect_rc "redirect, traced" 4 "$LAYERD" entries --layer "$D/redir/fs" \
    --trace "$IT_TMP/t2.log"
expect_eq "redirect: each span wraps the message once" \
    "layer.entries: layer.entries failed: $REDIRECT
layer.reader: layer.reader failed: $REDIRECT" \
    "$(span_messages "$IT_TMP/t2.log")"

# ---- the API ----

IT_STORE=$D
it_serve
for p in entries export; do
    code=$(it_curl -o "$IT_TMP/$p.json" -w '%{http_code}' \
        "$URL/layers/redir/$p")
    expect_eq "GET /layers/redir/$p: status" 422 "$code"
    expect_eq "GET /layers/redir/$p: the problem's detail" "$REDIRECT" \
        "$(jq -r .detail "$IT_TMP/$p.json")"
done
it_stop
expect_eq "the server's entries span wraps the message once" \
    "layer.entries failed: $REDIRECT" \
    "$(jq -r 'select(.name == "layer.entries") | .status_message' \
        "$IT_TMP/trace.log")"

check "no message carries the old prefixes" \
    bash -c '! grep -rhE "layer\.reader: |open failed" "$1"' _ "$IT_TMP"

it_done
