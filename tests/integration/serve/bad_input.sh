#!/usr/bin/env bash
# Hostile and malformed memcached input: each gets memcached's error reply or a clean close,
# the daemon keeps serving, stored data is never damaged and memory stays bounded.
source "$(dirname "$0")/../../lib/common.sh"
need nc
start_kcached bad --memory 8M --item-size-max 1M
rss() { awk '/^VmRSS/ {print $2}' "/proc/$KC_PID/status"; }
mc 'set keep 5 0 4\r\nsafe\r\n' >/dev/null
intact() { # the canary value survives every attack, and the daemon answers
	expect_eq "canary after $1" "$(mc 'get keep\r\n')" $'VALUE keep 5 4\r\nsafe\r\nEND\r'
}
base_rss=$(rss)

k250=$(printf 'k%.0s' {1..250}); k251=${k250}k
expect_eq "250-byte key" "$(mc "set $k250 0 0 1\r\nv\r\nget $k250\r\n")" $'STORED\r\nVALUE '"$k250"$' 0 1\r\nv\r\nEND\r'
expect_eq "251-byte key set" "$(mc "set $k251 0 0 1\r\nv\r\n")" $'CLIENT_ERROR bad command line format\r\nERROR\r'
expect_eq "251-byte key get" "$(mc "get $k251\r\n")" $'CLIENT_ERROR bad command line format\r'
expect_eq "251-byte key in a multi-get" "$(mc "get keep $k251\r\n")" $'CLIENT_ERROR bad command line format\r'
expect_eq "negative length" "$(mc 'set k 0 0 -1\r\n')" $'CLIENT_ERROR bad command line format\r'
expect_eq "non-numeric length" "$(mc 'set k 0 0 ten\r\n')" $'CLIENT_ERROR bad command line format\r'
expect_eq "length past int32" "$(mc 'set k 0 0 99999999999\r\n')" $'CLIENT_ERROR bad command line format\r'
expect_eq "non-numeric flags" "$(mc 'set k x 0 1\r\nv\r\n')" $'CLIENT_ERROR bad command line format\r\nERROR\r'
mc 'set k 0 0 3\r\nold\r\n' >/dev/null
expect_eq "data longer than announced" "$(mc 'set k 0 0 1\r\nabc\r\nget k\r\n')" \
	$'CLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE k 0 3\r\nold\r\nEND\r'
expect_eq "data shorter than announced, then more commands" "$(mc 'set k 0 0 5\r\nab\r\nget k\r\n')" \
	$'CLIENT_ERROR bad data chunk\r\nERROR\r'
expect_eq "data shorter than announced, then EOF" "$(mc 'set k 0 0 10\r\nabc\r\n')" ""
expect_eq "old value kept" "$(mc 'get k\r\n')" $'VALUE k 0 3\r\nold\r\nEND\r'
expect_eq "value over item-size-max is swallowed" \
	"$( { printf 'set big 0 0 2000000\r\n'; head -c 2000000 /dev/zero; printf '\r\nget keep\r\n'; } | nc -N -w5 127.0.0.1 "$KC_PORT")" \
	$'SERVER_ERROR object too large for cache\r\nVALUE keep 5 4\r\nsafe\r\nEND\r'
expect_eq "unknown command" "$(mc 'frobnicate\r\n')" $'ERROR\r'
expect_eq "empty line" "$(mc '\r\n')" $'ERROR\r'
expect_eq "incr non-numeric delta" "$(mc 'incr keep abc\r\n')" $'CLIENT_ERROR invalid numeric delta argument\r'
expect_eq "incr non-numeric value" "$(mc 'incr keep 1\r\n')" $'CLIENT_ERROR cannot increment or decrement non-numeric value\r'
expect_eq "meta: bad flag" "$(mc 'mg keep Z\r\n')" $'CLIENT_ERROR invalid flag\r'
intact "malformed commands"

# A 10 MB line with no newline: refused and closed, well before 10 MB are buffered.
out=$(head -c 10000000 /dev/zero | tr '\0' a | nc -N -w10 127.0.0.1 "$KC_PORT" || true)
expect_eq "10 MB line" "$out" $'CLIENT_ERROR line too long\r'
intact "a 10 MB line"

# Random binary bytes, several rounds.
for i in 1 2 3 4 5; do head -c 300000 /dev/urandom | nc -N -w5 127.0.0.1 "$KC_PORT" >/dev/null || true; done
intact "random bytes"

# UDP: frames too short for a header are dropped (and counted), multi-packet requests refused,
# with an error only when it is no larger than the datagram (a forged source gets nothing more).
for i in 1 2 3; do printf '\x01\x02\x03' | nc -u -w1 127.0.0.1 "$KC_PORT" >/dev/null || true; done
out=$({ printf '\x00\x07\x00\x00\x00\x02\x00\x00get keep\r\n'; } | nc -u -w1 127.0.0.1 "$KC_PORT" | wc -c)
expect_eq "short udp multi-packet request: no reply" "$out" 0
keys=$(printf ' keep%.0s' {1..20})
out=$({ printf '\x00\x07\x00\x00\x00\x02\x00\x00get%s\r\n' "$keys"; } | nc -u -w1 127.0.0.1 "$KC_PORT" | tail -c +9)
expect_eq "udp multi-packet request" "$out" $'SERVER_ERROR multi-packet request not supported\r'
head -c 1400 /dev/urandom | nc -u -w1 127.0.0.1 "$KC_PORT" >/dev/null || true
expect_eq "udp get after garbage" "$(mcu 'get keep\r\n')" $'VALUE keep 5 4\r\nsafe\r\nEND\r'
bad=$(curl -fsS "http://$KC_HTTP/metrics" | awk '/^kcache_udp_bad_frames_total/ {print $2}')
[ "${bad:-0}" -ge 4 ] || fail "udp bad frames counted: ${bad:-none}, want >= 4"
ok "udp bad frames counted ($bad)"

# 1000 connections opened and dropped mid-command, 50 at a time.
for round in $(seq 20); do
	pids=()
	for i in $(seq 50); do
		( exec 3<>"/dev/tcp/127.0.0.1/$KC_PORT" && printf 'set half%s 0 0 100\r\nabc' "$i" >&3 && exec 3>&- ) 2>/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}" || true
done
for _ in $(seq 50); do
	conns=$(mc 'stats\r\n' | awk '/curr_connections/ {print $3+0}')
	[ "$conns" -le 1 ] && break; sleep 0.1
done
[ "$conns" -le 1 ] || fail "connections not released: $conns still open"
ok "1000 dropped connections released"
expect_eq "half-sent sets stored nothing" "$(mc 'get half1 half50\r\n')" $'END\r'
intact "1000 dropped connections"

# Memory: the bound is --memory (8M); buffers for all the above must have been returned.
now_rss=$(rss)
growth=$(( (now_rss - base_rss) / 1024 ))
echo "rss: start ${base_rss} kB, now ${now_rss} kB, growth ${growth} MB (bound: 8 MB tier + 24 MB slack)"
if [[ $BUILD == *san-address* ]]; then
	echo "note: RSS bound not checked under ASan (its quarantine holds freed memory)"
else
	[ "$growth" -le 32 ] || fail "memory grew by ${growth} MB"
	ok "memory bounded"
fi
stop_kcached
