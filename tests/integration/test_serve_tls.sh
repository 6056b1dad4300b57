#!/usr/bin/env bash
# layerd serve, TLS: TLS 1.2 and 1.3 work and are recorded on the request
# span, TLS 1.1 is refused (a control server proves this curl can speak
# 1.1), plain HTTP on the TLS port fails cleanly while the server keeps
# serving, the logged fingerprint is the one a client sees, the ephemeral
# certificate verifies for localhost, 127.0.0.1 and ::1 (and not without
# it), configured RSA and EC certificates work, a key that does not match
# is refused at start-up, and an incoming traceparent is continued.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_tls 60
need curl openssl

tmp=$IT_TMP
IT_STORE=$tmp/demo
mkdemo "$IT_STORE"

# ---- the ephemeral certificate ----
it_serve --listen '[::1]:0'
grep -q '^layerd: listening on https://\[::1\]:[0-9]*$' "$SERVER_LOG" ||
    die "no IPv6 listener reported"
port6=$(sed -n 's|^layerd: listening on https://\[::1\]:\([0-9]*\)$|\1|p' \
    "$SERVER_LOG")

for v in 1.2 1.3; do
    code=$(it_curl --tlsv$v --tls-max $v -o /dev/null -w '%{http_code}' \
        "$URL/healthz") || die "TLS $v request failed"
    [ "$code" = 200 ] || die "TLS $v: status $code"
done

# Control: this curl can negotiate TLS 1.1 with a server that allows it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/ctl.key" -out "$tmp/ctl.crt" -days 1 -subj /CN=localhost \
    2>/dev/null
# The log exists before the server starts: the `>` of a background
# command creates it in the child, maybe after the first read below.
: >"$tmp/ctl.log"
openssl s_server -accept 0 -cert "$tmp/ctl.crt" -key "$tmp/ctl.key" \
    -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -www >"$tmp/ctl.log" 2>&1 &
ctl=$!
ctlport=
for _ in $(seq 100); do
    ctlport=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$tmp/ctl.log")
    [ -n "$ctlport" ] && break
    sleep 0.05
done
[ -n "$ctlport" ] || die "control TLS 1.1 server did not start"
old11=(--tlsv1.0 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0')
it_curl "${old11[@]}" -o /dev/null "https://127.0.0.1:$ctlport/" ||
    die "control: curl cannot speak TLS 1.1 here, the next check is moot"
kill "$ctl"
wait "$ctl" 2>/dev/null || true

if it_curl "${old11[@]}" -o /dev/null "$URL/healthz" 2>/dev/null; then
    die "TLS 1.1 was accepted"
fi

# Plain HTTP to the TLS port: an error for the client, nothing for us.
if it_curl -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
    die "plain HTTP on the TLS port answered"
fi
kill -0 "$SERVER_PID" || die "server died after a plain HTTP request"
[ "$(it_curl "$URL/healthz")" = '{"status":"ok"}' ] ||
    die "server does not serve after a plain HTTP request"

# The fingerprint in the log is the one a client sees.
logged=$(sed -n 's/^layerd: ephemeral self-signed certificate SHA256 Fingerprint=\([0-9A-F:]*\)$/\1/p' \
    "$SERVER_LOG")
[ ${#logged} -eq 95 ] || die "no fingerprint logged"
openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
    openssl x509 >"$tmp/served.crt" || die "s_client got no certificate"
seen=$(openssl x509 -in "$tmp/served.crt" -noout -fingerprint -sha256 |
    sed 's/^.*Fingerprint=//')
[ "$seen" = "$logged" ] || die "fingerprint: logged $logged, served $seen"

# The ephemeral certificate verifies (names, validity, signature), and
# verification is really on: without it as a CA the same request fails.
for u in "https://localhost:$PORT" "https://127.0.0.1:$PORT" \
    "https://[::1]:$port6"; do
    it_curl --no-insecure --cacert "$tmp/served.crt" -o /dev/null \
        "$u/healthz" || die "ephemeral certificate does not verify for $u"
done
if it_curl --no-insecure -o /dev/null "$URL/healthz" 2>/dev/null; then
    die "a self-signed certificate verified without --cacert"
fi
openssl x509 -in "$tmp/served.crt" -noout -text >"$tmp/served.txt"
grep -q 'ASN1 OID: prime256v1' "$tmp/served.txt" || die "not a P-256 key"
grep -q 'TLS Web Server Authentication' "$tmp/served.txt" ||
    die "no serverAuth extended key usage"

# The TLS version is recorded on the request span.
it_curl --tlsv1.2 --tls-max 1.2 -o /dev/null "$URL/layers"
it_stop
grep '"url.path":"/layers"' "$tmp/trace.log" |
    grep -q '"tls.protocol.version":"1.2"' || die "span lacks TLS 1.2"
grep '"url.path":"/healthz"' "$tmp/trace.log" |
    grep -q '"tls.protocol.version":"1.3"' || die "span lacks TLS 1.3"

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
    it_serve --cert "$tmp/$kind.crt" --key "$tmp/$kind.key"
    want=$(openssl x509 -in "$tmp/$kind.crt" -noout -fingerprint -sha256 |
        sed 's/^.*Fingerprint=//')
    grep -q "^layerd: configured certificate SHA256 Fingerprint=$want\$" \
        "$SERVER_LOG" || die "$kind: fingerprint not logged"
    it_curl --no-insecure --cacert "$tmp/$kind.crt" -o /dev/null \
        "https://localhost:$PORT/layers" || die "$kind certificate does not verify"
    it_stop
done

# A key that does not match the certificate is refused at start-up.
rc=0
"$LAYERD" serve --store "dir:$IT_STORE" --listen 127.0.0.1:0 \
    --cert "$tmp/rsa.crt" --key "$tmp/ec.key" 2>"$tmp/err.log" || rc=$?
[ "$rc" -ne 0 ] || die "mismatched key accepted"
grep -q 'does not match' "$tmp/err.log" || die "unclear mismatch error"
rc=0
"$LAYERD" serve --store "dir:$IT_STORE" --listen 127.0.0.1:0 \
    --cert "$tmp/missing.crt" --key "$tmp/ec.key" 2>"$tmp/err.log" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'missing.crt' "$tmp/err.log" ||
    die "missing certificate not reported"

# ---- traceparent ----
it_serve
tid=4bf92f3577b34da6a3ce929d0e0e4736
it_curl -D "$tmp/h1" -o /dev/null \
    -H "traceparent: 00-$tid-00f067aa0ba902b7-01" "$URL/healthz"
grep -qi "^traceparent: 00-$tid-[0-9a-f]\{16\}-01" "$tmp/h1" ||
    die "incoming trace id not continued"
it_curl -D "$tmp/h2" -o /dev/null -H "traceparent: 00-$tid-zz-01" \
    "$URL/healthz"
grep -qi '^traceparent: 00-[0-9a-f]\{32\}-' "$tmp/h2" ||
    die "no traceparent answered"
grep -qi "^traceparent: 00-$tid-" "$tmp/h2" &&
    die "malformed traceparent was honoured"
it_stop
grep "\"trace_id\":\"$tid\"" "$tmp/trace.log" | grep -q '"name":"http.request"' ||
    die "root span not in the incoming trace"

echo "ok: serve tls"
