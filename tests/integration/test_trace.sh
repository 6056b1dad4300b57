#!/usr/bin/env bash
# layerd serve, tracing (`--trace FILE`), checked against a real server
# with curl and jq:
#
# - a known sequence of requests (the layer list, one layer, plain, gzip
#   and zstd exports, the entries stream, an unknown layer, a malformed
#   id, no route) leaves, per request, one trace: exactly one root span
#   "http.request" (no parent, or the remote parent of an incoming
#   traceparent), every other span pointing at a span of the same trace
#   and nested in its [start, end]; durations are non-negative and agree
#   with start/end; the attributes hold what was sent and received
#   (method, path, route, status, client address, body size, layer path
#   and parents, the export's digests equal to the trailers curl got and
#   to the body's own sha256);
# - errors are wrapped once: "store.resolve failed: ..." on a 404, and
#   every span with status "error" says "<title> failed: <message>";
# - a client that hangs up mid-export gives an http.request span with
#   outcome client_aborted and an ended layer.reader span; the same for
#   the entries stream;
# - 32 concurrent requests: every line of the log is one complete JSON
#   object, the number of lines is exactly the number of spans the
#   requests make, each trace complete;
# - traceparent: a valid one is continued (trace id, remote parent, and
#   the response's traceparent), malformed ones (wrong length, uppercase,
#   all-zero ids, version ff, missing flags) start a new trace;
# - SIGHUP after the log was moved away: new spans land in a new file, the
#   old ones stay in the moved one.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan/UBSan (fewer aborts; the same checks).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init trace 90
need curl jq sha256sum gzip zstd

CONCURRENT=32
ABORTS=2
if [[ ${LAYERD_SANITIZED:-0} == 1 ]]; then
    ABORTS=1
fi
# Slack when comparing a child's [start, end] with its parent's: both
# starts are CLOCK_REALTIME readings and the ends add CLOCK_MONOTONIC
# durations, so only the two clocks' drift over a request separates them.
NEST_TOL_NS=20000

D=$IT_TMP/store
W=$IT_TMP/w
T=$IT_TMP/trace.log
mkdir -p "$W"
mkdemo "$D"
D=$(cd "$D" && pwd -P)

# Layers big enough that a client hanging up after 64 KiB leaves the
# server mid-stream (more than loopback's socket buffers hold: a few
# MiB): "big", a 16 MiB export, and "wide", 24,000 entries with long
# names (~12 MB of NDJSON), hard links to one file so it is quick to
# build.
it_big_layer "$D" 16
it_wide_layer "$D"

trap it_cleanup EXIT

# start_server: run layerd serve on an ephemeral port; sets PID and URL.
start_server() {
    SERVER_LOG=$IT_TMP/server.log
    : >"$SERVER_LOG"
    "$LAYERD" serve --store "dir:$D" --listen 127.0.0.1:0 --trace "$T" \
        --max-exports 64 --no-cache 2>"$SERVER_LOG" & # every export runs
    SERVER_PID=$!
    it_wait_listening
    PID=$SERVER_PID
}

# hdr FILE NAME: the first value of header (or trailer) NAME in a curl -D
# file, without the CR.
hdr() {
    tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | head -n 1
}

# req NAME PATH [CURL ARGS...]: one request. Headers and trailers go to
# $W/NAME.h (curl -D writes the trailers of a chunked body after it), the
# body to $W/NAME.b; sets CODE[NAME], SIZE[NAME] (body bytes received) and
# TRACE[NAME], SPAN[NAME] (from the response's traceparent).
declare -A CODE SIZE TRACE SPAN
req() {
    local name=$1 path=$2 w tp
    shift 2
    w=$(curl -sS -k --max-time 20 -D "$W/$name.h" -o "$W/$name.b" \
        -w '%{http_code} %{size_download}' "$@" "$URL$path" 2>"$W/$name.err")
    CODE[$name]=${w% *}
    SIZE[$name]=${w#* }
    tp=$(hdr "$W/$name.h" traceparent)
    TRACE[$name]=$(cut -d- -f2 <<<"$tp")
    SPAN[$name]=$(cut -d- -f3 <<<"$tp")
}

# wait_root TRACE: wait (up to 20 s) for the root span of TRACE to be in
# the log; it ends after every other span of its trace.
wait_root() {
    local i
    for ((i = 0; i < 400; i++)); do
        grep -q "^{\"trace_id\":\"$1\".*\"name\":\"http.request\"" "$T" \
            2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

BASE_S=$(($(date +%s) - 60))
# spans FILE: the spans of FILE as one JSON array, each with s and e, its
# start and end in exact nanoseconds since BASE_S (jq 1.6 keeps numbers as
# doubles, which cannot hold a 19-digit unix time in nanoseconds: the two
# fields are turned into strings and split before any arithmetic).
spans() {
    sed -E 's/"(start|end)_unix_nano":([0-9]+)/"\1_unix_nano":"\2"/g' "$1" |
        jq -s --argjson base "$BASE_S" '
            def ns: ((.[0:-9] | tonumber) - $base) * 1000000000
                    + (.[-9:] | tonumber);
            map(. + {s: (.start_unix_nano | ns), e: (.end_unix_nano | ns)})'
}

# Structural rules over a span array, as a list of violations (empty when
# all hold). $remote: the span ids a root may name as its (remote) parent.
# shellcheck disable=SC2016
RULES='
def hex($n): type == "string" and test("^[0-9a-f]{\($n)}$")
             and (test("^0+$") | not);
. as $all
| [ ($all[]
     | select(((.trace_id | hex(32)) and (.span_id | hex(16))
               and ((has("parent_span_id") | not)
                    or (.parent_span_id | hex(16)))) | not)
     | "malformed ids: \(.)"),
    ($all | group_by(.span_id)[] | select(length > 1)
     | "span id \(.[0].span_id) used \(length) times"),
    ($all[] | select(.status != "ok" and .status != "error")
     | "\(.name) \(.span_id): status \(.status)"),
    ($all[] | select(.status == "error"
                     and ((.status_message // "")
                          | test("^[a-z][a-z._]* failed: .") | not))
     | "\(.name) \(.span_id): error status without a wrapped message: \(.status_message // "none")"),
    ($all[] | select(.status == "ok" and has("status_message"))
     | "\(.name) \(.span_id): ok status with a message: \(.status_message)"),
    ($all[] | select(.duration_ms < 0 or .e < .s
                     or (((.e - .s) - .duration_ms * 1000000) | fabs) > 1000)
     | "\(.name) \(.span_id): duration \(.duration_ms) ms vs start/end \(.e - .s) ns"),
    ($all | group_by(.trace_id)[]
     | . as $tr
     | ([.[] | select(.name == "http.request")]) as $roots
     | (if ($roots | length) != 1
        then "trace \(.[0].trace_id): \($roots | length) http.request spans"
        else empty end),
       ($roots[] | select(has("parent_span_id")
                          and (.parent_span_id as $p
                               | $remote | index($p) | not))
        | "root \(.span_id) has a parent: \(.parent_span_id)"),
       (.[] | select(.name != "http.request") | . as $c
        | ([$tr[] | select(.span_id == $c.parent_span_id)] | first) as $p
        | if $p == null then
            "\($c.name) \($c.span_id): parent \($c.parent_span_id // "none") is not in trace \($c.trace_id)"
          elif $c.s < $p.s - $tol or $c.e > $p.e + $tol then
            "\($c.name) \($c.span_id) [\($c.s), \($c.e)] is not inside \($p.name) \($p.span_id) [\($p.s), \($p.e)]"
          else empty end))
  ]'

# check_rules DESC JSON REMOTE_IDS_JSON: the structural rules hold.
check_rules() {
    local v
    if ! jq -e 'type == "array" and length > 0' "$2" >/dev/null 2>&1; then
        fail "$1: the span log does not parse as JSON lines (or is empty)"
        return
    fi
    if ! v=$(jq -r --argjson remote "$3" --argjson tol "$NEST_TOL_NS" \
        "$RULES | .[]" "$2" 2>&1); then
        fail "$1: jq: $v"
    elif [[ -z $v ]]; then
        ok "$1"
    else
        fail "$1: $(head -n 10 <<<"$v")"
    fi
}

# load TRACE: read the spans of one trace from $SPANS into A, keyed
# "SPAN_NAME|KEY" (the first span of each name): its attributes (JSON
# scalars as text), and @status, @message, @span_id, @parent_id, @parent
# (the parent's name); "@|names" holds the sorted span names and "@|count"
# their number. One jq run per trace. Look values up as
# "${A[SPAN_NAME|KEY]-(none)}".
declare -A A
load() {
    local n k v
    A=()
    while IFS=$'\t' read -r n k v; do
        A["$n|$k"]=$v
    done < <(jq -r --arg t "$1" '
        [.[] | select(.trace_id == $t)] as $tr
        | "@\tnames\t\($tr | map(.name) | sort | join(","))",
          "@\tcount\t\($tr | length)",
          ($tr | group_by(.name)[] | .[0] as $s
           | ([$tr[] | select(.span_id == $s.parent_span_id)][0].name
              // "(none)") as $pn
           | ([["@status", $s.status],
               ["@message", ($s.status_message // "(none)")],
               ["@span_id", $s.span_id],
               ["@parent_id", ($s.parent_span_id // "(none)")],
               ["@parent", $pn]]
              + ($s.attributes | to_entries
                 | map([.key, (.value | tostring)])))[]
           | "\($s.name)\t\(.[0])\t\(.[1] | gsub("[\t\n]"; " "))")' "$SPANS")
}

# common NAME METHOD PATH ROUTE: the root span's HTTP attributes (ROUTE
# "-": not checked).
common() {
    local n=$1
    load "${TRACE[$n]}"
    expect_eq "$n: root span id is the response's traceparent" \
        "${SPAN[$n]}" "${A[http.request|@span_id]-(none)}"
    expect_eq "$n: http.request.method" "$2" "${A[http.request|http.request.method]-(none)}"
    expect_eq "$n: url.path" "$3" "${A[http.request|url.path]-(none)}"
    if [[ $4 != - ]]; then
        expect_eq "$n: http.route" "$4" "${A[http.request|http.route]-(none)}"
    fi
    expect_eq "$n: http.response.status_code" "${CODE[$n]}" \
        "${A[http.request|http.response.status_code]-(none)}"
    expect_eq "$n: client.address" 127.0.0.1 "${A[http.request|client.address]-(none)}"
    expect_eq "$n: url.scheme" https "${A[http.request|url.scheme]-(none)}"
    expect_eq "$n: http.response.body.size" "${SIZE[$n]}" \
        "${A[http.request|http.response.body.size]-(none)}"
    expect_eq "$n: layerd.outcome" completed "${A[http.request|layerd.outcome]-(none)}"
}

# resolved NAME ID: the store.resolve span of a request for layer ID.
resolved() {
    local n=$1
    expect_eq "$n: store.resolve is a child of http.request" http.request \
        "${A[store.resolve|@parent]-(none)}"
    expect_eq "$n: store.resolve layer.id" "$2" "${A[store.resolve|layer.id]-(none)}"
    expect_eq "$n: store.resolve layer.path" "$D/$2/fs" \
        "${A[store.resolve|layer.path]-(none)}"
}

start_server
PARENTS="$D/app/fs, $D/base/fs"

# ---- a known sequence of requests ----
req list /layers
req one /layers/patch
req tar /layers/patch/export
req gz '/layers/patch/export?compression=gzip'
req zst /layers/patch/export -H 'Accept: application/vnd.oci.image.layer.v1.tar+zstd'
req ent /layers/patch/entries
req missing /layers/nope/export
req badid '/layers/bad%20id/export'
req noroute /no/such/thing
SEQ=(list one tar gz zst ent missing badid noroute)
want_codes="200 200 200 200 200 200 404 400 404"
got_codes=""
for n in "${SEQ[@]}"; do
    got_codes+="${got_codes:+ }${CODE[$n]}"
done
expect_eq "status codes of the sequence" "$want_codes" "$got_codes"
for n in "${SEQ[@]}"; do
    if [[ -z ${TRACE[$n]} ]] || ! wait_root "${TRACE[$n]}"; then
        fail "$n: no root span for trace '${TRACE[$n]}' in the log"
    fi
done

SPANS=$W/seq.json
spans "$T" >"$SPANS"
check_rules "sequence: ids, parents, nesting, durations, statuses" "$SPANS" '[]'
traces=""
for n in "${SEQ[@]}"; do
    traces+="${traces:+ }${TRACE[$n]}"
done
expect_eq "one distinct trace per request" "${#SEQ[@]}" \
    "$(tr ' ' '\n' <<<"$traces" | sort -u | grep -c .)"

common list GET /layers /layers
expect_eq "list: spans" http.request "${A[@|names]-}"

common one GET /layers/patch '/layers/{id}'
expect_eq "one: spans" http.request,store.resolve "${A[@|names]-}"
resolved one patch
expect_eq "one: store.resolve layer.parents (joined with \", \")" "$PARENTS" \
    "${A[store.resolve|layer.parents]-(none)}"
expect_eq "one: store.resolve layer.parents.count" 2 \
    "${A[store.resolve|layer.parents.count]-(none)}"
expect_eq "one: store.resolve layer.kind" diff \
    "${A[store.resolve|layer.kind]-(none)}"

# export_checks NAME FORMAT DECOMPRESS: an export's spans against what
# curl received.
export_checks() {
    local n=$1 body=$W/$1.b tarsum tarsize
    common "$n" GET /layers/patch/export '/layers/{id}/export'
    expect_eq "$n: spans" http.request,layer.export,layer.reader,store.resolve \
        "${A[@|names]-}"
    resolved "$n" patch
    expect_eq "$n: store.resolve layer.parents" "$PARENTS" \
        "${A[store.resolve|layer.parents]-(none)}"
    expect_eq "$n: layer.export is a child of http.request" http.request \
        "${A[layer.export|@parent]-(none)}"
    expect_eq "$n: layer.reader is a child of layer.export" layer.export \
        "${A[layer.reader|@parent]-(none)}"
    expect_eq "$n: layer.export layer.path" "$D/patch/fs" \
        "${A[layer.export|layer.path]-(none)}"
    expect_eq "$n: layer.export layer.parents" "$PARENTS" \
        "${A[layer.export|layer.parents]-(none)}"
    expect_eq "$n: layer.reader layer.path" "$D/patch/fs" \
        "${A[layer.reader|layer.path]-(none)}"
    expect_eq "$n: export.format" "$2" "${A[layer.export|export.format]-(none)}"
    expect_eq "$n: export.output_bytes = bytes received" "${SIZE[$n]}" \
        "${A[layer.export|export.output_bytes]-(none)}"
    tarsum=$(sha256_of - < <($3 <"$body"))
    tarsize=$($3 <"$body" | wc -c)
    expect_eq "$n: export.tar_bytes = size of the tar" "$tarsize" \
        "${A[layer.export|export.tar_bytes]-(none)}"
    expect_eq "$n: Docker-Content-Digest trailer = sha256 of the body" \
        "$(sha256_of "$body")" "$(hdr "$W/$n.h" docker-content-digest)"
    expect_eq "$n: export.digest = Docker-Content-Digest trailer" \
        "$(hdr "$W/$n.h" docker-content-digest)" \
        "${A[layer.export|export.digest]-(none)}"
    expect_eq "$n: X-Layer-Diff-Id trailer = sha256 of the tar" "$tarsum" \
        "$(hdr "$W/$n.h" x-layer-diff-id)"
    expect_eq "$n: export.diff_id = X-Layer-Diff-Id trailer" \
        "$(hdr "$W/$n.h" x-layer-diff-id)" \
        "${A[layer.export|export.diff_id]-(none)}"
    # The trailers come after the body, not among the headers.
    if tr -d '\r' <"$W/$n.h" | awk '/^$/ { blank = 1 } /^[Dd]ocker-[Cc]ontent-[Dd]igest:/ { exit !blank }'; then
        ok "$n: digests arrive as trailers"
    else
        fail "$n: Docker-Content-Digest sent before the body"
    fi
}
export_checks tar none cat
export_checks gz gzip 'gzip -dc'
export_checks zst zstd 'zstd -dcq'

common ent GET /layers/patch/entries '/layers/{id}/entries'
expect_eq "ent: spans" http.request,layer.entries,layer.reader,store.resolve "${A[@|names]-}"
resolved ent patch
expect_eq "ent: layer.entries is a child of http.request" http.request \
    "${A[layer.entries|@parent]-(none)}"
expect_eq "ent: layer.reader is a child of layer.entries" layer.entries \
    "${A[layer.reader|@parent]-(none)}"
expect_eq "ent: layer.entries.count = lines received" \
    "$(wc -l <"$W/ent.b" | tr -d ' ')" "${A[layer.entries|layer.entries.count]-(none)}"
expect_eq "ent: layer.entries.completed" true "${A[layer.entries|layer.entries.completed]-(none)}"
expect_eq "ent: layer.entries.format" ndjson "${A[layer.entries|layer.entries.format]-(none)}"

common missing GET /layers/nope/export '/layers/{id}/export'
expect_eq "missing: spans (no export started)" http.request,store.resolve "${A[@|names]-}"
expect_eq "missing: store.resolve status" error "${A[store.resolve|@status]-(none)}"
msg=${A[store.resolve|@message]-(none)}
if [[ $msg == "store.resolve failed: "*nope* && $msg != *" failed: "*" failed: "* ]]; then
    ok "missing: error wrapped once: $msg"
else
    fail "missing: store.resolve status_message: '$msg'"
fi
expect_eq "missing: error.type" LAYER_ENOTFOUND "${A[store.resolve|error.type]-(none)}"
expect_eq "missing: the problem's trace_id is the request's" "${TRACE[missing]}" \
    "$(jq -r .trace_id "$W/missing.b")"

common badid GET '/layers/bad%20id/export' '/layers/{id}/export'
expect_eq "badid: spans (nothing resolved)" http.request "${A[@|names]-}"
expect_eq "badid: the problem's trace_id is the request's" "${TRACE[badid]}" \
    "$(jq -r .trace_id "$W/badid.b")"

common noroute GET /no/such/thing -
# No route matched: OpenTelemetry leaves http.route out; "unmatched" (the
# metrics label) is tolerated.
route=${A[http.request|http.route]-(none)}
if [[ $route == "(none)" || $route == unmatched ]]; then
    ok "noroute: http.route $route"
else
    fail "noroute: http.route '$route' for a path no route matches"
fi
expect_eq "noroute: spans" http.request "${A[@|names]-}"

# ---- traceparent ----
REMOTE_T=0af7651916cd43dd8448eb211c80319c
REMOTE_P=b7ad6b7169203331
req remote /layers/patch/export -H "traceparent: 00-$REMOTE_T-$REMOTE_P-01"
expect_eq "remote: status" 200 "${CODE[remote]}"
expect_eq "remote: response traceparent carries the trace id" "$REMOTE_T" "${TRACE[remote]}"
if [[ -n ${SPAN[remote]} && ${SPAN[remote]} != "$REMOTE_P" ]]; then
    ok "remote: the response names the server's own span"
else
    fail "remote: response traceparent span id '${SPAN[remote]}'"
fi
# Malformed: each would otherwise name its own trace id (the uppercase one
# by its lowercase form), none of which may be adopted.
declare -A BAD=(
    [short]="00-1111111111111111111111111111111-$REMOTE_P-01"
    [long]="00-22222222222222222222222222222222a-$REMOTE_P-01"
    [upper]="00-3333333333333333333333333333333A-$REMOTE_P-01"
    [zerotrace]="00-00000000000000000000000000000000-$REMOTE_P-01"
    [zerospan]="00-44444444444444444444444444444444-0000000000000000-01"
    [vff]="ff-55555555555555555555555555555555-$REMOTE_P-01"
    [noflags]="00-66666666666666666666666666666666-$REMOTE_P"
)
for k in "${!BAD[@]}"; do
    req "bad_$k" /healthz -H "traceparent: ${BAD[$k]}"
done
wait_root "$REMOTE_T" || fail "remote: no root span"
for k in "${!BAD[@]}"; do
    wait_root "${TRACE[bad_$k]}" || fail "bad_$k: no root span"
done
SPANS=$W/tp.json
spans "$T" >"$SPANS"
check_rules "traceparent: ids, parents, nesting" "$SPANS" "[\"$REMOTE_P\"]"
load "$REMOTE_T"
expect_eq "remote: root span continues the trace" "$REMOTE_P" \
    "${A[http.request|@parent_id]-(none)}"
expect_eq "remote: whole export in the remote trace" \
    http.request,layer.export,layer.reader,store.resolve "${A[@|names]-}"
for k in "${!BAD[@]}"; do
    n=bad_$k
    t=${TRACE[$n]}
    load "$t"
    expect_eq "$n: status" 200 "${CODE[$n]}"
    adopted=$(cut -d- -f2 <<<"${BAD[$k]}" | tr 'A-F' 'a-f')
    if [[ -n $t && $t != "$adopted" && $t != "$REMOTE_T" ]]; then
        ok "$n: a new trace id"
    else
        fail "$n: trace id '$t' for traceparent '${BAD[$k]}'"
    fi
    expect_eq "$n: root has no parent" "(none)" \
        "${A[http.request|@parent_id]-(none)}"
done

# ---- client aborts ----
# abort NAME PATH: a client that hangs up after the first 64 KiB of the
# body. (A time limit, as with curl --max-time, may run out before the
# headers under ASan or a loaded machine; this hangs up mid-body however
# fast the server is.)
abort() {
    curl -sk --max-time 20 -D "$W/$1.h" "$URL$2" 2>/dev/null |
        head -c 65536 | wc -c >"$W/$1.n"
    SIZE[$1]=$(tr -d ' ' <"$W/$1.n")
    TRACE[$1]=$(hdr "$W/$1.h" traceparent | cut -d- -f2)
}
for ((i = 0; i < ABORTS; i++)); do
    abort "abx$i" /layers/big/export
    abort "abe$i" /layers/wide/entries
done
for ((i = 0; i < ABORTS; i++)); do
    for n in "abx$i" "abe$i"; do
        if [[ -z ${TRACE[$n]} ]] || ! wait_root "${TRACE[$n]}"; then
            fail "$n: no root span for trace '${TRACE[$n]}'"
        fi
    done
done
SPANS=$W/abort.json
spans "$T" >"$SPANS"
check_rules "aborts: ids, parents, nesting, statuses" "$SPANS" "[\"$REMOTE_P\"]"
for ((i = 0; i < ABORTS; i++)); do
    n=abx$i
    load "${TRACE[$n]}"
    expect_eq "$n: outcome" client_aborted "${A[http.request|layerd.outcome]-(none)}"
    expect_eq "$n: spans (the reader's ended too)" \
        http.request,layer.export,layer.reader,store.resolve "${A[@|names]-}"
    expect_eq "$n: export.outcome" aborted "${A[layer.export|export.outcome]-(none)}"
    sent=${A[http.request|http.response.body.size]-(none)}
    if [[ $sent =~ ^[0-9]+$ ]] && ((sent >= SIZE[$n] && sent < (16 << 20))); then
        ok "$n: body size $sent: at least what curl got (${SIZE[$n]}), short of the layer"
    else
        fail "$n: http.response.body.size '$sent', curl got ${SIZE[$n]}"
    fi
    n=abe$i
    load "${TRACE[$n]}"
    expect_eq "$n: outcome" client_aborted "${A[http.request|layerd.outcome]-(none)}"
    expect_eq "$n: spans (the reader's ended too)" \
        http.request,layer.entries,layer.reader,store.resolve "${A[@|names]-}"
    expect_eq "$n: layer.entries.completed" false \
        "${A[layer.entries|layer.entries.completed]-(none)}"
    expect_eq "$n: layer.entries.outcome" client_aborted \
        "${A[layer.entries|layer.entries.outcome]-(none)}"
done

# ---- concurrency ----
before=$(wc -l <"$T")
for ((i = 0; i < CONCURRENT; i++)); do
    case $((i % 4)) in
    0) p=/layers/patch/export ;;
    1) p='/layers/base/export?compression=gzip' ;;
    2) p=/layers/snap-top/entries ;;
    3) p=/layers/app ;;
    esac
    curl -sS -k --max-time 30 -D "$W/c$i.h" -o "$W/c$i.b" \
        -w '%{http_code}\n' "$URL$p" >"$W/c$i.code" 2>"$W/c$i.err" &
done
wait_fail=0
for job in $(jobs -p); do
    [[ $job == "$PID" ]] && continue
    wait "$job" || wait_fail=$((wait_fail + 1))
done
expect_eq "concurrent: curls that failed" 0 "$wait_fail"
expect_eq "concurrent: statuses" "$CONCURRENT x 200" \
    "$(cat "$W"/c*.code | sort | uniq -c | awk '{ printf "%s x %s", $1, $2 }')"
# The trace of each response, and the spans it should have: 2 for a
# layer lookup (i % 4 == 3), 4 for exports and entries.
want_lines=0
cwant=()
while read -r i t; do
    cwant+=("$t $((i % 4 == 3 ? 2 : 4))")
    ((want_lines += i % 4 == 3 ? 2 : 4))
done < <(grep -i -H '^traceparent:' "$W"/c*.h |
    sed -E 's|.*/c([0-9]+)\.h:[^:]*: *00-([0-9a-f]+)-.*|\1 \2|')
expect_eq "concurrent: responses with a traceparent" "$CONCURRENT" "${#cwant[@]}"
for ((i = 0; i < 400; i++)); do
    (($(wc -l <"$T") >= before + want_lines)) && break
    sleep 0.05
done
sleep 0.2
new=$W/concurrent.log
tail -n +$((before + 1)) "$T" >"$new"
expect_eq "concurrent: span lines written" "$want_lines" "$(wc -l <"$new" | tr -d ' ')"
expect_eq "concurrent: lines that are not one JSON object" 0 \
    "$(jq -R -n '[inputs | try (fromjson | type) catch "bad"]
                 | map(select(. != "object")) | length' "$new")"
expect_eq "concurrent: the log ends with a newline" "" "$(tail -c 1 "$T")"
SPANS=$W/concurrent.json
spans "$new" >"$SPANS"
check_rules "concurrent: ids, parents, nesting, statuses" "$SPANS" '[]'
expect_eq "concurrent: distinct traces" "$CONCURRENT" \
    "$(jq '[.[].trace_id] | unique | length' "$SPANS")"
expect_eq "concurrent: every response's trace, whole, in the log" \
    "$(printf '%s\n' "${cwant[@]}" | sort)" \
    "$(jq -r 'group_by(.trace_id)[] | "\(.[0].trace_id) \(length)"' "$SPANS" | sort)"

# ---- SIGHUP reopens the log ----
sleep 0.2
old_lines=$(wc -l <"$T")
mv "$T" "$T.1"
kill -HUP "$PID"
for ((i = 0; i < 200; i++)); do
    [[ -e $T ]] && break
    sleep 0.05
done
check "SIGHUP: a new log file is created" test -e "$T"
req hup1 /healthz
req hup2 /layers/patch
wait_root "${TRACE[hup1]}" || fail "hup1: no root span in the new log"
wait_root "${TRACE[hup2]}" || fail "hup2: no root span in the new log"
expect_eq "SIGHUP: the new log holds only the new requests' spans" \
    "$(printf '%s\n' "${TRACE[hup1]}" "${TRACE[hup2]}" "${TRACE[hup2]}" | sort)" \
    "$(jq -r .trace_id "$T" | sort)"
expect_eq "SIGHUP: the moved log keeps its spans" "$old_lines" "$(wc -l <"$T.1" | tr -d ' ')"
if grep -q -e "${TRACE[hup1]}" -e "${TRACE[hup2]}" "$T.1"; then
    fail "SIGHUP: new spans went to the moved log"
else
    ok "SIGHUP: no new span in the moved log"
fi
check "server still running" kill -0 "$PID"

# A clean stop.
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
expect_eq "exit status after SIGTERM" 0 "$rc"
if grep -qi -e 'AddressSanitizer' -e 'runtime error' "$IT_TMP/server.log"; then
    fail "sanitizer report: $(grep -m 3 -i -e 'Sanitizer' -e 'runtime error' "$IT_TMP/server.log")"
fi
it_done
