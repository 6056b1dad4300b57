# shellcheck shell=bash
# What the tests of tests/security/ share (sourced after
# tests/integration/lib.sh and it_init): the attack client and a few
# readings of the server's state.

SEC_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# attack ARGS...: tests/security/attack.py against the running server
# ($PORT); prints its JSON.
attack() {
    "$(it_python)" "$SEC_HERE/attack.py" --port "$PORT" "$@"
}

# jget JSON FILTER: one value of a JSON document (jq -r).
jget() {
    jq -r "$2" <<<"$1"
}

# rss_kib: the server's resident set, KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"
}

# le A B: is the decimal A at most B?
le() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# between A LOW HIGH: is the decimal A within [LOW, HIGH]?
between() {
    awk -v a="$1" -v l="$2" -v h="$3" 'BEGIN { exit !(a >= l && a <= h) }'
}

# slow: 1 under a sanitizer (timings get wider margins), else 0.
slow() {
    [[ ${LAYERD_SANITIZED:-0} == 1 ]]
}

# wait_file FILE SECONDS: wait until FILE is not empty (a client printed
# its line); fails after SECONDS.
wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -s $1 ]] && return 0
        sleep 0.1
    done
    return 1
}
