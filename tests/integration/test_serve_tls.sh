#!/usr/bin/env bash
# layerd serve, TLS: TLS 1.2 and 1.3 work and are recorded on the request
# span, TLS 1.1 is refused (a control server proves this curl can speak
# 1.1), plain HTTP on the TLS port fails cleanly while the server keeps
# serving, the logged fingerprint is the one a client sees, the ephemeral
# certificate verifies for localhost, 127.0.0.1 and ::1, configured RSA
# and EC certificates work, a key that does not match is refused at
# start-up, and an incoming traceparent is continued.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
set -euo pipefail
: "${LAYERD:?}" "${LAYERD_SOURCE_DIR:?}"

tmp=$(mktemp -d)
pid=
ctl=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$ctl" ] && kill -9 "$ctl" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/server.log" ] && tail -n 20 "$tmp/server.log" >&2
    exit 1
}

# start_server ARGS...: run layerd serve on an ephemeral port; sets pid
# and port.
start_server() {
    : >"$tmp/server.log"
    "$LAYERD" serve --store "dir:$tmp/demo" --trace "$tmp/trace.log" "$@" \
        2>"$tmp/server.log" &
    pid=$!
    for _ in $(seq 200); do
        port=$(sed -n 's|^layerd: listening on https\{0,1\}://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
            "$tmp/server.log" | head -n 1)
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
c() { curl -sS --max-time 10 "$@"; }

bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkdemo.sh" "$tmp/demo" >/dev/null

# ---- the ephemeral certificate ----
start_server --listen 127.0.0.1:0 --listen '[::1]:0'
url="https://127.0.0.1:$port"
grep -q '^layerd: listening on https://\[::1\]:[0-9]*$' "$tmp/server.log" ||
    fail "no IPv6 listener reported"
port6=$(sed -n 's|^layerd: listening on https://\[::1\]:\([0-9]*\)$|\1|p' \
    "$tmp/server.log")

for v in 1.2 1.3; do
    code=$(c -k --tlsv$v --tls-max $v -o /dev/null -w '%{http_code}' \
        "$url/healthz") || fail "TLS $v request failed"
    [ "$code" = 200 ] || fail "TLS $v: status $code"
done

# Control: this curl can negotiate TLS 1.1 with a server that allows it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/ctl.key" -out "$tmp/ctl.crt" -days 1 -subj /CN=localhost \
    2>/dev/null
openssl s_server -accept 0 -cert "$tmp/ctl.crt" -key "$tmp/ctl.key" \
    -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -www >"$tmp/ctl.log" 2>&1 &
ctl=$!
for _ in $(seq 100); do
    ctlport=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$tmp/ctl.log")
    [ -n "$ctlport" ] && break
    sleep 0.05
done
[ -n "$ctlport" ] || fail "control TLS 1.1 server did not start"
old11=(--tlsv1.0 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0')
c -k "${old11[@]}" -o /dev/null "https://127.0.0.1:$ctlport/" ||
    fail "control: curl cannot speak TLS 1.1 here, the next check is moot"
kill "$ctl"
wait "$ctl" 2>/dev/null || true
ctl=

if c -k "${old11[@]}" -o /dev/null "$url/healthz" 2>/dev/null; then
    fail "TLS 1.1 was accepted"
fi

# Plain HTTP to the TLS port: an error for the client, nothing for us.
if c -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    fail "plain HTTP on the TLS port answered"
fi
kill -0 "$pid" || fail "server died after a plain HTTP request"
[ "$(c -k "$url/healthz")" = '{"status":"ok"}' ] ||
    fail "server does not serve after a plain HTTP request"

# The fingerprint in the log is the one a client sees.
logged=$(sed -n 's/^layerd: ephemeral self-signed certificate SHA256 Fingerprint=\([0-9A-F:]*\)$/\1/p' \
    "$tmp/server.log")
[ ${#logged} -eq 95 ] || fail "no fingerprint logged"
openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null |
    openssl x509 >"$tmp/served.crt" || fail "s_client got no certificate"
seen=$(openssl x509 -in "$tmp/served.crt" -noout -fingerprint -sha256 |
    sed 's/^.*Fingerprint=//')
[ "$seen" = "$logged" ] || fail "fingerprint: logged $logged, served $seen"

# The ephemeral certificate verifies (names, validity, signature).
for u in "https://localhost:$port" "https://127.0.0.1:$port" \
    "https://[::1]:$port6"; do
    c --cacert "$tmp/served.crt" -o /dev/null "$u/healthz" ||
        fail "ephemeral certificate does not verify for $u"
done
openssl x509 -in "$tmp/served.crt" -noout -text >"$tmp/served.txt"
grep -q 'ASN1 OID: prime256v1' "$tmp/served.txt" || fail "not a P-256 key"
grep -q 'TLS Web Server Authentication' "$tmp/served.txt" ||
    fail "no serverAuth extended key usage"

# The TLS version is recorded on the request span.
c -k --tlsv1.2 --tls-max 1.2 -o /dev/null "$url/layers"
stop_server
grep '"url.path":"/layers"' "$tmp/trace.log" |
    grep -q '"tls.protocol.version":"1.2"' || fail "span lacks TLS 1.2"
grep '"url.path":"/healthz"' "$tmp/trace.log" |
    grep -q '"tls.protocol.version":"1.3"' || fail "span lacks TLS 1.3"

# ---- configured certificates ----
for kind in rsa ec; do
    if [ "$kind" = rsa ]; then
        keyopt=(-newkey rsa:2048)
    else
        keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:secp384r1)
    fi
    openssl req -x509 "${keyopt[@]}" -nodes -keyout "$tmp/$kind.key" \
        -out "$tmp/$kind.crt" -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost 2>/dev/null
    start_server --listen 127.0.0.1:0 --cert "$tmp/$kind.crt" \
        --key "$tmp/$kind.key"
    want=$(openssl x509 -in "$tmp/$kind.crt" -noout -fingerprint -sha256 |
        sed 's/^.*Fingerprint=//')
    grep -q "^layerd: configured certificate SHA256 Fingerprint=$want\$" \
        "$tmp/server.log" || fail "$kind: fingerprint not logged"
    c --cacert "$tmp/$kind.crt" -o /dev/null "https://localhost:$port/layers" ||
        fail "$kind certificate does not verify"
    stop_server
done

# A key that does not match the certificate is refused at start-up.
rc=0
"$LAYERD" serve --store "dir:$tmp/demo" --listen 127.0.0.1:0 \
    --cert "$tmp/rsa.crt" --key "$tmp/ec.key" 2>"$tmp/err.log" || rc=$?
[ "$rc" -ne 0 ] || fail "mismatched key accepted"
grep -q 'does not match' "$tmp/err.log" || fail "unclear mismatch error"
rc=0
"$LAYERD" serve --store "dir:$tmp/demo" --listen 127.0.0.1:0 \
    --cert "$tmp/missing.crt" --key "$tmp/ec.key" 2>"$tmp/err.log" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'missing.crt' "$tmp/err.log" ||
    fail "missing certificate not reported"

# ---- traceparent ----
start_server --listen 127.0.0.1:0
tid=4bf92f3577b34da6a3ce929d0e0e4736
c -k -D "$tmp/h1" -o /dev/null \
    -H "traceparent: 00-$tid-00f067aa0ba902b7-01" "https://127.0.0.1:$port/healthz"
grep -qi "^traceparent: 00-$tid-[0-9a-f]\{16\}-01" "$tmp/h1" ||
    fail "incoming trace id not continued"
c -k -D "$tmp/h2" -o /dev/null -H "traceparent: 00-$tid-zz-01" \
    "https://127.0.0.1:$port/healthz"
grep -qi '^traceparent: 00-[0-9a-f]\{32\}-' "$tmp/h2" ||
    fail "no traceparent answered"
grep -qi "^traceparent: 00-$tid-" "$tmp/h2" &&
    fail "malformed traceparent was honoured"
stop_server
grep "\"trace_id\":\"$tid\"" "$tmp/trace.log" | grep -q '"name":"http.request"' ||
    fail "root span not in the incoming trace"

echo "ok: serve tls"
