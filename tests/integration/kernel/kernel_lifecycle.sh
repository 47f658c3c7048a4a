#!/usr/bin/env bash
# Kernel tier lifecycle on a veth pair (native XDP): kcached refuses an interface that carries
# another XDP program (and touches nothing), replaces a kernel tier a dead kcached left attached
# through netlink, refuses one a live kcached holds; a stopped daemon's heartbeat lapses and
# XDP stops answering; after kill -9 UDP gets are answered by nobody, then only by the
# restarted daemon (which clears the dead one's pins), never from the stale kernel tier; a
# clean exit detaches and unpins.
# The client subnet is allowed explicitly: the network policy answers only loopback by default.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc cc jq bpftool

source "$(dirname "$0")/kernel_lib.bash"
metric() { ns_metric "$S" "$1"; }
xdp_id() { ip -n "$S" -d link show "$DS" | awk '/prog\/xdp/ { for (i = 1; i < NF; i++) if ($i == "id") print $(i + 1) }'; }
map_id() { bpftool -j map show pinned "$PIN/$1" | jq .id; }
# kc_stats summed over CPUs: one pass reason's count, by its number (enum kc_pass_reason).
kstat_pass() { bpftool -j map lookup pinned "$PIN/kc_stats" key 0 0 0 0 | jq "[.formatted.values[].value.pass[$1]] | add"; }
PASS_STALE=7
flags=(--iface "$DS" --xdp-mode native --pin-path "$PIN" --allow 198.18.0.0/24 --kernel-entries 64)
kcached_once() { # NAME FLAG...: a kcached expected to fail at start; prints its output
	ns_daemon "$S" "$KCACHED" --listen 0.0.0.0 --port 11299 --http 127.0.0.1:8099 \
		--admin-socket "$TMP/$1.sock" "${@:2}" 2>&1 && fail "$1: kcached started"
	return 0
}
make_resident() {
	for _ in $(seq 60); do
		kc show "$1" >/dev/null
		"$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | awk -v k="$1" 'NR > 2 && $4 == k { f = 1 } END { exit !f }' && return 0
		sleep 0.05
	done
	fail "$1 never became resident"
}
served_by_kernel() {
	local h0
	h0=$(metric kcache_kernel_hits_total)
	expect_eq "$3" "$(kc show "$1")" "$2"
	[ "$(metric kcache_kernel_hits_total)" -gt "$h0" ] || fail "$3: not answered by XDP"
}

# Someone else's XDP program: refused with its id, left in place, nothing pinned.
ip -n "$S" link set dev "$DS" xdpdrv obj "$BUILD/bpf/xdp_pass.bpf.o" sec xdp
foreign=$(xdp_id)
out=$(kcached_once foreign "${flags[@]}")
echo "$out" | grep -qF "xdp on $DS: another XDP program (id $foreign) is attached; detach it or use --xdp-mode off" ||
	{ echo "$out" >&2; fail "no clear refusal"; }
expect_eq "the foreign program stays" "$(xdp_id)" "$foreign"
[ ! -e "$PIN/kc_index" ] || fail "a refused start pinned maps"
ok "another XDP program: refused with a clear message"
ip -n "$S" link set dev "$DS" xdpdrv off

# A kernel tier left attached through netlink (a dead kcached's, or by hand): replaced.
[ -f "$BUILD/bpf/cache.bpf.o" ] || make -s --no-print-directory BUILD="$BUILD" "$BUILD/bpf/cache.bpf.o" >/dev/null
ip -n "$S" link set dev "$DS" xdpdrv obj "$BUILD/bpf/cache.bpf.o" sec xdp
left=$(xdp_id)
ns_start_kcached "$S" first "${flags[@]}"
grep -q "replaced the kernel tier a previous kcached left attached (id $left)" "$KC_LOG" || fail "leftover not replaced"
[ "$(xdp_id)" != "$left" ] || fail "the leftover program is still attached"
ok "a leftover kernel tier is replaced"

# A second kcached on the same interface: refused, and the first one's pins stay.
ids=$(map_id kc_index)
out=$(kcached_once second "${flags[@]}")
echo "$out" | grep -qF "xdp on $DS: a running kcached holds the kernel tier" || { echo "$out" >&2; fail "second kcached not refused"; }
expect_eq "first kcached's pins intact" "$(map_id kc_index)" "$ids"

# Heartbeat: a stopped daemon stops the kernel tier within hb_window (1 s).
ns_mc "$S" 'set k 0 0 2\r\nv1\r\n' >/dev/null
make_resident k
served_by_kernel k v1 "served by XDP while the daemon runs"
stale0=$(kstat_pass $PASS_STALE)
kill -STOP "$KC_PID"
on_exit "kill -CONT $KC_PID"
sleep 1.1
kc watch k 600 >"$TMP/watch"
cat "$TMP/watch"
grep -q '^value' "$TMP/watch" && fail "XDP answered with the daemon stopped for over a second"
[ "$(kstat_pass $PASS_STALE)" -gt "$stale0" ] || fail "no stale_heartbeat pass counted"
kill -CONT "$KC_PID"
sleep 0.3
served_by_kernel k v1 "served by XDP again once the daemon beats"

# kill -9: the link goes with the process; nobody answers until a new daemon does, and the
# new one never serves the old value.
old_index=$(map_id kc_index)
kill -KILL "$KC_PID"
wait "$KC_PID" 2>/dev/null || true
kc watch k 300 >"$TMP/watch"
cat "$TMP/watch"
grep -q '^value' "$TMP/watch" && fail "an answer after kill -9 with no daemon"
[ -z "$(xdp_id)" ] || fail "XDP still attached after kill -9"
[ -e "$PIN/kc_index" ] || fail "kill -9 should leave the pins (nobody to remove them)"
ns_start_kcached "$S" restarted "${flags[@]}"
grep -q "removed $PIN/kc_index left by a previous run" "$KC_LOG" || fail "the dead daemon's pins were not cleared"
[ "$(map_id kc_index)" != "$old_index" ] || fail "the new daemon reused the dead one's maps"
ns_mc "$S" 'set k 0 0 2\r\nv2\r\n' >/dev/null
kc watch k 1000 >"$TMP/watch"
cat "$TMP/watch"
grep -q '^value v1 ' "$TMP/watch" && fail "the old value came back after the restart"
make_resident k
served_by_kernel k v2 "the restarted daemon's kernel tier serves the new value"

# Clean exit: detached, unpinned, pin folder gone.
stop_kcached
[ -z "$(xdp_id)" ] || fail "XDP still attached after a clean exit"
[ ! -e "$PIN" ] || fail "$PIN left after a clean exit: $(ls "$PIN")"
ok "clean exit detaches and unpins"
