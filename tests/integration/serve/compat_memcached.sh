#!/usr/bin/env bash
# kcached beside Debian's memcached 1.6.18, each on a free loopback port: every request of the
# table in compat_memcached.py (one row per hardening item 20, 22-27 and per meta flag) must get
# memcached's reply byte for byte (cas values, clock-dependent ttls and me's slab fields are
# normalised there, each named).
source "$(dirname "$0")/../../lib/common.sh"
need memcached python3
# flush_all is compared too: kcached serves it only with --allow-flush (memcached without -F).
start_kcached compat --item-size-max 1M --memory 64M --allow-flush true
MC_PORT=$(free_port)
memcached -u nobody -l 127.0.0.1 -p "$MC_PORT" -U 0 -I 1m -m 64 >"$TMP/memcached.log" 2>&1 &
KC_PIDS+=("$!")
for _ in $(seq 100); do
	printf 'version\r\n' | nc -N -w1 127.0.0.1 "$MC_PORT" 2>/dev/null | grep -q '^VERSION 1\.6\.' && break
	sleep 0.1
done
printf 'version\r\n' | nc -N -w1 127.0.0.1 "$MC_PORT" | grep -q '^VERSION 1\.6\.' || fail "memcached did not start"
python3 tests/integration/serve/compat_memcached.py "$MC_PORT" "$KC_PORT" || fail "replies differ from memcached's"
ok "every row answers as memcached 1.6 does"
alive
stop_kcached
