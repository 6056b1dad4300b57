#!/usr/bin/env bash
# The registry view pulled by the engines themselves:
#   - docker: a dockerd of the test's own (tests/fixtures/engines.sh: its
#     own data root, exec root, socket and pid file; stopped by its PID)
#     pulls layers/patch:latest from 127.0.0.1 (an insecure registry to
#     docker by default: TLS without verification); `docker image
#     inspect` shows the chain's three layers, and the image ID is the
#     config's digest the registry serves;
#   - containerd: a containerd of the test's own (its own root, state and
#     socket; stopped by its PID) pulls and unpacks the same image with
#     `ctr image pull --hosts-dir` (a hosts.toml naming the https server
#     and the server's certificate as its CA: verified TLS);
#     `ctr image ls` names its manifest digest.
# Each part is skipped, and said so, when its engine cannot run here.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init registry_engines 300
need curl jq openssl

D=$IT_TMP/demo
mkdemo "$D"
IT_STORE=$D

C=$IT_TMP/certs
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$C/server.key" -out "$C/server.crt" -days 2 -subj "/CN=layerd" \
    -addext subjectAltName=IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null ||
    die "cannot make the server certificate"
chmod 600 "$C/server.key"
it_serve --cert "$C/server.crt" --key "$C/server.key"
H=127.0.0.1:$PORT
IMG=$H/layers/patch:latest
DOCKER_ACCEPT=application/vnd.docker.distribution.manifest.v2+json
mdigest_oci=$(it_curl "$URL/v2/layers/patch/manifests/latest" | sha256_of -)
config_digest=$(it_curl "$URL/v2/layers/patch/manifests/latest" |
    jq -r .config.digest)
mdigest_docker=$(it_curl -H "Accept: $DOCKER_ACCEPT" \
    "$URL/v2/layers/patch/manifests/latest" | sha256_of -)

# ---- docker ----
# shellcheck source=tests/fixtures/engines.sh
. "$LAYERD_SOURCE_DIR/tests/fixtures/engines.sh"
CTRD_PID=
stop_all() {
    dockerd_stop
    if [[ -n $CTRD_PID ]]; then
        kill -TERM "$CTRD_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$CTRD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$CTRD_PID" 2>/dev/null
        wait "$CTRD_PID" 2>/dev/null
        CTRD_PID=
    fi
    engines_umount_below "$IT_TMP"
    it_cleanup
}
trap stop_all EXIT

if dockerd_start "$IT_TMP/docker" "$IT_TMP/dockerd.log" 2>"$IT_TMP/dockerd.err"; then
    if "$DOCKER_CLI" pull -q "$IMG" >"$IT_TMP/pull.out" 2>"$IT_TMP/pull.err"; then
        ok "docker pull $IMG"
        "$DOCKER_CLI" image inspect "$IMG" >"$IT_TMP/inspect.json"
        expect_eq "docker: three layers" 3 \
            "$(jq '.[0].RootFS.Layers | length' "$IT_TMP/inspect.json")"
        # docker asks for the Docker schema 2 manifest or OCI; its ID is
        # the config's digest either way
        expect_eq "docker: the image ID is the config's digest" \
            "$config_digest" "$(jq -r '.[0].Id' "$IT_TMP/inspect.json")"
        case $(jq -r '.[0].RepoDigests[0]' "$IT_TMP/inspect.json") in
        *"@$mdigest_oci" | *"@$mdigest_docker")
            ok "docker: the repo digest is the manifest's" ;;
        *) fail "docker: repo digest $(jq -r '.[0].RepoDigests[0]' \
            "$IT_TMP/inspect.json")" ;;
        esac
    else
        fail "docker pull $IMG: $(tail -n 3 "$IT_TMP/pull.err")"
    fi
    # docker login: the token as the password; a wrong one is refused
    it_stop
    token=t-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    cat >"$IT_TMP/policy.json" <<JSON
{"principals": [{"name": "agent",
  "tokens_sha256": ["$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"],
  "grants": [{"layers": ["*"], "ops": ["list", "read"]}]}]}
JSON
    it_serve --cert "$C/server.crt" --key "$C/server.key" \
        --auth "$IT_TMP/policy.json"
    H=127.0.0.1:$PORT
    if printf 'wrong' | "$DOCKER_CLI" login -u agent --password-stdin "$H" \
        >/dev/null 2>&1; then
        fail "docker login with a wrong token succeeded"
    else
        ok "docker login with a wrong token is refused"
    fi
    if printf '%s' "$token" | "$DOCKER_CLI" login -u agent \
        --password-stdin "$H" >/dev/null 2>"$IT_TMP/login.err" &&
        "$DOCKER_CLI" pull -q "$H/layers/base:latest" >/dev/null \
            2>>"$IT_TMP/login.err"; then
        ok "docker login with the token, then pull"
    else
        fail "docker login and pull: $(tail -n 3 "$IT_TMP/login.err")"
    fi
    it_stop
    it_serve --cert "$C/server.crt" --key "$C/server.key"
    H=127.0.0.1:$PORT
    IMG=$H/layers/patch:latest
    dockerd_stop
else
    skip "docker pull: dockerd cannot run here: $(tail -n 1 "$IT_TMP/dockerd.err")"
fi

# ---- containerd ----
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
    R=$IT_TMP/ctrd
    mkdir -p "$R/root" "$R/state"
    SOCK=$R/state/c.sock
    cat >"$R/config.toml" <<TOML
version = 2
root = "$R/root"
state = "$R/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
TOML
    containerd --config "$R/config.toml" >"$R/log" 2>&1 &
    CTRD_PID=$!
    for ((i = 0; i < 200; i++)); do
        [[ -S $SOCK ]] && ctr --address "$SOCK" version >/dev/null 2>&1 && break
        kill -0 "$CTRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    # ctr speaks plain HTTP to 127.0.0.1 unless a hosts.toml says https
    mkdir -p "$R/hosts/$H"
    cat >"$R/hosts/$H/hosts.toml" <<TOML
server = "https://$H"
[host."https://$H"]
  capabilities = ["pull", "resolve"]
  ca = "$C/server.crt"
TOML
    if ctr --address "$SOCK" version >/dev/null 2>&1; then
        # the native snapshotter copies files: it works on any file
        # system the test's directory is on
        if ctr --address "$SOCK" -n layerd-test image pull \
            --snapshotter native --hosts-dir "$R/hosts" "$IMG" \
            >"$IT_TMP/ctr.out" 2>&1; then
            ok "ctr image pull $IMG"
            expect_eq "ctr: the image's manifest digest" "$mdigest_oci" \
                "$(ctr --address "$SOCK" -n layerd-test image ls |
                    awk -v r="$IMG" '$1 == r { print $3 }')"
            check "ctr: unpacked into the snapshotter" \
                grep -q 'unpacking' "$IT_TMP/ctr.out"
        else
            fail "ctr image pull $IMG: $(tail -n 3 "$IT_TMP/ctr.out")"
        fi
        ctr --address "$SOCK" -n layerd-test image rm "$IMG" >/dev/null 2>&1
    else
        skip "ctr image pull: containerd cannot run here: $(tail -n 1 "$R/log")"
    fi
else
    skip "ctr image pull: containerd is not installed"
fi

it_stop
it_done
