#!/usr/bin/env bash
# kill -9 kcached in the middle of a write-behind load: after a restart every acknowledged
# write is there (the journal is replayed and read through). With and without Redis.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"

RP=$(free_port)
redis_start crash "$RP"
for setup in redis store-only; do
	DATA=$TMP/data-crash-$setup
	flags=(--write-mode behind --threads 2 --data-dir "$DATA")
	[ $setup = redis ] && flags+=(--redis "redis://127.0.0.1:$RP")
	rm -f "$TMP/acked"
	start_kcached crash-$setup "${flags[@]}"
	$LOAD set "$KC_PORT" c$setup 0 20000 v "$TMP/acked" >/dev/null 2>&1 &
	LPID=$!
	for _ in $(seq 200); do [ "$(wc -l <"$TMP/acked" 2>/dev/null || echo 0)" -ge 3000 ] && break; sleep 0.05; done
	kill -9 "$KC_PID"
	wait "$LPID" || true
	acked=$(wc -l <"$TMP/acked")
	[ "$acked" -ge 3000 ] || fail "$setup: only $acked sets acknowledged before the kill"
	start_kcached crash-$setup-2 "${flags[@]}"
	replayed=$(metric "$KC_HTTP" kcache_writebehind_replayed_total)
	out=$($LOAD check "$KC_PORT" c$setup 0 20000 v "$TMP/acked") || { echo "$out"; fail "$setup: acknowledged writes lost"; }
	echo "$setup: acknowledged $acked before kill -9, replayed $replayed, $out"
	wait_metric "$KC_HTTP" kcache_writebehind_queue_depth == 0 60
	stop_kcached
	ok "$setup: every acknowledged write survived kill -9"
done
