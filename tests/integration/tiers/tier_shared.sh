#!/usr/bin/env bash
# Two kcached sharing one redis-server (write-through): a set on A is readable on B, and after
# a set or a delete on A, B never returns the old value once 100 ms have passed (1,000 keys).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"

RP=$(free_port)
redis_start shared "$RP"
start_kcached a --redis "redis://127.0.0.1:$RP" --write-mode through --threads 2
A_PORT=$KC_PORT A_HTTP=$KC_HTTP A_PID=$KC_PID A_LOG=$KC_LOG
start_kcached b --redis "redis://127.0.0.1:$RP" --write-mode through --threads 2
B_PORT=$KC_PORT B_HTTP=$KC_HTTP B_PID=$KC_PID B_LOG=$KC_LOG
wait_metric "$A_HTTP" kcache_redis_up == 1
wait_metric "$B_HTTP" kcache_redis_up == 1

KC_PORT=$A_PORT
mc 'set greeting 5 0 5\r\nhello\r\n' | grep -q STORED || fail "set on A"
KC_PORT=$B_PORT
expect_eq "a set on A read on B" "$(mc 'get greeting\r\n' | tr -d '\r')" "$(printf 'VALUE greeting 5 5\nhello\nEND')"

$LOAD set "$A_PORT" k 0 1000 v1 >/dev/null || fail "1,000 sets on A"
$LOAD check "$B_PORT" k 0 1000 v1 || fail "B reads A's first values"
# B now holds every key in its memory tier: only an invalidation can make it see v2.
$LOAD set "$A_PORT" k 0 1000 v2 >/dev/null || fail "1,000 overwrites on A"
sleep 0.1
$LOAD check "$B_PORT" k 0 1000 v2 || fail "B returned an old value 100 ms after A's set"
ok "1,000 overwrites on A seen by B within 100 ms"
$LOAD del "$A_PORT" k 0 1000 | grep -q 'deleted 1000' || fail "1,000 deletes on A"
sleep 0.1
$LOAD absent "$B_PORT" k 0 1000 || fail "B returned a deleted value 100 ms after A's delete"
ok "1,000 deletes on A seen by B within 100 ms"

applied=$(metric "$B_HTTP" 'kcache_tier_invalidations_total{result="applied"}')
[ "${applied:-0}" -ge 2000 ] || fail "B applied $applied invalidations, want >= 2000"
ok "B applied $applied invalidations from A"
stop_kcached "$B_PID" "$B_LOG"
stop_kcached "$A_PID" "$A_LOG"
