#!/usr/bin/env bash
# Work that grows with the store on every request: before the index,
# /layers parsed containers-storage's layers.json again for every layer it
# listed (32,000 records: minutes per listing), and an unknown digest made
# the docker store read every layerdb entry. Now each store keeps an index
# of its metadata, built by its own thread and swapped in whole when the
# metadata changes, and every lookup is a binary search. On a generated
# containers-storage store of 32,000 layer records and a docker store of
# 5,000 layers (built once per run, on a tmpfs where one can be mounted):
#   - /layers, paged through to its end (limit 1000), in under 1 s;
#   - an unknown id (and, docker, an unknown digest) answered 404 in under
#     10 ms;
#   - /healthz in under 50 ms while 4 clients list the store again and
#     again;
#   - a new layer (layers.json replaced; a layerdb entry renamed in) is
#     served by the requests made at most 1 s after the change (twice).
# A latency holds for the 90th percentile of its samples (for /healthz
# under load, of the better of two rounds), the listing for the best of
# three and the change for the best of two, so that a burst of another
# process on a shared machine does not decide. Under the sanitizers the timings are measured
# and logged, not asserted (the checks are skipped, visibly): an ASan
# build is several times slower, unevenly; what the requests answer is
# checked all the same, and a change must be seen within 10 s.
. "$(dirname "$0")/../integration/lib.sh"
it_init store_index 240

py=$(it_python)
here=$(cd "$(dirname "$0")" && pwd)
sanitized=${LAYERD_SANITIZED:-0}
gen=$IT_TMP/gen
mkdir -p "$gen"
# a tmpfs: 100,000 small files are made in a second there, not in ten
mount -t tmpfs -o size=1g,mode=0700 tmpfs "$gen" 2>/dev/null ||
    it_log "no tmpfs: generating the stores on $(df --output=fstype "$gen" | tail -n 1)"

"$py" - "$gen" <<'PY' || die "cannot generate the stores"
import hashlib, json, os, sys

gen = sys.argv[1]
def h(s):
    return hashlib.sha256(s.encode()).hexdigest()

# containers-storage: 32,000 records in chains of 8; data for the first
cs = gen + "/cs"
os.makedirs(cs + "/overlay-layers")
os.makedirs(cs + "/overlay-images")
recs = []
for i in range(32000):
    r = {"id": h("cs-%d" % i), "created": "2024-01-02T03:04:05.%09dZ" % i,
         "diff-digest": "sha256:" + h("cs-diff-%d" % i),
         "compressed-diff-digest": "sha256:" + h("cs-gz-%d" % i),
         "diff-size": 4096 + i, "compressed-size": 1024 + i,
         "uidset": [0], "gidset": [0]}
    if i % 8:
        r["parent"] = h("cs-%d" % (i - 1))
    recs.append(r)
for r in recs[:8]:
    os.makedirs(cs + "/overlay/%s/diff" % r["id"])
with open(cs + "/overlay-layers/layers.json", "w") as f:
    json.dump(recs, f)
with open(cs + "/overlay-images/images.json", "w") as f:
    json.dump([{"id": h("img-%d" % k), "names": ["localhost/gen%d:1" % k],
                "layer": h("cs-%d" % (8 * k + 7))} for k in range(100)], f)

# docker: 5,000 layerdb entries in chains of 8; data for the first
db = gen + "/docker/image/overlay2/layerdb/sha256"
os.makedirs(db)
os.makedirs(gen + "/docker/overlay2")
prev = None
for i in range(5000):
    diff = "sha256:" + h("dk-diff-%d" % i)
    chain = diff[7:] if i % 8 == 0 else \
        hashlib.sha256(("sha256:%s %s" % (prev, diff)).encode()).hexdigest()
    d = "%s/%s" % (db, chain)
    os.mkdir(d)
    with open(d + "/cache-id", "w") as f:
        f.write(h("dk-cache-%d" % i))
    with open(d + "/diff", "w") as f:
        f.write(diff)
    if i % 8:
        with open(d + "/parent", "w") as f:
            f.write("sha256:" + prev)
    if i < 8:
        os.makedirs(gen + "/docker/overlay2/%s/diff" % h("dk-cache-%d" % i))
    prev = chain
PY
ok "generated a containers-storage store of 32,000 layers and a docker store of 5,000"

# holds FILTER: jq's verdict on standard input, quietly
holds() { jq -e "$1" >/dev/null; }

# timed DESC FILTER: a timing check (FILTER on standard input); skipped
# under the sanitizers
timed() {
    if [[ $sanitized == 1 ]]; then
        cat >/dev/null
        skip "$1: timings are not asserted under the sanitizers"
    else
        check "$1" holds "$2"
    fi
}


# pct P: the P-th percentile of the "ms" list on standard input
pct() { jq "[.ms[]] | sort | .[((length - 1) * $1 / 100 | floor)]"; }

# one store: the listing, unknown ids, /healthz under load, a change
store_check() {
    local label=$1 spec=$2 want=$3 unknown=$4
    shift 4 # then two changes: PATH SRC DST, twice
    local res best=99 try
    it_serve --store "$spec"
    for try in 1 2 3; do
        res=$("$py" "$here/probe.py" list "$URL") || die "$label: listing failed"
        it_log "$label: listing $res"
        expect_eq "$label: /layers lists every layer ($try)" "$want" \
            "$(jq .count <<<"$res")"
        best=$(jq -n "[$best, $(jq .seconds <<<"$res")] | min")
    done
    timed "$label: /layers paged to its end in under 1 s (best of 3: $best s)" \
        "$best < 1" <<<"{}"
    res=$("$py" "$here/probe.py" time "$URL" "/layers/$unknown" 21) ||
        die "$label: timing unknown ids failed"
    it_log "$label: unknown id, ms: $(jq -c '[.ms[] | . * 100 | round / 100]' <<<"$res")"
    expect_eq "$label: an unknown id is 404" 404 "$(jq '.status | unique[]' <<<"$res")"
    timed "$label: an unknown id is answered in under 10 ms (median $(pct 50 <<<"$res"), 90th percentile $(pct 90 <<<"$res"))" \
        "$(pct 90 <<<"$res") < 10" <<<"{}"
    # two rounds of 31 samples, each under 4 listing clients: the better
    # round's 90th percentile counts
    local busy p90 bestp=1e9 round
    for round in 1 2; do
        rm -f "$IT_TMP/stop"
        "$py" "$here/probe.py" busy "$URL" 4 30 "$IT_TMP/stop" >"$IT_TMP/busy.json" &
        busy=$!
        sleep 0.3
        res=$("$py" "$here/probe.py" time "$URL" /healthz 31) ||
            die "$label: timing /healthz failed"
        : >"$IT_TMP/stop"
        wait "$busy" || fail "$label: the listing clients failed"
        it_log "$label: /healthz under 4 listings ($round), ms: $(jq -c '[.ms[] | . * 100 | round / 100]' <<<"$res"); $(jq -c . "$IT_TMP/busy.json")"
        check "$label: the 4 clients were listing meanwhile ($round)" \
            holds '.listings >= 1' <"$IT_TMP/busy.json"
        p90=$(pct 90 <<<"$res")
        bestp=$(jq -n "[$bestp, $p90] | min")
    done
    timed "$label: /healthz answered in under 50 ms while 4 listings ran (90th percentile, the better of 2 rounds: $bestp)" \
        "$bestp < 50" <<<"{}"
    # two changes, one after the other: the best of the two counts
    best=99
    while [[ $# -ge 3 ]]; do
        res=$("$py" "$here/probe.py" until "$URL" "$1" 200 10 "$2" "$3") ||
            die "$label: waiting for the change failed"
        it_log "$label: a new layer served $(jq .seconds <<<"$res") s after the change"
        check "$label: a change is seen (within 10 s)" holds ".seconds >= 0" \
            <<<"$res"
        best=$(jq -n "[$best, $(jq .seconds <<<"$res")] | min")
        shift 3
    done
    timed "$label: a change is seen by the requests at most 1 s after it (best of 2: $best s)" \
        "$best <= 1" <<<"{}"
    it_stop
}

# containers-storage: a 32,001st record, then a 32,002nd, in layers.json
# files renamed in
"$py" - "$gen/cs" <<'PY' || die "cannot write the new layers.json"
import hashlib, json, sys
cs = sys.argv[1]
with open(cs + "/overlay-layers/layers.json") as f:
    recs = json.load(f)
for k in (1, 2):
    recs.append({"id": hashlib.sha256(b"cs-new%d" % k).hexdigest(),
                 "created": "2024-01-02T03:04:05Z"})
    with open(cs + "/overlay-layers/layers.json.new%d" % k, "w") as f:
        json.dump(recs, f)
PY
changes=()
for k in 1 2; do
    id=$("$py" -c "import hashlib; print(hashlib.sha256(b'cs-new$k').hexdigest())")
    mkdir -p "$gen/cs/overlay/$id/diff"
    changes+=("/layers/$id" "$gen/cs/overlay-layers/layers.json.new$k"
        "$gen/cs/overlay-layers/layers.json")
done
store_check containers-storage "containers-storage:$gen/cs" 32000 \
    "$("$py" -c 'import hashlib; print(hashlib.sha256(b"unknown").hexdigest())')" \
    "${changes[@]}"

# docker: a 5,001st entry, then a 5,002nd, made aside and renamed into the
# layerdb
changes=()
for k in 1 2; do
    id=$("$py" -c "import hashlib; print(hashlib.sha256(b'dk-new$k').hexdigest())")
    tmp=$gen/docker/image/overlay2/layerdb/tmp/new$k
    mkdir -p "$tmp" "$gen/docker/overlay2/dk-new$k/diff"
    printf 'dk-new%s' "$k" >"$tmp/cache-id"
    printf 'sha256:%s' "$id" >"$tmp/diff"
    changes+=("/layers/sha256:$id" "$tmp"
        "$gen/docker/image/overlay2/layerdb/sha256/$id")
done
store_check docker "docker:$gen/docker" 5000 \
    "sha256:$("$py" -c 'import hashlib; print(hashlib.sha256(b"no such diff").hexdigest())')" \
    "${changes[@]}"
it_done
