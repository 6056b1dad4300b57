#!/usr/bin/env bash
# Runs the whole suite of one build directory: the format check, the Check
# unit tests (verbose, so their summary lines show), then the integration
# and fuzz-replay tests; lists what was skipped and how long it took.
set -uo pipefail
build=${1:?usage: tests/run.sh BUILD_DIR}
cd "$(dirname "$0")/.."
build=$(cd "$build" && pwd) || exit 1

# Tests report what they could not check here (tests/README.md).
export LAYERD_SKIP_LOG=$build/skipped.log
: >"$LAYERD_SKIP_LOG"

bash tests/lint/format.sh || exit 1
log="$build/unit-tests.log"
ctest --test-dir "$build" -L unit -V -j 2 >"$log" 2>&1
rc=$?
grep -E 'Checks: [0-9]+|tests passed|tests failed' "$log" | sed -E 's/^[0-9]+: //'
if [ $rc -ne 0 ]; then
    grep -E 'Failed|:F:|:E:' "$log" | head -50
    exit $rc
fi
ctest --test-dir "$build" -LE unit -j 2 --output-on-failure
rc=$?
echo "skipped: $(wc -l <"$LAYERD_SKIP_LOG")"
sed 's/^/  /' "$LAYERD_SKIP_LOG"
echo "tests/run.sh $build: ${SECONDS} s"
exit $rc
