#!/usr/bin/env bash
# Restarting kcached with an empty memory tier: values come back from Redis; then, with Redis
# flushed, from the directory store; then, with both gone, from S3 (s3rver, started here).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"
source "$(dirname "$0")/s3_lib.bash"

RP=$(free_port)
redis_start restart "$RP"
s3_start
DATA=$TMP/data-restart
flags=(--redis "redis://127.0.0.1:$RP" --data-dir "$DATA" --write-mode through --threads 2)

start_kcached w "${flags[@]}"
$LOAD set "$KC_PORT" r 0 300 val >/dev/null || fail "300 sets"
stop_kcached

start_kcached r1 "${flags[@]}"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD check "$KC_PORT" r 0 300 val || fail "values after a restart (from Redis)"
h=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="redis"}')
[ "$h" -eq 300 ] || fail "redis tier hits $h, want 300"
ok "300 values came back from Redis"
stop_kcached

redis-cli -p "$RP" flushall >/dev/null
start_kcached r2 "${flags[@]}"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD check "$KC_PORT" r 0 300 val || fail "values with Redis flushed (from the store)"
h=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="store"}')
[ "$h" -eq 300 ] || fail "store tier hits $h, want 300"
p=$(metric "$KC_HTTP" 'kcache_tier_promotions_total{tier="store"}')
ok "300 values came back from the directory store ($p promoted)"
stop_kcached

# S3: write through Redis and S3, then lose both Redis and the local directory.
s3flags=(--redis "redis://127.0.0.1:$RP" --store "$S3_URL" --write-mode through --threads 2)
start_kcached s1 "${s3flags[@]}" --data-dir "$TMP/data-s3a"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD set "$KC_PORT" s 0 100 sval >/dev/null || fail "100 sets through S3"
stop_kcached
redis-cli -p "$RP" flushall >/dev/null
rm -rf "$TMP/data-s3a"
start_kcached s2 "${s3flags[@]}" --data-dir "$TMP/data-s3b"
wait_metric "$KC_HTTP" kcache_redis_up == 1
$LOAD check "$KC_PORT" s 0 100 sval || fail "values with Redis and the directory gone (from S3)"
h=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="store"}')
[ "$h" -eq 100 ] || fail "S3 store hits $h, want 100"
ok "100 values came back from S3"
stop_kcached
