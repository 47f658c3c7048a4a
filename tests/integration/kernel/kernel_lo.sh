#!/usr/bin/env bash
# What `make run` does, in a namespace of its own: kcached --iface lo --xdp-mode skb attaches
# generic XDP to lo, and after a set over TCP and a few gets, the plain
#   printf '\0\1\0\0\0\1\0\0get k\r\n' | nc -u -w1 127.0.0.1 11211
# is answered by XDP (kcache_kernel_hits_total rises). When the tier is full, a key only a
# little warmer than nothing stays out, and a much hotter one displaces the coldest resident.
# Without privileges, --xdp-mode off runs and skb is refused with a message that says why.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc setpriv cc
cc -O2 -Wall -Wextra -Werror -pthread -o "$TMP/kc_consist" tests/integration/kernel/kc_consist.c

N=kcl$$ PIN=/sys/fs/bpf/kctest-$$
on_exit "rm -rf $PIN"
netns_add "$N"
udp_get() { in_ns "$N" bash -c "printf '\0\1\0\0\0\1\0\0get $1\r\n' | nc -u -w1 127.0.0.1 $NETNS_PORT | tail -c +9"; }

ns_start_kcached "$N" lo --iface lo --xdp-mode skb --pin-path "$PIN"
ip -n "$N" link show lo | grep -q 'xdpgeneric' || fail "no generic XDP program on lo"
ok "attached to lo in skb mode"
ns_mc "$N" 'set k 0 0 5\r\nhello\r\n' >/dev/null
want=$'VALUE k 0 5\r\nhello\r\nEND\r'
for i in 1 2; do expect_eq "UDP get $i (daemon)" "$(udp_get k)" "$want"; done
sleep 0.2 # the tick installs the key if the kick has not already
h0=$(ns_metric "$N" kcache_kernel_hits_total)
expect_eq "UDP get from XDP" "$(udp_get k)" "$want"
h1=$(ns_metric "$N" kcache_kernel_hits_total)
expect_eq "kcache_kernel_hits_total rose by one" "$((h1 - h0))" 1
stop_kcached
ip -n "$N" link show lo | grep -q 'xdp' && fail "XDP left on lo after exit"
ok "detached from lo on exit"

# A full tier (4 entries): admission compares a candidate with the coldest resident.
ns_start_kcached "$N" small --iface lo --xdp-mode skb --pin-path "$PIN" --kernel-entries 4
k() { in_ns "$N" "$TMP/kc_consist" "$1" 127.0.0.1 "$NETNS_PORT" "${@:2}" >/dev/null; }
for key in c1 c2 c3 c4 warm hot; do ns_mc "$N" "set $key 0 0 ${#key}\r\n$key\r\n" >/dev/null; done
for key in c1 c2 c3 c4; do k get "$key" 3 "$key" || fail "gets of $key"; done
for _ in $(seq 30); do [ "$(ns_metric "$N" kcache_kernel_entries)" -eq 4 ] && break; sleep 0.05; done
expect_eq "four residents fill the tier" "$(ns_metric "$N" kcache_kernel_entries)" 4
k get warm 2 warm || fail "gets of warm"
sleep 0.3
"$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | grep -qw warm && fail "a key asked for twice displaced one asked for three times"
[ "$(ns_metric "$N" kcache_kernel_admissions_rejected_total)" -ge 1 ] || fail "no rejected admission counted"
ok "a candidate no hotter than the coldest resident stays out"
k get hot 30 hot || fail "gets of hot"
for _ in $(seq 30); do "$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | grep -qw hot && break; sleep 0.05; done
"$KCACHECTL" --admin-socket "$KC_SOCK" hot 0
"$KCACHECTL" --admin-socket "$KC_SOCK" hot 0 | grep -qw hot || fail "a key asked for 30 times was not admitted"
expect_eq "one resident displaced" "$(ns_metric "$N" 'kcache_kernel_removals_total{reason="displaced"}')" 1
expect_eq "still four residents" "$(ns_metric "$N" kcache_kernel_entries)" 4
stop_kcached

# Unprivileged: off works, skb is refused before anything is touched.
NB=$(mktemp -d /tmp/kcnobody.XXXXXX)
on_exit "rm -rf $NB"
chmod 777 "$NB"
# the admin sockets' folder: nobody's own and closed to others (kcached refuses an open one)
mkdir -m 0700 "$NB/run"
chown 65534:65534 "$NB/run"
nobody() { ns_daemon "$N" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
port=11300
# Not through the function: a backgrounded function is a subshell, and $! must be kcached.
nsenter --net="/run/netns/$N" -- setpriv --reuid=65534 --regid=65534 --clear-groups "$KCACHED" \
	--port "$port" --http 127.0.0.1:8090 --xdp-mode off --admin-socket "$NB/run/off.sock" \
	--data-dir "$NB/data" >"$NB/off.log" 2>&1 &
pid=$!
KC_PIDS+=("$pid")
for _ in $(seq 50); do
	printf 'version\r\n' | ns_daemon "$N" nc -N -w1 127.0.0.1 "$port" 2>/dev/null | grep -q VERSION && break
	kill -0 "$pid" 2>/dev/null || { cat "$NB/off.log" >&2; fail "unprivileged --xdp-mode off exited"; }
	sleep 0.1
done
stop_kcached "$pid" "$NB/off.log"
ok "--xdp-mode off runs without privileges"
rc=0
nobody "$KCACHED" --port "$port" --http 127.0.0.1:8090 --iface lo --xdp-mode skb --pin-path "$PIN" \
	--admin-socket "$NB/run/skb.sock" --data-dir "$NB/data" >"$NB/skb.log" 2>&1 || rc=$?
cat "$NB/skb.log"
[ "$rc" -eq 1 ] || fail "unprivileged --xdp-mode skb: exit $rc, want 1"
grep -q 'need root' "$NB/skb.log" || fail "the refusal does not say root is needed"
ok "--xdp-mode skb without privileges: refused, saying why"
