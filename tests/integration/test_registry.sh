#!/usr/bin/env bash
# The registry view (/v2/) with the real clients:
#   - skopeo copy of layers/<id>:latest images of the demo store into an
#     OCI layout, TLS verified with the server's certificate
#     (--src-cert-dir) and unverified (--src-tls-verify=false); skopeo
#     inspect; umoci unpack of the pulled image equals the source chain
#     merged the overlayfs way (and a snapshot image its top tree);
#   - podman pull into a scratch storage root, podman image inspect;
#   - HEAD on manifests and blobs (length and digest as the GET's), a
#     blob pulled in two halves with Range, every error code, push
#     methods 405 UNSUPPORTED, _catalog and tags/list pagination;
#   - with --auth: skopeo --creds user:TOKEN and podman login work, a
#     wrong token is 401 UNAUTHORIZED, a token without the read grant is
#     DENIED;
#   - --registry-compression zstd and none: the layers' media types, and
#     blobs that decompress to the config's diff IDs;
#   - images of the stores the real engines made (tests/fixtures/
#     mkengines.sh): buildah's containers-storage (overlay and vfs) and
#     dockerd's overlay2 image under their own names (docker's also as
#     library/<name> and docker.io/library/<name>), their own configs
#     (the image ID is the store's) and layers whose diff IDs are the
#     store's; with --tar canonical, the config rewritten with the
#     canonical diff IDs and all else kept; skipped, said so, when the
#     engines cannot run here.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init registry 300
need skopeo podman umoci jq curl openssl sha256sum gzip zstd

D=$IT_TMP/demo
mkdemo "$D"
IT_STORE=$D

# The server's certificate, for 127.0.0.1; the clients trust it as a CA.
C=$IT_TMP/certs
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$C/server.key" -out "$C/server.crt" -days 2 -subj "/CN=layerd" \
    -addext subjectAltName=IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null ||
    die "cannot make the server certificate"
chmod 600 "$C/server.key"
CERTDIR=$IT_TMP/certs.d
mkdir -p "$CERTDIR"
cp "$C/server.crt" "$CERTDIR/ca.crt"

it_serve --cert "$C/server.crt" --key "$C/server.key"
H=127.0.0.1:$PORT

# v2 GET PATH [CURL ARGS...]: the body to $IT_TMP/body, headers to
# $IT_TMP/h; prints the status.
v2() {
    local path=$1
    shift
    it_curl -o "$IT_TMP/body" -D "$IT_TMP/h" -w '%{http_code}' "$@" \
        "$URL/v2/$path"
}

# error_is WHAT STATUS CODE PATH [CURL ARGS...]
error_is() {
    local what=$1 status=$2 code=$3 path=$4 got
    shift 4
    got=$(v2 "$path" "$@")
    expect_eq "$what: status" "$status" "$got"
    expect_eq "$what: code" "$code" \
        "$(jq -r '.errors[0].code' "$IT_TMP/body" 2>/dev/null)"
}

# ---- /v2/ ----
expect_eq "GET /v2/" 200 "$(v2 '')"
expect_eq "GET /v2/ body" "{}" "$(cat "$IT_TMP/body")"
expect_eq "GET /v2/ Docker-Distribution-API-Version" registry/2.0 \
    "$(it_hdr "$IT_TMP/h" Docker-Distribution-API-Version)"

# ---- skopeo, verified and unverified TLS ----
pull() { # pull WHAT DEST ARGS...
    local what=$1 dest=$2
    shift 2
    if skopeo copy -q "$@" "docker://$H/$what" "oci:$dest:img" \
        >"$IT_TMP/skopeo.log" 2>&1; then
        ok "skopeo copy $what ($*)"
        return 0
    fi
    fail "skopeo copy $what ($*): $(tail -n 3 "$IT_TMP/skopeo.log")"
    return 1
}
pull layers/patch:latest "$IT_TMP/oci-patch" --src-cert-dir "$CERTDIR"
pull layers/snap-top:latest "$IT_TMP/oci-snap" --src-tls-verify=false
if skopeo copy -q --src-cert-dir "$IT_TMP/empty-certs" \
    "docker://$H/layers/base:latest" "oci:$IT_TMP/oci-x:img" \
    >/dev/null 2>&1; then
    fail "skopeo trusts the server without its certificate"
else
    ok "skopeo refuses the server without its certificate"
fi

if skopeo inspect --cert-dir "$CERTDIR" "docker://$H/layers/patch:latest" \
    >"$IT_TMP/inspect.json" 2>"$IT_TMP/inspect.err"; then
    expect_eq "skopeo inspect: three layers" 3 \
        "$(jq '.Layers | length' "$IT_TMP/inspect.json")"
    expect_eq "skopeo inspect: linux" linux "$(jq -r .Os "$IT_TMP/inspect.json")"
    expect_eq "skopeo inspect: the tag" latest \
        "$(jq -r '.RepoTags[0]' "$IT_TMP/inspect.json")"
else
    fail "skopeo inspect: $(tail -n 2 "$IT_TMP/inspect.err")"
fi

if umoci unpack --image "$IT_TMP/oci-patch:img" "$IT_TMP/b-patch" \
    >"$IT_TMP/umoci.log" 2>&1; then
    check "umoci unpack of the pulled layers/patch equals the chain merged" \
        treecmp merged "$IT_TMP/b-patch/rootfs" "$D/base/fs" "$D/app/fs" \
        "$D/patch/fs"
else
    fail "umoci unpack layers/patch: $(tail -n 3 "$IT_TMP/umoci.log")"
fi
if umoci unpack --image "$IT_TMP/oci-snap:img" "$IT_TMP/b-snap" \
    >"$IT_TMP/umoci.log" 2>&1; then
    check "umoci unpack of the pulled layers/snap-top equals its tree" \
        treecmp trees "$D/snap-top/fs" "$IT_TMP/b-snap/rootfs"
else
    fail "umoci unpack layers/snap-top: $(tail -n 3 "$IT_TMP/umoci.log")"
fi

# ---- podman into a scratch storage root ----
PR=$IT_TMP/podman
mkdir -p "$PR/root" "$PR/run"
podman_() {
    podman --root "$PR/root" --runroot "$PR/run" --storage-driver vfs \
        --cgroup-manager cgroupfs --events-backend none "$@"
}
if podman_ pull -q --cert-dir "$CERTDIR" "$H/layers/app:latest" \
    >"$IT_TMP/podman.out" 2>"$IT_TMP/podman.err"; then
    ok "podman pull layers/app"
    expect_eq "podman image inspect: two layers" 2 \
        "$(podman_ image inspect "$H/layers/app:latest" |
            jq '.[0].RootFS.Layers | length')"
    v2 layers/app/manifests/latest >/dev/null
    expect_eq "podman: the image ID is the config's digest" \
        "$(jq -r .config.digest "$IT_TMP/body")" \
        "sha256:$(podman_ image inspect "$H/layers/app:latest" |
            jq -r '.[0].Id')"
else
    fail "podman pull layers/app: $(tail -n 3 "$IT_TMP/podman.err")"
fi
podman_ rmi -a -f >/dev/null 2>&1

# ---- HEAD, Range ----
expect_eq "GET manifest" 200 "$(v2 layers/patch/manifests/latest)"
cp "$IT_TMP/body" "$IT_TMP/manifest.json"
mdigest=$(sha256_of "$IT_TMP/manifest.json")
mlen=$(stat -c %s "$IT_TMP/manifest.json")
expect_eq "HEAD manifest" 200 "$(v2 layers/patch/manifests/latest -I)"
expect_eq "HEAD manifest: Content-Length" "$mlen" \
    "$(it_hdr "$IT_TMP/h" Content-Length)"
expect_eq "HEAD manifest: Docker-Content-Digest" "$mdigest" \
    "$(it_hdr "$IT_TMP/h" Docker-Content-Digest)"
expect_eq "GET manifest by digest" 200 "$(v2 "layers/patch/manifests/$mdigest")"
check "GET manifest by digest: the same bytes" \
    cmp -s "$IT_TMP/body" "$IT_TMP/manifest.json"

bdigest=$(jq -r '.layers[0].digest' "$IT_TMP/manifest.json")
bsize=$(jq -r '.layers[0].size' "$IT_TMP/manifest.json")
expect_eq "HEAD blob" 200 "$(v2 "layers/patch/blobs/$bdigest" -I)"
expect_eq "HEAD blob: Content-Length" "$bsize" \
    "$(it_hdr "$IT_TMP/h" Content-Length)"
expect_eq "HEAD blob: Docker-Content-Digest" "$bdigest" \
    "$(it_hdr "$IT_TMP/h" Docker-Content-Digest)"
half=$((bsize / 2))
expect_eq "GET the first half" 206 \
    "$(v2 "layers/patch/blobs/$bdigest" -r "0-$((half - 1))")"
mv "$IT_TMP/body" "$IT_TMP/part1"
expect_eq "resume with Range: bytes=$half-" 206 \
    "$(v2 "layers/patch/blobs/$bdigest" -H "Range: bytes=$half-")"
expect_eq "the resumed part's Content-Range" "bytes $half-$((bsize - 1))/$bsize" \
    "$(it_hdr "$IT_TMP/h" Content-Range)"
expect_eq "the two halves hash to the digest" "$bdigest" \
    "$(cat "$IT_TMP/part1" "$IT_TMP/body" | sha256_of -)"
expect_eq "a Range past the end" 416 \
    "$(v2 "layers/patch/blobs/$bdigest" -H "Range: bytes=$((bsize + 10))-")"

check "the request spans name the repository and the reference" \
    grep -q '"registry.repository":"layers/patch","registry.reference":"latest"' \
    "$IT_TMP/trace.log"

# ---- every error code ----
zero=sha256:0000000000000000000000000000000000000000000000000000000000000000
error_is "unknown repository" 404 NAME_UNKNOWN layers/nope/manifests/latest
error_is "unknown tag" 404 MANIFEST_UNKNOWN layers/patch/manifests/v9
error_is "unknown manifest digest" 404 MANIFEST_UNKNOWN \
    "layers/patch/manifests/$zero"
error_is "unknown blob" 404 BLOB_UNKNOWN "layers/patch/blobs/$zero"
error_is "malformed digest" 400 DIGEST_INVALID layers/patch/blobs/sha256:xyz
error_is "malformed name" 400 NAME_INVALID Layers/Patch/tags/list
for m in POST PUT PATCH DELETE; do
    error_is "$m manifest" 405 UNSUPPORTED layers/patch/manifests/latest -X "$m"
    expect_eq "$m manifest: Allow" "GET, HEAD" "$(it_hdr "$IT_TMP/h" Allow)"
done
error_is "POST blob upload" 405 UNSUPPORTED layers/patch/blobs/uploads/ -X POST
error_is "DELETE blob" 405 UNSUPPORTED "layers/patch/blobs/$bdigest" -X DELETE

# ---- pagination ----
expect_eq "_catalog" 200 "$(v2 _catalog)"
expect_eq "_catalog: every layer image" \
    '["layers/app","layers/base","layers/patch","layers/snap-base","layers/snap-top"]' \
    "$(jq -c .repositories "$IT_TMP/body")"
expect_eq "_catalog?n=2" 200 "$(v2 '_catalog?n=2')"
expect_eq "_catalog?n=2: the first page" '["layers/app","layers/base"]' \
    "$(jq -c .repositories "$IT_TMP/body")"
link=$(it_hdr "$IT_TMP/h" Link)
expect_eq "_catalog?n=2: Link" '</v2/_catalog?last=layers%2Fbase&n=2>; rel="next"' \
    "$link"
next=${link#</v2/}
next=${next%%>*}
expect_eq "the Link's page" 200 "$(v2 "$next")"
expect_eq "the Link's page: the next two" '["layers/patch","layers/snap-base"]' \
    "$(jq -c .repositories "$IT_TMP/body")"
expect_eq "_catalog?n=0" 200 "$(v2 '_catalog?n=0')"
expect_eq "_catalog?n=0: empty, no Link" '[]|' \
    "$(jq -c .repositories "$IT_TMP/body")|$(it_hdr "$IT_TMP/h" Link)"
expect_eq "tags/list" '{"name":"layers/app","tags":["latest"]}' \
    "$(v2 layers/app/tags/list >/dev/null; jq -c . "$IT_TMP/body")"
expect_eq "tags/list?last=latest" '[]' \
    "$(v2 'layers/app/tags/list?last=latest' >/dev/null; jq -c .tags "$IT_TMP/body")"
it_stop

# ---- access control ----
token=t-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
lister=l-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
lhash=$(printf '%s' "$lister" | sha256sum | cut -d' ' -f1)
cat >"$IT_TMP/policy.json" <<JSON
{"principals": [
  {"name": "agent", "tokens_sha256": ["$hash"],
   "grants": [{"layers": ["*"], "ops": ["list", "read"]}]},
  {"name": "lister", "tokens_sha256": ["$lhash"],
   "grants": [{"layers": ["*"], "ops": ["list"]}]}]}
JSON
it_serve --cert "$C/server.crt" --key "$C/server.key" \
    --auth "$IT_TMP/policy.json"
H=127.0.0.1:$PORT
error_is "GET /v2/ without credentials" 401 UNAUTHORIZED ''
case $(it_hdr "$IT_TMP/h" WWW-Authenticate) in
Basic\ realm=*) ok "401 carries a Basic challenge" ;;
*) fail "401 challenge: '$(it_hdr "$IT_TMP/h" WWW-Authenticate)'" ;;
esac
expect_eq "GET /v2/ with the token" 200 "$(v2 '' -u "agent:$token")"
error_is "a wrong token" 401 UNAUTHORIZED layers/app/manifests/latest \
    -u "agent:wrong"
error_is "a token without the read grant" 403 DENIED \
    layers/app/manifests/latest -u "x:$lister"
if skopeo inspect --cert-dir "$CERTDIR" --creds "agent:$token" \
    "docker://$H/layers/app:latest" >/dev/null 2>"$IT_TMP/err"; then
    ok "skopeo --creds user:TOKEN"
else
    fail "skopeo --creds user:TOKEN: $(tail -n 2 "$IT_TMP/err")"
fi
pull layers/app:latest "$IT_TMP/oci-auth" --src-cert-dir "$CERTDIR" \
    --src-creds "agent:$token"
if skopeo inspect --cert-dir "$CERTDIR" --creds "agent:wrong" \
    "docker://$H/layers/app:latest" >/dev/null 2>"$IT_TMP/err"; then
    fail "skopeo with a wrong token succeeded"
else
    ok "skopeo with a wrong token is refused"
fi
AUTHFILE=$IT_TMP/auth.json
if podman_ login --authfile "$AUTHFILE" --cert-dir "$CERTDIR" -u agent \
    -p wrong "$H" >/dev/null 2>"$IT_TMP/err"; then
    fail "podman login with a wrong token succeeded"
else
    ok "podman login with a wrong token is refused"
fi
if podman_ login --authfile "$AUTHFILE" --cert-dir "$CERTDIR" -u agent \
    -p "$token" "$H" >/dev/null 2>"$IT_TMP/err" &&
    podman_ pull -q --authfile "$AUTHFILE" --cert-dir "$CERTDIR" \
        "$H/layers/base:latest" >/dev/null 2>>"$IT_TMP/err"; then
    ok "podman login with the token, then pull"
else
    fail "podman login and pull: $(tail -n 3 "$IT_TMP/err")"
fi
podman_ rmi -a -f >/dev/null 2>&1
it_stop

# ---- --registry-compression ----
expect_rc "--registry-compression bogus is refused" 2 "$LAYERD" serve \
    --store "dir:$D" --registry-compression bogus
for comp in zstd none; do
    it_serve --cert "$C/server.crt" --key "$C/server.key" \
        --registry-compression "$comp"
    H=127.0.0.1:$PORT
    v2 layers/app/manifests/latest >/dev/null
    cp "$IT_TMP/body" "$IT_TMP/m-$comp.json"
    case $comp in
    zstd) want=application/vnd.oci.image.layer.v1.tar+zstd unpack=(zstd -dcq) ;;
    none) want=application/vnd.oci.image.layer.v1.tar unpack=(cat) ;;
    esac
    expect_eq "--registry-compression $comp: the layers' media type" \
        "$want $want" "$(jq -r '[.layers[].mediaType] | join(" ")' \
            "$IT_TMP/m-$comp.json")"
    cdigest=$(jq -r .config.digest "$IT_TMP/m-$comp.json")
    v2 "layers/app/blobs/$cdigest" >/dev/null
    cp "$IT_TMP/body" "$IT_TMP/c-$comp.json"
    for i in 0 1; do
        l=$(jq -r ".layers[$i].digest" "$IT_TMP/m-$comp.json")
        v2 "layers/app/blobs/$l" >/dev/null
        expect_eq "--registry-compression $comp: layer $i is the diff ID's tar" \
            "$(jq -r ".rootfs.diff_ids[$i]" "$IT_TMP/c-$comp.json")" \
            "$("${unpack[@]}" "$IT_TMP/body" | sha256_of -)"
    done
    pull layers/app:latest "$IT_TMP/oci-$comp" --src-cert-dir "$CERTDIR"
    it_stop
done

# ---- images of the real engines' stores ----
if fix=$(bash "$LAYERD_SOURCE_DIR/tests/fixtures/mkengines.sh" --cached \
    2>"$IT_TMP/engines.err") && [[ -e $fix/.complete ]]; then
    for store in cs-overlay cs-vfs docker; do
        KIND='' ROOT='' IMAGE='' IMAGE_ID='' LAYERS=''
        # shellcheck disable=SC1090
        . "$fix/$store/store.env"
        IT_STORE='' it_serve --cert "$C/server.crt" --key "$C/server.key" \
            --store "$KIND:$fix/$ROOT"
        H=127.0.0.1:$PORT
        repo=${IMAGE%:*}
        tag=${IMAGE##*:}
        names=("$repo")
        if [[ $KIND == docker ]]; then
            names+=("library/$repo" "docker.io/library/$repo")
        fi
        for name in "${names[@]}"; do
            dest=$IT_TMP/oci-$store-${name//\//-}
            pull "$name:$tag" "$dest" --src-cert-dir "$CERTDIR" || continue
            m=$(jq -r '.manifests[0].digest' "$dest/index.json")
            m=$dest/blobs/sha256/${m#sha256:}
            expect_eq "$store $name: the config is the image's own" \
                "sha256:${IMAGE_ID#sha256:}" "$(jq -r .config.digest "$m")"
            expect_eq "$store $name: $LAYERS layers" "$LAYERS" \
                "$(jq '.layers | length' "$m")"
            expect_eq "$store $name: no rewritten config" null \
                "$(jq -r '.annotations["dev.layerd.config.rewritten"]' "$m")"
            # each layer decompresses to the diff ID the config names
            c=$dest/blobs/sha256/$(jq -r .config.digest "$m" | cut -d: -f2)
            for ((i = 0; i < LAYERS; i++)); do
                l=$(jq -r ".layers[$i].digest" "$m")
                expect_eq "$store $name layer $i: its diff ID" \
                    "$(jq -r ".rootfs.diff_ids[$i]" "$c")" \
                    "$(gzip -dc "$dest/blobs/sha256/${l#sha256:}" | sha256_of -)"
            done
        done
        expect_eq "$store: _catalog lists $repo" true \
            "$(v2 _catalog >/dev/null; jq --arg r "$repo" \
                '.repositories | index($r) != null' "$IT_TMP/body")"
        it_stop
    done
    # --tar canonical: the layers are not the original bytes, so the
    # config is rewritten with their diff IDs, all else kept, and the
    # manifest says so.
    . "$fix/cs-overlay/store.env"
    IT_STORE='' it_serve --cert "$C/server.crt" --key "$C/server.key" \
        --store "$KIND:$fix/$ROOT" --tar canonical
    H=127.0.0.1:$PORT
    dest=$IT_TMP/oci-canonical
    if pull "$IMAGE" "$dest" --src-cert-dir "$CERTDIR"; then
        m=$(jq -r '.manifests[0].digest' "$dest/index.json")
        m=$dest/blobs/sha256/${m#sha256:}
        c=$dest/blobs/sha256/$(jq -r .config.digest "$m" | cut -d: -f2)
        expect_eq "canonical: the manifest names the store's config" \
            "sha256:$IMAGE_ID" \
            "$(jq -r '.annotations["dev.layerd.config.source"]' "$m")"
        check "canonical: the manifest says the config was rewritten" \
            test "$(jq -r '.annotations["dev.layerd.config.rewritten"]' "$m")" \
            != null
        check "canonical: a new config" test \
            "$(jq -r .config.digest "$m")" != "sha256:$IMAGE_ID"
        for ((i = 0; i < LAYERS; i++)); do
            l=$(jq -r ".layers[$i].digest" "$m")
            expect_eq "canonical layer $i: the rewritten diff ID" \
                "$(jq -r ".rootfs.diff_ids[$i]" "$c")" \
                "$(gzip -dc "$dest/blobs/sha256/${l#sha256:}" | sha256_of -)"
        done
        # the store's config: the big-data item "sha256:<id>", kept under
        # "=" + its base64 (containers/storage's file names)
        orig=$fix/$ROOT/overlay-images/$IMAGE_ID/=$(printf 'sha256:%s' \
            "$IMAGE_ID" | base64 -w0)
        expect_eq "canonical: everything but the diff IDs kept" \
            "$(jq -S -c 'del(.rootfs.diff_ids)' "$orig")" \
            "$(jq -S -c 'del(.rootfs.diff_ids)' "$c")"
    fi
    it_stop
else
    skip "images of the engines' stores: mkengines.sh could not build" \
        "them here: $(tail -n 1 "$IT_TMP/engines.err")"
fi

it_done
