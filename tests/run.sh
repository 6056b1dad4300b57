#!/usr/bin/env bash
# Runs the whole suite of one build directory: the format check, the Check
# unit tests (verbose, so their summary lines show), then the integration,
# security and fuzz-replay tests; lists what was skipped and how long it took.
#
# The build's CMake cache says what kind it is. A sanitizer build
# (LAYERD_SANITIZE or LAYERD_TSAN) runs with LAYERD_SANITIZED=1 (the
# integration time limits double) and Check's per-test timeouts tripled.
# A ThreadSanitizer build also:
# - runs with address-space randomisation off (setarch -R, which every
#   process of the run inherits), where the system allows it: GCC 12's
#   TSan maps its shadow memory at fixed addresses, which a kernel with
#   more than 28 bits of mmap randomisation may already have handed out
#   ("FATAL: ThreadSanitizer: unexpected memory mapping",
#   google/sanitizers#1716);
# - sends every report of every process (servers, CLI runs, unit runners)
#   to $BUILD/tsan/report.<pid>, and fails when there is any, including
#   reports from a process whose exit status no test looks at.
set -uo pipefail
build=${1:?usage: tests/run.sh BUILD_DIR}
cd "$(dirname "$0")/.."
build=$(cd "$build" && pwd) || exit 1

cache_on() {
    grep -q "^$1:BOOL=ON\$" "$build/CMakeCache.txt" 2>/dev/null
}
tsan=0
if cache_on LAYERD_TSAN; then
    tsan=1
fi
if [ $tsan = 1 ] || cache_on LAYERD_SANITIZE; then
    export LAYERD_SANITIZED=1
fi
if [ "${LAYERD_SANITIZED:-0}" = 1 ]; then
    export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3}
fi
run=()
if [ $tsan = 1 ]; then
    rm -rf "$build/tsan"
    mkdir -p "$build/tsan"
    export TSAN_OPTIONS="log_path=$build/tsan/report second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
    if setarch "$(uname -m)" -R true 2>/dev/null; then
        run=(setarch "$(uname -m)" -R)
    fi
fi
# Tests report what they could not check here (tests/README.md).
export LAYERD_SKIP_LOG=$build/skipped.log
: >"$LAYERD_SKIP_LOG"

# ThreadSanitizer's reports, if any: printed, and the run fails.
tsan_reports() {
    local files
    [ $tsan = 1 ] || return 0
    files=$(find "$build/tsan" -type f | sort)
    if [ -z "$files" ]; then
        echo "ThreadSanitizer: no reports"
        return 0
    fi
    echo "ThreadSanitizer: $(echo "$files" | wc -l) report file(s):"
    for f in $files; do
        echo "== $f"
        head -c 20000 "$f"
    done
    return 1
}

bash tests/lint/format.sh || exit 1
log="$build/unit-tests.log"
"${run[@]}" ctest --test-dir "$build" -L unit -V -j 2 >"$log" 2>&1
rc=$?
grep -E 'Checks: [0-9]+|tests passed|tests failed' "$log" | sed -E 's/^[0-9]+: //'
if [ $rc -ne 0 ]; then
    grep -E 'Failed|:F:|:E:' "$log" | head -50
    tsan_reports
    exit $rc
fi
"${run[@]}" ctest --test-dir "$build" -LE unit -j 2 --output-on-failure
rc=$?
tsan_reports || rc=1
echo "skipped: $(wc -l <"$LAYERD_SKIP_LOG")"
sed 's/^/  /' "$LAYERD_SKIP_LOG"
echo "tests/run.sh $build: ${SECONDS} s"
exit $rc
