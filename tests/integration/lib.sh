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
# it_init re-executes the script under `timeout` (the limit doubles when
# LAYERD_SANITIZED=1), makes a private temporary directory $IT_TMP and
# removes it on exit, unmounting anything the test mounted below it.
# Failures are counted, not fatal, so one run reports every broken check.

set -uo pipefail

IT_FAILS=0
IT_CHECKS=0
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
        timeout --kill-after=10 "$limit" bash "$0"
        local rc=$?
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
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
}

it_cleanup() {
    local m
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
    if [[ $IT_FAILS -ne 0 ]]; then
        it_log "$IT_FAILS of $IT_CHECKS checks failed"
        exit 1
    fi
    it_log "all $IT_CHECKS checks passed"
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
