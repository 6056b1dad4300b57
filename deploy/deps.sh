#!/usr/bin/env bash
# Installs every package layerd needs to build, test and benchmark, on
# Debian 12. Idempotent: packages already present are not touched, and
# apt-get runs only when something is missing.
set -euo pipefail

BUILD="build-essential cmake pkg-config clang-format
libmicrohttpd-dev libjansson-dev libssl-dev libisal-dev libzstd-dev zlib1g-dev
check libsubunit-dev"
TEST="curl tar libarchive-tools umoci skopeo jq attr zstd gzip
python3 python3-prometheus-client openssl procps"
BENCH="pigz nginx hyperfine time"

want="$BUILD $TEST"
case "${1:-}" in
--bench) want="$want $BENCH" ;;
--all) want="$want $BENCH" ;;
esac

missing=()
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
