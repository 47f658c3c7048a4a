#!/usr/bin/env bash
# In-kernel filtering: a process that does 100,000 opens of a path no rule matches produces
# zero events, and the per-hook counters show the calls were dropped in the kernel.
# sanitizers: no   (kernel test)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/audit_lib.bash"
need curl promtool

audit_start filter deploy/policies/default.yaml
touch "$TMP/plain"
sleep 1.2 # one counter poll, for a clean baseline
f0=$(metric 'kcache_audit_filtered_total{hook="openat",reason="no_rule"}')
s0=$(metric 'kcache_audit_seen_total{hook="openat"}')
"$AH" openloop 100000 "$TMP/plain" >"$TMP/out" &
hpid=$!
wait $hpid
grep -q 'ret=0' "$TMP/out" || fail "helper failed: $(cat "$TMP/out")"
sleep 1.5
f1=$(metric 'kcache_audit_filtered_total{hook="openat",reason="no_rule"}')
s1=$(metric 'kcache_audit_seen_total{hook="openat"}')
echo "filtered openat: $f0 -> $f1, seen openat: $s0 -> $s1"
[ $((f1 - f0)) -ge 100000 ] || fail "only $((f1 - f0)) openat calls counted as filtered in the kernel"
ok "100,000 opens counted as filtered (no rule) in the kernel"
[ $((s1 - s0)) -lt 100 ] || fail "$((s1 - s0)) openat calls were kept by a rule"
ok "none kept by a rule"
curl -fsS "http://$KC_HTTP/metrics" >"$TMP/metrics.txt"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool rejected /metrics with the audit's families"
grep -q '^kcache_audit_lost_total{hook="openat",reason="ringbuf_full"} ' "$TMP/metrics.txt" || fail "no kcache_audit_lost_total{hook}"
ok "promtool check metrics passes with the audit families"
stop_kcached
n=$(jq -c "select(.type == \"syscall\" and .syscall.hook == \"openat\" and .process.pid == $hpid)" "$ALOG" | wc -l)
expect_eq "open events from the 100,000-open process" "$n" 0
