#!/usr/bin/env bash
# kill -9 redis-server in the middle of a write-behind load of 50,000 sets: once Redis is back
# and the queue has drained, every acknowledged set is readable. Prints both counts.
# sanitizers: no   (a 50,000-write load: run once; tier_crash covers the same paths under the sanitizers)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"

RP=$(free_port)
redis_start wb "$RP"
start_kcached wb --redis "redis://127.0.0.1:$RP" --write-mode behind --threads 2 \
	--redis-timeout 100 --breaker-reset 200
wait_metric "$KC_HTTP" kcache_redis_up == 1

$LOAD set "$KC_PORT" w 0 50000 val "$TMP/acked" >"$TMP/load.out" 2>"$TMP/load.err" &
LPID=$!
for _ in $(seq 200); do [ "$(wc -l <"$TMP/acked" 2>/dev/null || echo 0)" -ge 10000 ] && break; sleep 0.05; done
kill -9 "$RPID"
ok "redis-server killed after $(wc -l <"$TMP/acked") acknowledged sets"
sleep 1
redis_start wb2 "$RP"
wait "$LPID" || true
acked=$(wc -l <"$TMP/acked")
cat "$TMP/load.out"
wait_metric "$KC_HTTP" kcache_writebehind_queue_depth == 0 60
dead=$(metric "$KC_HTTP" kcache_writebehind_dead_letters)
[ "$dead" = 0 ] || fail "$dead dead letters"
retries=$(metric "$KC_HTTP" kcache_writebehind_retries_total)
# Read back through a new kcached with an empty memory tier: from Redis and the store.
stop_kcached
start_kcached wb-read --redis "redis://127.0.0.1:$RP" --write-mode behind --threads 2 \
	--data-dir "$TMP/data-wb"
out=$($LOAD check "$KC_PORT" w 0 50000 val "$TMP/acked") || { echo "$out"; fail "acknowledged sets lost"; }
readable=$(awk '{print $2}' <<<"$out")
echo "acknowledged writes: $acked, readable after redis came back: $readable (flush retries $retries)"
[ "$acked" -eq "$readable" ] || fail "acknowledged $acked, readable $readable"
[ "$acked" -gt 10000 ] || fail "only $acked sets acknowledged"
ok "all $acked acknowledged sets readable"
stop_kcached
