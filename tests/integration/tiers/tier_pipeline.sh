#!/usr/bin/env bash
# Pipelined gets of keys only Redis holds: the client sends everything at once, so input (and
# the client's EOF) arrives while a get waits for Redis; every get must be answered, in order,
# and the connection closed only after the last answer.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"
need nc

RP=$(free_port)
redis_start pipe "$RP"
flags=(--redis "redis://127.0.0.1:$RP" --write-mode through --threads 2 --data-dir '')
start_kcached pipe1 "${flags[@]}"
$LOAD set "$KC_PORT" t 0 300 x >/dev/null || fail "load"
stop_kcached
start_kcached pipe2 "${flags[@]}"
wait_metric "$KC_HTTP" kcache_redis_up == 1

# 300 gets and a multi-get, then EOF (nc -N), in one burst.
{ for i in $(seq 0 299); do printf 'get t%d\r\n' "$i"; done; printf 'get t1 t2 nope t299\r\n'; } >"$TMP/req"
nc -N -w10 127.0.0.1 "$KC_PORT" <"$TMP/req" | tr -d '\r' | grep -E '^(VALUE|END)' >"$TMP/got"
{ for i in $(seq 0 299); do printf 'VALUE t%d 0 %d\nEND\n' "$i" $((${#i} + 2)); done
	printf 'VALUE t1 0 3\nVALUE t2 0 3\nVALUE t299 0 5\nEND\n'; } >"$TMP/want"
cmp -s "$TMP/got" "$TMP/want" || { diff "$TMP/want" "$TMP/got" | head >&2; fail "pipelined Redis-tier gets"; }
ok "301 pipelined gets of Redis-only keys, answered in order before EOF closed the connection"
[ "$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="redis"}')" -ge 300 ] || fail "not from Redis"
ok "they were Redis-tier hits"

# Many more than one read's worth of misses (each one asks Redis), then EOF.
for i in $(seq 0 19999); do printf 'get z%d\r\n' "$i"; done >"$TMP/req2"
n=$(nc -N -w30 127.0.0.1 "$KC_PORT" <"$TMP/req2" | grep -c '^END')
expect_eq "20000 pipelined misses, each asking Redis, all answered" "$n" 20000
alive
stop_kcached
