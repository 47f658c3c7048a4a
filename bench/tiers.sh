#!/usr/bin/env bash
# tiers.sh: get latency (p50, p99) of kcached's tiers next to their raw peers, in one run:
#   memory hit       a key kcached holds in its memory tier
#   redis hit        a key only Redis has (kcached restarted with an empty memory tier; each
#                    key read once, so each read goes to Redis)
#   store hit        a key only the directory store has (Redis flushed as well)
#   raw redis GET    redis-benchmark -t get, one client, no pipelining, the same redis-server
#   raw file read    open + read + close of the store's own object files
# All reads are sequential over one TCP connection (one request in flight, like the
# redis-benchmark client), so the figures are latencies, not throughput. ROUNDS rounds of N
# keys; it prints every round, the medians, and the ratios. Goal: redis-hit p99 within 1.5x of
# raw redis GET p99.
#
# Each round also prints how busy the host was just before it (% of both cores, other
# processes): the figures of a busy round measure the host as much as kcached.
#
#   bench/tiers.sh            ROUNDS=5 N=2000 VALUE=100 BUSY_POLL=0 by default
#   BUSY_POLL=50              kcached's --redis-busy-poll (us), for comparing runs
#   PIN_WORKERS=true          kcached's --pin-workers (default false)
source "$(dirname "$0")/../tests/lib/common.sh"
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../tests/integration/tier_lib.bash"
need redis-benchmark taskset
ROUNDS=${ROUNDS:-5}
N=${N:-2000}
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


med() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A P50 P99
add() { P50[$1]+="$2 "; P99[$1]+="$3 "; }

for r in $(seq "$ROUNDS"); do
	bg=$(bg_busy)
	redis-cli -p "$RP" flushall >/dev/null
	rm -rf "$DATA"
	start_kcached bench-w "${flags[@]}"
	# Values of VALUE bytes under keys t<i> (kc_load's values are "v-<i>"; pad via the tag).
	$LOAD set "$KC_PORT" t 0 "$N" "$val" >/dev/null || fail "load"
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add memory "$p50" "$p99"
	stop_kcached
	start_kcached bench-r "${flags[@]}"
	wait_metric "$KC_HTTP" kcache_redis_up == 1
	# Raw redis GET just before the Redis-tier hits, so that both see the same host.
	redis-cli -p "$RP" set key:000000000000 "$val" >/dev/null
	csv=$(redis-benchmark -p "$RP" -t get -n "$N" -c 1 -P 1 -d "$VALUE" -r 1 --csv 2>/dev/null | tail -1)
	p50=$(awk -F'","' '{ print $5 * 1000 }' <<<"$csv")
	p99=$(awk -F'","' '{ print $7 * 1000 }' <<<"$csv")
	add rawredis "$p50" "$p99"
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add redis "$p50" "$p99"
	# kcached's own view: its Redis round trips (histogram buckets, so coarse: 10, 25, 50 us...)
	internal=$("$KCACHECTL" --admin-socket "$TMP/bench-r.sock" stats | sed -n 's/^tier redis:.*latency \(.*\)$/\1/p')
	stop_kcached
	redis-cli -p "$RP" flushall >/dev/null
	start_kcached bench-s "${flags[@]}"
	wait_metric "$KC_HTTP" kcache_redis_up == 1
	read -r _ p50 _ p99 _ <<<"$($LOAD lat "$KC_PORT" t 0 "$N")"
	add store "$p50" "$p99"
	stop_kcached
	# The raw peers.
	find "$DATA/store" -type f -path '*objects*' | head -n "$N" >"$TMP/files"
	read -r _ p50 _ p99 <<<"$($LOAD files 0 "$TMP/files")"
	add rawfile "$p50" "$p99"
	echo "round $r: host busy before: $bg%; kcached's Redis round trips (histogram bucket bounds): $internal"
	printf 'round %d: p50/p99 us: memory %s/%s  redis %s/%s  store %s/%s  raw-redis %s/%s  raw-file %s/%s\n' "$r" \
		"$(awk '{print $NF}' <<<"${P50[memory]}")" "$(awk '{print $NF}' <<<"${P99[memory]}")" \
		"$(awk '{print $NF}' <<<"${P50[redis]}")" "$(awk '{print $NF}' <<<"${P99[redis]}")" \
		"$(awk '{print $NF}' <<<"${P50[store]}")" "$(awk '{print $NF}' <<<"${P99[store]}")" \
		"$(awk '{print $NF}' <<<"${P50[rawredis]}")" "$(awk '{print $NF}' <<<"${P99[rawredis]}")" \
		"$(awk '{print $NF}' <<<"${P50[rawfile]}")" "$(awk '{print $NF}' <<<"${P99[rawfile]}")"
done

echo "medians of $ROUNDS rounds, $N keys of $VALUE bytes, one request in flight, redis-busy-poll $BUSY_POLL us, pin-workers $PIN_WORKERS:"
for k in memory redis store rawredis rawfile; do
	printf '  %-9s p50 %8s us   p99 %8s us\n' "$k" "$(tr ' ' '\n' <<<"${P50[$k]}" | grep . | med)" \
		"$(tr ' ' '\n' <<<"${P99[$k]}" | grep . | med)"
done
# Per-round ratios (each round's tier hits against the raw peer measured next to them), then
# their median: steadier than the ratio of medians on a host whose speed drifts between rounds.
ratios() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) | awk '{ printf "%.2f\n", $1 / $2 }'; }
pr99=$(ratios "${P99[redis]}" "${P99[rawredis]}" | med)
pr50=$(ratios "${P50[redis]}" "${P50[rawredis]}" | med)
echo "per round, redis-tier hit / raw redis GET: p50 $(ratios "${P50[redis]}" "${P50[rawredis]}" | tr '\n' ' ')| p99 $(ratios "${P99[redis]}" "${P99[rawredis]}" | tr '\n' ' ')"
echo "median of the per-round ratios: p50 ${pr50}x, p99 ${pr99}x (goal: p99 <= 1.5x)"
r99=$(awk -v a="$(tr ' ' '\n' <<<"${P99[redis]}" | grep . | med)" -v b="$(tr ' ' '\n' <<<"${P99[rawredis]}" | grep . | med)" 'BEGIN { printf "%.2f", a / b }')
r50=$(awk -v a="$(tr ' ' '\n' <<<"${P50[redis]}" | grep . | med)" -v b="$(tr ' ' '\n' <<<"${P50[rawredis]}" | grep . | med)" 'BEGIN { printf "%.2f", a / b }')
s50=$(awk -v a="$(tr ' ' '\n' <<<"${P50[store]}" | grep . | med)" -v b="$(tr ' ' '\n' <<<"${P50[rawfile]}" | grep . | med)" 'BEGIN { printf "%.2f", a / b }')
echo "ratio of the medians: p50 ${r50}x, p99 ${r99}x"
echo "store-tier hit / raw file read: p50 ${s50}x (a tier hit is a TCP round trip plus the read)"
