#!/usr/bin/env bash
# kcache-bench --flood-xdp (the generator of bench/policy-drop.sh) sends exactly what it says,
# and nothing else, with either of its generators: XDP live frames (BPF_PROG_TEST_RUN) where the
# kernel takes them, else an AF_PACKET socket (some kernel builds refuse live-frames mode with
# EPERM). The first run takes whichever the probe picks (its log line says which); the second
# forces the packet socket (KCACHE_BENCH_NO_LIVE_FRAMES=1, as on a kernel that refuses), so both
# paths are covered on any machine. Each run checks the same things: with --requests N the
# result line says sent=N; the sender veth's counters say N frames went into the receiver or
# were refused because it was full (live frames: xdp_xmit + xdp_xmit_errors = N; packet socket:
# tx_packets + tx_dropped = N, and no xdp_xmit); and the receiver's nft counter for memcached UDP
# from the sender's address to the target's address and port counts every frame it took, while
# a catch-all counter after it counts none. The receiver has no XDP (GRO on, as the bench's nft
# and iptables droppers have), so the frames go through the stack's parsing up to the nft
# ingress hook. --xdp-gen live then either passes the same checks (where the probe picked live)
# or is refused with a reason and sends nothing.
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
# No IPv6 (router solicitations, MLD): the sender's tx counters then count the flood alone.
in_ns "$C" sysctl -qw "net.ipv6.conf.fxc$$.disable_ipv6=1"
in_ns "$S" sysctl -qw "net.ipv6.conf.fxs$$.disable_ipv6=1"
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
# counts: "matching packets, other IPv4 packets" (the receiver's nft counters).
counts() { ns_daemon "$S" nft list chain netdev kcfx in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | paste -sd' '; }

# sender: "xdp_xmit xdp_xmit_errors tx_packets tx_dropped" of the sender veth: frames its peer's
# ring took and refused (live frames), and skbs the peer took and dropped (packet socket).
sender() {
	ns_daemon "$C" ethtool -S fxc$$ | awk '/tx_queue_[0-9]+_xdp_xmit:/ { x += $2 }
		/tx_queue_[0-9]+_xdp_xmit_errors:/ { e += $2 } END { printf "%d %d ", x, e }'
	ip -n "$C" -s -j link show fxc$$ | jq -r '.[0].stats64.tx | "\(.packets) \(.dropped)"'
}

# nosan WHAT TEXT: fails if TEXT (kcache-bench's output) holds a sanitizer report (a sanitized
# build's runs that are meant to exit 1 would hide one otherwise).
nosan() {
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$2"; then
		echo "$2" >&2
		fail "$1: sanitizer report"
	fi
}

# flood NAME N [VAR=VALUE | OPTION]...: one --flood-xdp --requests N run from the sender, with
# VAR=VALUE in its environment and OPTIONs added; checks it as the header says and sets GEN to
# the generator that ran (live or packet), GEN_LINE to kcache-bench's line saying so.
flood() {
	local name=$1 n=$2 rc=0 out line sent took refused hit other a x0 e0 p0 d0 h0 o0 x e p d
	local -a envs=() args=()
	shift 2
	for a in "$@"; do if [[ $a == *=* && $a != -* ]]; then envs+=("$a"); else args+=("$a"); fi; done
	read -r x0 e0 p0 d0 <<<"$(sender)"
	read -r h0 o0 <<<"$(counts)"
	# Both threads on one CPU, as in the bench: the receiver then drains after each batch.
	out=$(ns_daemon "$C" env ${envs[@]+"${envs[@]}"} "$BENCH" -s 198.18.0.1:11211 --flood-xdp \
		--requests "$n" --duration 30 --threads 2 --cpus 0,0 --batch 64 \
		${args[@]+"${args[@]}"} 2>&1) || rc=$?
	echo "$out"
	nosan "$name" "$out"
	[ $rc = 0 ] || fail "$name: kcache-bench --flood-xdp exited with $rc"
	line=$(grep -E "^kcache-bench: .*sending with (XDP live frames|AF_PACKET) .*on fxc$$\$" <<<"$out") ||
		fail "$name: no line says which generator ran"
	[ "$(wc -l <<<"$line")" = 1 ] || fail "$name: more than one generator line: $line"
	case $line in *"sending with XDP live frames"*) GEN=live ;; *) GEN=packet ;; esac
	sent=$(sed -n 's/^result:.* sent=\([0-9]*\).*/\1/p' <<<"$out")
	[ "$sent" = "$n" ] || fail "$name: --requests $n: the result line says sent=$sent"
	read -r x e p d <<<"$(sender)"
	if [ $GEN = live ]; then
		took=$((x - x0)) refused=$((e - e0))
	else
		took=$((p - p0)) refused=$((d - d0))
		[ $((x - x0 + e - e0)) = 0 ] ||
			fail "$name: the packet socket's frames went through XDP ($((x - x0)) xdp_xmit)"
	fi
	[ $((took + refused)) = "$n" ] ||
		fail "$name ($GEN): the sender veth passed on $took frames and refused $refused, want $n in all"
	read -r hit other <<<"$(counts)"
	hit=$((hit - h0)) other=$((other - o0))
	[ "$hit" -gt 0 ] && [ "$hit" = "$took" ] ||
		fail "$name ($GEN): the receiver counted $hit matching packets, want the $took it took"
	[ "$other" = 0 ] || fail "$name ($GEN): the receiver counted $other other IPv4 packets"
	GEN_LINE=$line
	ok "$name: $line"
	ok "$name ($GEN): --requests $n: $hit packets 198.18.0.2 -> 198.18.0.1:11211 arrived ($refused refused by a full receiver), nothing else"
}

N=300000
flood default $N
DEFAULT_GEN=$GEN
flood "forced fallback" $N KCACHE_BENCH_NO_LIVE_FRAMES=1
[ $GEN = packet ] || fail "KCACHE_BENCH_NO_LIVE_FRAMES=1 ran the $GEN generator, want packet"
# chosen because of the variable, not because this kernel refused
grep -q 'KCACHE_BENCH_NO_LIVE_FRAMES' <<<"$GEN_LINE" ||
	fail "KCACHE_BENCH_NO_LIVE_FRAMES=1: the generator line gives another reason: $GEN_LINE"

# --xdp-gen live: where the probe picked live it runs as above; where it fell back, live
# frames are refused with the kernel's reason and nothing is sent.
if [ "$DEFAULT_GEN" = live ]; then
	flood "--xdp-gen live" 30000 --xdp-gen live
	[ $GEN = live ] || fail "--xdp-gen live ran the $GEN generator"
else
	read -r h0 o0 <<<"$(counts)"
	rc=0
	msg=$(ns_daemon "$C" "$BENCH" -s 198.18.0.1:11211 --flood-xdp --xdp-gen live --requests 1000 \
		--duration 5 2>&1) || rc=$?
	nosan "--xdp-gen live" "$msg"
	[ $rc = 1 ] || fail "--xdp-gen live on a kernel that refuses live frames: exit $rc, want 1: $msg"
	grep -q 'live frames refused by the kernel\|live-frames program does not' <<<"$msg" ||
		fail "--xdp-gen live: no reason given: $msg"
	! grep -q AF_PACKET <<<"$msg" || fail "--xdp-gen live fell back to the packet socket: $msg"
	[ "$(counts)" = "$h0 $o0" ] || fail "--xdp-gen live, refused, reached the receiver"
	ok "--xdp-gen live is refused: $(grep -m1 'refused\|does not' <<<"$msg")"
fi

# Not on-link: there is no interface to send from, and nothing is sent (either generator).
for e in KCACHE_BENCH_NO_LIVE_FRAMES=0 KCACHE_BENCH_NO_LIVE_FRAMES=1; do
	read -r h0 o0 <<<"$(counts)"
	rc=0
	msg=$(ns_daemon "$C" env "$e" "$BENCH" -s 198.19.0.1:11211 --flood-xdp --duration 1 2>&1) || rc=$?
	nosan "off-link target ($e)" "$msg"
	[ $rc = 1 ] || fail "off-link target ($e): exit $rc, want 1"
	grep -q 'flood-xdp' <<<"$msg" || fail "off-link target ($e): no reason given: $msg"
	[ "$(counts)" = "$h0 $o0" ] || fail "the off-link run ($e) reached the receiver"
	ok "an off-link target is refused ($e): $(grep -m1 flood-xdp <<<"$msg")"
done
