#!/usr/bin/env bash
# Kernel tier consistency, native XDP on a veth pair: every command that changes a key (set add
# replace append prepend cas incr decr delete touch gat flush_all, ms md ma mg-T, expiry, a
# delayed flush_all, eviction from the memory tier) takes the kernel's copy away before it is
# acknowledged, so a UDP get sent after the reply never returns the old value. Then 10,000
# rounds of "set over TCP, get over UDP" never read an older value, and a writer racing two
# UDP readers passes a linearizability check on values carrying sequence numbers. Both runs
# must have been partly answered by XDP, or they would prove nothing.
# The client subnet is allowed explicitly: the network policy answers only loopback by default.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc cc

source "$(dirname "$0")/kernel_lib.bash"
metric() { ns_metric "$S" "$1"; }
resident() { "$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | awk -v k="$1" 'NR > 2 && $4 == k { f = 1 } END { exit !f }'; }
make_resident() {
	for _ in $(seq 60); do
		kc show "$1" >/dev/null
		resident "$1" && return 0
		sleep 0.05
	done
	fail "$1 never became resident"
}
# served_by_kernel KEY WANT: a UDP get returns WANT, and XDP answered it.
served_by_kernel() {
	local h0 got
	h0=$(metric kcache_kernel_hits_total)
	got=$(kc show "$1")
	[ "$got" == "$2" ] || fail "$1: got $got, want $2 before the write"
	[ "$(metric kcache_kernel_hits_total)" -gt "$h0" ] || fail "$1 was resident but XDP did not answer"
}
# check_write WHAT KEY REQUEST WANT: KEY is served by XDP, REQUEST changes it over TCP, and the
# first UDP get after the reply sees the change (WANT: the value, or MISS).
check_write() {
	local what=$1 key=$2 req=$3 want=$4 cur
	cur=$(kc show "$key")
	make_resident "$key"
	served_by_kernel "$key" "$cur"
	ns_mc "$S" "$req" >/dev/null
	expect_eq "$what" "$(kc show "$key")" "$want"
}

# Memory tier only (--data-dir ''): the eviction check below needs an evicted key to be gone,
# not fetched back from the store (tier_*.sh test the tiers below).
ns_start_kcached "$S" consist --iface "$DS" --xdp-mode native --pin-path "$PIN" --allow 198.18.0.0/24 \
	--memory 2M --item-size-max 512K --kernel-entries 256 --data-dir '' --allow-flush true

ns_mc "$S" 'set k 0 0 2\r\nv1\r\n' >/dev/null
check_write "set" k 'set k 0 0 2\r\nv2\r\n' v2
check_write "replace" k 'replace k 0 0 2\r\nv3\r\n' v3
check_write "append" k 'append k 0 0 1\r\na\r\n' v3a
check_write "prepend" k 'prepend k 0 0 1\r\np\r\n' pv3a
unique=$(ns_mc "$S" 'gets k\r\n' | awk '/^VALUE/ { print $5 }' | tr -d '\r')
check_write "cas" k "cas k 0 0 2 $unique\r\nv4\r\n" v4
check_write "add on a live key changes nothing" k 'add k 0 0 2\r\nzz\r\n' v4
check_write "ms" k 'ms k 2\r\nv5\r\n' v5
check_write "set a number" k 'set k 0 0 2\r\n10\r\n' 10
check_write "incr" k 'incr k 5\r\n' 15
check_write "decr" k 'decr k 3\r\n' 12
check_write "ma" k 'ma k\r\n' 13
for w in 'touch k 100\r\n' 'gat 100 k\r\n' 'mg k T100 v\r\n'; do
	t0=$(metric 'kcache_kernel_removals_total{reason="touched"}')
	check_write "${w%%\\*}: same value" k "$w" 13
	[ "$(metric 'kcache_kernel_removals_total{reason="touched"}')" -gt "$t0" ] ||
		fail "${w%%\\*} did not take the kernel copy (its deadline changed)"
done
check_write "delete" k 'delete k\r\n' MISS
ns_mc "$S" 'set k 0 0 2\r\nv6\r\n' >/dev/null
check_write "md" k 'md k\r\n' MISS
ns_mc "$S" 'set k 0 0 2\r\nv7\r\n' >/dev/null
check_write "flush_all" k 'flush_all\r\n' MISS

# Expiry and a delayed flush_all: served by XDP until due, never after.
ns_mc "$S" 'set e 0 2 2\r\nev\r\nset d 0 0 2\r\ndv\r\n' >/dev/null
make_resident e
make_resident d
served_by_kernel e ev
# The flush is due at a whole-second tick, up to a second early: 4 s leave the read before it
# three seconds even on a loaded host.
expect_eq "flush_all 4 answers" "$(ns_mc "$S" 'flush_all 4\r\n')" $'OK\r'
expect_eq "before the delayed flush" "$(kc show d)" dv
sleep 4.2
expect_eq "after expiry" "$(kc show e)" MISS
expect_eq "after the delayed flush" "$(kc show d)" MISS

# Eviction from the memory tier (2 MB): large stores push the small resident keys out.
for i in $(seq 10); do ns_mc "$S" "set s$i 0 0 ${#i}\r\n$i\r\n" >/dev/null; done
for i in $(seq 10); do make_resident "s$i"; done
inv0=$(metric 'kcache_kernel_removals_total{reason="invalidated"}')
for i in $(seq 8); do
	{ printf 'set f%d 0 0 400000\r\n' "$i"; head -c 400000 /dev/zero | tr '\0' x; printf '\r\n'; } |
		ns_daemon "$S" nc -N -w3 127.0.0.1 "$NETNS_PORT" >/dev/null
done
evicted=0
for i in $(seq 10); do
	udp=$(kc show "s$i")
	if ns_mc "$S" "get s$i\r\n" | grep -q '^VALUE'; then
		[ "$udp" == "$i" ] || fail "s$i: in memory, but UDP got $udp"
	else
		[ "$udp" == MISS ] || fail "s$i: evicted from memory, but UDP got $udp"
		evicted=$((evicted + 1))
	fi
done
[ "$evicted" -gt 0 ] || fail "the flood evicted no resident key: the check proved nothing"
[ "$(metric 'kcache_kernel_removals_total{reason="invalidated"}')" -gt "$inv0" ] || fail "no invalidation counted"
ok "eviction from the memory tier: $evicted of 10 resident keys evicted, none served by XDP after"

# 10,000 rounds: set seq over TCP, then two UDP gets must return exactly that seq.
ns_mc "$S" 'flush_all\r\n' >/dev/null
h0=$(metric kcache_kernel_hits_total)
kc seq q 10000 || fail "a UDP get returned an older value than the set just acknowledged"
h1=$(metric kcache_kernel_hits_total)
[ "$h1" -gt "$h0" ] || fail "XDP answered none of the sequential gets"
ok "10,000 set-then-get rounds, none stale ($((h1 - h0)) gets answered by XDP)"

# One TCP writer and two UDP readers at once, checked for linearizability.
h0=$(metric kcache_kernel_hits_total)
kc race r 5000 2 || fail "the racing history is not linearizable"
h1=$(metric kcache_kernel_hits_total)
[ "$h1" -gt "$h0" ] || fail "XDP answered none of the racing gets"
ok "racing writer and readers: linearizable ($((h1 - h0)) reads answered by XDP)"
echo "installs $(metric kcache_kernel_installs_total), removals on write $(metric 'kcache_kernel_removals_total{reason="invalidated"}')"
stop_kcached
