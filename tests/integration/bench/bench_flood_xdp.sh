#!/usr/bin/env bash
# kcache-bench --flood-xdp (the generator of bench/policy-drop.sh) sends exactly what it says,
# and nothing else: with --requests N the result line says sent=N; the sender veth's counters
# say N frames went into the receiver's ring or were refused because it was full (xdp_xmit +
# xdp_xmit_errors = N); and the receiver's nft counter for memcached UDP from the sender's
# address to the target's address and port counts every frame the ring took, while a catch-all
# counter after it counts none. The receiver has no XDP (GRO on, as the bench's nft and iptables
# droppers have), so the frames go through the stack's parsing up to the nft ingress hook.
# Also: a target that is not on-link is refused with a reason, and nothing is sent.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nft ethtool
BENCH=$BUILD/kcache-bench
[ -x "$BENCH" ] || fail "$BENCH is not built: run make"

S=kcfx-s$$ C=kcfx-c$$
netns_add "$S"
netns_add "$C"
netns_veth "$S" fxs$$ 198.18.0.1/24 "$C" fxc$$ 198.18.0.2/24
# The target's MAC is known: kcache-bench sends no datagram of its own to make the kernel ARP.
mac=$(ip -n "$S" link show fxs$$ | awk '/link\/ether/ { print $2 }')
ip -n "$C" neigh replace 198.18.0.1 lladdr "$mac" dev fxc$$ nud permanent
# veth takes redirected frames only from a peer whose NAPI runs: XDP or, here, GRO.
ns_daemon "$S" ethtool -K fxs$$ gro on >/dev/null
ns_daemon "$S" nft -f - <<EOF || fail "nft: cannot add the counting table"
table netdev kcfx {
	chain in {
		type filter hook ingress device "fxs$$" priority -500
		ip saddr 198.18.0.2 ip daddr 198.18.0.1 udp dport 11211 counter drop
		meta protocol ip counter drop
	}
}
EOF
counts() { ns_daemon "$S" nft list chain netdev kcfx in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | paste -sd' '; }

# xmit: "frames the receiver's ring took, frames it refused" (the sender veth's counters).
xmit() {
	ns_daemon "$C" ethtool -S fxc$$ | awk '/tx_queue_[0-9]+_xdp_xmit:/ { x += $2 }
		/tx_queue_[0-9]+_xdp_xmit_errors:/ { e += $2 } END { print x + 0, e + 0 }'
}

N=300000
# Both threads on one CPU, as in the bench: the receiver then drains the ring after each batch.
out=$(ns_daemon "$C" "$BENCH" -s 198.18.0.1:11211 --flood-xdp --requests $N --duration 30 \
	--threads 2 --cpus 0,0 --batch 64 2>&1) || { echo "$out"; fail "kcache-bench --flood-xdp exited with $?"; }
echo "$out"
sent=$(sed -n 's/^result:.* sent=\([0-9]*\).*/\1/p' <<<"$out")
[ "$sent" = $N ] || fail "--requests $N: the result line says sent=$sent"
read -r took refused <<<"$(xmit)"
[ $((took + refused)) = $N ] || fail "the sender veth passed on $took frames and refused $refused, want $N in all"
read -r hit other <<<"$(counts)"
[ "$hit" -gt 0 ] && [ "$hit" = "$took" ] ||
	fail "the receiver counted $hit matching packets, want the $took its ring took"
[ "$other" = 0 ] || fail "the receiver counted $other other IPv4 packets"
ok "--flood-xdp --requests $N: $hit packets 198.18.0.2 -> 198.18.0.1:11211 arrived ($refused refused by a full ring), nothing else"

# Not on-link: there is no interface to send from, and nothing is sent.
rc=0
msg=$(ns_daemon "$C" "$BENCH" -s 198.19.0.1:11211 --flood-xdp --duration 1 2>&1) || rc=$?
[ $rc = 1 ] || fail "off-link target: exit $rc, want 1"
grep -q 'flood-xdp' <<<"$msg" || fail "off-link target: no reason given: $msg"
read -r hit other <<<"$(counts)"
[ "$hit" = $N ] && [ "$other" = 0 ] || fail "the off-link run reached the receiver ($hit, $other)"
ok "an off-link target is refused: $(grep -m1 flood-xdp <<<"$msg")"
