#!/usr/bin/env bash
# The dashboard and the API it needs, with curl against a real server on
# the demo store:
# - /entries?depth=N lists exactly the entries `layerd entries` prints at
#   most N levels below the prefix, in order, and pages with `after`;
# - /summary counts what /entries lists, for the whole layer and a scope;
# - /ui/ and its assets are the files of ui/, byte for byte, with their
#   media types, a strong ETag (304 on If-None-Match), no-cache and the
#   security headers; any other /ui/... path is the page; / redirects a
#   browser and stays a 404 problem for curl;
# - --ui-dir (and the config key ui-dir) serves a directory instead, read
#   on each request, and never anything outside it: no symlink (out or
#   in), no escape, no directory.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
it_init serve_ui 90
need curl jq cmp sha256sum

UI=$LAYERD_SOURCE_DIR/ui
D=$IT_TMP/demo
mkdemo "$D"
IT_STORE=$D
it_serve --trace none

# ---- depth ----

# levels PREFIX DEPTH: the paths `layerd entries` prints within DEPTH
# levels below PREFIX ('' for the root), its own entry included.
levels() {
    "$LAYERD" entries --store "dir:$D" "$3" | jq -r --arg p "$1" --argjson d "$2" '
        .path as $x
        | (if $p == "" then $x
           elif $x == $p then ""
           elif ($x | startswith($p + "/")) then $x[($p | length) + 1:]
           else null end) as $rest
        | select($rest != null)
        | select($rest == "" or ($rest | split("/") | length) <= $d)
        | $x'
}
for spec in "base::1" "base:etc:1" "base:usr:2" "patch::2" "patch:var/lib:1" \
    "snap-top:data:1"; do
    IFS=: read -r id prefix depth <<<"$spec"
    levels "$prefix" "$depth" "$id" >"$IT_TMP/want"
    it_curl "$URL/layers/$id/entries?depth=$depth${prefix:+&prefix=$prefix}" |
        jq -r .path >"$IT_TMP/got"
    if [[ $(wc -l <"$IT_TMP/want") -gt 1 ]] && cmp -s "$IT_TMP/want" "$IT_TMP/got"; then
        ok "$id prefix='$prefix' depth=$depth: the $(wc -l <"$IT_TMP/got") entries the CLI prints there"
    else
        fail "$id prefix='$prefix' depth=$depth: $(diff "$IT_TMP/want" "$IT_TMP/got" | head -5)"
    fi
done
# paging one level with the cursor gives the same list
levels "" 1 base >"$IT_TMP/want"
: >"$IT_TMP/got"
after=
for ((page = 0; page < 20; page++)); do
    it_curl "$URL/layers/base/entries?depth=1&limit=2${after:+&after=$after}" |
        jq -r .path >"$IT_TMP/page"
    [[ -s $IT_TMP/page ]] || break
    cat "$IT_TMP/page" >>"$IT_TMP/got"
    after=$(tail -n 1 "$IT_TMP/page")
done
check "depth=1 paged by 2 with after= lists the root's $(wc -l <"$IT_TMP/want") children once each" \
    cmp -s "$IT_TMP/want" "$IT_TMP/got"
code=$(it_curl -o "$IT_TMP/body" -w '%{http_code}' "$URL/layers/base/entries?depth=0")
expect_eq "depth=0 is refused" 400 "$code"
expect_eq "... as a problem" "https://layerd.dev/problems/invalid-parameter" "$(jq -r .type "$IT_TMP/body")"

# ---- summary ----

for id in base app patch snap-base snap-top; do
    "$LAYERD" entries --store "dir:$D" "$id" |
        jq -s -c '{entries: length,
                   changes: {add: map(select(.change == "add")) | length,
                             modify: map(select(.change == "modify")) | length,
                             delete: map(select(.change == "delete")) | length},
                   size: (map(select(.type == "file") | .size) | add // 0)}' >"$IT_TMP/want"
    it_curl "$URL/layers/$id/summary" | jq -c '{entries, changes, size}' >"$IT_TMP/got"
    if cmp -s "$IT_TMP/want" "$IT_TMP/got"; then
        ok "summary of $id: $(cat "$IT_TMP/got")"
    else
        fail "summary of $id: want $(cat "$IT_TMP/want"), got $(cat "$IT_TMP/got")"
    fi
done
n=$(it_curl "$URL/layers/base/entries?prefix=usr&depth=2" | wc -l)
got=$(it_curl "$URL/layers/base/summary?prefix=usr&depth=2" | jq -c '[.prefix, .depth, .entries]')
expect_eq "the summary of a scope counts what /entries lists there" "[\"usr\",2,$n]" "$got"
code=$(it_curl -o /dev/null -w '%{http_code}' "$URL/layers/nope/summary")
expect_eq "the summary of a missing layer is 404" 404 "$code"

# ---- the built-in files ----

# hdrs PATH [CURL ARGS...]: GET PATH, headers to $IT_TMP/h, body to $IT_TMP/b.
hdrs() {
    local p=$1
    shift
    rm -f "$IT_TMP/h" "$IT_TMP/b"
    it_curl -D "$IT_TMP/h" -o "$IT_TMP/b" "$@" "$URL$p"
}
status() { head -n 1 "$IT_TMP/h" | cut -d' ' -f2; }

hdrs /ui/
expect_eq "/ui/ is 200" 200 "$(status)"
check "/ui/ is ui/index.html byte for byte" cmp -s "$UI/index.html" "$IT_TMP/b"
expect_eq "/ui/ is HTML" "text/html; charset=utf-8" "$(it_hdr "$IT_TMP/h" Content-Type)"
csp=$(it_hdr "$IT_TMP/h" Content-Security-Policy)
for want in "default-src 'self'" "script-src 'self'" "frame-ancestors 'none'" "object-src 'none'"; do
    [[ $csp == *"$want"* ]] && ok "CSP has $want" || fail "CSP lacks $want: $csp"
done
[[ $csp != *unsafe* ]] && ok "CSP allows nothing unsafe" || fail "CSP: $csp"
expect_eq "nosniff" nosniff "$(it_hdr "$IT_TMP/h" X-Content-Type-Options)"
expect_eq "no referrer" no-referrer "$(it_hdr "$IT_TMP/h" Referrer-Policy)"
expect_eq "revalidated on each use" no-cache "$(it_hdr "$IT_TMP/h" Cache-Control)"
etag=$(it_hdr "$IT_TMP/h" ETag)
expect_eq "the ETag is the strong SHA-256 of the bytes" "\"$(sha256sum "$UI/index.html" | cut -d' ' -f1)\"" "$etag"
hdrs /ui/ -H "If-None-Match: $etag"
expect_eq "If-None-Match with the ETag is 304" 304 "$(status)"
check "... without a body" test ! -s "$IT_TMP/b"
hdrs /ui/ -H "If-None-Match: W/$etag, \"other\""
expect_eq "... in a list, weakly compared" 304 "$(status)"

n=0
while IFS= read -r f; do
    rel=${f#"$UI"/}
    hdrs "/ui/$rel"
    case $rel in
    *.js) type="text/javascript; charset=utf-8" ;;
    *.css) type="text/css; charset=utf-8" ;;
    *.svg) type="image/svg+xml" ;;
    *.html) type="text/html; charset=utf-8" ;;
    *) type="?" ;;
    esac
    if [[ $(status) == 200 ]] && cmp -s "$f" "$IT_TMP/b" &&
        [[ $(it_hdr "$IT_TMP/h" Content-Type) == "$type" ]] &&
        [[ -n $(it_hdr "$IT_TMP/h" Content-Security-Policy) ]]; then
        n=$((n + 1))
    else
        fail "/ui/$rel: $(status), $(it_hdr "$IT_TMP/h" Content-Type) (want $type), same bytes: $(cmp -s "$f" "$IT_TMP/b" && echo yes || echo no)"
    fi
done < <(find "$UI/assets" -type f | sort)
[[ $n -ge 8 ]] && ok "every file of ui/assets ($n) is served as it is, with its type" ||
    fail "only $n assets served"

for deep in "/ui/layers/base" "/ui/layers/base?view=dir&path=usr/lib" \
    "/ui/layers/patch?view=flat&change=delete&entry=etc/motd" "/ui/anything/else"; do
    hdrs "$deep"
    if [[ $(status) == 200 ]] && cmp -s "$UI/index.html" "$IT_TMP/b"; then
        ok "deep link $deep is the page"
    else
        fail "deep link $deep: $(status)"
    fi
done
hdrs /ui/assets/nope.js
expect_eq "a missing asset is 404" 404 "$(status)"
expect_eq "... a problem" application/problem+json "$(it_hdr "$IT_TMP/h" Content-Type)"
[[ -n $(it_hdr "$IT_TMP/h" Content-Security-Policy) ]] && ok "... with the security headers" ||
    fail "a 404 under /ui/ lacks the CSP"
hdrs /ui/assets/%2e%2e/index.html
expect_eq "an escaped .. is refused" 400 "$(status)"
hdrs /ui
expect_eq "/ui redirects" "308 /ui/" "$(status) $(it_hdr "$IT_TMP/h" Location)"
hdrs / -H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
expect_eq "a browser asking for / goes to /ui/" "302 /ui/" "$(status) $(it_hdr "$IT_TMP/h" Location)"
hdrs /
expect_eq "curl asking for / gets a 404" 404 "$(status)"
expect_eq "... as a problem, as before" "application/problem+json" "$(it_hdr "$IT_TMP/h" Content-Type)"
it_stop

# ---- --ui-dir ----

U=$IT_TMP/ui
cp -r "$UI" "$U"
echo "TOP-SECRET-BYTES" >"$IT_TMP/secret.txt"
ln -s "$IT_TMP/secret.txt" "$U/assets/out.js"
ln -s ../../secret.txt "$U/assets/up.js"
ln -s app.js "$U/assets/in.js"
ln -s "$IT_TMP" "$U/assets/tmpdir"
mkdir "$U/assets/sub"
it_serve --trace none --ui-dir "$U"
grep -q "dashboard at .*/ui/ (from --ui-dir)" "$SERVER_LOG" && ok "--ui-dir is logged" ||
    fail "--ui-dir not logged: $(cat "$SERVER_LOG")"
echo "// changed" >>"$U/assets/app.js"
hdrs /ui/assets/app.js
check "--ui-dir: a file is read on each request" cmp -s "$U/assets/app.js" "$IT_TMP/b"
expect_eq "--ui-dir: its ETag is the SHA-256 of the bytes" \
    "\"$(sha256sum "$U/assets/app.js" | cut -d' ' -f1)\"" "$(it_hdr "$IT_TMP/h" ETag)"
hdrs "/ui/layers/x?view=flat"
check "--ui-dir: a deep link is the dir's index.html" cmp -s "$U/index.html" "$IT_TMP/b"
for p in assets/out.js assets/up.js assets/in.js assets/tmpdir/secret.txt assets/sub \
    assets/%2e%2e/%2e%2e/secret.txt "assets/..%2f..%2fsecret.txt" assets/%2fetc%2fpasswd; do
    hdrs "/ui/$p"
    s=$(status)
    if [[ ($s == 404 || $s == 400) ]] && ! grep -q TOP-SECRET "$IT_TMP/b"; then
        ok "--ui-dir: /ui/$p is refused ($s)"
    else
        fail "--ui-dir: /ui/$p answered $s: $(head -c 200 "$IT_TMP/b")"
    fi
done
it_stop

# the config key, and a missing directory
printf 'store = dir:%s\nui-dir = %s\n' "$D" "$U" >"$IT_TMP/layerd.conf"
IT_STORE=
it_serve --trace none --config "$IT_TMP/layerd.conf"
hdrs /ui/assets/app.js
check "the config key ui-dir serves the directory" cmp -s "$U/assets/app.js" "$IT_TMP/b"
it_stop
rc=0
timeout 20 "$LAYERD" serve --store "dir:$D" --listen 127.0.0.1:0 --ui-dir "$IT_TMP/missing" \
    >/dev/null 2>"$IT_TMP/err" || rc=$?
[[ $rc -ne 0 ]] && grep -q -- "--ui-dir" "$IT_TMP/err" &&
    ok "a missing --ui-dir is refused at start (exit $rc)" ||
    fail "a missing --ui-dir: exit $rc, $(cat "$IT_TMP/err")"
it_done
