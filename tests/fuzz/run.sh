#!/usr/bin/env bash
# run.sh BUILD_DIR: run every libFuzzer target of a LAYERD_FUZZ build for
# FUZZ_SECONDS each (default 60). New inputs go to a scratch corpus under
# BUILD_DIR; the committed corpus (tests/fuzz/corpus/<target>) is read as
# seeds and left untouched. Crashes are written to BUILD_DIR/fuzz-crashes/.
set -euo pipefail
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR}
seconds=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "$0")" && pwd)
crashes=$build/fuzz-crashes
mkdir -p "$crashes"
status=0
for src in "$here"/fuzz_*.c; do
    name=$(basename "$src" .c)
    bin=$build/tests/$name
    if [[ ! -x $bin ]]; then
        echo "fuzz: $bin is missing (build with -DLAYERD_FUZZ=ON)" >&2
        exit 2
    fi
    scratch=$build/fuzz-corpus/$name
    mkdir -p "$scratch"
    echo "fuzz: $name for ${seconds}s"
    if ! "$bin" -max_total_time="$seconds" -artifact_prefix="$crashes/$name-" \
        "$scratch" "$here/corpus/$name" >"$build/fuzz-$name.log" 2>&1; then
        echo "fuzz: $name FAILED; see $build/fuzz-$name.log and $crashes" >&2
        status=1
    fi
    tail -n 1 "$build/fuzz-$name.log"
done
exit $status
