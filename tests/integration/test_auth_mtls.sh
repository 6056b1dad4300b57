#!/usr/bin/env bash
# layerd serve --client-ca, with openssl and curl: client certificates
# from a CA made here, verified by GnuTLS and mapped to principals.
#
# - a good certificate (CN and SAN of a principal, clientAuth): 200, and
#   the span says auth.method mtls and enduser.id; two requests on one
#   connection both pass;
# - a certificate matched by its SHA-256 fingerprint: 200;
# - an expired one, one from another CA, one for servers only (no
#   clientAuth), and no certificate at all: 401 (the refusals are
#   counted, the span says why verification failed); never anonymous;
# - a good certificate that belongs to no principal: 401;
# - a token sent along decides over a good certificate, but never over a
#   bad one;
# - the open routes answer whatever certificate comes;
# - a server without --client-ca does not ask for certificates.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init auth_mtls 90
need curl jq openssl

D=$IT_TMP/store
C=$IT_TMP/certs
mkdir -p "$C"
mkdemo "$D"
IT_STORE=$D

# ---- the certificates ----

# ca NAME: a self-signed CA (EC P-256).
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$C/$1.key" -out "$C/$1.crt" -days 30 -subj "/CN=$1" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null ||
        die "cannot make CA $1"
}
# leaf NAME CA CN EKU [openssl ca dates...]: a certificate signed by CA
# with `openssl ca`, which can set any validity period.
leaf() {
    local name=$1 ca=$2 cn=$3 eku=$4
    shift 4
    mkdir -p "$C/$ca.db"
    : >>"$C/$ca.db/index.txt"
    [[ -f $C/$ca.db/serial ]] || echo 1000 >"$C/$ca.db/serial"
    cat >"$C/$name.cnf" <<EOF
[ca]
default_ca = this
[this]
dir = $C/$ca.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $C/$ca.crt
private_key = $C/$ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $eku
subjectAltName = DNS:ci.example
EOF
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$C/$name.key" -out "$C/$name.csr" -subj "/CN=$cn" \
        2>/dev/null || die "cannot make the request of $name"
    openssl ca -batch -notext -config "$C/$name.cnf" -in "$C/$name.csr" \
        -out "$C/$name.crt" "$@" >/dev/null 2>&1 ||
        die "cannot sign $name"
}
ca ca
ca other
leaf good ca ci-runner clientAuth -days 7
leaf expired ca ci-runner clientAuth -startdate 20200101000000Z \
    -enddate 20200201000000Z
leaf foreign other ci-runner clientAuth -days 7
leaf server-only ca ci-runner serverAuth -days 7
leaf stranger ca stranger clientAuth -days 7
leaf pinned ca pinned-host clientAuth -days 7
openssl verify -CAfile "$C/ca.crt" "$C/good.crt" >/dev/null ||
    die "control: the good certificate does not verify with openssl"
if openssl verify -CAfile "$C/ca.crt" "$C/expired.crt" >/dev/null 2>&1; then
    die "control: the expired certificate verifies"
fi
FP=$(openssl x509 -in "$C/pinned.crt" -noout -fingerprint -sha256 |
    sed 's/^.*Fingerprint=//')
out=$("$LAYERD" token new)
TOKEN=$(sed -n 's/^token: //p' <<<"$out")
TOKEN_SHA=$(sed -n 's/^tokens_sha256: //p' <<<"$out")

cat >"$IT_TMP/policy.json" <<JSON
{"principals": [
  {"name": "ci", "certificates": [{"subject_cn": "ci-runner", "san_dns": "ci.example"}],
   "grants": [{"layers": ["*"], "ops": ["list", "read", "metrics"]}]},
  {"name": "pinned", "certificates": [{"sha256": "$FP"}],
   "grants": [{"layers": ["base"], "ops": ["read"]}]},
  {"name": "agent", "tokens_sha256": ["$TOKEN_SHA"],
   "grants": [{"layers": ["app"], "ops": ["read"]}]}
]}
JSON

it_serve --auth "$IT_TMP/policy.json" --client-ca "$C/ca.crt"
grep -q "^layerd: client certificates verified against 1 CA certificate(s) of $C/ca.crt\$" \
    "$SERVER_LOG" || fail "the start-up log does not name the client CA"

# as NAME [CURL ARGS...] PATH: the status of GET PATH with certificate
# NAME ("none": without one), and the traceparent answered in $IT_TMP/tp.
as() {
    local name=$1 args=()
    shift
    if [[ $name != none ]]; then
        args=(--cert "$C/$name.crt" --key "$C/$name.key")
    fi
    it_curl "${args[@]}" -D "$IT_TMP/h" -o /dev/null -w '%{http_code}' \
        "${@:1:$#-1}" "$URL${*: -1}"
}
# span_attr ATTR: that attribute of the last request's root span.
span_attr() {
    local tid i v
    tid=$(tr -d '\r' <"$IT_TMP/h" | sed -n 's/^traceparent: 00-\([0-9a-f]*\)-.*/\1/Ip')
    for i in $(seq 50); do
        v=$(jq -r --arg t "$tid" --arg a "$1" 'select(.trace_id == $t and
            .name == "http.request") | .attributes[$a] // "-"' \
            "$IT_TMP/trace.log")
        [[ -n $v ]] && break
        sleep 0.1
    done
    printf '%s' "$v"
}

expect_eq "good certificate: 200" 200 "$(as good /layers/base)"
expect_eq "... auth.method" mtls "$(span_attr auth.method)"
expect_eq "... enduser.id" ci "$(span_attr enduser.id)"
expect_eq "good certificate: the list" 200 "$(as good /layers)"
expect_eq "two requests on one connection" "200 200" \
    "$(it_curl --cert "$C/good.crt" --key "$C/good.key" -o /dev/null -o /dev/null \
        -w '%{http_code} ' "$URL/layers/base" "$URL/layers/app" | sed 's/ $//')"
expect_eq "pinned by fingerprint: 200" 200 "$(as pinned /layers/base)"
expect_eq "... enduser.id" pinned "$(span_attr enduser.id)"
expect_eq "pinned, outside its grant: 404" 404 "$(as pinned /layers/app)"

expect_eq "expired certificate: 401" 401 "$(as expired /layers/base)"
check "... the span says expired ($(span_attr auth.certificate.failure))" \
    grep -qi expired <<<"$(span_attr auth.certificate.failure)"
expect_eq "... reason" bad_certificate "$(span_attr auth.failure)"
expect_eq "another CA's certificate: 401" 401 "$(as foreign /layers/base)"
check "... the span says not trusted" \
    grep -qi 'not trusted\|signer' <<<"$(span_attr auth.certificate.failure)"
expect_eq "a server-only certificate: 401" 401 "$(as server-only /layers/base)"
expect_eq "... reason" bad_certificate "$(span_attr auth.failure)"
expect_eq "no certificate: 401" 401 "$(as none /layers/base)"
expect_eq "... anonymous" anonymous "$(span_attr auth.method)"
expect_eq "a good certificate of nobody: 401" 401 "$(as stranger /layers/base)"
expect_eq "... reason" unknown_certificate "$(span_attr auth.failure)"

expect_eq "token and good certificate: the token decides" 200 \
    "$(as good -H "Authorization: Bearer $TOKEN" /layers/app)"
expect_eq "... enduser.id" agent "$(span_attr enduser.id)"
expect_eq "... and its grants" 404 \
    "$(as good -H "Authorization: Bearer $TOKEN" /layers/base)"
expect_eq "token and expired certificate: 401" 401 \
    "$(as expired -H "Authorization: Bearer $TOKEN" /layers/app)"
expect_eq "token alone: 200" 200 "$(as none -H "Authorization: Bearer $TOKEN" /layers/app)"

for name in expired foreign none; do
    expect_eq "open route with $name: 200" 200 "$(as "$name" /healthz)"
done

m=$(it_curl --cert "$C/good.crt" --key "$C/good.key" "$URL/metrics")
n=$(sed -n 's/^layerd_auth_failures_total{reason="bad_certificate"} //p' <<<"$m")
expect_eq "bad certificates counted" 4 "$n"
expect_eq "unknown certificates counted" 1 \
    "$(sed -n 's/^layerd_auth_failures_total{reason="unknown_certificate"} //p' <<<"$m")"
it_stop

# Without --client-ca, no certificate is asked for or looked at.
it_serve --auth "$IT_TMP/policy.json"
expect_eq "no --client-ca: a certificate is not a credential" 401 \
    "$(as good /layers/base)"
expect_eq "... the request is anonymous" anonymous "$(span_attr auth.method)"
it_stop

# A bundle that is not one is refused at start-up.
echo "not PEM" >"$IT_TMP/bad-ca.pem"
expect_rc "a bad --client-ca" 2 "$LAYERD" serve --store "dir:$D" \
    --listen 127.0.0.1:0 --auth "$IT_TMP/policy.json" \
    --client-ca "$IT_TMP/bad-ca.pem"
grep -q 'no PEM certificates' "$IT_TMP/err" || fail "unclear: $(cat "$IT_TMP/err")"
check "no token text in the trace or the logs" \
    bash -c "! grep -qF -- '$TOKEN' '$IT_TMP/trace.log' '$IT_TMP/server.log'"
it_done
