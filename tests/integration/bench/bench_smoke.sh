#!/usr/bin/env bash
# kcache-bench against kcached, about 2 s each over TCP and UDP with --verify: no error and no
# verification failure (no timing assertions). Also: the tool refuses destinations outside
# loopback and 198.18.0.0/15, and its open-loop and flood modes run and stop by themselves.
source "$(dirname "$0")/../../lib/common.sh"
BENCH=$BUILD/kcache-bench
[ -x "$BENCH" ] || fail "$BENCH is not built: run make"

# field NAME: a value of the result line in $out
field() { sed -n "s/^result:.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }

# run WHAT ARGS...: runs the bench, shows its output, checks the result line's counters.
run() {
	local what=$1; shift
	out=$("$BENCH" "$@" 2>&1) || { echo "$out"; fail "$what: kcache-bench exited with $?"; }
	echo "== $what"; echo "$out"
	grep -q '^result: ' <<<"$out" || fail "$what: no result line"
	[ "$(field errors)" = 0 ] || fail "$what: $(field errors) errors"
	[ "$(field verify_fail)" = 0 ] || fail "$what: $(field verify_fail) verification failures"
}

# The safety check: nothing outside loopback and the benchmarking range, names not resolved.
for dst in 8.8.8.8:11211 10.0.0.1:11211 198.20.0.1:11211 '[2001:db8::1]:11211' \
	'[::ffff:10.0.0.1]:11211' localhost:11211; do
	rc=0; msg=$("$BENCH" --server "$dst" --duration 1 2>&1) || rc=$?
	[ "$rc" = 2 ] || fail "target $dst: exit $rc, want 2 (refused)"
	grep -Eq 'refusing|numeric' <<<"$msg" || fail "target $dst: no reason given: $msg"
done
ok "destinations outside 127.0.0.0/8, ::1 and 198.18.0.0/15 are refused"

# kcache-bench sends sets over UDP too: --udp-writes lets them in (UDP is read-only by default);
# its values of up to 3000 bytes take 3 datagrams: --udp-max-reply 8K (the default is one).
start_kcached bench --memory 256M --threads 2 --udp-writes true --udp-max-reply 8K
common=(--server "127.0.0.1:$KC_PORT" --keys 20000 --key-size 10-64 --value-size 10-3000
	--threads 2 --conns 2 --depth 16 --timeout-ms 2000 --verify)

out=$("$BENCH" "${common[@]}" --prefill --duration 0 2>&1) || { echo "$out"; fail "prefill failed"; }
echo "$out"
grep -q '^prefill: .* stored=20000 errors=0 lost=0 ' <<<"$out" || fail "prefill did not store the 20000 keys"
ok "prefill: 20000 keys over tcp"
run "tcp, closed loop" "${common[@]}" --tcp --duration 2 --get-ratio 0.8
[ "$(field hits)" -gt 0 ] && [ "$(field misses)" = 0 ] || fail "tcp: want hits and no misses after the prefill"
ok "tcp: $(field hits) verified hits, $(field sets) sets, 0 errors"

# UDP: values above 1392 bytes come back in several datagrams, reassembled by the tool.
run "udp, closed loop" "${common[@]}" --udp --duration 2 --get-ratio 0.8
[ "$(field hits)" -gt 0 ] || fail "udp: no hits"
ok "udp: $(field hits) verified hits, $(field sets) sets, 0 errors, $(field lost) lost"

run "udp, open loop" "${common[@]}" --udp --duration 1 --rate 2000
sent=$(field sent)
[ "$sent" -ge 1800 ] && [ "$sent" -le 2200 ] || fail "udp open loop at 2000/s for 1 s sent $sent"
ok "udp open loop: $sent requests at 2000/s"

run "tcp, open loop, request limit" "${common[@]}" --tcp --duration 5 --rate 2000 --requests 500
[ "$(field sent)" = 500 ] || fail "--requests 500 sent $(field sent)"
ok "tcp: --requests stops the run"

run "udp flood" --server "127.0.0.1:$KC_PORT" --keys 20000 --udp --flood --duration 1 --conns 1
[ "$(field sent)" -gt 0 ] || fail "flood sent nothing"
ok "flood: $(field sent) datagrams sent, $(field replies) replies seen"

alive
stop_kcached
