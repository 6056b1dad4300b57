#!/usr/bin/env bash
# run-demo.sh LAYERD DEMO: serve the demo store (built by
# tests/fixtures/mkdemo.sh: layers base, app, patch, snap-base, snap-top)
# on https://127.0.0.1:8443 in the foreground, with an ephemeral
# self-signed certificate. Used by `make run`; Ctrl-C stops it.
set -euo pipefail

bin=${1:?usage: deploy/run-demo.sh LAYERD DEMO_DIR}
demo=${2:?usage: deploy/run-demo.sh LAYERD DEMO_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || { echo "run-demo: $bin is not an executable" >&2; exit 2; }
[ -d "$demo" ] || { echo "run-demo: no demo store at $demo" >&2; exit 2; }
demo=$(cd "$demo" && pwd)
url=https://127.0.0.1:8443

args=(serve --store "dir:$demo" --listen 127.0.0.1:8443 --log-format text)
[ -f "$root/openapi.yaml" ] && args+=(--openapi "$root/openapi.yaml")

cat <<MSG
layerd demo: serving dir:$demo at $url

The certificate is generated at start-up and self-signed: use curl -k, or
compare the fingerprint logged below with
  openssl s_client -connect 127.0.0.1:8443 </dev/null | openssl x509 -noout -fingerprint -sha256

Try:
  curl -k $url/layers
  curl -k $url/layers/patch/entries
  curl -k $url/layers/patch/entries/usr/bin/app
  curl -k $url/layers/patch/export | tar -tvf -
  curl -k -D - -o patch.tar.gz '$url/layers/patch/export?compression=gzip'
  curl -k $url/metrics

Request spans are printed below, one line each. Ctrl-C stops the server.

MSG
exec "$bin" "${args[@]}"
