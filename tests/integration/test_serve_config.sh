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
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_config 60
need curl

tmp=$IT_TMP
# refused WANT_TEXT ARGS...: layerd serve ARGS must exit 2 and say WANT_TEXT.
refused() {
    local want=$1 rc=0
    shift
    timeout 20 "$LAYERD" serve "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq 2 ] || die "serve $* exited $rc, expected 2 ($(cat "$tmp/err"))"
    grep -qF -- "$want" "$tmp/err" ||
        die "serve $*: expected '$want' in: $(cat "$tmp/err")"
}

mkdir -p "$tmp/store/one/fs"
echo '{"kind": "diff"}' >"$tmp/store/one/layer.json"
echo hello >"$tmp/store/one/fs/hello.txt"

# --help
"$LAYERD" serve --help >"$tmp/help" || die "--help failed"
for opt in --store --listen --cert --key --insecure-http --config --trace \
    --log-format --max-exports --max-connections --idle-timeout --grace \
    --openapi --no-cache --ui-dir; do
    grep -q -- "$opt" "$tmp/help" || die "--help does not mention $opt"
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
# (it_serve adds --listen 127.0.0.1:0; IT_STORE is not set, so the store
# comes from the file.)
it_serve --config "$tmp/layerd.conf" --trace "$tmp/flag-trace.log"
[ "${URL%%:*}" = https ] || die "the file's server does not serve https"
it_curl -o /dev/null "$URL/layers/one" ||
    die "server from a config file does not serve"
it_stop
[ -s "$tmp/flag-trace.log" ] || die "--trace did not override the file"
[ ! -e "$tmp/file-trace.log" ] || die "the file's trace was used"
grep -q '^{' "$tmp/flag-trace.log" &&
    die "log-format = text from the file was not applied"
grep -q ' http.request ok ' "$tmp/flag-trace.log" ||
    die "no text span line for the request"

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
[ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] || die "missing store: exit $rc"
grep -q "nope" "$tmp/err" || die "missing store not named"

# --insecure-http: plain HTTP, no TLS, and a warning.
it_serve --store "dir:$tmp/store" --insecure-http --trace none
[ "$URL" = "http://127.0.0.1:$PORT" ] || die "not listening on http: $URL"
grep -q 'WARNING: serving plain HTTP' "$SERVER_LOG" ||
    die "no warning for plain HTTP"
it_curl -o /dev/null "$URL/layers/one" ||
    die "--insecure-http does not serve HTTP"
if it_curl -o /dev/null "https://127.0.0.1:$PORT/healthz" 2>/dev/null; then
    die "--insecure-http answered TLS"
fi
it_stop

# The open-file limit is raised to the hard limit (started low here).
SERVER_LOG=$tmp/server.log
: >"$SERVER_LOG"
(
    ulimit -Sn 256
    exec "$LAYERD" serve --store "dir:$tmp/store" --listen 127.0.0.1:0 \
        --trace none 2>"$SERVER_LOG"
) &
SERVER_PID=$!
it_wait_listening
read -r soft hard < <(awk '/^Max open files/ {print $4, $5}' "/proc/$SERVER_PID/limits")
[ "$soft" = "$hard" ] || die "open-file limit not raised: $soft of $hard"

# The port is taken: a clear error, not a hang.
rc=0
timeout 20 "$LAYERD" serve --store "dir:$tmp/store" \
    --listen "127.0.0.1:$PORT" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || die "busy port: exit $rc"
grep -q "cannot listen on 127.0.0.1:$PORT" "$tmp/err" ||
    die "busy port not reported: $(cat "$tmp/err")"
it_stop

echo "ok: serve config"
