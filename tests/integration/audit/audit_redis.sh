#!/usr/bin/env bash
# The Redis stream sink: records arrive with XADD (MAXLEN ~) and a consumer group reads them;
# with Redis dead the cache keeps answering and the file sink keeps writing; what Redis missed
# comes back as a gap record in its own chain once it is up again.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/audit_lib.bash"
need redis-server redis-cli

RPORT=$(free_port)
start_redis() {
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$TMP" >"$TMP/redis.log" 2>&1 &
	RPID=$!
	KC_PIDS+=("$RPID")
	for _ in $(seq 50); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return; sleep 0.1; done
	fail "redis-server did not start"
}
R() { redis-cli -p "$RPORT" "$@"; }
start_redis
cat >"$TMP/r.yaml" <<YAML
rules:
  - name: marker
    syscalls: [openat]
    paths: [$TMP/marker]
YAML
touch "$TMP/marker"
audit_start redis "$TMP/r.yaml" --audit-redis-stream "redis://127.0.0.1:$RPORT/kcache:audit" \
	--audit-redis-maxlen 1000
R XGROUP CREATE kcache:audit auditors 0 MKSTREAM >/dev/null 2>&1 || true
"$AH" openloop 5 "$TMP/marker" >/dev/null
for _ in $(seq 50); do [ "$(R XLEN kcache:audit)" -ge 6 ] && break; sleep 0.1; done
R --raw XREADGROUP GROUP auditors c1 COUNT 100 STREAMS kcache:audit '>' | grep '^{"v":1' >"$TMP/stream.log"
n=$(jq -c 'select(.rule == "marker")' "$TMP/stream.log" | wc -l)
expect_eq "the consumer group reads the events" "$n" 5
expect_eq "stream records are a chain from seq 1" "$(jq -s '[.[].seq] == [range(1; length + 1)]' "$TMP/stream.log")" true

# Redis dies: the cache and the file sink go on.
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null || true
"$AH" openloop 7 "$TMP/marker" >/dev/null
alive
ok "the cache answers with Redis dead"
for _ in $(seq 50); do [ "$(jq -c 'select(.rule == "marker")' "$ALOG" | wc -l)" -ge 12 ] && break; sleep 0.1; done
expect_eq "the file sink has every event" "$(jq -c 'select(.rule == "marker")' "$ALOG" | wc -l)" 12
sleep 1.5
[ "$(metric 'kcache_audit_lost_total{hook="openat",reason="sink_redis"}')" -ge 7 ] || fail "redis losses not counted"
ok "what Redis could not take is counted"
start_redis # empty: a new stream
"$AH" openloop 1 "$TMP/marker" >/dev/null
for _ in $(seq 80); do R XLEN kcache:audit | grep -qv '^0$' && [ "$(R XLEN kcache:audit)" -ge 2 ] && break; sleep 0.1; done
R --raw XRANGE kcache:audit - + | grep '^{"v":1' >"$TMP/stream2.log"
gap=$(jq -c 'select(.type == "gap" and .reason == "sink_redis")' "$TMP/stream2.log" | head -1)
[ -n "$gap" ] || { cat "$TMP/stream2.log" >&2; fail "no gap record in the stream"; }
[ "$(field "$gap" .count)" -ge 7 ] || fail "gap count $(field "$gap" .count), want >= 7"
ok "the gap is in the stream's chain: $(field "$gap" .count) records"
stop_kcached
