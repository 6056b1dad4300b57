#!/usr/bin/env bash
# Slow headers: 64 clients that send one header line every half second
# and never end their headers, next to a genuine client making 50
# requests from another address. Every genuine request is answered
# within 2 s; the slow clients past --max-per-client are closed at once,
# the others at the header deadline (--header-timeout, 2 s here), not
# kept alive by their trickle; /metrics counts them. On a kept-alive
# connection the next request's headers are due --header-timeout after
# its request line.
#
# Env: LAYERD (the binary), LAYERD_SOURCE_DIR; LAYERD_SANITIZED=1 widens
# the time margins.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
it_init slow_headers 90
# shellcheck source=tests/security/common.sh
source "$(dirname "$0")/common.sh"
need jq curl

IT_STORE=$IT_TMP/demo
mkdemo "$IT_STORE"

deadline=2
margin=1.2
slow && margin=3
held=40 # --max-per-client: 24 of the 64 slow clients are refused
it_serve --header-timeout "$deadline" --max-per-client "$held" --trace none

attack slowheaders --clients 64 --interval 0.5 --duration 8 \
    >"$IT_TMP/slow.json" &
slow_pid=$!
sleep 0.5
genuine=$(attack --source 127.0.0.2 genuine --count 50 --timeout 2 --pause 0.05)
wait "$slow_pid"
slow=$(cat "$IT_TMP/slow.json")
echo "slow clients: $slow"
echo "genuine: $genuine"

expect_eq "every genuine request answered 200" 50 "$(jget "$genuine" .ok)"
expect_eq "every genuine request answered within 2 s" 50 \
    "$(jget "$genuine" .within)"
expect_eq "slow clients past --max-per-client refused" 24 \
    "$(jget "$slow" .refused)"
check "... at once" le "$(jget "$slow" .refused_at_max)" 1.5
expect_eq "... and counted" 24 \
    "$(it_metric 'layerd_http_dropped_total{reason="max_per_client"}')"
expect_eq "every held slow client dropped" "$held" "$(jget "$slow" .dropped)"
expect_eq "none left open" 0 "$(jget "$slow" .open_at_end)"
check "none dropped before the deadline (first at $(jget "$slow" .dropped_at_min) s)" \
    le "$deadline" "$(jget "$slow" .dropped_at_min)"
check "all dropped by the deadline + ${margin} s (last at $(jget "$slow" .dropped_at_max) s)" \
    le "$(jget "$slow" .dropped_at_max)" "$(awk -v d=$deadline -v m=$margin 'BEGIN { print d + m }')"
expect_eq "dropped connections counted" "$held" \
    "$(it_metric 'layerd_http_dropped_total{reason="header_timeout"}')"

# A kept-alive connection: after an answered request, the next request's
# trickled headers are dropped --header-timeout after its request line.
ka=$(attack keepalive --pause 0.5 --interval 0.3 --duration 10)
echo "kept alive: $ka"
expect_eq "the first request was answered" 200 "$(jget "$ka" .first)"
expect_eq "the second was cut off" eof "$(jget "$ka" .how)"
check "... at the header deadline ($(jget "$ka" .closed_after) s)" \
    between "$(jget "$ka" .closed_after)" "$deadline" \
    "$(awk -v d=$deadline -v m=$margin 'BEGIN { print d + m }')"

# The server still serves, and the spans say what happened.
check "healthz after the attack" it_curl -o /dev/null "$URL/healthz"
it_stop
it_done
