#!/usr/bin/env bash
# SIGSTOP redis-server: no request waits much past the Redis timeout, the breaker opens, reads
# are served from memory and the store; after SIGCONT the breaker closes again.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"

RP=$(free_port)
redis_start stop "$RP"
DATA=$TMP/data-stop
flags=(--redis "redis://127.0.0.1:$RP" --write-mode through --threads 2 --data-dir "$DATA"
	--redis-timeout 200 --breaker-failures 3 --breaker-reset 500)
start_kcached s1 "${flags[@]}"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD set "$KC_PORT" m 0 50 in-memory >/dev/null || fail "sets"
stop_kcached
start_kcached s2 "${flags[@]}"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD check "$KC_PORT" m 0 20 in-memory >/dev/null || fail "warm 20 keys into memory"

kill -STOP "$RPID"
on_exit "kill -CONT $RPID"
# 30 store-only keys, read one at a time: each read waits at most for the Redis timeout.
max=0
for i in $(seq 20 49); do
	t0=$(date +%s%N)
	out=$($LOAD check "$KC_PORT" m "$i" 1 in-memory) || fail "key m$i with Redis stopped: $out"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -gt $max ] && max=$ms
done
echo "slowest read with redis-server stopped: $max ms (timeout 200 ms)"
# A hang detector, not a speed check: a read must never wait for Redis to come back.
[ $max -lt 1500 ] || fail "a read waited $max ms with a 200 ms Redis timeout"
expect_eq "breaker open" "$(metric "$KC_HTTP" 'kcache_tier_breaker_state{tier="redis"}')" 1
$LOAD check "$KC_PORT" m 0 20 in-memory >/dev/null || fail "memory-tier reads with Redis stopped"
ok "reads served from memory and the store while Redis is stopped"
s=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="store"}')
[ "$s" -ge 30 ] || fail "store hits $s, want >= 30"

kill -CONT "$RPID"
# The next probe after the reset delay closes it; reads of keys in no tier go to Redis.
for i in $(seq 100); do
	$LOAD absent "$KC_PORT" probe$i- 0 3 >/dev/null || fail "reads after SIGCONT"
	[ "$(metric "$KC_HTTP" 'kcache_tier_breaker_state{tier="redis"}')" = 0 ] && break
	sleep 0.1
done
expect_eq "breaker closed after SIGCONT" "$(metric "$KC_HTTP" 'kcache_tier_breaker_state{tier="redis"}')" 0
stop_kcached
