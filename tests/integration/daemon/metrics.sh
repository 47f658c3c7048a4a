#!/usr/bin/env bash
# /metrics passes `promtool check metrics` and carries the families the contract names;
# /healthz answers; counters move with traffic.
source "$(dirname "$0")/../../lib/common.sh"
need promtool curl
start_kcached metrics
mc 'set a 0 0 1\r\nx\r\nget a\r\nget b\r\nbogus\r\n' >/dev/null
mcu 'get a\r\n' >/dev/null
curl -fsS "http://$KC_HTTP/metrics" >"$TMP/metrics.txt"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool rejected /metrics"
ok "promtool check metrics"
for fam in kcache_requests_total kcache_request_duration_seconds_bucket kcache_memory_items \
	kcache_memory_bytes kcache_memory_evictions_total kcache_tier_hits_total kcache_tier_misses_total; do
	grep -q "^$fam" "$TMP/metrics.txt" || fail "/metrics lacks $fam"
done
ok "families present"
grep -q '^kcache_requests_total{proto="tcp",op="set",result="stored"} 1$' "$TMP/metrics.txt" || fail "set not counted"
grep -q '^kcache_requests_total{proto="tcp",op="get",result="hit"} 1$' "$TMP/metrics.txt" || fail "get hit not counted"
grep -q '^kcache_requests_total{proto="tcp",op="get",result="miss"} 1$' "$TMP/metrics.txt" || fail "get miss not counted"
grep -q '^kcache_requests_total{proto="udp",op="get",result="hit"} 1$' "$TMP/metrics.txt" || fail "udp get not counted"
grep -q '^kcache_requests_total{proto="tcp",op="other",result="error"} 1$' "$TMP/metrics.txt" || fail "unknown command not counted"
grep -q '^kcache_memory_items 1$' "$TMP/metrics.txt" || fail "memory items gauge wrong"
grep -q 'kcache_request_duration_seconds_count{proto="tcp",op="get"} 2$' "$TMP/metrics.txt" || fail "histogram count wrong"
ok "counters follow traffic"
expect_eq "/healthz" "$(curl -fsS "http://$KC_HTTP/healthz")" "ok"
expect_eq "/nope status" "$(curl -s -o /dev/null -w '%{http_code}' "http://$KC_HTTP/nope")" "404"
stop_kcached
