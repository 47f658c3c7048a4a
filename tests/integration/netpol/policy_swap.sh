#!/usr/bin/env bash
# Atomic policy swaps under traffic: while an allowed client (198.18.0.2) streams UDP gets one
# at a time, kcached swaps in a 10,000-rule policy by SIGHUP, another one by kcachectl policy
# reload FILE, changes it with kcachectl policy add/del, and goes back to a small one. Not one
# of the client's requests goes unanswered (sent = replies), a denied source (198.18.0.3) stays
# denied in every policy, and the rule count in /metrics follows each swap.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc cc curl

source "$(dirname "$0")/netpol_lib.bash"
netpol_client
netpol_pair w 3
denied() { in_ns "$C" "$TMP/pc" burst 198.18.0.3 198.18.0.1 "$NETNS_PORT" 5 200 | awk '{ print $4 }'; }

# Two big policies that share nothing but the client's allow and .3's deny: 9,998 other
# rules each, IPv4 and IPv6 prefixes of several lengths, some with port ranges.
big() { # FILE SEED
	awk -v seed="$2" 'BEGIN {
		print "protect:\n  - {proto: udp, port: 11211, default: deny}\n  - {proto: tcp, port: 11211, default: deny}\nrules:"
		print "  - {action: allow, prefix: 198.18.0.2/32}"
		print "  - {action: deny, prefix: 198.18.0.3/32}"
		for (i = 0; i < 7000; i++)
			printf "  - {action: deny, prefix: %d.%d.%d.0/24}\n", 10 + seed, int(i / 256), i % 256
		for (i = 0; i < 2000; i++)
			printf "  - {action: limit, prefix: \"2001:db8:%x:%x::/64\", proto: udp, ports: 11000-12000, rate: 100}\n", seed, i
		for (i = 0; i < 998; i++)
			printf "  - {action: allow, prefix: 172.%d.%d.%d/32, proto: tcp, ports: 11211}\n", 16 + seed, int(i / 250), i % 250
	}' >"$1"
}
big "$TMP/a.yaml" 1
big "$TMP/b.yaml" 2
printf 'rules:\n  - {action: allow, prefix: 198.18.0.2/32}\n  - {action: deny, prefix: 198.18.0.3/32}\n' >"$TMP/small.yaml"
cp "$TMP/small.yaml" "$TMP/policy.yaml"
expect_eq "10,000-rule files" "$(grep -c 'action:' "$TMP/a.yaml")" 10000

ns_start_kcached "$S" swap --iface "$DS" --xdp-mode native --pin-path "$PIN" --net-policy "$TMP/policy.yaml"
ns_mc "$S" 'set k 0 0 5\r\nhello\r\n' >/dev/null
expect_eq "small policy" "$(metric kcache_policy_rules)" 2
expect_eq ".3 denied" "$(denied)" 0

in_ns "$C" "$TMP/pc" stream 198.18.0.2 198.18.0.1 "$NETNS_PORT" "$TMP/stop" >"$TMP/stream.out" &
stream=$!
sleep 0.5

wait_rules() { # N: waits (30 s) until the policy in force has N rules
	for _ in $(seq 300); do [ "$(metric kcache_policy_rules)" = "$1" ] && return 0; sleep 0.1; done
	fail "the policy never had $1 rules"
}
cp "$TMP/a.yaml" "$TMP/policy.yaml"
t0=$(date +%s%N)
kill -HUP "$KC_PID"
wait_rules 10000
echo "SIGHUP: 10,000 rules swapped in within $((($(date +%s%N) - t0) / 1000000)) ms"
expect_eq ".3 denied under a.yaml" "$(denied)" 0
t0=$(date +%s%N)
ctl policy reload "$TMP/b.yaml"
echo "kcachectl policy reload: 10,000 other rules in $((($(date +%s%N) - t0) / 1000000)) ms"
expect_eq "b.yaml in force" "$(metric kcache_policy_rules)" 10000
expect_eq ".3 denied under b.yaml" "$(denied)" 0
for i in 1 2 3 4 5; do
	ctl policy add deny 198.18.1.$i/32 udp >/dev/null
done
ctl policy del deny 198.18.1.3/32 udp
expect_eq "kcachectl add/del on 10,000 rules" "$(metric kcache_policy_rules)" 10004
cp "$TMP/small.yaml" "$TMP/policy.yaml"
kill -HUP "$KC_PID"
wait_rules 2
expect_eq ".3 denied under the small policy again" "$(denied)" 0
sleep 0.5
touch "$TMP/stop"
wait "$stream"
cat "$TMP/stream.out"
read -r _ sent _ got _ lost <"$TMP/stream.out"
[ "$sent" -ge 50 ] || fail "the client sent only $sent requests during the swaps"
expect_eq "every request of the allowed client answered through 4 swaps" "$got" "$sent"
expect_eq "lost" "$lost" 0
expect_eq "swaps counted (start + 2 reloads + 6 changes + 1 reload)" "$(metric kcache_policy_swaps_total)" 10
stop_kcached
[ ! -e "$PIN" ] || fail "pins left after exit"
