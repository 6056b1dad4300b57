#!/usr/bin/env bash
# layerd serve --auth, with curl: access control as a client sees it.
#
# - every route x {no credentials, a wrong token, a token without the
#   grant, the right token}: the exact status; GET and HEAD alike;
# - 401 carries both WWW-Authenticate challenges and a problem body;
#   403 for a principal that may list a layer but not read it;
# - hidden layers: absent from /layers, and 404 with the body a missing
#   layer gets; mutable layers only for a grant that says "mutable";
# - Basic with the token as the password (curl -u), any user name;
# - SIGHUP to a new policy (a rotated token: the old one is 401 at once,
#   the new one works) and to a broken one (the log names the key path,
#   the policy in force stays);
# - the Host check: 421 for a foreign name, 200 for each of the server's
#   names (localhost, the listen address, the certificate's, and
#   --server-name);
# - start-up refusals: a public address without a policy, plain HTTP on
#   one, a broken policy, --client-ca without --auth; --allow-anonymous
#   starts and warns;
# - spans carry auth.method and enduser.id, /metrics counts refusals by
#   reason, `layerd token new` prints a token and its digest;
# - and after all of it, no token's text in the trace file or the logs.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init auth 90
need curl jq sha256sum openssl

D=$IT_TMP/store
W=$IT_TMP/w
mkdir -p "$W"
mkdemo "$D"
# A layer no grant of the agent names, and a mutable one.
mkdir -p "$D/secret/fs" "$D/live/fs"
echo '{"kind": "diff", "parent": "base"}' >"$D/secret/layer.json"
echo '{"kind": "diff", "parent": "base", "mutable": true}' >"$D/live/layer.json"
echo classified >"$D/secret/fs/file"
echo running >"$D/live/fs/file"
IT_STORE=$D

# ---- tokens ----

# new_token NAME: a token from `layerd token new` in $NAME, its digest in
# ${NAME}_SHA; checks that the digest is the sha256 of the token.
new_token() {
    local out tok dig
    out=$("$LAYERD" token new) || die "layerd token new failed"
    tok=$(sed -n 's/^token: //p' <<<"$out")
    dig=$(sed -n 's/^tokens_sha256: //p' <<<"$out")
    [[ $tok =~ ^[A-Za-z0-9_-]{43}$ ]] || die "token new: odd token"
    [[ $(printf %s "$tok" | sha256sum | cut -d' ' -f1) == "$dig" ]] ||
        die "token new: the digest is not the token's sha256"
    printf -v "$1" '%s' "$tok"
    printf -v "${1}_SHA" '%s' "$dig"
}
new_token AGENT
new_token LISTER
new_token OTHER
new_token ADMIN
new_token ROTATED
ok "layerd token new: 43-character base64url tokens and their sha256"
ALL_TOKENS=("$AGENT" "$LISTER" "$OTHER" "$ADMIN" "$ROTATED")

# policy AGENT_DIGEST: the policy, with the agent's token given.
policy() {
    cat <<JSON
{
  "comment": "the integration test's principals",
  "principals": [
    {"name": "agent", "tokens_sha256": ["$1"],
     "grants": [{"layers": ["base", "app", "patch", "snap-*"], "ops": ["list", "read"]},
                {"layers": ["*"], "ops": ["metrics"]}]},
    {"name": "lister", "tokens_sha256": ["$LISTER_SHA"],
     "grants": [{"layers": ["*"], "ops": ["list"]}]},
    {"name": "other", "tokens_sha256": ["$OTHER_SHA"],
     "grants": [{"layers": ["nothing-here"], "ops": ["read"]}]},
    {"name": "admin", "tokens_sha256": ["$ADMIN_SHA"],
     "grants": [{"layers": ["*"], "ops": ["list", "read", "metrics"], "mutable": true}]}
  ],
  "anonymous": {"grants": []}
}
JSON
}
P=$IT_TMP/policy.json
policy "$AGENT_SHA" >"$P"

it_serve --auth "$P" --server-name layerd.test --listen '[::1]:0' \
    --openapi "$LAYERD_SOURCE_DIR/openapi.yaml"
grep -q '^layerd: access policy .*policy.json: 4 principal(s)$' "$SERVER_LOG" ||
    fail "the start-up log does not name the policy"

# code [CURL ARGS...] URL: the status of a request.
code() {
    it_curl -o /dev/null -w '%{http_code}' "$@"
}

# ---- every route, every kind of credentials ----

H_NONE=()
H_WRONG=(-H "Authorization: Bearer wrong-$AGENT")
H_OTHER=(-H "Authorization: Bearer $OTHER")
H_AGENT=(-H "Authorization: Bearer $AGENT")
# route  none wrong no-grant right
matrix="/layers 401 401 403 200
/layers/base 401 401 404 200
/layers/base/export 401 401 404 200
/layers/base/export?compression=gzip 401 401 404 200
/layers/patch/entries 401 401 404 200
/layers/base/entries/etc/hostname 401 401 404 200
/layers/base/summary 401 401 404 200
/layers/base/files/etc/hostname 401 401 404 200
/metrics 401 401 403 200
/healthz 200 200 200 200
/readyz 200 200 200 200
/openapi.yaml 200 200 200 200
/ui/ 200 200 200 200
/ui/assets/app.js 200 200 200 200
/ui/layers/base 200 200 200 200
/nonexistent 404 404 404 404"
# statuses PATH [CURL ARGS...]: the four statuses of PATH, space-separated.
statuses() {
    local path=$1
    shift
    printf '%s %s %s %s' \
        "$(code "$@" "${H_NONE[@]}" "$URL$path")" \
        "$(code "$@" "${H_WRONG[@]}" "$URL$path")" \
        "$(code "$@" "${H_OTHER[@]}" "$URL$path")" \
        "$(code "$@" "${H_AGENT[@]}" "$URL$path")"
}
while read -r path none wrong nogrant right; do
    expect_eq "GET $path: none wrong no-grant right" \
        "$none $wrong $nogrant $right" "$(statuses "$path")"
    expect_eq "HEAD $path: none wrong no-grant right" \
        "$none $wrong $nogrant $right" "$(statuses "$path" -I)"
done <<<"$matrix"

# listed but not readable: 403; readable by the admin: 200
expect_eq "lister: GET /layers/base is 403" 403 \
    "$(code -H "Authorization: Bearer $LISTER" "$URL/layers/base")"
expect_eq "lister: GET /layers is 200" 200 \
    "$(code -H "Authorization: Bearer $LISTER" "$URL/layers")"

# ---- the answers ----

it_curl -D "$W/401.h" -o "$W/401.json" "$URL/layers/base"
expect_eq "401: two challenges" \
    'Bearer realm="layerd"|Basic realm="layerd", charset="UTF-8"' \
    "$(tr -d '\r' <"$W/401.h" | sed -n 's/^www-authenticate: //Ip' | paste -sd'|')"
expect_eq "401: a problem" "https://layerd.dev/problems/unauthorized 401" \
    "$(jq -r '"\(.type) \(.status)"' "$W/401.json")"
it_curl -D "$W/401b.h" -o /dev/null "${H_WRONG[@]}" "$URL/layers/base"
expect_eq "401 for a wrong token: error=invalid_token" \
    'Bearer realm="layerd", error="invalid_token"' \
    "$(tr -d '\r' <"$W/401b.h" | sed -n 's/^www-authenticate: //Ip' | head -n 1)"
it_curl -o "$W/403.json" -H "Authorization: Bearer $OTHER" "$URL/metrics"
expect_eq "403: a problem naming the principal and the op" \
    "https://layerd.dev/problems/forbidden principal 'other' has no 'metrics' grant for this server" \
    "$(jq -r '"\(.type) \(.detail)"' "$W/403.json")"

# ---- hidden layers ----

expect_eq "agent: /layers lists what its grants name" \
    "app base patch snap-base snap-top" \
    "$(it_curl "${H_AGENT[@]}" "$URL/layers" | jq -r '[.layers[].id] | join(" ")')"
expect_eq "lister: every immutable layer" \
    "app base patch secret snap-base snap-top" \
    "$(it_curl -H "Authorization: Bearer $LISTER" "$URL/layers" | jq -r '[.layers[].id] | join(" ")')"
expect_eq "admin: mutable layers too" \
    "app base live patch secret snap-base snap-top" \
    "$(it_curl -H "Authorization: Bearer $ADMIN" "$URL/layers" | jq -r '[.layers[].id] | join(" ")')"
expect_eq "pages of visible layers: the cursor is the last one shown" \
    "app base|base" \
    "$(it_curl "${H_AGENT[@]}" "$URL/layers?limit=2" | jq -r '"\([.layers[].id] | join(" "))|\(.next)"')"
expect_eq "the page after 'patch' for the lister: secret only" \
    "secret snap-base" \
    "$(it_curl -H "Authorization: Bearer $LISTER" "$URL/layers?after=patch&limit=2" | jq -r '[.layers[].id] | join(" ")')"
# The same answer for a layer that exists and one that does not.
norm() { jq -c 'del(.trace_id, .instance) | .detail |= sub("secret|nosuch"; "ID")' "$1"; }
it_curl -D "$W/hid.h" -o "$W/hid.json" "${H_AGENT[@]}" "$URL/layers/secret/files/file"
it_curl -D "$W/mis.h" -o "$W/mis.json" "${H_AGENT[@]}" "$URL/layers/nosuch/files/file"
expect_eq "hidden layer: 404" 404 "$(jq .status "$W/hid.json")"
expect_eq "hidden and missing layers: the same body" "$(norm "$W/mis.json")" \
    "$(norm "$W/hid.json")"
expect_eq "hidden and missing layers: the same headers" \
    "$(tr -d '\r' <"$W/mis.h" | grep -vi '^traceparent\|^date' | sed 's/[0-9]*$//')" \
    "$(tr -d '\r' <"$W/hid.h" | grep -vi '^traceparent\|^date' | sed 's/[0-9]*$//')"
expect_eq "mutable layer: 404 for the agent" 404 \
    "$(code "${H_AGENT[@]}" "$URL/layers/live/files/file")"
expect_eq "mutable layer: served to a grant with mutable" running \
    "$(it_curl -H "Authorization: Bearer $ADMIN" "$URL/layers/live/files/file")"

# ---- Basic ----

expect_eq "Basic, token as password" 200 \
    "$(code -u "anyone:$AGENT" "$URL/layers/base")"
expect_eq "Basic, empty user name" 200 "$(code -u ":$AGENT" "$URL/layers/base")"
expect_eq "Basic, wrong password" 401 "$(code -u "agent:nope" "$URL/layers/base")"
expect_eq "Basic, malformed" 401 \
    "$(code -H 'Authorization: Basic %%%' "$URL/layers/base")"
long=$(head -c 6000 /dev/zero | tr '\0' a)
expect_eq "a 6000-byte Bearer header: 401" 401 \
    "$(code -H "Authorization: Bearer $long" "$URL/layers/base")"

# ---- the Host check ----

for host in localhost "localhost:$PORT" "127.0.0.1:$PORT" "[::1]:$PORT" \
    layerd.test "LAYERD.test:$PORT"; do
    expect_eq "Host $host: 200" 200 \
        "$(code -H "Host: $host" "${H_AGENT[@]}" "$URL/layers/base")"
done
for host in evil.example "evil.example:$PORT" 127.0.0.2 layerd.test.evil; do
    expect_eq "Host $host: 421" 421 \
        "$(code -H "Host: $host" "${H_AGENT[@]}" "$URL/layers/base")"
done
expect_eq "421 also for the open routes" 421 \
    "$(code -H 'Host: evil.example' "$URL/healthz")"
expect_eq "a malformed Host: 400" 400 \
    "$(code -H 'Host: [localhost]' "$URL/healthz")"

# ---- spans and metrics ----

it_curl -o /dev/null -H "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01-00f067aa0ba902b7-01" \
    "${H_AGENT[@]}" "$URL/layers/base"
it_curl -o /dev/null -H "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02-00f067aa0ba902b7-01" \
    -u "x:$AGENT" "$URL/layers/base"
it_curl -o /dev/null -H "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa03-00f067aa0ba902b7-01" \
    "$URL/layers/base"
it_curl -o /dev/null -H "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa04-00f067aa0ba902b7-01" \
    "${H_WRONG[@]}" "$URL/layers/base"
span_of() {
    local i
    for i in $(seq 50); do
        jq -c --arg t "$1" 'select(.trace_id == $t and .name == "http.request")
            | [.attributes["auth.method"], .attributes["enduser.id"],
               .attributes["auth.failure"]]' "$IT_TMP/trace.log" | grep . && return
        sleep 0.1
    done
}
expect_eq "span: token" '["token","agent",null]' "$(span_of aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01)"
expect_eq "span: basic" '["basic","agent",null]' "$(span_of aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02)"
expect_eq "span: anonymous, refused" '["anonymous",null,"missing"]' \
    "$(span_of aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa03)"
expect_eq "span: a wrong token" '["token",null,"invalid_token"]' \
    "$(span_of aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa04)"

it_curl "${H_AGENT[@]}" "$URL/metrics" >"$W/m.txt"
for reason in missing malformed invalid_token forbidden; do
    n=$(sed -n "s/^layerd_auth_failures_total{reason=\"$reason\"} //p" "$W/m.txt")
    check "layerd_auth_failures_total{reason=\"$reason\"} counted ($n)" test "${n:-0}" -gt 0
done
expect_eq "no certificate failures without --client-ca" 0 \
    "$(sed -n 's/^layerd_auth_failures_total{reason="bad_certificate"} //p' "$W/m.txt")"
check "no principal in the metrics" bash -c "! grep -q 'agent\|lister' '$W/m.txt'"

# ---- SIGHUP: a new policy, then a broken one ----

policy "$ROTATED_SHA" >"$P.new"
mv "$P.new" "$P"
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do
    grep -q 'access policy reloaded' "$SERVER_LOG" && break
    sleep 0.05
done
grep -q "^layerd: access policy reloaded from $P: 4 principal(s)\$" "$SERVER_LOG" ||
    fail "the reload is not logged"
expect_eq "after the reload, the old token: 401" 401 \
    "$(code "${H_AGENT[@]}" "$URL/layers/base")"
expect_eq "after the reload, the new token: 200" 200 \
    "$(code -H "Authorization: Bearer $ROTATED" "$URL/layers/base")"
sed 's/"ops": \["list"\]/"ops": ["list", "write"]/' "$P" >"$P.bad"
mv "$P.bad" "$P"
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do
    grep -q 'not reloaded' "$SERVER_LOG" && break
    sleep 0.05
done
expect_eq "a broken policy: the log says why and where" \
    "layerd: access policy not reloaded, the previous one stays in force: $P: principals[1].grants[0].ops[1]: unknown op 'write' (expected list, read or metrics)" \
    "$(grep 'not reloaded' "$SERVER_LOG")"
expect_eq "after the broken reload, the policy in force stays" 200 \
    "$(code -H "Authorization: Bearer $ROTATED" "$URL/layers/base")"
expect_eq "... and so does its refusal of the old token" 401 \
    "$(code "${H_AGENT[@]}" "$URL/layers/base")"
kill -0 "$SERVER_PID" || die "the server died on a broken policy"
it_stop

# ---- start-up refusals ----

serve() {
    "$LAYERD" serve --store "dir:$D" --trace none "$@"
}
expect_rc "a public address without a policy" 2 serve --listen 0.0.0.0:0
grep -q 'is not a loopback address.*give --auth POLICY' "$IT_TMP/err" ||
    fail "unclear refusal: $(cat "$IT_TMP/err")"
policy "$AGENT_SHA" >"$P.ok"
expect_rc "plain HTTP on a public address, even with a policy" 2 \
    serve --listen '[::]:0' --insecure-http --auth "$P.ok"
grep -q 'plain HTTP is served on loopback addresses only' "$IT_TMP/err" ||
    fail "unclear refusal: $(cat "$IT_TMP/err")"
echo '{"principals": [{"name": "a"}]}' >"$P.broken"
expect_rc "a broken policy at start-up" 2 serve --auth "$P.broken" --listen 127.0.0.1:0
expect_eq "... names the key path" \
    "layerd serve: $P.broken: principals[0]: principal 'a' has no tokens_sha256 and no certificates: nobody could authenticate as it" \
    "$(cat "$IT_TMP/err")"
expect_rc "a missing policy at start-up" 3 serve --auth "$P.nope" --listen 127.0.0.1:0
expect_rc "--client-ca without --auth" 2 serve --client-ca "$P.ok" --listen 127.0.0.1:0
# Plain HTTP on loopback with a policy works.
it_serve --insecure-http --auth "$P.ok"
expect_eq "plain HTTP on loopback with a policy" "200 401" \
    "$(code "${H_AGENT[@]}" "$URL/layers/base") $(code "$URL/layers/base")"
it_stop
# --allow-anonymous: starts on a public address, and says so.
SERVER_LOG=$IT_TMP/anon.log
: >"$SERVER_LOG"
"$LAYERD" serve --store "dir:$D" --trace none --listen 0.0.0.0:0 \
    --listen 127.0.0.1:0 --allow-anonymous 2>"$SERVER_LOG" &
SERVER_PID=$!
it_wait_listening
grep -q '^layerd: WARNING: serving without an access policy on 0.0.0.0:0 (--allow-anonymous)' \
    "$SERVER_LOG" || fail "--allow-anonymous: no warning at start"
expect_eq "--allow-anonymous: anonymous reads immutable layers" "200 404" \
    "$(code "$URL/layers/base") $(code "$URL/layers/live")"
it_stop

# ---- no token anywhere ----

leaks=0
for t in "${ALL_TOKENS[@]}"; do
    b64=$(printf 'x:%s' "$t" | base64 -w0)
    for f in "$IT_TMP"/trace.log "$IT_TMP"/*.log "$IT_TMP/err" "$IT_TMP/out" "$W"/*; do
        [[ -f $f ]] || continue
        if grep -qF -e "$t" -e "$b64" "$f"; then
            fail "a token's text is in $f"
            leaks=$((leaks + 1))
        fi
    done
done
expect_eq "no token text in the trace file, the logs or the answers" 0 "$leaks"
check "the trace file was written" test -s "$IT_TMP/trace.log"
it_done
