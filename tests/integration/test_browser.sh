#!/usr/bin/env bash
# The dashboard in a real browser: the Playwright suite of tests/browser
# (@playwright/test, pinned in deploy/deps.sh and installed by
# `deps.sh --npm` into the npm directory the OpenAPI linter uses) drives
# Debian's chromium (never a downloaded browser) against two servers:
# one on the demo store, one on a generated store whose layer "big" has
# 200,000 entries (tests/fixtures/mkbig.sh, built once per run on a
# private tmpfs in a couple of seconds), and one on the demo store under
# an access policy (the token prompt). What the CLI prints of the demo
# layers (`layerd entries`, `layerd export --json`) is written for the
# suite to compare against.
#
# Screenshots of every view and the measurements of the big layer
# (first rows, DOM rows, JS heap) are kept in $LAYERD_BUILD_DIR/
# browser-artifacts (not committed); the suite's run time is printed.
#
# It runs in both passes of `make test`: against an ASan + UBSan server
# the suite takes about as long (the browser's half dominates).
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR, LAYERD_BUILD_DIR;
# LAYERD_NPM_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init browser 420
need node npm chromium flock mount curl jq

NPM_DIR=${LAYERD_NPM_DIR:-$HOME/.cache/layerd-npm}
export LAYERD_NPM_DIR=$NPM_DIR
mkdir -p "$(dirname "$NPM_DIR")"
if ! flock -w 300 "$NPM_DIR.lock" bash "$LAYERD_SOURCE_DIR/deploy/deps.sh" --npm \
    >"$IT_TMP/npm.log" 2>&1; then
    cat "$IT_TMP/npm.log" >&2
    die "cannot install the browser test runner (deploy/deps.sh --npm)"
fi
PLAYWRIGHT=$NPM_DIR/node_modules/.bin/playwright
[[ -x $PLAYWRIGHT ]] || die "$PLAYWRIGHT is missing after deps.sh --npm"

BUILD_DIR=${LAYERD_BUILD_DIR:-$(dirname "$LAYERD")}
ART=$BUILD_DIR/browser-artifacts
rm -rf "$ART"
mkdir -p "$ART"

# ---- the stores ----

D=$IT_TMP/demo
mkdemo "$D"
mkdir -p "$IT_TMP/big"
mount -t tmpfs -o size=1g,mode=0755 layerd-big "$IT_TMP/big" ||
    die "cannot mount a tmpfs for the big layer"
t0=$(date +%s%N)
bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkbig.sh" "$IT_TMP/big/store" >/dev/null ||
    die "mkbig.sh failed"
ok "the 200,000-entry layer built in $((($(date +%s%N) - t0) / 1000000)) ms"

E=$IT_TMP/expect
mkdir -p "$E"
for id in base app patch snap-base snap-top; do
    "$LAYERD" entries --store "dir:$D" "$id" >"$E/entries-$id.ndjson" ||
        die "layerd entries $id failed"
done
for c in none gzip; do
    "$LAYERD" export --store "dir:$D" patch --compression "$c" --json \
        -o "$IT_TMP/patch.$c" >"$E/export-patch-$c.json" ||
        die "layerd export patch --compression $c failed"
    expect_eq "the CLI's $c digest is that of its file" \
        "$(sha256_of "$IT_TMP/patch.$c")" "$(jq -r .digest "$E/export-patch-$c.json")"
done

# ---- the servers ----

IT_STORE=$D
it_serve --trace none
DEMO_PID=$SERVER_PID
DEMO_URL=$URL
: >"$IT_TMP/big.log" # before the start: see it_wait_listening
"$LAYERD" serve --listen 127.0.0.1:0 --store "dir:$IT_TMP/big/store" --trace none \
    2>"$IT_TMP/big.log" &
BIG_PID=$!
SERVER_LOG=$IT_TMP/big.log
SERVER_PID=$BIG_PID
it_wait_listening
BIG_URL=$URL
# A third, on the demo store under an access policy: the agent may list
# and read base, app and patch (tests/browser/token.spec.mjs).
out=$("$LAYERD" token new) || die "layerd token new failed"
AUTH_TOKEN=$(sed -n 's/^token: //p' <<<"$out")
cat >"$IT_TMP/policy.json" <<JSON
{"principals": [{"name": "agent",
  "tokens_sha256": ["$(sed -n 's/^tokens_sha256: //p' <<<"$out")"],
  "grants": [{"layers": ["base", "app", "patch"], "ops": ["list", "read"]}]}]}
JSON
SERVER_LOG=$IT_TMP/auth.log
: >"$SERVER_LOG"
"$LAYERD" serve --listen 127.0.0.1:0 --store "dir:$D" --trace none \
    --auth "$IT_TMP/policy.json" 2>"$SERVER_LOG" &
AUTH_PID=$!
SERVER_PID=$AUTH_PID
it_wait_listening
AUTH_URL=$URL

# ---- the suite ----

# The suite runs from a copy beside a node_modules link, where Node finds
# @playwright/test for the spec files.
W=$IT_TMP/suite
mkdir -p "$W"
cp "$LAYERD_SOURCE_DIR"/tests/browser/*.mjs "$W/"
ln -s "$NPM_DIR/node_modules" "$W/node_modules"
t0=$(date +%s%N)
rc=0
(
    cd "$W" &&
        LAYERD_DEMO_URL=$DEMO_URL LAYERD_BIG_URL=$BIG_URL LAYERD_EXPECT=$E \
            LAYERD_AUTH_URL=$AUTH_URL LAYERD_AUTH_TOKEN=$AUTH_TOKEN \
            LAYERD_ARTIFACTS=$ART PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
            "$PLAYWRIGHT" test --config playwright.config.mjs
) >"$IT_TMP/suite.log" 2>&1 || rc=$?
took=$((($(date +%s%N) - t0) / 1000000))
cat "$IT_TMP/suite.log"
if [[ $rc -eq 0 ]]; then
    ok "the Playwright suite passed in $took ms"
else
    fail "the Playwright suite failed (exit $rc) after $took ms; artifacts in $ART"
fi
n=$(find "$ART" -maxdepth 1 -name '*.png' | wc -l)
[[ $n -ge 20 ]] && ok "$n screenshots kept in $ART" || fail "only $n screenshots in $ART"
[[ -s $ART/measurements.json ]] && ok "measurements: $(jq -c . "$ART/measurements.json")" ||
    fail "no measurements recorded"

# ---- both servers stop cleanly ----

SERVER_PID=$BIG_PID
it_stop
SERVER_PID=$AUTH_PID
it_stop
SERVER_PID=$DEMO_PID
it_stop
it_done
