#!/usr/bin/env bash
# Compression as a weapon: levels above --max-level are refused with 400
# and the allowed range (zstd 19 once took 13 s of CPU and 185 MiB for a
# 16 MiB layer), and 16 concurrent exports at the highest level allowed
# keep the server's RSS under the documented bound: its idle RSS, plus
# --max-export-memory (what the admitted exports may reserve, by
# estimate), plus 76 KiB per connection; the exports past the memory cap
# get 503 with Retry-After, and every reservation is given back.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; under a sanitizer
# (LAYERD_SANITIZED=1) the RSS bound is not checked: ASan keeps freed
# memory in quarantine and adds shadow memory.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
it_init levels 120
# shellcheck source=tests/security/common.sh
source "$(dirname "$0")/common.sh"
need jq curl zstd

IT_STORE=$IT_TMP/store
# "text": 12 MiB of words, compressible like source code and logs.
mkdir -p "$IT_STORE/text/fs"
echo '{"kind": "diff"}' >"$IT_STORE/text/layer.json"
"$(it_python)" - "$IT_STORE/text/fs" <<'PY' || die "cannot build the text layer"
import os, random, sys
rng = random.Random(11)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(4000)]
for f in range(12):
    with open(os.path.join(sys.argv[1], "f%02d.txt" % f), "w") as out:
        n = 0
        while n < 1 << 20:
            line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
            out.write(line)
            n += len(line)
PY

mem_mib=256
it_serve --max-per-client 64 --trace none
U=$URL/layers/text/export

# ---- the ceiling ----
problem() { # problem QUERY: "STATUS SLUG DETAIL"
    local code
    code=$(it_curl -o "$IT_TMP/body" -w '%{http_code}' "$U?$1")
    printf '%s %s %s' "$code" "$(jq -r '.type | sub(".*/"; "")' "$IT_TMP/body" 2>/dev/null)" \
        "$(jq -r .detail "$IT_TMP/body" 2>/dev/null)"
}
for q in compression=zstd\&level=19 compression=zstd\&level=10 \
    compression=gzip\&level=10; do
    got=$(problem "$q")
    expect_eq "$q: 400 level-not-allowed" "400 level-not-allowed" \
        "$(cut -d' ' -f1-2 <<<"$got")"
done
got=$(problem "compression=zstd&level=19")
check "the detail names the allowed range: ${got#* * }" \
    grep -q 'ask for 1 to 9' <<<"$got"
expect_eq "zstd level 9 is allowed" 200 \
    "$(it_curl --max-time 60 -o /dev/null -w '%{http_code}' "$U?compression=zstd&level=9")"
expect_eq "the default level is allowed" 200 \
    "$(it_curl --max-time 60 -o /dev/null -w '%{http_code}' "$U?compression=zstd")"
top=$(it_curl --max-time 60 -o "$IT_TMP/top.zst" -w '%{http_code}' "$U?compression=gzip&level=9")
gz_top=3
[[ $top == 200 ]] && gz_top=9 # zlib's gzip goes to 9, ISA-L's to 3
expect_eq "gzip level 4: 400 unless the backend has it" \
    "$([[ $gz_top == 9 ]] && echo 200 || echo 400)" \
    "$(it_curl --max-time 60 -o /dev/null -w '%{http_code}' "$U?compression=gzip&level=4")"

# ---- 16 concurrent exports at the highest level allowed ----
sleep 0.5
idle_kib=$(rss_kib)
echo 5 >"/proc/$SERVER_PID/clear_refs" # VmHWM := VmRSS
pids=()
for i in $(seq 16); do
    it_curl --max-time 120 -o "$IT_TMP/x.$i" -D "$IT_TMP/h.$i" \
        -w '%{http_code}\n' "$U?compression=zstd&level=9" >"$IT_TMP/c.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done
peak_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
ok200=$(cat "$IT_TMP"/c.* | grep -c '^200$')
ok503=$(cat "$IT_TMP"/c.* | grep -c '^503$')
echo "16 exports at zstd 9: $ok200 served, $ok503 refused; RSS idle $((idle_kib / 1024)) MiB, peak $((peak_kib / 1024)) MiB"
expect_eq "each was served or refused with 503" 16 $((ok200 + ok503))
check "some were served" test "$ok200" -gt 0
for i in $(seq 16); do
    if grep -q '^503$' "$IT_TMP/c.$i"; then
        check "a refused one has Retry-After" test -n "$(it_hdr "$IT_TMP/h.$i" Retry-After)"
        break
    fi
done
for i in $(seq 16); do
    if grep -q '^200$' "$IT_TMP/c.$i"; then
        check "a served one decompresses" zstd -q -t "$IT_TMP/x.$i"
        break
    fi
done
bound_kib=$((idle_kib + mem_mib * 1024 + 16 * 76))
if slow; then
    skip "RSS bound of 16 exports: not meaningful under a sanitizer (peak $((peak_kib / 1024)) MiB)"
else
    check "peak RSS $((peak_kib / 1024)) MiB <= idle + --max-export-memory + connections ($((bound_kib / 1024)) MiB)" \
        test "$peak_kib" -le "$bound_kib"
fi
expect_eq "every reservation given back" 0 "$(it_metric layerd_exports_active)"
it_stop
it_done
