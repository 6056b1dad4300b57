#!/usr/bin/env bash
# soak.sh LAYERD [LAYERD_RELEASE]: `make soak` (not part of `make test`):
# SOAK_SECONDS (default 600) of mixed genuine, careless and hostile
# clients at SOAK_CLIENTS-way concurrency (default 64) against servers of
# LAYERD, which `make soak` builds with ASan + UBSan, one per store:
#
#   dir:               the demo store plus generated layers: "big" (24 MiB
#                      of random bytes) and "text" (8 MiB of words)
#   containers-storage the overlay store of tests/fixtures/mkstores.sh
#   docker             the overlay2 store of tests/fixtures/mkstores.sh
#
# and, when LAYERD_RELEASE is given (`make soak` gives its release
# build), as many servers of that binary on the same stores, side by
# side, sharing the clients.
#
# The clients are tests/security/soak.py (exports checked against their
# digest trailers, entry listings, files and ranges, listings, health;
# levels above the ceiling, huge and trickled headers, garbage, aborts,
# slow and stalled readers). The servers run with the default limits but
# --header-timeout 5 and --send-timeout 10 (at most 26 KiB/s is dropped),
# so that the hostile clients are dealt with within the run, while 64
# Python clients sharing the machine with the servers still read faster
# than that.
#
# The servers' descriptors, threads and RSS are taken after a warm-up of
# SOAK_WARMUP seconds (default 300) of the same mix, once they are idle
# again; after the soak, once idle, each must be back to its baseline:
# descriptors and threads within 5 % (at least 1), RSS within 5 %, for
# the ASan servers too. ASan records the allocation and free stacks of
# blocks in a depot that keeps each distinct stack for good, so with
# stacks an idle ASan server's RSS grew with the number of requests
# served whatever the code did (+3.7 to +9.0 % over this soak with 8
# frames); the ASan servers therefore run with malloc_context_size=0:
# errors are still caught, and reported with the stack of the bad access
# but not the allocation's. No genuine request may have failed (a 503
# with Retry-After is waited out and retried), every hostile one must
# have been handled, every server must stop on SIGTERM with status 0, and
# the sanitizers must have reported nothing. The figures are printed.
set -uo pipefail

LAYERD=${1:?usage: tests/security/soak.sh LAYERD [LAYERD_RELEASE]}
LAYERD=$(cd "$(dirname "$LAYERD")" && pwd)/$(basename "$LAYERD")
RELEASE=${2:-}
if [[ -n $RELEASE ]]; then
    RELEASE=$(cd "$(dirname "$RELEASE")" && pwd)/$(basename "$RELEASE")
fi
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
SECONDS_RUN=${SOAK_SECONDS:-600}
WARMUP=${SOAK_WARMUP:-300}
CLIENTS=${SOAK_CLIENTS:-64}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
for v in SECONDS_RUN WARMUP CLIENTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || {
        echo "soak.sh: $v must be a positive integer, not '${!v}'" >&2
        exit 2
    }
done
[[ $(id -u) -eq 0 ]] || {
    echo "soak.sh: must run as root (the fixtures need mknod and chown)" >&2
    exit 2
}

log() { echo "soak: $*" >&2; }

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/layerd-soak.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [[ -n ${SOAK_KEEP:-} ]]; then
        log "kept $TMPD (SOAK_KEEP)"
    else
        rm -rf "$TMPD"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the stores ----
log "building the stores in $TMPD"
bash "$SRC/tests/fixtures/mkdemo.sh" "$TMPD/dir" >/dev/null || exit 1
mkdir -p "$TMPD/dir/big/fs" "$TMPD/dir/text/fs"
echo '{"kind": "diff"}' >"$TMPD/dir/big/layer.json"
head -c $((24 << 20)) /dev/urandom >"$TMPD/dir/big/fs/blob"
echo '{"kind": "diff", "parent": "base"}' >"$TMPD/dir/text/layer.json"
"$PY" - "$TMPD/dir/text/fs" <<'PY' || exit 1
import os, random, sys
rng = random.Random(7)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(3000)]
for d in range(8):
    os.makedirs(os.path.join(sys.argv[1], "d%d" % d))
    with open(os.path.join(sys.argv[1], "d%d" % d, "words.txt"), "w") as f:
        n = 0
        while n < 1 << 20:
            line = " ".join(rng.choice(words) for _ in range(10)) + "\n"
            f.write(line)
            n += len(line)
PY
bash "$SRC/tests/fixtures/mkstores.sh" "$TMPD/engines" >/dev/null || exit 1

# ---- the servers ----
# A small quarantine (1 MiB: use-after-free is still caught right after
# the free), no allocation stacks (see the top) and prompt release of
# freed memory, so that the RSS of an idle server says what it holds
# rather than what ASan keeps for later.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=1:thread_local_quarantine_size_kb=64:malloc_context_size=0:allocator_release_to_os_interval_ms=500:log_path=$TMPD/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$TMPD/ubsan}
# One blob cache for the six servers (processes sharing a cache is a
# supported set-up), here rather than the host's default.
export CACHE_DIRECTORY=$TMPD/cache
stores=(dir cs docker)
specs=("dir:$TMPD/dir" "containers-storage:$TMPD/engines/cs-overlay"
    "docker:$TMPD/engines/docker")
names=()
declare -A PID PORT BIN RSS_PCT
# start NAME BINARY STORE-SPEC RSS-PERCENT
start() {
    local n=$1
    names+=("$n")
    BIN[$n]=$2
    RSS_PCT[$n]=$4
    : >"$TMPD/$n.log" # read below maybe before the server's `2>` made it
    "$2" serve --store "$3" --listen 127.0.0.1:0 \
        --trace "$TMPD/$n.trace" --header-timeout 5 --send-timeout 10 \
        2>"$TMPD/$n.log" &
    PID[$n]=$!
    PIDS+=("${PID[$n]}")
    for _ in $(seq 400); do
        PORT[$n]=$(sed -n 's|^layerd: listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
            "$TMPD/$n.log" | head -n 1)
        [[ -n ${PORT[$n]} ]] && return 0
        kill -0 "${PID[$n]}" 2>/dev/null || {
            log "server $n exited at start-up: $(tail -n 5 "$TMPD/$n.log")"
            exit 1
        }
        sleep 0.05
    done
    log "server $n did not report its port"
    exit 1
}
for i in 0 1 2; do
    start "${stores[$i]}-asan" "$LAYERD" "${specs[$i]}" 5
    if [[ -n $RELEASE ]]; then
        start "${stores[$i]}-release" "$RELEASE" "${specs[$i]}" 5
    fi
done
{
    sep='['
    for n in "${names[@]}"; do
        big=null
        [[ $n == dir-* ]] && big='"big"'
        printf '%s{"name": "%s", "port": %s, "big": %s}' "$sep" "$n" "${PORT[$n]}" "$big"
        sep=', '
    done
    echo ']'
} >"$TMPD/servers.json"

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# quiet: wait until every server is idle (no request running: its
# descriptors steady for 2 s), at most 60 s, and then 3 s more for freed
# memory to go back.
quiet() {
    local n a b i
    for n in "${names[@]}"; do
        for ((i = 0; i < 30; i++)); do
            a=$(fds "${PID[$n]}")
            sleep 2
            b=$(fds "${PID[$n]}")
            [[ $a == "$b" ]] && break
        done
    done
    sleep 3
}

log "warm-up: $WARMUP s, $CLIENTS clients"
"$PY" "$HERE/soak.py" "$TMPD/servers.json" "$WARMUP" "$CLIENTS" \
    >"$TMPD/warmup.json" || {
    log "the warm-up failed:"
    cat "$TMPD/warmup.json" >&2
    exit 1
}
quiet
declare -A BF BT BR
for n in "${names[@]}"; do
    BF[$n]=$(fds "${PID[$n]}")
    BT[$n]=$(threads "${PID[$n]}")
    BR[$n]=$(rss "${PID[$n]}")
done

log "soak: $SECONDS_RUN s, $CLIENTS clients"
rc=0
"$PY" "$HERE/soak.py" "$TMPD/servers.json" "$SECONDS_RUN" "$CLIENTS" \
    >"$TMPD/soak.json" || rc=1
cat "$TMPD/soak.json"
quiet

# within A B PCT MIN: is A within PCT percent of B (and at least MIN)?
within() {
    awk -v a="$1" -v b="$2" -v p="$3" -v m="$4" 'BEGIN {
        d = a - b; if (d < 0) d = -d
        t = b * p / 100; if (t < m) t = m
        exit !(d <= t) }'
}
printf '\n| server | descriptors (base/end) | threads (base/end) | RSS MiB (base/end) | RSS change |\n|---|---|---|---|---|\n'
for n in "${names[@]}"; do
    f=$(fds "${PID[$n]}")
    t=$(threads "${PID[$n]}")
    r=$(rss "${PID[$n]}")
    printf '| %s | %s / %s | %s / %s | %.1f / %.1f | %+.1f %% (<= %s %%) |\n' "$n" \
        "${BF[$n]}" "$f" "${BT[$n]}" "$t" \
        "$(awk -v k="${BR[$n]}" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$r" 'BEGIN { print k / 1024 }')" \
        "$(awk -v a="$r" -v b="${BR[$n]}" 'BEGIN { print (a - b) * 100 / b }')" \
        "${RSS_PCT[$n]}"
    within "$f" "${BF[$n]}" 5 1 || {
        log "FAIL $n: descriptors $f, baseline ${BF[$n]}"
        rc=1
    }
    within "$t" "${BT[$n]}" 5 1 || {
        log "FAIL $n: threads $t, baseline ${BT[$n]}"
        rc=1
    }
    within "$r" "${BR[$n]}" "${RSS_PCT[$n]}" 0 || {
        log "FAIL $n: RSS $r KiB, baseline ${BR[$n]} KiB"
        rc=1
    }
    drops=$(curl -sk "https://127.0.0.1:${PORT[$n]}/metrics" |
        awk '/^layerd_http_dropped_total/ { printf "%s%s", s, $0; s = ", " }')
    echo "$n: $drops"
done

for n in "${names[@]}"; do
    kill -TERM "${PID[$n]}"
done
for n in "${names[@]}"; do
    st=0
    wait "${PID[$n]}" || st=$?
    [[ $st -eq 0 ]] || {
        log "FAIL $n: exited with $st: $(tail -n 5 "$TMPD/$n.log")"
        rc=1
    }
done
PIDS=()
if compgen -G "$TMPD/asan*" >/dev/null || compgen -G "$TMPD/ubsan*" >/dev/null ||
    grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' "$TMPD"/*.log \
        >/dev/null 2>&1; then
    log "FAIL: sanitizer reports:"
    cat "$TMPD"/asan* "$TMPD"/ubsan* 2>/dev/null | head -n 80 >&2
    grep -hE -A20 'AddressSanitizer|LeakSanitizer|runtime error' "$TMPD"/*.log |
        head -n 80 >&2
    rc=1
fi
if [[ $rc -eq 0 ]]; then
    log "passed"
else
    log "FAILED"
fi
exit $rc
