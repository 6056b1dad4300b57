#!/usr/bin/env bash
# openapi.yaml, the contract: it lints clean with @redocly/cli (installed
# once by `deploy/deps.sh --npm` into ~/.cache/layerd-npm, or
# $LAYERD_NPM_DIR), and a running server keeps it: every documented
# operation, and every error response that can be provoked (400, 401,
# 403, 404, 405, 406, 409, 414, 416, 421, 422, 431, 500, 503), is requested
# with real values from the demo store and checked against the document's
# statuses, media types, headers and schemas
# (tests/integration/openapi_contract.py), under an access policy, so
# that 401, 403, the 404 of a hidden layer and 421 are provoked too.
#
# The store is the demo (tests/fixtures/mkdemo.sh) plus layers made to
# fail: "redir" and "meta" use overlayfs redirect and metacopy, which the
# reader refuses (422); "ghost" names a parent that does not exist and
# "badjson" has a broken layer.json (500); "big" is 12 MiB, to hold the
# two export slots of --max-exports 2 and get a 503, then a third stream
# of --max-streams 3 and get a 503 for the other kinds of stream.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_NPM_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init openapi 60
need node npm setfattr flock

OPENAPI=$LAYERD_SOURCE_DIR/openapi.yaml
NPM_DIR=${LAYERD_NPM_DIR:-$HOME/.cache/layerd-npm}
export LAYERD_NPM_DIR=$NPM_DIR

# ---- lint ----

# One installer at a time (ctest -j runs tests side by side).
mkdir -p "$(dirname "$NPM_DIR")"
if ! flock -w 120 "$NPM_DIR.lock" bash "$LAYERD_SOURCE_DIR/deploy/deps.sh" --npm \
    >"$IT_TMP/npm.log" 2>&1; then
    cat "$IT_TMP/npm.log" >&2
    die "cannot install the OpenAPI linter (deploy/deps.sh --npm)"
fi
REDOCLY=$NPM_DIR/node_modules/.bin/redocly
# Its banners (a Node.js deprecation notice) are noise: show the findings.
if "$REDOCLY" lint --format=stylish "$OPENAPI" >"$IT_TMP/lint.log" 2>&1; then
    ok "redocly lint openapi.yaml: no errors ($(grep -Eo '[0-9]+ warnings?' "$IT_TMP/lint.log" | head -n 1 || echo 'no warnings'))"
else
    grep -vE '[║╔╚]' "$IT_TMP/lint.log" | grep -v '^ *$' | head -n 60
    fail "redocly lint openapi.yaml reports errors"
fi
# The linter does fail on a broken document (else the check above is moot).
sed 's/^openapi: 3\.1\.0$/openapi: 3.1.0\nbogus-top-level: 1/; s/operationId: getLayer$/operationId: listLayers/' \
    "$OPENAPI" >"$IT_TMP/broken.yaml"
if "$REDOCLY" lint "$IT_TMP/broken.yaml" >"$IT_TMP/lint-broken.log" 2>&1; then
    fail "redocly lint passes a document with a duplicate operationId"
else
    ok "redocly lint fails a broken document"
fi

# ---- the contract, against a running server ----

need "$(it_python)"
if ! "$(it_python)" -c 'import yaml, jsonschema' 2>"$IT_TMP/py.err"; then
    die "$(it_python) lacks PyYAML or jsonschema (python3-yaml, python3-jsonschema): $(cat "$IT_TMP/py.err")"
fi

D=$IT_TMP/demo
mkdemo "$D"
IT_STORE=$D
# layer ID JSON: a diff layer with that layer.json.
layer() {
    mkdir -p "$D/$1/fs"
    printf '%s\n' "$2" >"$D/$1/layer.json"
}
layer redir '{"kind": "diff"}'
mkdir -p "$D/redir/fs/d"
setfattr -n trusted.overlay.redirect -v /elsewhere "$D/redir/fs/d"
layer meta '{"kind": "diff"}'
echo data >"$D/meta/fs/f"
setfattr -n trusted.overlay.metacopy -v '' "$D/meta/fs/f"
layer ghost '{"kind": "diff", "parent": "not-there"}'
layer badjson '{"kind": '
it_big_layer "$D" 12

# The policy: "admin" sees everything (the contract's requests carry its
# token unless a case says otherwise), "lister" may only list, "reader"
# only read, "narrow" list and read "base" only.
tokens=
for who in admin lister reader narrow; do
    out=$("$LAYERD" token new) || die "layerd token new failed"
    tokens+=" $who=$(sed -n 's/^token: //p' <<<"$out")"
    printf -v "sha_$who" '%s' "$(sed -n 's/^tokens_sha256: //p' <<<"$out")"
done
# shellcheck disable=SC2154 # set by printf -v
cat >"$IT_TMP/policy.json" <<JSON
{"principals": [
  {"name": "admin", "tokens_sha256": ["$sha_admin"],
   "grants": [{"layers": ["*"], "ops": ["list", "read", "metrics"], "mutable": true}]},
  {"name": "lister", "tokens_sha256": ["$sha_lister"],
   "grants": [{"layers": ["*"], "ops": ["list"]}]},
  {"name": "reader", "tokens_sha256": ["$sha_reader"],
   "grants": [{"layers": ["*"], "ops": ["read"]}]},
  {"name": "narrow", "tokens_sha256": ["$sha_narrow"],
   "grants": [{"layers": ["base"], "ops": ["list", "read"]}]}
]}
JSON

it_serve --openapi "$OPENAPI" --max-exports 2 --max-streams 3 --trace none \
    --auth "$IT_TMP/policy.json"
if LAYERD_CONTRACT_TOKENS=$tokens "$(it_python)" "$IT_HERE/openapi_contract.py" \
    "$URL" "$OPENAPI" >"$IT_TMP/contract.log" 2>&1; then
    ok "the server keeps the contract: $(tail -n 1 "$IT_TMP/contract.log")"
else
    fail "the server breaks the contract:"
fi
grep -v '^info:' "$IT_TMP/contract.log"
grep '^info:' "$IT_TMP/contract.log" >&2 || true
it_stop
it_done
