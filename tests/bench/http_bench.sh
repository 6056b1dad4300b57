#!/usr/bin/env bash
# http_bench.sh LAYERD CORPUS OUT_MD: the HTTPS benchmark of `layerd serve`,
# appended to OUT_MD as a Markdown section. Progress goes to stderr.
#
# CORPUS (a directory tree) is served as a layer of a temporary `dir:`
# store (DIR/corpus/layer.json + DIR/corpus/fs, a hard-linked copy of
# CORPUS: the store wants fs/ to be a real directory). Side by side, in
# one run:
#
#   1. HTTPS exports, `curl -k -o /dev/null` of /layers/corpus/export
#      (one after the other, at least 256 MiB per run), against nginx
#      (Debian's, started here with its own configuration on loopback,
#      HTTPS with a self-signed certificate, sendfile on) serving the
#      same tar, made once by `layerd export`, as a static file.
#      Throughput in MiB/s, target >= 0.8x nginx; and the server's CPU
#      time per GiB (utime + stime), steadier than the throughput on a
#      busy machine. The servers run as configured by default, so after
#      the untimed warm-up their exports are served from the blob cache;
#      a third server with --no-cache, measured alongside, runs every
#      export (the cold case).
#   2. 32 concurrent HTTPS exports (curl in the background, then wait):
#      total MiB/s and the server's peak RSS (VmHWM, reset through
#      /proc/PID/clear_refs before each run); nginx's throughput for
#      reference.
#   3. /layers/corpus/entries (NDJSON over HTTPS) in entries/s against
#      `find DIR -printf '%p %s %m %U %G %T@\n' > /dev/null`; target >=
#      0.5x find.
#   4. Tracing: export and entries throughput (and server CPU) of a
#      server with --trace FILE against one with --trace none; target: at
#      most 3% slower.
#   5. Access control: the same with an access policy, clients sending a
#      bearer token, and with client certificates (--client-ca, a CA made
#      here; curl presents a certificate, verified once per connection),
#      against the server without a policy (all three --trace none);
#      target: each at most 2% slower.
#   6. Limits on clients: the same of the --trace none server, which runs with the
#      default limits on clients (64 KiB connection pools, header deadline
#      and send-timeout watchdog, stream slots, export memory budget),
#      against one with the limits loosened (--max-header-bytes 1048576,
#      so 2 MiB pools as the 1 MiB ones the server had before, the caps at
#      or near the top of their ranges: --max-streams 256, which an
#      open-file limit of 20,000 still covers); target: at most 2% slower.
#      With HTTP_BENCH_BEFORE=BINARY (a layerd built without the limits)
#      that binary is measured as a third side of the rows.
#
# Both TLS sides use TLS 1.3 with TLS_AES_256_GCM_SHA384 (curl is told to
# offer only that suite) over 127.0.0.1. The page cache is warm: every
# command runs once untimed first. The timed runs of the sides of a pair
# alternate, so drift hits both alike; medians are reported.
#
#   BENCH_RUNS            timed runs per measurement (default 5)
#   HTTP_BENCH_CLIENTS    clients of the concurrent export (default 32)
#   HTTP_BENCH_CONC_RUNS  runs of the concurrent export (default: BENCH_RUNS,
#                         at most 3: at 1 GiB each run moves 32 GiB)
#   HTTP_BENCH_BEFORE     optional: a layerd binary without the limits on
#                         clients, measured alongside (section 5)
set -euo pipefail

usage() {
    echo "usage: http_bench.sh LAYERD CORPUS OUT_MD" >&2
    exit 2
}
[[ $# -eq 3 ]] || usage
LAYERD=$1
CORPUS=$2
OUT=$3
[[ -x $LAYERD && -d $CORPUS ]] || {
    echo "http_bench.sh: need an executable LAYERD and a CORPUS directory" >&2
    exit 2
}
LAYERD=$(cd "$(dirname "$LAYERD")" && pwd)/$(basename "$LAYERD")
CORPUS=$(cd "$CORPUS" && pwd)
RUNS=${BENCH_RUNS:-5}
CLIENTS=${HTTP_BENCH_CLIENTS:-32}
CONC_RUNS=${HTTP_BENCH_CONC_RUNS:-$((RUNS < 3 ? RUNS : 3))}
for v in RUNS CLIENTS CONC_RUNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || {
        echo "http_bench.sh: $v must be a positive integer, not '${!v}'" >&2
        exit 2
    }
done
for t in curl nginx openssl find; do
    command -v "$t" >/dev/null || {
        echo "http_bench.sh: $t is missing (deploy/deps.sh --bench)" >&2
        exit 2
    }
done
CIPHER=TLS_AES_256_GCM_SHA384

log() { echo "http_bench: $*" >&2; }

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/layerd-http-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the store, the tar, nginx ----
STORE=$TMPD/store
mkdir -p "$STORE/corpus"
echo '{"kind": "diff"}' >"$STORE/corpus/layer.json"
if ! cp -al "$CORPUS" "$STORE/corpus/fs" 2>/dev/null; then
    log "cannot hard-link the corpus into $TMPD (another file system?): copying it"
    rm -rf "$STORE/corpus/fs"
    cp -a "$CORPUS" "$STORE/corpus/fs"
fi
mkdir -p "$TMPD/www"
"$LAYERD" export --store "dir:$STORE" corpus -o "$TMPD/www/corpus.tar" \
    2>/dev/null
# nginx's workers drop root: let them read the tar.
chmod 0755 "$TMPD" "$TMPD/www"
chmod 0644 "$TMPD/www/corpus.tar"
TAR_BYTES=$(stat -c %s "$TMPD/www/corpus.tar")
FILES=$(find "$CORPUS" -type f | wc -l)

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMPD/nginx.key" -out "$TMPD/nginx.crt" -days 1 \
    -subj /CN=localhost 2>/dev/null
mkdir -p "$TMPD/nginx/logs" "$TMPD/nginx/tmp"
# start_nginx: nginx on a free port (a few tries: the port may be taken
# between the probe and the bind); sets NGINX_PORT and NGINX_PID.
start_nginx() {
    local try pid
    for try in 1 2 3 4 5; do
        NGINX_PORT=$(free_port)
cat >"$TMPD/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
pid $TMPD/nginx/nginx.pid;
error_log $TMPD/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $TMPD/nginx/tmp/body;
    proxy_temp_path $TMPD/nginx/tmp/proxy;
    fastcgi_temp_path $TMPD/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMPD/nginx/tmp/uwsgi;
    scgi_temp_path $TMPD/nginx/tmp/scgi;
    types { application/x-tar tar; }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $TMPD/nginx.crt;
        ssl_certificate_key $TMPD/nginx.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $TMPD/www;
    }
}
EOF
        nginx -p "$TMPD/nginx" -c "$TMPD/nginx/nginx.conf" -g 'daemon off;' \
            2>"$TMPD/nginx/stderr" &
        pid=$!
        for _ in $(seq 100); do
            if curl -sk --max-time 2 -o /dev/null \
                "https://127.0.0.1:$NGINX_PORT/corpus.tar"; then
                PIDS+=("$pid")
                NGINX_PID=$pid
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        log "nginx try $try failed: $(tail -n 2 "$TMPD/nginx/stderr" "$TMPD/nginx/logs/error.log" 2>/dev/null)"
    done
    return 1
}
start_nginx || {
    log "cannot start nginx"
    exit 1
}
NGINX_URL=https://127.0.0.1:$NGINX_PORT/corpus.tar

# start_layerd NAME TRACE [ARG...]: run layerd serve; sets NAME_PID and
# NAME_URL.
start_layerd() {
    local name=$1 trace=$2 port='' pid bin=${START_BIN:-$LAYERD}
    local caps=(--max-per-client $((CLIENTS * 2 + 8)) --max-streams $((CLIENTS * 2 + 8)))
    shift 2
    # A binary without the limits on clients knows none of their flags.
    [[ $bin == "$LAYERD" ]] || caps=()
    : >"$TMPD/$name.log" # read below maybe before the server's `2>` made it
    "$bin" serve --store "dir:$STORE" --listen 127.0.0.1:0 \
        --trace "$trace" --max-exports $((CLIENTS * 2)) "${caps[@]}" "$@" \
        2>"$TMPD/$name.log" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 400); do
        port=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
            "$TMPD/$name.log")
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || {
            log "layerd ($name) exited at start-up: $(tail -n 3 "$TMPD/$name.log")"
            exit 1
        }
        sleep 0.05
    done
    [[ -n $port ]] || {
        log "layerd ($name) did not report its port"
        exit 1
    }
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_URL" '%s' "https://127.0.0.1:$port"
}
# The access policy of the TOKEN and MTLS servers: a token, and client
# certificates of a CA made here (CN=bench-client).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMPD/ca.key" -out "$TMPD/ca.crt" -days 1 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMPD/client.key" -out "$TMPD/client.csr" -subj /CN=bench-client \
    2>/dev/null
printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature\n' \
    >"$TMPD/client.ext"
openssl x509 -req -in "$TMPD/client.csr" -CA "$TMPD/ca.crt" \
    -CAkey "$TMPD/ca.key" -CAcreateserial -days 1 -extfile "$TMPD/client.ext" \
    -out "$TMPD/client.crt" 2>/dev/null
TOKEN_OUT=$("$LAYERD" token new)
TOKEN=$(sed -n 's/^token: //p' <<<"$TOKEN_OUT")
cat >"$TMPD/policy.json" <<JSON
{"principals": [
  {"name": "bench-token", "tokens_sha256": ["$(sed -n 's/^tokens_sha256: //p' <<<"$TOKEN_OUT")"],
   "grants": [{"layers": ["*"], "ops": ["list", "read"]}]},
  {"name": "bench-mtls", "certificates": [{"subject_cn": "bench-client"}],
   "grants": [{"layers": ["*"], "ops": ["list", "read"]}]}]}
JSON
start_layerd ON "$TMPD/trace.log"
start_layerd OFF none
start_layerd COLD none --no-cache
start_layerd TOKEN none --auth "$TMPD/policy.json"
start_layerd MTLS none --auth "$TMPD/policy.json" --client-ca "$TMPD/ca.crt"
# The limits on clients loosened (--max-streams as far as an open-file
# limit of 20,000 allows).
start_layerd LOOSE none --max-header-bytes 1048576 --max-per-client 65536 \
    --header-timeout 3600 --send-timeout 86400 --max-streams 256 \
    --max-level 19 --max-export-memory 1048576
BEFORE=${HTTP_BENCH_BEFORE:-}
if [[ -n $BEFORE ]]; then
    [[ -x $BEFORE ]] || {
        log "HTTP_BENCH_BEFORE=$BEFORE is not executable"
        exit 2
    }
    START_BIN=$BEFORE start_layerd BEFORE none
fi
# shellcheck disable=SC2154 # set by start_layerd
EXPORT_ON=$ON_URL/layers/corpus/export
# shellcheck disable=SC2154
EXPORT_OFF=$OFF_URL/layers/corpus/export
# shellcheck disable=SC2154
EXPORT_COLD=$COLD_URL/layers/corpus/export
ENTRIES_ON=$ON_URL/layers/corpus/entries
ENTRIES_OFF=$OFF_URL/layers/corpus/entries
# shellcheck disable=SC2154
EXPORT_TOKEN=$TOKEN_URL/layers/corpus/export
# shellcheck disable=SC2154
EXPORT_MTLS=$MTLS_URL/layers/corpus/export
ENTRIES_TOKEN=$TOKEN_URL/layers/corpus/entries
ENTRIES_MTLS=$MTLS_URL/layers/corpus/entries
EXPORT_LOOSE=$LOOSE_URL/layers/corpus/export
ENTRIES_LOOSE=$LOOSE_URL/layers/corpus/entries
if [[ -n $BEFORE ]]; then
    # shellcheck disable=SC2154
    EXPORT_BEFORE=$BEFORE_URL/layers/corpus/export
    ENTRIES_BEFORE=$BEFORE_URL/layers/corpus/entries
fi

C=(curl -sS -k --tlsv1.3 --tls13-ciphers "$CIPHER" --max-time 3600)
# The credentials of the access-control runs.
AS_TOKEN=(-H "Authorization: Bearer $TOKEN")
AS_MTLS=(--cert "$TMPD/client.crt" --key "$TMPD/client.key")
# with CURL_ARGS... -- COMMAND...: run COMMAND with the extra curl
# arguments (export_run and entries_run add CURL_EXTRA to theirs).
CURL_EXTRA=()
with() {
    local args=()
    while [[ $1 != -- ]]; do
        args+=("$1")
        shift
    done
    shift
    CURL_EXTRA=("${args[@]}")
    "$@"
    CURL_EXTRA=()
}

# ---- measurements ----
TICK=$(getconf CLK_TCK)
# nginx's master and workers.
mapfile -t NGINX_PIDS < <(pgrep -P "$NGINX_PID")
NGINX_PIDS=("$NGINX_PID" "${NGINX_PIDS[@]}")
# cpu PID...: the CPU time (user + system) of the processes, in ticks.
cpu() {
    local p t=0 f
    for p in "$@"; do
        read -r -a f <"/proc/$p/stat"
        # Fields 14 and 15 (utime, stime); field 2 has no spaces here.
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}

# Downloads per export measurement: at least 3 GiB, so that the CPU
# times (in clock ticks, 10 ms) are fine enough and one download slowed
# by other work on the machine moves the figure less; 3..20.
XREPS=$(((3 * 1073741824 + TAR_BYTES - 1) / TAR_BYTES))
((XREPS < 3)) && XREPS=3
((XREPS > 20)) && XREPS=20

# export_run URL FILE PID...: XREPS downloads to /dev/null, one after the
# other; appends "MiB/s server-CPU-seconds-per-GiB" to FILE (throughput
# over the downloads' own times; the CPU of the PIDs over the run).
export_run() {
    local url=$1 file=$2 args=() i c0 c1
    shift 2
    for ((i = 0; i < XREPS; i++)); do
        args+=(-o /dev/null "$url")
    done
    c0=$(cpu "$@")
    "${C[@]}" "${CURL_EXTRA[@]}" \
        -w '%{http_code} %{size_download} %{time_total}\n' "${args[@]}" \
        >"$TMPD/export.w"
    c1=$(cpu "$@")
    awk -v want="$TAR_BYTES" -v reps="$XREPS" -v c=$((c1 - c0)) -v hz="$TICK" '
        $1 != 200 || $2 != want { bad = 1 }
        { b += $2; t += $3 }
        END {
            if (bad || NR != reps) {
                print "export: a download failed or came out short" > "/dev/stderr"
                exit 1
            }
            printf "%.3f %.3f\n", b / t / 1048576, c / hz / (b / 1073741824)
        }' "$TMPD/export.w" >>"$file"
}

ENTRIES=$("${C[@]}" "$ENTRIES_ON" | wc -l)
FIND_LINES=$(find "$STORE/corpus/fs" -printf '%p %s %m %U %G %T@\n' | wc -l)
# Requests per entries measurement: enough for ~400,000 entries (a few
# seconds: the tracing-cost comparison needs that much to rise above
# the noise of a shared machine), 2..50.
REPS=$((400000 / (ENTRIES > 0 ? ENTRIES : 1)))
((REPS < 2)) && REPS=2
((REPS > 50)) && REPS=50

# entries_run URL FILE PID: REPS+1 requests on one kept-alive connection;
# the first (TLS handshake, connection set-up) is not timed, the others
# are from the request to the last byte. Appends "entries/s
# server-CPU-microseconds-per-entry" to FILE (all REPS+1 requests' CPU).
entries_run() {
    local args=() i c0 c1
    for ((i = 0; i <= REPS; i++)); do
        args+=(-o /dev/null "$1")
    done
    c0=$(cpu "$3")
    "${C[@]}" "${CURL_EXTRA[@]}" \
        -w '%{http_code} %{num_connects} %{time_total}\n' "${args[@]}" \
        >"$TMPD/entries.w"
    c1=$(cpu "$3")
    awk -v n="$ENTRIES" -v reps="$REPS" -v c=$((c1 - c0)) -v hz="$TICK" '
        $1 != 200 { bad = 1 }
        NR > 1 { t += $3; conns += $2 }
        END {
            if (bad || NR != reps + 1 || conns != 0) {
                print "entries: a request failed or a connection was not reused" > "/dev/stderr"
                exit 1
            }
            printf "%.1f %.3f\n", n * reps / t, c / hz * 1e6 / (n * (reps + 1))
        }' "$TMPD/entries.w" >>"$2"
}

# find_run FILE: REPS runs of find; appends entries/s to FILE.
find_run() {
    local t0 t1 i
    t0=$(date +%s%N)
    for ((i = 0; i < REPS; i++)); do
        find "$STORE/corpus/fs" -printf '%p %s %m %U %G %T@\n' >/dev/null
    done
    t1=$(date +%s%N)
    awk -v n="$FIND_LINES" -v reps="$REPS" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.1f\n", n * reps / ((b - a) / 1e9) }' >>"$1"
}

# concurrent_run URL FILE [PID]: CLIENTS downloads at once; appends
# "MiB/s peak_kib" to FILE (peak RSS of PID over the run, 0 without PID).
concurrent_run() {
    local url=$1 pid=${3:-} t0 t1 i pids=() bytes=0 hwm=0 code s
    if [[ -n $pid ]]; then
        echo 5 >"/proc/$pid/clear_refs" # reset VmHWM to the current RSS
    fi
    t0=$(date +%s%N)
    for ((i = 0; i < CLIENTS; i++)); do
        "${C[@]}" -o /dev/null -w '%{http_code} %{size_download}\n' "$url" \
            >"$TMPD/conc.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || {
            log "a concurrent download from $url failed"
            exit 1
        }
    done
    t1=$(date +%s%N)
    for ((i = 0; i < CLIENTS; i++)); do
        read -r code s <"$TMPD/conc.$i"
        if [[ $code != 200 || $s -ne $TAR_BYTES ]]; then
            log "concurrent download $i from $url: status $code, $s bytes"
            exit 1
        fi
        bytes=$((bytes + s))
    done
    if [[ -n $pid ]]; then
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    fi
    awk -v b="$bytes" -v a="$t0" -v z="$t1" -v h="$hwm" \
        'BEGIN { printf "%.3f %d\n", b / ((z - a) / 1e9) / 1048576, h }' >>"$2"
}

# median FILE [COLUMN]: the median of a column (default 1) of FILE.
median() {
    cut -d' ' -f"${2:-1}" "$1" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

log "corpus $CORPUS: $FILES files, tar $TAR_BYTES bytes, $ENTRIES entries;" \
    "$RUNS runs, exports x$XREPS and entries x$REPS per run"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up"
export_run "$EXPORT_ON" "$TMPD/warm" "$ON_PID"
export_run "$EXPORT_OFF" "$TMPD/warm" "$OFF_PID"
# shellcheck disable=SC2154
export_run "$EXPORT_COLD" "$TMPD/warm" "$COLD_PID"
export_run "$NGINX_URL" "$TMPD/warm" "${NGINX_PIDS[@]}"
entries_run "$ENTRIES_ON" "$TMPD/warm" "$ON_PID"
entries_run "$ENTRIES_OFF" "$TMPD/warm" "$OFF_PID"
# shellcheck disable=SC2154
with "${AS_TOKEN[@]}" -- export_run "$EXPORT_TOKEN" "$TMPD/warm" "$TOKEN_PID"
# shellcheck disable=SC2154
with "${AS_MTLS[@]}" -- export_run "$EXPORT_MTLS" "$TMPD/warm" "$MTLS_PID"
with "${AS_TOKEN[@]}" -- entries_run "$ENTRIES_TOKEN" "$TMPD/warm" "$TOKEN_PID"
with "${AS_MTLS[@]}" -- entries_run "$ENTRIES_MTLS" "$TMPD/warm" "$MTLS_PID"
export_run "$EXPORT_LOOSE" "$TMPD/warm" "$LOOSE_PID"
entries_run "$ENTRIES_LOOSE" "$TMPD/warm" "$LOOSE_PID"
if [[ -n $BEFORE ]]; then
    # shellcheck disable=SC2154
    export_run "$EXPORT_BEFORE" "$TMPD/warm" "$BEFORE_PID"
    entries_run "$ENTRIES_BEFORE" "$TMPD/warm" "$BEFORE_PID"
fi
find_run "$TMPD/warm"
# loose_runs KIND: the loose-limits server's (and the one before the
# limits') export or entries run, next to the default one's.
loose_runs() {
    if [[ $1 == export ]]; then
        export_run "$EXPORT_LOOSE" "$TMPD/x.loose" "$LOOSE_PID"
        [[ -z $BEFORE ]] || export_run "$EXPORT_BEFORE" "$TMPD/x.before" "$BEFORE_PID"
    else
        entries_run "$ENTRIES_LOOSE" "$TMPD/e.loose" "$LOOSE_PID"
        [[ -z $BEFORE ]] || entries_run "$ENTRIES_BEFORE" "$TMPD/e.before" "$BEFORE_PID"
    fi
}
for ((r = 1; r <= RUNS; r++)); do
    log "run $r/$RUNS: single exports, entries"
    # The order rotates so that no side always runs first.
    if ((r % 2)); then
        export_run "$EXPORT_ON" "$TMPD/x.on" "$ON_PID"
        export_run "$NGINX_URL" "$TMPD/x.nginx" "${NGINX_PIDS[@]}"
        export_run "$EXPORT_COLD" "$TMPD/x.cold" "$COLD_PID"
        export_run "$EXPORT_OFF" "$TMPD/x.off" "$OFF_PID"
        loose_runs export
        entries_run "$ENTRIES_ON" "$TMPD/e.on" "$ON_PID"
        find_run "$TMPD/e.find"
        entries_run "$ENTRIES_OFF" "$TMPD/e.off" "$OFF_PID"
        loose_runs entries
    else
        loose_runs export
        export_run "$EXPORT_OFF" "$TMPD/x.off" "$OFF_PID"
        export_run "$EXPORT_COLD" "$TMPD/x.cold" "$COLD_PID"
        export_run "$NGINX_URL" "$TMPD/x.nginx" "${NGINX_PIDS[@]}"
        export_run "$EXPORT_ON" "$TMPD/x.on" "$ON_PID"
        loose_runs entries
        entries_run "$ENTRIES_OFF" "$TMPD/e.off" "$OFF_PID"
        find_run "$TMPD/e.find"
        entries_run "$ENTRIES_ON" "$TMPD/e.on" "$ON_PID"
    fi
    log "run $r/$RUNS: access control (token, mTLS, none)"
    # The server without a policy is measured again next to these, so
    # that their comparison does not span the whole run.
    if ((r % 2)); then
        with "${AS_TOKEN[@]}" -- export_run "$EXPORT_TOKEN" "$TMPD/x.token" "$TOKEN_PID"
        export_run "$EXPORT_OFF" "$TMPD/x.noauth" "$OFF_PID"
        with "${AS_MTLS[@]}" -- export_run "$EXPORT_MTLS" "$TMPD/x.mtls" "$MTLS_PID"
        with "${AS_TOKEN[@]}" -- entries_run "$ENTRIES_TOKEN" "$TMPD/e.token" "$TOKEN_PID"
        entries_run "$ENTRIES_OFF" "$TMPD/e.noauth" "$OFF_PID"
        with "${AS_MTLS[@]}" -- entries_run "$ENTRIES_MTLS" "$TMPD/e.mtls" "$MTLS_PID"
    else
        with "${AS_MTLS[@]}" -- export_run "$EXPORT_MTLS" "$TMPD/x.mtls" "$MTLS_PID"
        export_run "$EXPORT_OFF" "$TMPD/x.noauth" "$OFF_PID"
        with "${AS_TOKEN[@]}" -- export_run "$EXPORT_TOKEN" "$TMPD/x.token" "$TOKEN_PID"
        with "${AS_MTLS[@]}" -- entries_run "$ENTRIES_MTLS" "$TMPD/e.mtls" "$MTLS_PID"
        entries_run "$ENTRIES_OFF" "$TMPD/e.noauth" "$OFF_PID"
        with "${AS_TOKEN[@]}" -- entries_run "$ENTRIES_TOKEN" "$TMPD/e.token" "$TOKEN_PID"
    fi
done
# shellcheck disable=SC2154
idle_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ON_PID/status")
for ((r = 1; r <= CONC_RUNS; r++)); do
    log "run $r/$CONC_RUNS: $CLIENTS concurrent exports"
    concurrent_run "$EXPORT_ON" "$TMPD/c.on" "$ON_PID"
    concurrent_run "$NGINX_URL" "$TMPD/c.nginx"
done
cut -d' ' -f1 "$TMPD/c.on" >"$TMPD/c.on.mibs"
cut -d' ' -f2 "$TMPD/c.on" >"$TMPD/c.on.kib"
cut -d' ' -f1 "$TMPD/c.nginx" >"$TMPD/c.nginx.mibs"

x_on=$(median "$TMPD/x.on")
x_off=$(median "$TMPD/x.off")
x_ng=$(median "$TMPD/x.nginx")
x_cold=$(median "$TMPD/x.cold")
xc_cold=$(median "$TMPD/x.cold" 2)
xc_on=$(median "$TMPD/x.on" 2)
xc_off=$(median "$TMPD/x.off" 2)
xc_ng=$(median "$TMPD/x.nginx" 2)
e_on=$(median "$TMPD/e.on")
e_off=$(median "$TMPD/e.off")
ec_on=$(median "$TMPD/e.on" 2)
ec_off=$(median "$TMPD/e.off" 2)
e_find=$(median "$TMPD/e.find")
for k in token mtls noauth; do
    printf -v "xa_$k" '%s' "$(median "$TMPD/x.$k")"
    printf -v "xac_$k" '%s' "$(median "$TMPD/x.$k" 2)"
    printf -v "ea_$k" '%s' "$(median "$TMPD/e.$k")"
    printf -v "eac_$k" '%s' "$(median "$TMPD/e.$k" 2)"
done
c_on=$(median "$TMPD/c.on.mibs")
c_ng=$(median "$TMPD/c.nginx.mibs")
peak_kib=$(sort -n "$TMPD/c.on.kib" | tail -n 1)
spans=$(wc -l <"$TMPD/trace.log")
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')

# ratio_row NAME A B TARGET UNIT: "| NAME | A | B | A/B | >= T | met |".
ratio_row() {
    awk -v n="$1" -v a="$2" -v b="$3" -v t="$4" 'BEGIN {
        r = a / b
        printf "| %s | %.1f | %.1f | %.2fx | >= %.1fx | %s |\n",
            n, a, b, r, t, (r >= t ? "yes" : "**no**") }'
}
# cost_row NAME ON OFF DIRECTION [TARGET]: the cost in percent (target
# 3% unless given), from a throughput (DIRECTION up: higher is better) or
# a CPU cost (down).
cost_row() {
    awk -v n="$1" -v a="$2" -v b="$3" -v d="$4" -v t="${5:-3}" 'BEGIN {
        c = (d == "up" ? (b - a) / b : (a - b) / b) * 100
        printf "| %s | %.3f | %.3f | %+.1f%% | <= %d%% | %s |\n",
            n, a, b, c, t, (c <= t ? "yes" : "**no**") }'
}

{
    echo
    echo "## HTTPS: \`layerd serve\`"
    echo
    echo "Written by \`tests/bench/http_bench.sh\`. Corpus: $FILES files," \
        "served as one layer ($ENTRIES entries, a $TAR_BYTES-byte tar)."
    echo "Clients: curl $(curl --version | awk 'NR == 1 { print $2 }') on" \
        "127.0.0.1, TLS 1.3 $CIPHER on both sides; layerd with"
    echo "\`--trace FILE\` (JSON lines) unless marked; $nginx_v with sendfile on and" \
        "$(nproc) workers serving the same tar as a static file."
    echo "Medians of $RUNS runs after one untimed warm-up of each; the sides" \
        "of a pair alternate. Load average ($(nproc) CPUs) at the start: $LOAD0;"
    echo "at the end: $LOAD1. The client runs on the same CPUs as the server," \
        "and other work on the machine skews the throughputs; the server CPU"
    echo "times (utime + stime of the server's processes over the request) are" \
        "the steadier measure."
    echo
    echo "| Work | layerd | baseline | ratio | target | met |"
    echo "|---|---:|---:|---:|---:|---|"
    ratio_row "Export, MiB/s: \`GET /layers/{id}/export\` vs nginx static tar" \
        "$x_on" "$x_ng" 0.8
    awk -v a="$x_cold" -v b="$x_ng" 'BEGIN {
        printf "| Export, MiB/s, cold: every export hashed (\`--no-cache\`) | %.1f | %.1f | %.2fx | - | - |\n",
            a, b, a / b }'
    ratio_row "Entries/s: \`GET /layers/{id}/entries\` (NDJSON) vs \`find -printf\`" \
        "$e_on" "$e_find" 0.5
    echo
    awk -v a="$xc_on" -v c="$xc_cold" -v b="$xc_ng" 'BEGIN {
        printf "Server CPU per GiB exported: layerd %.2f s (a kept blob read from the cache, TLS), %.2f s cold (read, tar, SHA-256, TLS), nginx %.2f s (TLS).\n", a, c, b }'
    echo "The layerd rows above the cold one run as configured by default:" \
        "the untimed warm-up export filled the blob cache, and the timed"
    echo "ones are served from the kept blob (api/blobs.c)."
    echo "Exports: $XREPS downloads per run, one after the other on one" \
        "connection; MiB/s over their own times."
    echo "Entries: $REPS requests per run on one kept-alive connection, each" \
        "timed from request to last byte (the TLS handshake of the first,"
    printf '%s\n' "untimed, request excluded); find: $REPS runs per run, process start" \
        "included, \`find DIR -printf '%p %s %m %U %G %T@\\n' > /dev/null\`."
    echo
    echo "| Tracing cost | --trace FILE | --trace none | cost of tracing | target | met |"
    echo "|---|---:|---:|---:|---:|---|"
    cost_row "Export, MiB/s" "$x_on" "$x_off" up
    cost_row "Export, server CPU s per GiB" "$xc_on" "$xc_off" down
    cost_row "Entries, entries/s" "$e_on" "$e_off" up
    cost_row "Entries, server CPU us per entry" "$ec_on" "$ec_off" down
    echo
    echo "| Access control cost | with | without a policy | cost | target | met |"
    echo "|---|---:|---:|---:|---:|---|"
    # shellcheck disable=SC2154 # set by printf -v
    cost_row "Bearer token, export MiB/s" "$xa_token" "$xa_noauth" up 2
    # shellcheck disable=SC2154
    cost_row "Bearer token, entries/s" "$ea_token" "$ea_noauth" up 2
    # shellcheck disable=SC2154
    cost_row "mTLS, export MiB/s" "$xa_mtls" "$xa_noauth" up 2
    # shellcheck disable=SC2154
    cost_row "mTLS, entries/s" "$ea_mtls" "$ea_noauth" up 2
    # shellcheck disable=SC2154
    cost_row "Bearer token, export server CPU s per GiB" "$xac_token" "$xac_noauth" down 2
    # shellcheck disable=SC2154
    cost_row "mTLS, export server CPU s per GiB" "$xac_mtls" "$xac_noauth" down 2
    # shellcheck disable=SC2154
    cost_row "Bearer token, entries server CPU us per entry" "$eac_token" "$eac_noauth" down 2
    # shellcheck disable=SC2154
    cost_row "mTLS, entries server CPU us per entry" "$eac_mtls" "$eac_noauth" down 2
    echo
    echo "Access control: servers with --trace none; \"with\" has a policy" \
        "and the client sends a bearer token (every request) or presents a"
    echo "client certificate (verified by GnuTLS once per connection; a run's" \
        "downloads share one connection); \"without a policy\" is the"
    echo "--trace none server of the tracing table, measured next to them in" \
        "every run."
    echo
    echo "| Limits on clients | default limits | loose limits | cost of the limits | target | met |"
    echo "|---|---:|---:|---:|---:|---|"
    cost_row "Export, MiB/s" "$x_off" "$(median "$TMPD/x.loose")" up 2
    cost_row "Export, server CPU s per GiB" "$xc_off" "$(median "$TMPD/x.loose" 2)" down 2
    cost_row "Entries, entries/s" "$e_off" "$(median "$TMPD/e.loose")" up 2
    cost_row "Entries, server CPU us per entry" "$ec_off" "$(median "$TMPD/e.loose" 2)" down 2
    if [[ -n $BEFORE ]]; then
        cost_row "Export, MiB/s, against the binary before the limits" \
            "$x_off" "$(median "$TMPD/x.before")" up 2
        cost_row "Export, server CPU s per GiB, against it" \
            "$xc_off" "$(median "$TMPD/x.before" 2)" down 2
        cost_row "Entries, entries/s, against it" \
            "$e_off" "$(median "$TMPD/e.before")" up 2
        cost_row "Entries, server CPU us per entry, against it" \
            "$ec_off" "$(median "$TMPD/e.before" 2)" down 2
    fi
    echo
    echo "Both sides run with \`--trace none\`. Default limits: 64 KiB connection"
    echo "pools (from --max-header-bytes 16384), the header and send-timeout"
    echo "watchdog, stream slots and the export memory budget; loose: 2 MiB pools"
    echo "(--max-header-bytes 1048576) and the caps at or near their tops; the"
    echo "watchdog and the slot bookkeeping run in both.${BEFORE:+ Before: $(basename "$BEFORE"), a build without the limits.}"
    echo
    echo "| $CLIENTS concurrent exports | total MiB/s | layerd peak RSS (MiB) |"
    echo "|---|---:|---:|"
    awk -v a="$c_on" -v k="$peak_kib" -v i="$idle_kib" -v n="$CLIENTS" 'BEGIN {
        printf "| layerd (--max-exports %d) | %.1f | %.1f (idle before: %.1f) |\n",
            2 * n, a, k / 1024, i / 1024 }'
    awk -v a="$c_ng" 'BEGIN { printf "| nginx, static tar | %.1f | - |\n", a }'
    echo
    echo "Concurrent: medians of $CONC_RUNS runs, wall time from the first" \
        "start to the last end; peak RSS: the highest VmHWM over the runs,"
    echo "reset through /proc/PID/clear_refs before each. The traced server" \
        "wrote $spans span lines in this benchmark."
} >>"$OUT"
log "appended to $OUT"
