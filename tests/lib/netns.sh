# tests/lib/netns.sh: network namespaces and veth pairs for tests that put XDP on an interface
# (sourced after common.sh, whose on_exit removes whatever is made here, pass or fail).
#
# Addresses come from 198.18.0.0/15 (set aside for benchmarking) and live only inside the
# namespaces made here; nothing is routed to or from the host's own interfaces.
#
#   netns_require             skip (77) unless root with BPF, ip, nsenter and a bpffs
#   netns_add NAME            a namespace with lo up
#   netns_veth NS_A DEV_A ADDR_A/LEN NS_B DEV_B ADDR_B/LEN   a veth pair across two namespaces
#   netns_xdp_pass NS DEV     the pass-through XDP program on DEV (native), for XDP_TX replies
#                             from the peer to arrive (veth delivers them to an XDP program only)
#   in_ns NS CMD...           runs CMD in NS (ip netns exec: /sys is the namespace's)
#   ns_daemon NS CMD...       runs CMD in NS's network namespace only (nsenter --net), so
#                             /sys/fs/bpf stays the host's bpffs and pinned maps are visible
#   ns_start_kcached NS NAME FLAG...   kcached in NS on port 11211 (all addresses), HTTP on
#                             127.0.0.1:8080 and an admin socket in $TMP; sets KC_PID, KC_LOG,
#                             KC_SOCK; waits until it answers version
#   ns_mc NS 'request'        raw TCP request to the daemon from inside NS ($NETNS_MC_ADDR,
#                             127.0.0.1 unless set: a test that passes --listen sets it)
#   ns_metric NS NAME_WITH_LABELS   one sample's value from NS's /metrics (0 if absent)

NETNS_PORT=11211
NETNS_HTTP=127.0.0.1:8080
NETNS_MC_ADDR=127.0.0.1

netns_require() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces and XDP"
	command -v ip >/dev/null && command -v nsenter >/dev/null || skip "needs ip and nsenter"
	[ -d /sys/fs/bpf ] || skip "no /sys/fs/bpf"
	mount | grep -q ' /sys/fs/bpf type bpf' || mount -t bpf bpf /sys/fs/bpf || skip "no bpffs on /sys/fs/bpf"
	# make deletes BPF objects as intermediates of the skeletons; naming it as a goal keeps it.
	[ -f "$BUILD/bpf/xdp_pass.bpf.o" ] ||
		make -s --no-print-directory BUILD="$BUILD" "$BUILD/bpf/xdp_pass.bpf.o" >/dev/null ||
		fail "cannot build $BUILD/bpf/xdp_pass.bpf.o"
	ip netns add "kcprobe$$" 2>/dev/null || skip "cannot create network namespaces"
	ip netns del "kcprobe$$"
}

netns_add() {
	ip netns add "$1" || fail "ip netns add $1"
	on_exit "ip netns del $1"
	ip -n "$1" link set lo up
}

netns_veth() {
	local na=$1 da=$2 aa=$3 nb=$4 db=$5 ab=$6
	ip link add "$da" type veth peer name "$db" || fail "ip link add $da"
	on_exit "ip link del $da"
	ip link set "$da" netns "$na"
	ip link set "$db" netns "$nb"
	ip -n "$na" addr add "$aa" dev "$da"
	ip -n "$nb" addr add "$ab" dev "$db"
	ip -n "$na" link set "$da" up
	ip -n "$nb" link set "$db" up
}

netns_xdp_pass() {
	ip -n "$1" link set dev "$2" xdpdrv obj "$BUILD/bpf/xdp_pass.bpf.o" sec xdp ||
		fail "attach xdp_pass to $2 in $1"
	on_exit "ip -n $1 link set dev $2 xdpdrv off"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_daemon() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

ns_start_kcached() {
	local ns=$1 name=$2; shift 2
	KC_LOG=$TMP/$name.log KC_SOCK=$TMP/$name.sock
	# nsenter execs kcached (no fork for a network namespace), so $! is the daemon itself.
	nsenter --net="/run/netns/$ns" -- "$KCACHED" --listen 0.0.0.0 --port "$NETNS_PORT" \
		--http "$NETNS_HTTP" --data-dir "$TMP/data-$name" --admin-socket "$KC_SOCK" "$@" \
		>"$KC_LOG" 2>&1 &
	KC_PID=$!
	KC_PIDS+=("$KC_PID")
	for _ in $(seq 100); do
		if ns_mc "$ns" 'version\r\n' 2>/dev/null | grep -q '^VERSION'; then return 0; fi
		kill -0 "$KC_PID" 2>/dev/null || { cat "$KC_LOG" >&2; fail "kcached exited at start"; }
		sleep 0.1
	done
	cat "$KC_LOG" >&2
	fail "kcached did not answer within 10 s"
}

ns_mc() { printf "$2" | ns_daemon "$1" nc -N -w3 "$NETNS_MC_ADDR" "$NETNS_PORT"; }

ns_metric() {
	ns_daemon "$1" curl -fsS "http://$NETNS_HTTP/metrics" |
		awk -v n="$2" '$1 == n { v = $2 } END { print v == "" ? 0 : v }'
}
