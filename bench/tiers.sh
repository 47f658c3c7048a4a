#!/usr/bin/env bash
# tiers.sh: get latency (p50, p99) of kcached's tiers next to their raw peers, in one run:
#   memory hit       a key kcached holds in its memory tier
#   redis hit        a key only Redis has (kcached restarted with an empty memory tier; each
#                    key read once, so each read goes to Redis)
#   store hit        a key only the directory store has (Redis flushed as well)
#   raw redis GET    redis-benchmark -t get, one client, no pipelining, the same redis-server
#   raw file read    open + read + close of the store's own object files
# and the floor of any tier that adds a hop in front of Redis:
#   proxy GET        the same GETs through twemproxy (nutcracker), a proxy that only forwards
# redis-benchmark reports quantiles in 8 us steps (its histogram's smallest unit above 10 us),
# each the top of its step; so the raw GET and the proxy are also timed by kc_load's RESP client
# (exact, the same clock and loop that time kcached): the "exact" columns.
# All reads are sequential over one TCP connection (one request in flight, like the
# redis-benchmark client), so the figures are latencies, not throughput. ROUNDS rounds of N
# keys, each after a warm-up of W other keys; it prints every round, the medians, and the
# ratios. Goal: redis-hit p99 within 1.5x of raw redis GET p99.
#
# Each round also prints how busy the host was just before it (% of both cores, other
# processes): the figures of a busy round measure the host as much as kcached.
#
#   bench/tiers.sh            ROUNDS=5 N=5000 W=500 VALUE=100 BUSY_POLL=0 by default
#   taskset -c 0 bench/tiers.sh   every process on one CPU: no cross-CPU wakeups (about 4 us
#                             each on this project's 2-vCPU VMs, against 1 us on one CPU)
#   BUSY_POLL=50              kcached's --redis-busy-poll (us), for comparing runs
#   PIN_WORKERS=true          kcached's --pin-workers (default false)
source "$(dirname "$0")/../tests/lib/common.sh"
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../tests/integration/tiers/tier_lib.bash"
need redis-benchmark taskset nutcracker
ROUNDS=${ROUNDS:-5}
N=${N:-5000}
W=${W:-500}
VALUE=${VALUE:-100}
BUSY_POLL=${BUSY_POLL:-0}
PIN_WORKERS=${PIN_WORKERS:-false}
[ -x "$KCACHED" ] || fail "$KCACHED is not built: run make"

RP=$(free_port)
redis_start bench "$RP"
DATA=$TMP/data-bench
flags=(--redis "redis://127.0.0.1:$RP" --data-dir "$DATA" --write-mode through --threads 2
	--memory 256M --compress-min 0 --redis-busy-poll "$BUSY_POLL"
	--pin-workers "$PIN_WORKERS")
val=$(head -c "$VALUE" /dev/zero | tr '\0' v)

# twemproxy in front of the same redis-server: forwarding only, no tier of its own.
PP=$(free_port)
cat >"$TMP/nutcracker.yml" <<EOF
floor:
  listen: 127.0.0.1:$PP
  redis: true
  hash: fnv1a_64
  distribution: ketama
  timeout: 1000
  servers:
   - 127.0.0.1:$RP:1
EOF
nutcracker -c "$TMP/nutcracker.yml" -o "$TMP/nutcracker.log" -p "$TMP/nutcracker.pid" &
KC_PIDS+=("$!")
for _ in $(seq 50); do redis-cli -p "$PP" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$PP" ping 2>/dev/null | grep -q PONG || fail "nutcracker did not start: $(cat "$TMP/nutcracker.log")"
RKEY=key:000000000000 # the key redis-benchmark -r 1 reads
# rb PORT: p50 and p99 (us) of redis-benchmark GETs of RKEY through PORT.
rb() {
	local csv
	csv=$(redis-benchmark -p "$1" -t get -n "$N" -c 1 -P 1 -d "$VALUE" -r 1 --csv 2>/dev/null | tail -1)
	awk -F'","' '{ print $5 * 1000, $7 * 1000 }' <<<"$csv"
}

med() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A P50 P99
COLS=(memory redis store rawredis rawexact proxy proxyexact rawfile)
add() { P50[$1]+="$2 "; P99[$1]+="$3 "; }
last() { local -n q=$1; awk '{ print $NF }' <<<"${q[$2]}"; }
medof() { local -n q=$1; tr ' ' '\n' <<<"${q[$2]}" | grep . | med; }

for r in $(seq "$ROUNDS"); do
	bg=$(bg_busy)
	redis-cli -p "$RP" flushall >/dev/null
	rm -rf "$DATA"
	start_kcached bench-w "${flags[@]}"
	# Values of VALUE bytes under keys t<i> (kc_load's values are "v-<i>"; pad via the tag).
	$LOAD set "$KC_PORT" t 0 "$N" "$val" >/dev/null || fail "load"
	$LOAD set "$KC_PORT" w 0 "$W" "$val" >/dev/null || fail "load"
	$LOAD lat "$KC_PORT" w 0 "$W" >/dev/null
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add memory "$p50" "$p99"
	stop_kcached
	start_kcached bench-r "${flags[@]}"
	wait_metric "$KC_HTTP" kcache_redis_up == 1
	# Raw redis GETs and the proxy just before the Redis-tier hits, so that all see the same host.
	redis-cli -p "$RP" set "$RKEY" "$val" >/dev/null
	read -r p50 p99 <<<"$(rb "$RP")"
	add rawredis "$p50" "$p99"
	read -r p50 p99 <<<"$(rb "$PP")"
	add proxy "$p50" "$p99"
	read -r _ p50 _ p99 _ <<<"$($LOAD rlat "$RP" "$RKEY" 0 "$N")"
	add rawexact "$p50" "$p99"
	read -r _ p50 _ p99 _ <<<"$($LOAD rlat "$PP" "$RKEY" 0 "$N")"
	add proxyexact "$p50" "$p99"
	$LOAD lat "$KC_PORT" w 0 "$W" >/dev/null # warm-up: Redis-tier hits of other keys
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add redis "$p50" "$p99"
	# kcached's own view: its Redis round trips (histogram buckets, so coarse: 10, 25, 50 us...)
	internal=$("$KCACHECTL" --admin-socket "$TMP/bench-r.sock" stats | sed -n 's/^tier redis:.*latency \(.*\)$/\1/p')
	stop_kcached
	redis-cli -p "$RP" flushall >/dev/null
	start_kcached bench-s "${flags[@]}"
	wait_metric "$KC_HTTP" kcache_redis_up == 1
	$LOAD lat "$KC_PORT" w 0 "$W" >/dev/null
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add store "$p50" "$p99"
	stop_kcached
	# The raw peers.
	# (not find | head: head closing the pipe early fails the pipeline under pipefail)
	find "$DATA/store" -type f -path '*objects*' | awk -v n="$N" 'NR <= n' >"$TMP/files"
	read -r _ p50 _ p99 <<<"$($LOAD files 0 "$TMP/files")"
	add rawfile "$p50" "$p99"
	echo "round $r: host busy before: $bg%; kcached's Redis round trips (histogram bucket bounds): $internal"
	printf 'round %d: p50/p99 us:' "$r"
	for k in "${COLS[@]}"; do printf '  %s %s/%s' "$k" "$(last P50 "$k")" "$(last P99 "$k")"; done
	echo
done

echo "medians of $ROUNDS rounds, $N keys of $VALUE bytes, one request in flight, redis-busy-poll $BUSY_POLL us, pin-workers $PIN_WORKERS:"
for k in "${COLS[@]}"; do printf '  %-10s p50 %8s us   p99 %8s us\n' "$k" "$(medof P50 "$k")" "$(medof P99 "$k")"; done
# Per-round ratios (each round's hits against the raw peer measured next to them), then their
# median: steadier than the ratio of medians on a host whose speed drifts between rounds.
# ratio Q A B: the per-round ratios of A to B at quantile Q (P50 or P99), then their median.
ratio() {
	local -n q=$1
	local per
	per=$(paste -d' ' <(tr ' ' '\n' <<<"${q[$2]}" | grep .) <(tr ' ' '\n' <<<"${q[$3]}" | grep .) |
		awk '{ printf "%.2f\n", $1 / $2 }')
	printf '%s| median %sx' "$(tr '\n' ' ' <<<"$per")" "$(med <<<"$per")"
}
echo "per round, then the median of the rounds:"
echo "  redis-tier hit / raw redis GET (redis-benchmark), p50: $(ratio P50 redis rawredis)"
echo "  redis-tier hit / raw redis GET (redis-benchmark), p99: $(ratio P99 redis rawredis)   (goal: <= 1.5x)"
echo "  redis-tier hit / raw redis GET (exact),           p99: $(ratio P99 redis rawexact)"
echo "  proxy GET / raw redis GET (redis-benchmark),      p99: $(ratio P99 proxy rawredis)   (the floor of one more hop)"
echo "  proxy GET / raw redis GET (exact),                p99: $(ratio P99 proxyexact rawexact)   (the floor of one more hop)"
echo "  redis-tier hit / proxy GET (exact),              p50: $(ratio P50 redis proxyexact)"
echo "  redis-tier hit / proxy GET (exact),              p99: $(ratio P99 redis proxyexact)"
echo "  store-tier hit / raw file read,                   p50: $(ratio P50 store rawfile)   (a tier hit is a TCP round trip plus the read)"
