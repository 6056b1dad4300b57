#!/usr/bin/env bash
# Installs every package layerd needs to build, test and benchmark, on
# Debian 12. Idempotent: packages already present are not touched, and
# apt-get runs only when something is missing.
#
#   deps.sh          build and test packages, then the npm tools
#   deps.sh --bench  the same and the benchmark tools
#   deps.sh --all    everything
#   deps.sh --npm    the npm tools only (no apt): what the tests call
#
# The container engines (buildah, docker.io with runc) are there for the
# test fixtures (tests/fixtures/mkengines.sh starts its own dockerd), and
# tar-split is the tests' reference for rebuilding original layer tars.
# Nothing installed here may start a service: while apt runs, a
# policy-rc.d that refuses every start is put in place (unless the
# machine has one already, as container images do) and removed after.
#
# The npm tools (the OpenAPI linter @redocly/cli and the browser test
# runner @playwright/test, both pinned below) go into $LAYERD_NPM_DIR
# (default ~/.cache/layerd-npm), outside the checkout;
# tests/integration/test_openapi.sh and test_browser.sh run
# `deps.sh --npm` themselves, so a machine without them installs them on
# first use. Playwright drives Debian's chromium (an apt package below):
# no browser is ever downloaded (`playwright install` is never run).
set -euo pipefail

BUILD="build-essential cmake pkg-config clang-format
libmicrohttpd-dev libjansson-dev libssl-dev libisal-dev libzstd-dev zlib1g-dev
check libsubunit-dev libgnutls28-dev"
TEST="curl tar libarchive-tools umoci skopeo podman jq attr zstd gzip
python3 python3-prometheus-client python3-yaml python3-jsonschema openssl
procps nodejs chromium
buildah docker.io runc busybox-static tar-split"
BENCH="pigz nginx hyperfine time wrk"

# @redocly/cli 2.x needs node >= 20.19 (or >= 22.12).
REDOCLY=@redocly/cli@2.77.0
# Playwright 1.65 supports the Chromium of Debian 12's chromium package.
PLAYWRIGHT=@playwright/test@1.65.1
NPM_DIR=${LAYERD_NPM_DIR:-$HOME/.cache/layerd-npm}

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

apt_deps() {
    local want=$1 p
    local missing=()
    for p in $want; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    # npm: Debian's package only where no npm is there yet. A nodejs from
    # NodeSource ships npm itself and Conflicts with Debian's npm, so
    # asking apt for it there would fail.
    if ! command -v npm >/dev/null; then
        missing+=(npm)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    no_service_starts
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    allow_service_starts
}

# Packages like docker.io and containerd start their daemon on install
# (invoke-rc.d / deb-systemd-invoke); policy-rc.d exit 101 forbids it.
POLICY=/usr/sbin/policy-rc.d
POLICY_MADE=0
no_service_starts() {
    if [ -e "$POLICY" ]; then
        return 0
    fi
    printf '#!/bin/sh\n# deploy/deps.sh: no service starts during its install\nexit 101\n' |
        $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 0755 "$POLICY"
    POLICY_MADE=1
    trap allow_service_starts EXIT
}
allow_service_starts() {
    if [ "$POLICY_MADE" = 1 ]; then
        $SUDO rm -f "$POLICY"
        POLICY_MADE=0
    fi
}

# The version a package of $NPM_DIR says it is, or nothing.
npm_have() {
    local pkg=$NPM_DIR/node_modules/$1/package.json
    [ -f "$pkg" ] && node -p "require(process.argv[1]).version" "$pkg" 2>/dev/null
}

npm_deps() {
    if [ "$(npm_have @redocly/cli)" = "${REDOCLY##*@}" ] &&
        [ "$(npm_have @playwright/test)" = "${PLAYWRIGHT##*@}" ]; then
        return 0
    fi
    echo "deps: installing $REDOCLY $PLAYWRIGHT into $NPM_DIR" >&2
    mkdir -p "$NPM_DIR"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
        --loglevel=error --save-exact --prefix "$NPM_DIR" "$REDOCLY" "$PLAYWRIGHT" >&2
    if ! "$NPM_DIR/node_modules/.bin/redocly" --version >/dev/null 2>&1; then
        echo "deps: $REDOCLY does not run with node $(node --version)" >&2
        return 1
    fi
    if ! "$NPM_DIR/node_modules/.bin/playwright" --version >/dev/null 2>&1; then
        echo "deps: $PLAYWRIGHT does not run with node $(node --version)" >&2
        return 1
    fi
}

case "${1:-}" in
--npm)
    npm_deps
    exit 0
    ;;
--bench | --all) apt_deps "$BUILD $TEST $BENCH" ;;
"") apt_deps "$BUILD $TEST" ;;
*)
    echo "usage: deps.sh [--bench|--all|--npm]" >&2
    exit 2
    ;;
esac
npm_deps
