#!/usr/bin/env bash
# layerd serve, GET /metrics, checked against a real server with curl and
# the Prometheus Python client's parser:
#
# - the text parses (prometheus_client.parser), with the documented
#   Content-Type, a HELP and TYPE for every family, the documented types,
#   no duplicate series, cumulative histogram buckets;
# - counters move by exactly what the requests did: scrape, make a known
#   set of requests (lists, plain/gzip/zstd exports, HEAD, 404, 400, 405,
#   no route, entries, health), scrape again, and every series' delta is
#   the expected one: requests by (route, code), response bytes by route
#   (what curl received), exports by (format, result), export bytes by
#   format, the duration histogram's count; everything else stays put;
# - clients that hang up mid-export and mid-entries are counted as client
#   aborts and failed exports, and the active gauges go back to 0;
# - layerd_build_info is 1 and carries the versions (layerd's own equal to
#   `layerd version`).
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 under
# ASan/UBSan (fewer aborts; the same checks).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init metrics 60
need curl jq

PY=/usr/bin/python3
if ! "$PY" -c 'import prometheus_client.parser' 2>/dev/null; then
    it_log "/usr/bin/python3 cannot import prometheus_client (Debian package python3-prometheus-client)"
    exit 1
fi
ABORTS=2
if [[ ${LAYERD_SANITIZED:-0} == 1 ]]; then
    ABORTS=1
fi

D=$IT_TMP/store
W=$IT_TMP/w
mkdir -p "$W"
mkdemo "$D"
# Layers bigger than what loopback's socket buffers hold (a few MiB), so
# a client hanging up after 64 KiB leaves the server mid-stream: a 16 MiB
# export and ~12 MB of entries.
it_big_layer "$D" 16
it_wide_layer "$D"

trap it_cleanup EXIT

SERVER_LOG=$IT_TMP/server.log
: >"$SERVER_LOG"
"$LAYERD" serve --store "dir:$D" --listen 127.0.0.1:0 --trace none --no-cache \
    --max-exports 64 2>"$SERVER_LOG" &
SERVER_PID=$!
it_wait_listening
PID=$SERVER_PID

# Parse a scrape into JSON: {"samples": {"name{k=\"v\",...}": value},
# "types": {family: type}, "help": {family: text}}, labels sorted by name.
# Fails on text the parser refuses and on a duplicate series.
# shellcheck disable=SC2016
PARSE='
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = {"samples": {}, "types": {}, "help": {}}
for fam in text_string_to_metric_families(text):
    if fam.name in out["types"]:
        sys.exit("family %s appears twice" % fam.name)
    out["types"][fam.name] = fam.type
    out["help"][fam.name] = fam.documentation
    for s in fam.samples:
        key = s.name + "{" + ",".join(
            "%s=\"%s\"" % (k, s.labels[k]) for k in sorted(s.labels)) + "}"
        if key in out["samples"]:
            sys.exit("duplicate series " + key)
        out["samples"][key] = s.value
json.dump(out, sys.stdout)
'

# Compare two parsed scrapes against expectations, one per line of the
# expectation file: "KEY<TAB>=N" (the delta is exactly N), "KEY<TAB>>=N",
# "KEY<TAB>>N", or "~REGEX" (series whose delta is not checked). Every
# other series must not move. A series missing from a scrape counts as 0.
# Prints the mismatches; exits 1 if any.
# shellcheck disable=SC2016
COMPARE='
import json, re, sys
a = json.load(open(sys.argv[1]))["samples"]
b = json.load(open(sys.argv[2]))["samples"]
want, skip = {}, []
for line in open(sys.argv[3], encoding="utf-8"):
    line = line.rstrip("\n")
    if not line:
        continue
    if line.startswith("~"):
        skip.append(re.compile(line[1:]))
        continue
    key, op = line.split("\t")
    want[key] = op
bad = []
for key in sorted(set(a) | set(b) | set(want)):
    d = b.get(key, 0.0) - a.get(key, 0.0)
    op = want.get(key)
    if op is None:
        if any(r.search(key) for r in skip):
            continue
        op = "=0"
    for sym in (">=", ">", "="):
        if op.startswith(sym):
            n = float(op[len(sym):])
            good = {">=": d >= n, ">": d > n, "=": d == n}[sym]
            break
    if not good:
        bad.append("%s moved by %g, want %s (before %g, after %g)"
                   % (key, d, op, a.get(key, 0.0), b.get(key, 0.0)))
print("\n".join(bad))
sys.exit(1 if bad else 0)
'

# The body size of every scrape, in order; a scrape is counted by the
# server once it is done, so the scrapes from the BEFORE one (index
# BEFORE_I) up to the latest one, excluded, are in the latest's counters.
SIZES=()
# scrape NAME: GET /metrics into $W/NAME.txt, parsed into $W/NAME.json.
scrape() {
    local w
    w=$(curl -sS -k --max-time 20 -D "$W/$1.h" -o "$W/$1.txt" \
        -w '%{http_code} %{size_download}' "$URL/metrics") || return 1
    SIZES+=("${w#* }")
    [[ ${w% *} == 200 ]] || return 1
    "$PY" -c "$PARSE" "$W/$1.txt" >"$W/$1.json" 2>"$W/$1.perr"
}

# Requests, keyed by route and code, with the body bytes curl received.
declare -A N BYTES
# r ROUTE PATH [CURL ARGS...]: one request, counted under ROUTE and the
# status it got.
r() {
    local route=$1 path=$2 w code size
    shift 2
    w=$(curl -sS -k --max-time 20 -o "$W/body" -w '%{http_code} %{size_download}' \
        "$@" "$URL$path" 2>>"$W/curl.err")
    code=${w% *}
    size=${w#* }
    N["$route|$code"]=$((${N["$route|$code"]:-0} + 1))
    BYTES[$route]=$((${BYTES[$route]:-0} + size))
    LAST_SIZE=$size
    LAST_CODE=$code
}

# write_expect FILE: the expectations: the requests in N and BYTES (the
# byte counts compared with BYTES_OP), the scrapes since BEFORE_I, and
# the lines in EXTRA.
write_expect() {
    local k i n=0 bytes=0
    for ((i = BEFORE_I; i < ${#SIZES[@]} - 1; i++)); do
        n=$((n + 1))
        bytes=$((bytes + SIZES[i]))
    done
    {
        for k in "${!N[@]}"; do
            printf 'layerd_http_requests_total{code="%s",route="%s"}\t=%s\n' \
                "${k#*|}" "${k%|*}" "${N[$k]}"
        done
        for k in "${!BYTES[@]}"; do
            printf 'layerd_http_response_bytes_total{route="%s"}\t%s%s\n' \
                "$k" "${BYTES_OP:-=}" "${BYTES[$k]}"
        done
        printf 'layerd_http_requests_total{code="200",route="/metrics"}\t=%s\n' \
            "$n"
        printf 'layerd_http_response_bytes_total{route="/metrics"}\t=%s\n' \
            "$bytes"
        printf '%s\n' "$EXTRA"
    } >"$1"
}

# settle NAME: scrape until the deltas from $BEFORE match (the counters
# move when a response is done, which may be a moment after curl has it
# all), at most 5 s; then check them.
settle() {
    local i=0 name
    while :; do
        name=$1.$i
        if ! scrape "$name"; then
            fail "$1: scrape failed: $(cat "$W/$name.perr" 2>/dev/null)"
            AFTER=$name
            return
        fi
        write_expect "$W/$name.want"
        if "$PY" -c "$COMPARE" "$W/$BEFORE.json" "$W/$name.json" \
            "$W/$name.want" >"$W/$name.diff"; then
            ok "$1: every series moved by exactly what the requests did"
            AFTER=$name
            AFTER_I=$((${#SIZES[@]} - 1))
            return
        fi
        if ((++i >= 50)); then
            fail "$1: $(head -n 15 "$W/$name.diff")"
            AFTER=$name
            AFTER_I=$((${#SIZES[@]} - 1))
            return
        fi
        sleep 0.1
    done
}

# val KEY SCRAPE: a sample's value in a parsed scrape.
val() {
    jq -r --arg k "$1" '.samples[$k] // "absent"' "$W/$2.json"
}

# ---- the text itself ----
if scrape s0; then
    ok "first scrape parses"
else
    fail "first scrape: $(cat "$W/s0.perr")"
fi
expect_eq "Content-Type" "text/plain; version=0.0.4; charset=utf-8" \
    "$(tr -d '\r' <"$W/s0.h" | sed -n 's/^content-type: //Ip')"
expect_eq "families and their types" \
    "layerd_auth_failures=counter layerd_build_info=gauge layerd_entry_streams_active=gauge layerd_export_bytes=counter layerd_export_duration_seconds=histogram layerd_exports=counter layerd_exports_active=gauge layerd_http_client_aborts=counter layerd_http_connections=gauge layerd_http_dropped=counter layerd_http_requests=counter layerd_http_response_bytes=counter" \
    "$(jq -r '.types | to_entries | map("\(.key)=\(.value)") | sort | join(" ")' "$W/s0.json")"
expect_eq "families without HELP text" 0 \
    "$(jq '[.help[] | select(. == "")] | length' "$W/s0.json")"
check "text ends with a newline" test -z "$(tail -c 1 "$W/s0.txt")"
expect_eq "exports_active at start" 0 "$(val layerd_exports_active{} s0)"
expect_eq "entry_streams_active at start" 0 "$(val layerd_entry_streams_active{} s0)"

bi=$(jq -r '.samples | to_entries[] | select(.key | startswith("layerd_build_info{")) | "\(.key) \(.value)"' "$W/s0.json")
expect_eq "one layerd_build_info series" 1 "$(grep -c . <<<"$bi")"
expect_eq "layerd_build_info value" 1 "$(jq -n "${bi##* }")"
ver=$("$LAYERD" version | awk '{ print $NF }')
label() { sed -n "s/.*[{,]$1=\"\([^\"]*\)\".*/\1/p" <<<"$bi"; }
expect_eq "build_info version = layerd version" "$ver" "$(label version)"
for lib in microhttpd openssl zstd; do
    v=$(label "$lib")
    if [[ $v =~ ^[0-9]+\.[0-9]+ ]]; then
        ok "build_info $lib=\"$v\""
    else
        fail "build_info $lib: '$v' is not a version"
    fi
done
# ISA-L: its version, or "none" in a build without it (api/metrics.h).
v=$(label isal)
if [[ $v =~ ^[0-9]+\.[0-9]+ || $v == none ]]; then
    ok "build_info isal=\"$v\""
else
    fail "build_info isal: '$v' is neither a version nor \"none\""
fi

# ---- exact deltas ----
BEFORE=s0
BEFORE_I=0
r /layers /layers
r /layers '/layers?limit=2'
r '/layers/{id}' /layers/patch
r '/layers/{id}' /layers/nope
r '/layers/{id}/export' /layers/patch/export
none1=$LAST_SIZE
r '/layers/{id}/export' '/layers/patch/export?compression=none'
none2=$LAST_SIZE
r '/layers/{id}/export' '/layers/patch/export?compression=gzip'
gz=$LAST_SIZE
r '/layers/{id}/export' /layers/base/export \
    -H 'Accept: application/vnd.oci.image.layer.v1.tar+zstd'
zst=$LAST_SIZE
r '/layers/{id}/export' /layers/patch/export -I
expect_eq "HEAD export: status" 200 "$LAST_CODE"
r '/layers/{id}/export' /layers/nope/export
expect_eq "unknown layer: status" 404 "$LAST_CODE"
r '/layers/{id}/export' '/layers/bad%20id/export'
expect_eq "malformed id: status" 400 "$LAST_CODE"
r '/layers/{id}/export' '/layers/patch/export?compression=lz4'
expect_eq "unknown compression: status" 400 "$LAST_CODE"
r unmatched /no/such/thing
expect_eq "no route: status" 404 "$LAST_CODE"
r '/layers/{id}/entries' /layers/patch/entries
r '/layers/{id}/entries' /layers/snap-top/entries -H 'Accept: application/json'
for _ in 1 2 3; do
    r /healthz /healthz
done
r /healthz /healthz -X POST
expect_eq "POST: status" 405 "$LAST_CODE"
EXTRA=$(printf '%s\n' \
    "layerd_exports_total{format=\"none\",result=\"ok\"}	=2" \
    "layerd_exports_total{format=\"gzip\",result=\"ok\"}	=1" \
    "layerd_exports_total{format=\"zstd\",result=\"ok\"}	=1" \
    "layerd_export_bytes_total{format=\"none\"}	=$((none1 + none2))" \
    "layerd_export_bytes_total{format=\"gzip\"}	=$gz" \
    "layerd_export_bytes_total{format=\"zstd\"}	=$zst" \
    "layerd_export_duration_seconds_count{}	=4" \
    "layerd_export_duration_seconds_bucket{le=\"+Inf\"}	=4" \
    "layerd_export_duration_seconds_sum{}	>0" \
    '~^layerd_export_duration_seconds_bucket')
settle known
expect_eq "exports_active after" 0 "$(val layerd_exports_active{} "$AFTER")"
expect_eq "entry_streams_active after" 0 "$(val layerd_entry_streams_active{} "$AFTER")"
# shellcheck disable=SC2317 # called through check
cumulative() {
    jq -e '
    [.samples | to_entries[]
     | select(.key | startswith("layerd_export_duration_seconds_bucket{"))
     | {le: (.key | capture("le=\"(?<v>[^\"]*)\"").v
             | if . == "+Inf" then infinite else tonumber end),
        n: .value}]
    | sort_by(.le) | map(.n) as $n
    | all(range(1; $n | length); $n[.] >= $n[. - 1])' "$W/$1.json" >/dev/null
}
check "histogram buckets are cumulative" cumulative "$AFTER"

# ---- aborts ----
BEFORE=$AFTER
BEFORE_I=$AFTER_I
N=()
BYTES=()
got_x=0
got_e=0
# abort PATH: a client that hangs up after the first 64 KiB of the body
# (a time limit could run out before the headers under ASan); prints
# the bytes it got.
abort() {
    curl -sk --max-time 20 "$URL$1" 2>/dev/null | head -c 65536 | wc -c
}
for ((i = 0; i < ABORTS; i++)); do
    got_x=$((got_x + $(abort /layers/big/export)))
    got_e=$((got_e + $(abort /layers/wide/entries)))
done
# Both are valid requests, answered 200 before the client leaves.
N["/layers/{id}/export|200"]=$ABORTS
N["/layers/{id}/entries|200"]=$ABORTS
# What the server handed over is at least what curl got.
BYTES["/layers/{id}/export"]=$got_x
BYTES["/layers/{id}/entries"]=$got_e
BYTES_OP='>='
EXTRA=$(printf '%s\n' \
    "layerd_http_client_aborts_total{route=\"/layers/{id}/export\"}	=$ABORTS" \
    "layerd_http_client_aborts_total{route=\"/layers/{id}/entries\"}	=$ABORTS" \
    "layerd_exports_total{format=\"none\",result=\"error\"}	=$ABORTS" \
    "layerd_export_bytes_total{format=\"none\"}	>=$got_x" \
    "layerd_export_duration_seconds_count{}	=$ABORTS" \
    "layerd_export_duration_seconds_bucket{le=\"+Inf\"}	=$ABORTS" \
    "layerd_export_duration_seconds_sum{}	>0" \
    '~^layerd_export_duration_seconds_bucket')
settle aborts
expect_eq "exports_active after aborts" 0 "$(val layerd_exports_active{} "$AFTER")"
expect_eq "entry_streams_active after aborts" 0 \
    "$(val layerd_entry_streams_active{} "$AFTER")"

check "server still running" kill -0 "$PID"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
expect_eq "exit status after SIGTERM" 0 "$rc"
if grep -qi -e 'AddressSanitizer' -e 'runtime error' "$IT_TMP/server.log"; then
    fail "sanitizer report: $(grep -m 3 -i -e 'Sanitizer' -e 'runtime error' "$IT_TMP/server.log")"
fi
it_done
