#!/usr/bin/env bash
# memcaslap with --verify against kcached, over TCP and over UDP: no verification failure.
# sanitizers: no   (a load test: run once, on the normal build)
source "$(dirname "$0")/../../lib/common.sh"
need memcaslap
secs=${KC_SLAP_SECONDS:-20}
# memaslap sends its sets over UDP too: --udp-writes lets them in (UDP serves reads only by
# default); its 1 KiB values fit the default --udp-max-reply (one datagram).
start_kcached slap --memory 256M --udp-writes true
for mode in tcp udp; do
	flags=(); [ "$mode" = udp ] && flags=(--udp)
	# memaslap asserts that each value it reassembles from UDP datagrams ends in CRLF, so one
	# datagram dropped by a full socket buffer aborts the client itself (SIGABRT). That is the
	# client's fragility, not a wrong answer: it gets one logged retry; a second abort, any
	# other error and any verification failure fail the test.
	for attempt in 1 2; do
		rc=0
		out=$(memcaslap -s "127.0.0.1:$KC_PORT" -T 2 -c 32 -t "${secs}s" --verify=0.1 "${flags[@]}" 2>&1) || rc=$?
		[ $rc -eq 0 ] && break
		echo "$out" | tail -5
		if [ $rc -eq 134 ] && [ $attempt -eq 1 ] && grep -q 'Assertion' <<<"$out"; then
			echo "note: memcaslap $mode aborted on its own assertion (exit 134); retrying once"
			continue
		fi
		fail "memcaslap $mode exited with $rc"
	done
	echo "== memcaslap $mode, ${secs}s"; echo "$out" | tail -16
	failed=$(sed -n 's/^verify_failed: *//p' <<<"$out")
	gets=$(sed -n 's/^cmd_get: *//p' <<<"$out")
	ops=$(sed -n 's/.*Ops: *\([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$failed" ] && [ -n "$gets" ] || fail "memcaslap $mode: no statistics in its output"
	[ "$failed" -eq 0 ] || fail "memcaslap $mode: $failed verification failures"
	[ "$gets" -gt 1000 ] || fail "memcaslap $mode: only $gets gets ran"
	ok "memcaslap $mode: $ops ops, $gets gets, 0 verification failures"
done
alive
stop_kcached
