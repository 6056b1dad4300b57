#!/usr/bin/env bash
# layerd serve, settings: --help; a config file with the long option names
# as keys (comments, blank lines, quotes) is obeyed and the command line
# overrides it; bad files, keys and values are refused with the file and
# line named and exit status 2; --insecure-http serves plain HTTP only;
# bad flag combinations are refused before anything starts; the open-file
# limit is raised; a taken port is a clear error.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
set -euo pipefail
: "${LAYERD:?}" "${LAYERD_SOURCE_DIR:?}"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/server.log" ] && tail -n 20 "$tmp/server.log" >&2
    exit 1
}
# wait_port SCHEME: wait for the listening line; sets port.
wait_port() {
    port=
    for _ in $(seq 200); do
        port=$(sed -n "s|^layerd: listening on $1://127\\.0\\.0\\.1:\\([0-9]*\\)\$|\\1|p" \
            "$tmp/server.log")
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || fail "server exited at start-up"
        sleep 0.05
    done
    fail "server did not report its port"
}
stop_server() {
    local rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    pid=
    [ "$rc" -eq 0 ] || fail "server exited with $rc"
}
# refused WANT_TEXT ARGS...: layerd serve ARGS must exit 2 and say WANT_TEXT.
refused() {
    local want=$1 rc=0
    shift
    timeout 20 "$LAYERD" serve "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "serve $* exited $rc, expected 2 ($(cat "$tmp/err"))"
    grep -qF -- "$want" "$tmp/err" ||
        fail "serve $*: expected '$want' in: $(cat "$tmp/err")"
}

mkdir -p "$tmp/store/one/fs"
echo '{"kind": "diff"}' >"$tmp/store/one/layer.json"
echo hello >"$tmp/store/one/fs/hello.txt"

# --help
"$LAYERD" serve --help >"$tmp/help" || fail "--help failed"
for opt in --store --listen --cert --key --insecure-http --config --trace \
    --log-format --max-exports --max-connections --idle-timeout --grace \
    --openapi; do
    grep -q -- "$opt" "$tmp/help" || fail "--help does not mention $opt"
done

# A config file is obeyed; the command line overrides it.
cat >"$tmp/layerd.conf" <<EOF
# layerd settings

store = dir:$tmp/store
listen = "127.0.0.1:1"
trace=$tmp/file-trace.log
log-format = text
max-exports = 3
grace = 5
EOF
"$LAYERD" serve --config "$tmp/layerd.conf" --listen 127.0.0.1:0 \
    --trace "$tmp/flag-trace.log" 2>"$tmp/server.log" &
pid=$!
wait_port https
curl -sSk --max-time 10 -o /dev/null "https://127.0.0.1:$port/layers/one" ||
    fail "server from a config file does not serve"
stop_server
[ -s "$tmp/flag-trace.log" ] || fail "--trace did not override the file"
[ ! -e "$tmp/file-trace.log" ] || fail "the file's trace was used"
grep -q '^{' "$tmp/flag-trace.log" &&
    fail "log-format = text from the file was not applied"
grep -q ' http.request ok ' "$tmp/flag-trace.log" ||
    fail "no text span line for the request"

# Errors name the file and the line.
printf 'store = dir:%s\n\nbogus = 1\n' "$tmp/store" >"$tmp/bad1.conf"
refused "$tmp/bad1.conf:3: unknown setting 'bogus'" --config "$tmp/bad1.conf"
printf '# c\nmax-exports = 0\n' >"$tmp/bad2.conf"
refused "$tmp/bad2.conf:2: max-exports: 0 is out of range" \
    --config "$tmp/bad2.conf" --store "dir:$tmp/store"
printf 'store dir:x\n' >"$tmp/bad3.conf"
refused "$tmp/bad3.conf:1: expected 'key = value'" --config "$tmp/bad3.conf"
printf 'listen = 127.0.0.1\n' >"$tmp/bad4.conf"
refused "$tmp/bad4.conf:1: listen:" --config "$tmp/bad4.conf" \
    --store "dir:$tmp/store"
printf 'grace = ten\n' >"$tmp/bad5.conf"
refused "$tmp/bad5.conf:1: grace: 'ten' is not a number" \
    --config "$tmp/bad5.conf" --store "dir:$tmp/store"
refused "cannot open config file" --config "$tmp/missing.conf" \
    --store "dir:$tmp/store"

# Bad command lines.
refused "no store" --listen 127.0.0.1:0
refused "unknown option '--bogus'" --bogus 1 --store "dir:$tmp/store"
refused "needs a value" --store
refused "--cert needs --key" --store "dir:$tmp/store" --cert x.pem
refused "exclude each other" --store "dir:$tmp/store" --insecure-http \
    --cert x.pem --key y.pem
refused "brackets" --store "dir:$tmp/store" --listen ::1:8443
refused "not json or text" --store "dir:$tmp/store" --log-format xml
refused "idle-timeout: 0 is out of range" --store "dir:$tmp/store" \
    --idle-timeout 0
refused "unexpected argument" --store "dir:$tmp/store" extra

# A store that does not exist is not a usage error.
rc=0
"$LAYERD" serve --store "dir:$tmp/nope" --listen 127.0.0.1:0 \
    2>"$tmp/err" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] || fail "missing store: exit $rc"
grep -q "nope" "$tmp/err" || fail "missing store not named"

# --insecure-http: plain HTTP, no TLS, and a warning.
"$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
    --insecure-http --trace none 2>"$tmp/server.log" &
pid=$!
wait_port http
grep -q 'WARNING: serving plain HTTP' "$tmp/server.log" ||
    fail "no warning for plain HTTP"
curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$port/layers/one" ||
    fail "--insecure-http does not serve HTTP"
if curl -sSk --max-time 10 -o /dev/null "https://127.0.0.1:$port/healthz" \
    2>/dev/null; then
    fail "--insecure-http answered TLS"
fi
stop_server

# The open-file limit is raised to the hard limit (started low here).
(
    ulimit -Sn 256
    exec "$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
        --trace none 2>"$tmp/server.log"
) &
pid=$!
wait_port https
read -r soft hard < <(awk '/^Max open files/ {print $4, $5}' "/proc/$pid/limits")
[ "$soft" = "$hard" ] || fail "open-file limit not raised: $soft of $hard"

# The port is taken: a clear error, not a hang.
rc=0
timeout 20 "$LAYERD" serve --store "dir:$tmp/store" \
    --listen "127.0.0.1:$port" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || fail "busy port: exit $rc"
grep -q "cannot listen on 127.0.0.1:$port" "$tmp/err" ||
    fail "busy port not reported: $(cat "$tmp/err")"
stop_server

echo "ok: serve config"
