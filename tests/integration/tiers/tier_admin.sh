#!/usr/bin/env bash
# The write-behind queue as an operator sees it: backpressure when it is full (SERVER_ERROR,
# nothing dropped), dead letters listed and replayed with kcachectl, and kcachectl warm.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"
CTL() { "$KCACHECTL" --admin-socket "$TMP/$1.sock" "${@:2}"; }

# Redis is named but not running yet, so nothing can be flushed: writes wait in the journal
# (without spending attempts) until the queue is full.
RP=$(free_port)
start_kcached q --redis "redis://127.0.0.1:$RP" --write-mode behind --threads 2 \
	--write-behind-queue 20 --write-behind-attempts 2 --redis-timeout 100 --breaker-reset 100
out=$($LOAD set "$KC_PORT" q 0 40 v 2>&1) && fail "40 sets into a queue of 20 all succeeded"
grep -q 'acked 20 errors 20' <<<"$out" || fail "want 20 acknowledged and 20 refused: $out"
mc 'set extra 0 0 1\r\nx\r\n' | grep -q 'SERVER_ERROR write-behind queue full' ||
	fail "no 'write-behind queue full' error"
r=$(metric "$KC_HTTP" kcache_writebehind_rejected_total)
[ "$r" -ge 21 ] || fail "rejected writes counted $r"
ok "backpressure: 20 writes acknowledged, the rest refused with SERVER_ERROR ($r counted)"
$LOAD check "$KC_PORT" q 0 20 v >/dev/null || fail "acknowledged writes not readable"

# They wait while Redis is down. Redis comes up but refuses writes (maxmemory): two failed
# attempts each make them dead letters, which kcachectl lists.
redis_start q "$RP" --maxmemory 1 --maxmemory-policy noeviction
wait_metric "$KC_HTTP" kcache_writebehind_dead_letters == 20 30
CTL q deadletters >"$TMP/dead"
head -1 "$TMP/dead" | grep -q '^20 dead letters' || fail "deadletters: $(head -3 "$TMP/dead")"
grep -q ' set q0 attempts 2: redis' "$TMP/dead" || fail "a dead letter lacks its key or reason: $(sed -n 2p "$TMP/dead")"
ok "20 dead letters listed: $(sed -n 2p "$TMP/dead")"
CTL q deadletters replay bogus 2>/dev/null && fail "replay of a bogus id accepted"

# Redis takes writes again; the replay flushes them all, and they land in Redis.
redis-cli -p "$RP" config set maxmemory 0 >/dev/null
wait_metric "$KC_HTTP" kcache_redis_up == 1
CTL q deadletters replay all | grep -q 'replayed 20' || fail "replay all"
wait_metric "$KC_HTTP" kcache_writebehind_queue_depth == 0
wait_metric "$KC_HTTP" kcache_writebehind_dead_letters == 0
n=$(redis-cli -p "$RP" --scan --pattern 'kcache:k:q*' | wc -l)
expect_eq "replayed writes in Redis" "$n" 20
stop_kcached

# warm: a restarted kcached preloads a key list from below, with a progress bar.
start_kcached w --redis "redis://127.0.0.1:$RP" --write-mode behind --threads 2
wait_metric "$KC_HTTP" kcache_redis_up == 1
{ echo '# keys to warm'; for i in $(seq 0 19); do echo "q$i"; done; echo nothere; echo 'bad key'; } >"$TMP/keys"
rc=0
CTL w warm "$TMP/keys" >"$TMP/warm.out" 2>"$TMP/warm.err" || rc=$?
cat "$TMP/warm.out"
expect_eq "warm exit status with a missing key and a bad line" "$rc" 1
grep -q 'warm: 22 keys, 20 found, 1 missing, 1 invalid lines' "$TMP/warm.out" || fail "warm summary"
grep -q '100% 22/22 keys' "$TMP/warm.err" || fail "no progress bar: $(cat "$TMP/warm.err")"
h0=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="memory"}')
$LOAD check "$KC_PORT" q 0 20 v >/dev/null || fail "warmed keys"
h1=$(metric "$KC_HTTP" 'kcache_tier_hits_total{tier="memory"}')
expect_eq "warmed keys answered by the memory tier" "$((h1 - h0))" 20
stop_kcached
