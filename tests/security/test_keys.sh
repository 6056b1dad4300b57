#!/usr/bin/env bash
# Key material and start-up: an RSA-1024 key, an EC key on a 192-bit
# curve, a key file others can read (0644), a FIFO and a directory as the
# key are each refused at start-up within 1 s, with a message that says
# what is wrong (exit status 2). --allow-insecure-key-permissions lets a
# 0644 key through; a 0600 P-256 key is served. SIGTERM and SIGINT stop
# a start-up that is blocked (here in opening a --trace FIFO nobody
# reads) within 1 s. File ETags carry no inode numbers.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
it_init keys 90
# shellcheck source=tests/security/common.sh
source "$(dirname "$0")/common.sh"
need openssl curl jq

IT_STORE=$IT_TMP/demo
mkdemo "$IT_STORE"
K=$IT_TMP/keys
mkdir -p "$K"
# pair NAME OPENSSL-KEY-ARGS...: NAME.key (0600) and a self-signed NAME.crt
pair() {
    local name=$1
    shift
    openssl req -x509 "$@" -nodes -keyout "$K/$name.key" -out "$K/$name.crt" \
        -days 2 -subj /CN=localhost 2>"$IT_TMP/openssl.err" ||
        return 1
    chmod 0600 "$K/$name.key"
}
pair good -newkey ec -pkeyopt ec_paramgen_curve:P-256 || die "openssl: $(cat "$IT_TMP/openssl.err")"
pair rsa1024 -newkey rsa:1024 || die "openssl cannot make an RSA-1024 key"
# The smallest curve this OpenSSL still makes, below 256 bits.
ec_small=
for curve in prime192v1 secp224r1; do
    if pair ec-small -newkey ec -pkeyopt "ec_paramgen_curve:$curve"; then
        ec_small=$curve
        break
    fi
done
cp "$K/good.key" "$K/world.key"
chmod 0644 "$K/world.key"
mkfifo "$K/fifo.key"
mkdir "$K/dir.key"

# refused NAME CERT KEY WANT [ARGS...]: start-up fails with status 2 in
# under 1 s, and stderr says WANT.
refused() {
    local name=$1 cert=$2 key=$3 want=$4 rc=0 t0 ms
    shift 4
    t0=$(date +%s%N)
    timeout 10 "$LAYERD" serve --store "dir:$IT_STORE" --listen 127.0.0.1:0 \
        --trace none --cert "$cert" --key "$key" "$@" 2>"$IT_TMP/err" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    expect_eq "$name: refused (exit status)" 2 "$rc"
    check "$name: within 1 s ($ms ms)" test "$ms" -lt 1000
    check "$name: says '$want'" grep -qF -- "$want" "$IT_TMP/err"
}
refused "RSA-1024 key" "$K/rsa1024.crt" "$K/rsa1024.key" \
    "is RSA with 1024 bits; at least 2048 are required"
if [[ -n $ec_small ]]; then
    refused "EC key on $ec_small" "$K/ec-small.crt" "$K/ec-small.key" \
        "-bit elliptic curve; at least 256 bits are required"
else
    fail "this OpenSSL makes no EC key under 256 bits to test with"
fi
refused "0644 key" "$K/good.crt" "$K/world.key" \
    "has mode 0644: its group or others can read or write it"
refused "FIFO key" "$K/good.crt" "$K/fifo.key" "is not a regular file"
refused "directory key" "$K/good.crt" "$K/dir.key" "is not a regular file"
refused "FIFO certificate" "$K/fifo.key" "$K/good.key" "is not a regular file"

# Good keys are served; a loose one only when allowed.
it_serve --cert "$K/good.crt" --key "$K/good.key" --trace none
check "a 0600 P-256 key is served" it_curl --no-insecure \
    --cacert "$K/good.crt" -o /dev/null "https://localhost:$PORT/healthz"
# ETags are opaque: no inode of the file, in hex or decimal.
f=$IT_STORE/base/fs/etc/hostname
etag=$(it_curl -D - -o /dev/null "$URL/layers/base/files/etc/hostname" |
    tr -d '\r' | sed -n 's/^etag: //Ip')
check "an ETag is a 128-bit hex digest ($etag)" \
    grep -Eq '^"[0-9a-f]{32}"$' <<<"$etag"
ino=$(stat -c %i "$f")
check "... without the inode" test "${etag/$(printf '%x' "$ino")/}" = "$etag"
check "... in decimal either" test "${etag/$ino/}" = "$etag"
expect_eq "it still validates: 304" 304 \
    "$(it_curl -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" \
        "$URL/layers/base/files/etc/hostname")"
it_stop
it_serve --cert "$K/good.crt" --key "$K/world.key" \
    --allow-insecure-key-permissions --trace none
check "a 0644 key with --allow-insecure-key-permissions is served" \
    it_curl -o /dev/null "$URL/healthz"
it_stop

# A blocked start-up stops on SIGTERM and on SIGINT.
mkfifo "$IT_TMP/trace.fifo"
for sig in TERM INT; do
    SERVER_LOG=$IT_TMP/startup.log
    : >"$SERVER_LOG"
    "$LAYERD" serve --store "dir:$IT_STORE" --listen 127.0.0.1:0 \
        --trace "$IT_TMP/trace.fifo" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    sleep 0.5
    check "SIG$sig: start-up is blocked opening the trace FIFO" \
        kill -0 "$SERVER_PID"
    kill -"$sig" "$SERVER_PID"
    it_wait_exit 1
    expect_eq "SIG$sig: the server exits by that signal" \
        $((128 + $(kill -l "$sig"))) "$SERVER_RC"
    check "SIG$sig: and says so" grep -q "SIG$sig during start-up: exiting" \
        "$SERVER_LOG"
done
it_done
