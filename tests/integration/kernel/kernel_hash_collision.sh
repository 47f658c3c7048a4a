#!/usr/bin/env bash
# Kernel tier, kc_index keyed by a 64-bit hash of the key: a key whose hash another entry
# already holds is refused by the daemon (kcache_kernel_hash_collisions_total counts it, it is
# never resident) and is answered right by the daemon, never by XDP with the other entry's slot;
# the key that owns the entry is still served by XDP. A real 64-bit collision cannot be found in
# a test's time, so the test plants one: it copies the resident key "hot"'s kc_index entry under
# the hash of "twin", as if twin's hash were hot's.
# The client subnet is allowed explicitly: the network policy answers only loopback by default.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc curl cc

[ -f "$BUILD/lib/kernel.a" ] || fail "$BUILD/lib/kernel.a missing: run make"
san= # the library of a san-* build needs its sanitizer's runtime
case $BUILD in *san-*) san="-fsanitize=${BUILD##*san-}" ;; esac
# shellcheck disable=SC2086 # $san: no flag or one
cc -O2 -Wall -Wextra -Werror $san -Iinclude -Iuser -o "$TMP/kc_plant" tests/integration/kernel/kc_plant.c \
	"$BUILD/lib/kernel.a" "$BUILD/lib/core.a" -lbpf -pthread
source "$(dirname "$0")/kernel_lib.bash"
NETNS_MC_ADDR=198.18.0.1
ns_start_kcached "$S" coll --listen 198.18.0.1 --iface "$DS" --xdp-mode native --pin-path "$PIN" --allow 198.18.0.0/24 \
	--kernel-entries 1024

ns_mc "$S" "set hot 5 0 11\r\nhello world\r\nset twin 6 0 9\r\ntwin-data\r\n" >/dev/null
for _ in $(seq 50); do
	kc get hot 1 "hello world" >/dev/null || fail "UDP get of hot before install"
	[ "$(ns_metric "$S" kcache_kernel_entries)" -ge 1 ] && break
	sleep 0.05
done
expect_eq "hot is resident" "$(ns_metric "$S" kcache_kernel_entries)" 1

# hot's entry, copied under twin's hash: twin now "collides" with a resident key.
planted=$("$TMP/kc_plant" "$PIN/kc_index" hot twin) || fail "cannot plant twin's entry"
ok "planted a kc_index entry for twin pointing at hot's slot ($planted)"

c0=$(ns_metric "$S" kcache_kernel_hash_collisions_total) h0=$(ns_metric "$S" kcache_kernel_hits_total)
for _ in $(seq 40); do
	kc get twin 1 "twin-data" >/dev/null || fail "UDP get of twin: wrong answer"
	[ "$(ns_metric "$S" kcache_kernel_hash_collisions_total)" -gt "$c0" ] && break
	sleep 0.05
done
[ "$(ns_metric "$S" kcache_kernel_hash_collisions_total)" -gt "$c0" ] ||
	fail "the daemon never refused twin for its hash"
ok "the daemon refused twin and counted it ($(ns_metric "$S" kcache_kernel_hash_collisions_total))"
expect_eq "twin is not resident" "$(ns_metric "$S" kcache_kernel_entries)" 1
"$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | grep -qw twin && fail "kcachectl hot lists twin"

m0=$(ns_metric "$S" kcache_kernel_misses_total)
kc get twin 200 "twin-data" || fail "UDP gets of twin: wrong answers"
expect_eq "XDP served none of twin's gets" "$(ns_metric "$S" kcache_kernel_hits_total)" "$h0"
[ "$(ns_metric "$S" kcache_kernel_misses_total)" -ge $((m0 + 200)) ] ||
	fail "twin's gets did not pass as misses"
ok "twin's 200 gets: answered by the daemon, passed by XDP as misses"

kc get hot 200 "hello world" || fail "UDP gets of hot"
expect_eq "XDP still serves hot" "$(ns_metric "$S" kcache_kernel_hits_total)" $((h0 + 200))

stop_kcached
ok "clean exit"
