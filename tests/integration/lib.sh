# shellcheck shell=bash
# Shared helpers for the integration tests (sourced, not run).
#
# ctest runs each tests/integration/test_*.sh with LAYERD (the binary),
# LAYERD_SOURCE_DIR and LAYERD_BUILD_DIR in the environment. Run by hand:
#   LAYERD=build/layerd bash tests/integration/test_export_cli.sh
# (LAYERD_SOURCE_DIR defaults to the checkout this file lives in; LAYERD to
# $LAYERD_BUILD_DIR/layerd.)
#
# A test script sources this file, calls `it_init NAME [SECONDS]`, runs
# checks with `ok`/`fail`/`check`/`expect_eq`, and ends with `it_done`.
# A check this machine cannot make (an optional tool or locale is
# missing) is reported with `skip`: printed, counted, and listed by
# tests/run.sh (through $LAYERD_SKIP_LOG), never passed silently.
# it_init re-executes the script under `timeout` (the limit doubles when
# LAYERD_SANITIZED=1), makes a private temporary directory $IT_TMP and
# removes it on exit, unmounting anything the test mounted below it.
# Failures are counted, not fatal, so one run reports every broken check;
# `die` is the fatal kind, for a step the rest cannot do without.
#
# Tests of `layerd serve` start it with `it_serve` (an ephemeral port,
# SERVER_PID/PORT/URL set), talk to it with `it_curl`, and stop it with
# `it_stop`; the server still running at exit is killed.

set -uo pipefail

IT_FAILS=0
IT_CHECKS=0
IT_SKIPS=0
IT_NAME=${IT_NAME:-test}
IT_TMP=

it_log() {
    printf '%s: %s\n' "$IT_NAME" "$*" >&2
}

# it_init NAME [SECONDS]: locate things, arm the time limit and cleanup.
it_init() {
    IT_NAME=$1
    local limit=${2:-60}
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    : "${LAYERD_SOURCE_DIR:=$(cd "$here/../.." && pwd)}"
    export LAYERD_SOURCE_DIR
    if [[ -z ${LAYERD:-} && -n ${LAYERD_BUILD_DIR:-} ]]; then
        LAYERD=$LAYERD_BUILD_DIR/layerd
    fi
    if [[ -z ${LAYERD:-} || ! -x $LAYERD ]]; then
        it_log "LAYERD is not set to an executable layerd (got '${LAYERD:-}')"
        exit 1
    fi
    LAYERD=$(cd "$(dirname "$LAYERD")" && pwd)/$(basename "$LAYERD")
    export LAYERD
    IT_HERE=$here
    if [[ ${LAYERD_SANITIZED:-0} == 1 ]]; then
        limit=$((limit * 2))
    fi
    if [[ -z ${IT_UNDER_TIMEOUT:-} ]] && command -v timeout >/dev/null; then
        export IT_UNDER_TIMEOUT=1
        local rc=0
        timeout --kill-after=10 "$limit" bash "$0" || rc=$?
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then
            it_log "FAIL: timed out after ${limit}s"
        fi
        exit "$rc"
    fi
    if [[ $(id -u) -ne 0 ]]; then
        it_log "must run as root (mknod, chown, trusted.* xattrs)"
        exit 1
    fi
    IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/layerd-$IT_NAME.XXXXXX")
    # every server and `layerd cache` of the test keeps its blob cache
    # here, not in the host's (the default when --cache-dir is not given)
    export CACHE_DIRECTORY=$IT_TMP/cache
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
}

it_cleanup() {
    local m
    # the server, and anything else the script left running
    if [[ -n ${SERVER_PID:-} ]]; then
        kill -9 "$SERVER_PID" 2>/dev/null
    fi
    jobs -p | xargs -r kill -9 2>/dev/null
    wait 2>/dev/null
    SERVER_PID=
    if [[ -n $IT_TMP && -d $IT_TMP ]]; then
        # deepest mount first
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done < <(awk -v p="$IT_TMP/" 'index($2, p) == 1 { print $2 }' \
            /proc/self/mounts | sort -r)
        rm -rf -- "$IT_TMP"
    fi
}

# need CMD...: fail (not skip) when a required tool is missing; deploy/deps.sh
# installs all of them.
need() {
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null; then
            it_log "required tool '$c' is missing (run deploy/deps.sh)"
            exit 1
        fi
    done
}

ok() {
    IT_CHECKS=$((IT_CHECKS + 1))
    printf 'ok   %s\n' "$*"
}

fail() {
    IT_CHECKS=$((IT_CHECKS + 1))
    IT_FAILS=$((IT_FAILS + 1))
    printf 'FAIL %s\n' "$*"
}

# skip DESC: a check that cannot be made here; DESC says which and why.
skip() {
    IT_SKIPS=$((IT_SKIPS + 1))
    printf 'SKIP %s\n' "$*"
    if [[ -n ${LAYERD_SKIP_LOG:-} ]]; then
        printf '%s: %s\n' "$IT_NAME" "$*" >>"$LAYERD_SKIP_LOG"
    fi
}

# check DESC CMD...: run CMD, pass if it exits 0.
check() {
    local desc=$1
    shift
    if "$@"; then
        ok "$desc"
    else
        fail "$desc"
    fi
}

# expect_eq DESC WANT GOT
expect_eq() {
    if [[ $2 == "$3" ]]; then
        ok "$1"
    else
        fail "$1: want '$2', got '$3'"
    fi
}

# expect_rc DESC WANT CMD...: the exit status of CMD must be WANT. The
# command's stdout and stderr land in $IT_TMP/out and $IT_TMP/err.
expect_rc() {
    local desc=$1 want=$2 rc
    shift 2
    "$@" >"$IT_TMP/out" 2>"$IT_TMP/err"
    rc=$?
    if [[ $rc -eq $want ]]; then
        ok "$desc (exit $rc)"
    else
        fail "$desc: want exit $want, got $rc; stderr: $(head -c 400 "$IT_TMP/err")"
    fi
}

# it_done: print the tally and exit with the result.
it_done() {
    local skipped=
    if [[ $IT_SKIPS -ne 0 ]]; then
        skipped=", $IT_SKIPS skipped"
    fi
    if [[ $IT_FAILS -ne 0 ]]; then
        it_log "$IT_FAILS of $IT_CHECKS checks failed$skipped"
        exit 1
    fi
    it_log "all $IT_CHECKS checks passed$skipped"
    exit 0
}

# mkdemo DEST: build the demo store (tests/fixtures/mkdemo.sh) at DEST.
mkdemo() {
    bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkdemo.sh" "$1" >/dev/null ||
        {
            it_log "mkdemo.sh failed"
            exit 1
        }
}

# sha256_of FILE: the "sha256:<hex>" digest of FILE ('-': stdin).
sha256_of() {
    printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"
}

# The Python for helpers: $PYTHON, else the system one (a version
# manager's python3 shim can cost seconds per start), else python3.
it_python() {
    if [[ -n ${PYTHON:-} ]]; then
        printf '%s' "$PYTHON"
    elif [[ -x /usr/bin/python3 ]]; then
        printf '/usr/bin/python3'
    else
        printf 'python3'
    fi
}

# treecmp ARGS...: the tree comparison helper (tests/integration/treecmp.py).
treecmp() {
    "$(it_python)" "$IT_HERE/treecmp.py" "$@"
}

# ---- a running `layerd serve` ----

SERVER_PID=
SERVER_LOG=
PORT=
URL=
# The dir: store it_serve serves when set (a script sets it once).
IT_STORE=${IT_STORE:-}

# die MSG...: a fatal failure: report it with the tail of the server's
# log and exit 1 (the EXIT trap kills the server).
die() {
    IT_FAILS=$((IT_FAILS + 1))
    printf 'FAIL %s\n' "$*"
    if [[ -n $SERVER_LOG && -s $SERVER_LOG ]]; then
        tail -n 20 "$SERVER_LOG" >&2
    fi
    exit 1
}

# it_serve [ARGS...]: start `layerd serve --listen 127.0.0.1:0 [--store
# dir:$IT_STORE] --trace $IT_TMP/trace.log ARGS...` in the background,
# stderr to $SERVER_LOG ($IT_TMP/server.log), and wait for it to listen.
# ARGS come last, so a --store or --trace among them wins; a --listen
# among them adds an address. Sets SERVER_PID, PORT and URL (the
# 127.0.0.1 listener; http:// with --insecure-http). Dies when the
# server does not come up.
it_serve() {
    local args=(serve --listen 127.0.0.1:0)
    if [[ -n $IT_STORE ]]; then
        args+=(--store "dir:$IT_STORE")
    fi
    args+=(--trace "$IT_TMP/trace.log" "$@")
    SERVER_LOG=$IT_TMP/server.log
    : >"$SERVER_LOG" # before the start: see it_wait_listening
    "$LAYERD" "${args[@]}" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    it_wait_listening
}

# it_wait_listening: wait (20 s) until the server SERVER_PID, started by
# the caller with its stderr in SERVER_LOG, logs its 127.0.0.1 listener;
# sets PORT and URL. The caller empties SERVER_LOG before it starts the
# server: the `2>` of a background command truncates the file in the
# child, possibly after this has read an earlier server's port there.
it_wait_listening() {
    local i line
    PORT=
    URL=
    for ((i = 0; i < 400; i++)); do
        line=$(sed -n 's|^layerd: listening on \(https\{0,1\}\)://127\.0\.0\.1:\([0-9]*\)$|\1 \2|p' \
            "$SERVER_LOG" | head -n 1)
        if [[ -n $line ]]; then
            PORT=${line#* }
            # shellcheck disable=SC2034 # for the scripts
            URL=${line%% *}://127.0.0.1:$PORT
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start-up"
        sleep 0.05
    done
    die "server did not report its port"
}

# it_wait_exit SECONDS: wait for the server to exit on its own (after a
# signal the caller sent); dies if it is still running after SECONDS.
# Sets SERVER_RC (its exit status) and SERVER_TOOK (whole seconds).
it_wait_exit() {
    local t0 i
    t0=$(date +%s%N)
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && die "server still running after $1 s"
    SERVER_RC=0
    wait "$SERVER_PID" || SERVER_RC=$?
    SERVER_PID=
    # shellcheck disable=SC2034 # for the scripts
    SERVER_TOOK=$((($(date +%s%N) - t0) / 1000000000))
}

# it_stop: SIGTERM the server and wait (30 s) for it; dies unless it
# exits 0.
it_stop() {
    kill -TERM "$SERVER_PID"
    it_wait_exit 30
    [[ $SERVER_RC -eq 0 ]] || die "server exited with $SERVER_RC"
}

# it_wait SECONDS CMD...: run CMD every 0.1 s until it succeeds, for
# SECONDS at most; its last status. A request's span is written when the
# server is done with the request, which may be after the client is:
#   check "..." it_wait 10 grep -qF "$want" "$IT_TMP/trace.log"
it_wait() {
    local n=$(($1 * 10)) i
    shift
    for ((i = 1; i < n; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# it_cache_settled: wait (10 s) until the server at URL has no blob cache
# fill in flight (layerd_cache_fills_active 0). A fill commits (fsync,
# rename, journal) after its client has the last byte; until then the next
# request for its key joins the fill rather than hitting the kept blob.
it_cache_settled() { it_wait 10 it__no_fills; }
it__no_fills() { [[ $(it_metric layerd_cache_fills_active) == 0 ]]; }

# it_metric NAME: a sample of the server's /metrics ('' when absent), e.g.
# it_metric 'layerd_http_dropped_total{reason="send_timeout"}'.
it_metric() {
    it_curl "$URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# it_curl ARGS...: curl, silent but for errors, without certificate
# checks (the server's certificate is self-signed; --no-insecure turns
# them back on) and 10 s at most (a later --max-time wins).
it_curl() {
    curl -sS -k --max-time 10 "$@"
}

# it_hdr FILE NAME: the first value of header (or trailer) NAME in a
# `curl -D FILE` dump, without the CR ('' when absent).
it_hdr() {
    tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | head -n 1
}

# it_nfds, it_nthreads: the server's open descriptors and threads.
it_nfds() {
    find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}
it_nthreads() {
    awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status"
}

# it_big_layer STORE MIB: a diff layer "big" in STORE holding one
# incompressible file "blob" of MIB MiB (more than loopback's socket
# buffers hold, so a slow or vanishing client meets a running export).
it_big_layer() {
    mkdir -p "$1/big/fs"
    echo '{"kind": "diff"}' >"$1/big/layer.json"
    head -c $(($2 * 1024 * 1024)) /dev/urandom >"$1/big/fs/blob"
}

# it_wide_layer STORE: a diff layer "wide" in STORE of 24,000 names
# (200-byte, hard links of one empty file): about 12 MB of entries, more
# than loopback's socket buffers hold.
it_wide_layer() {
    mkdir -p "$1/wide/fs"
    echo '{"kind": "diff"}' >"$1/wide/layer.json"
    : >"$1/wide/fs/seed"
    "$(it_python)" - "$1/wide/fs" <<'PY' || die "cannot build the wide layer"
import os, sys
os.chdir(sys.argv[1])
pad = "n" * 200
for i in range(24000):
    os.link("seed", "%s%06d" % (pad, i))
PY
}

# it_slowget PORT PATH RATE [PROGRESS]: GET PATH over TLS at RATE bytes/s
# through a small receive buffer (little of the stream waits in kernel
# buffers, so the server really holds it open). Prints "complete STATUS
# BYTES SHA256" or "cut STATUS BYTES ERROR"; keeps the byte count so far
# in the file PROGRESS when given.
it_slowget() {
    "$(it_python)" - "$@" <<'PY'
import hashlib, http.client, os, socket, ssl, sys, time
port, path, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
progress = sys.argv[4] if len(sys.argv) > 4 else None
class Conn(http.client.HTTPSConnection):
    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.settimeout(30)
        s.connect((self.host, self.port))
        self.sock = self._context.wrap_socket(s, server_hostname=self.host)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = Conn("127.0.0.1", port, context=ctx)
c.request("GET", path)
r = c.getresponse()
n, t0, h = 0, time.monotonic(), hashlib.sha256()
try:
    while True:
        b = r.read(16384)
        if not b:
            break
        n += len(b)
        h.update(b)
        if progress:
            with open(progress + ".tmp", "w") as f:
                f.write(str(n))
            os.replace(progress + ".tmp", progress)
        ahead = n / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print("complete", r.status, n, h.hexdigest())
except (http.client.HTTPException, ssl.SSLError, OSError) as e:
    print("cut", r.status, n, type(e).__name__)
PY
}
