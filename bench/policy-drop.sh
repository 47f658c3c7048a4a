#!/usr/bin/env bash
# policy-drop.sh: a UDP flood from a denied source, dropped by six droppers side by side in one
# run, with RULES (10, 10,000 and 100,000) rules installed in each:
#   bare        bpf/bench_drop.bpf.o: XDP drops every frame unlooked at (the floor)
#   kcached     kcached --net-policy FILE (XDP, LPM tries), native on the veth
#   xdp-filter  Debian's xdp-tools xdp-filter, native, policy allow + N denied addresses (exact
#               addresses only: a hash map, which xdp-filter caps at 10,000 entries)
#   nft         nftables: netdev ingress hook on the veth, a named interval set of N prefixes,
#               `ip saddr @deny counter drop`
#   ipt-nft     iptables-nft (Debian 12's `iptables`): N linear `-s PREFIX -j DROP` rules in
#               the raw table's PREROUTING (a user chain jumped to from it), iptables-restore
#   ipt-legacy  the same rules through iptables-legacy (x_tables)
# The source's own prefix (198.18.0.2/32) is among the N rules; the others are N-1 distinct,
# non-overlapping prefixes of /24 to /32 drawn from 10.0.0.0/8 and 100.64.0.0/10 (rule contents
# only: nothing is ever sent to them). In the iptables chains the source's rule is the last one,
# so every packet walks all N rules, as every packet that no rule denies would.
#
# The flood: kcache-bench --flood-xdp in the sender namespace: the kernel makes the frames
# (BPF_PROG_TEST_RUN live frames, redirected into the veth), 2 threads pinned to CPU 0. On a
# veth the receiver's NAPI poll then runs in softirq on CPU 0 right after each batch of 64
# frames, so the generator and the dropper take turns on CPU 0: the generator never outruns the
# dropper (the ring would show it: "ring overflow"), and everything else (this script, kcached's
# daemon, rule loading) stays on CPU 1.
#
# What is printed, per dropper and rule count (medians of ROUNDS rounds of SECS seconds):
#   drops/s per core  packets dropped per CPU-second of CPU 0 (the sending threads' CPU time,
#                     which holds the receive softirq, plus ksoftirqd/0's): the figure compared
#   ns/packet         the same, inverted: CPU 0 nanoseconds per dropped packet, generator included
#   own ns            ns/packet minus the bare drop's: what the dropper's decision itself costs
#   drops/s wall      packets dropped per second of wall-clock time (CPU 0 also idles while the
#                     generator's kernel calls set up and tear down, and other work preempts it)
#   sent/s            frames the generator sent per second (wall), and the ring overflows
# Ratios: kcached/nft, kcached/ipt-nft, kcached/ipt-legacy, kcached/xdp-filter (per-core drop
# rates) and kcached at 100,000 rules against 10. A dropper within 5% of the bare drop costs
# less than this bench resolves, and its ratios are printed as bounds ("<=").
# Goals (issue 6): at 10,000 rules kcached >= 3x nft and >= 20x iptables; kcached moves by less
# than 10% from 10 to 100,000 rules.
#
# Only 198.18.0.0/15 addresses the script creates are used; each dropper has its own pair of
# namespaces (sender 198.18.0.2, receiver 198.18.0.1, on one veth pair). The namespaces (with
# their veths, nft tables, iptables rules and XDP programs), kcached, xdp-filter's pins (in a
# private bpffs directory, bind-mounted over /sys/fs/bpf for each xdp-filter command only) and
# kcached's pins (a private --pin-path) are removed at exit, whatever happens.
#
#   bench/policy-drop.sh      ROUNDS=3 SECS=3 RULES="10 10000 100000" NICE=-10 by default
#   COLS="bare kcached nft" bench/policy-drop.sh     only some droppers
# sanitizers: no
source "$(dirname "$0")/../tests/lib/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, XDP, netfilter)"
need ip nsenter unshare taskset curl ethtool bpftool nft xdp-filter iptables-legacy-restore \
	iptables-nft-restore iptables-legacy iptables-nft iptables-legacy-save iptables-nft-save
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
RULES=${RULES:-10 10000 100000}
NICE=${NICE:--10}
COLS=(${COLS:-bare kcached xdp-filter nft ipt-nft ipt-legacy})
BATCH=64
FLOOR_PCT=5  # within this many percent of the bare drop: below what the bench resolves
XF_MAX=10000 # xdp-filter's filter_ipv4 map size (compiled into its BPF object)
BENCH=$BUILD/kcache-bench
SRC=198.18.0.2 DST=198.18.0.1 PORT=11211
make -s --no-print-directory BUILD="$BUILD" "$BUILD/bpf/bench_drop.bpf.o" >/dev/null ||
	fail "cannot build $BUILD/bpf/bench_drop.bpf.o"
for f in "$BENCH" "$KCACHED"; do
	[ -x "$f" ] || fail "$f is not built: run make"
done
# CPU 0 is the flood's and the droppers'; this script and all it starts run on CPU 1.
taskset -pc 1 $$ >/dev/null

PIN=/sys/fs/bpf/kpd$$
declare -A NS_S NS_C DEV_S DEV_C
declare -A NA=()  # column -> why it does not run (at this rule count)
declare -A NAN=() # "column N" -> the same, kept for the summary
mkdir -p "$PIN/xf"
on_exit "rm -rf $PIN"
i=0
for col in "${COLS[@]}"; do
	i=$((i + 1))
	NS_S[$col]=kpd-r$i-$$ NS_C[$col]=kpd-s$i-$$ DEV_S[$col]=pd${i}r DEV_C[$col]=pd${i}s
done

# --- the network: per dropper, a sender and a receiver namespace and one veth pair ---------
for col in "${COLS[@]}"; do
	s=${NS_S[$col]} c=${NS_C[$col]}
	ip netns add "$s"; on_exit "ip netns del $s"
	ip netns add "$c"; on_exit "ip netns del $c"
	for ns in "$s" "$c"; do
		ip -n "$ns" link set lo up
		# no IPv6: its neighbour discovery would reach the droppers as stray packets
		nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1
	done
	# One queue each way: the generator's frames all land in receive queue 0.
	ip link add "${DEV_C[$col]}" numtxqueues 1 numrxqueues 1 netns "$c" type veth \
		peer name "${DEV_S[$col]}" numtxqueues 1 numrxqueues 1 netns "$s"
	ip -n "$s" addr add "$DST/24" dev "${DEV_S[$col]}"
	ip -n "$c" addr add "$SRC/24" dev "${DEV_C[$col]}"
	ip -n "$s" link set "${DEV_S[$col]}" up
	ip -n "$c" link set "${DEV_C[$col]}" up
	# The sender knows the receiver's MAC without asking: the bare drop would drop the ARP.
	mac=$(ip -n "$s" link show "${DEV_S[$col]}" | awk '/link\/ether/ { print $2 }')
	ip -n "$c" neigh replace "$DST" lladdr "$mac" dev "${DEV_C[$col]}" nud permanent
	case $col in
	nft | ipt-*) # no XDP: veth takes redirected frames only with its NAPI on, which GRO turns on
		nsenter --net="/run/netns/$s" ethtool -K "${DEV_S[$col]}" gro on ;;
	esac
done
ins() { local col=$1; shift; nsenter --net="/run/netns/${NS_S[$col]}" -- "$@"; }
inc() { local col=$1; shift; nsenter --net="/run/netns/${NS_C[$col]}" -- "$@"; }
has() { [[ " ${COLS[*]} " == *" $1 "* ]]; }
if has bare; then
	ins bare ip link set dev "${DEV_S[bare]}" xdpdrv obj "$BUILD/bpf/bench_drop.bpf.o" sec xdp
fi

# --- the rules ------------------------------------------------------------------------------
# prefixes N: N distinct, non-overlapping prefixes (/24 to /32) from 10.0.0.0/8 and
# 100.64.0.0/10: /24 blocks visited in a scattered order, each giving one /24 or two shorter
# prefixes (in its lower and upper halves).
prefixes() {
	awk -v n="$1" 'BEGIN {
		blocks = 81920; mult = 40503 # 256 + 64 /16s of /24s; mult is prime to blocks
		for (k = 0; c < n; k++) {
			j = (k * mult) % blocks
			if (j < 65536) p = "10." int(j / 256) "." (j % 256)
			else { j -= 65536; p = "100." (64 + int(j / 256)) "." (j % 256) }
			if (k % 5 == 0) { print p ".0/24"; c++; continue }
			print p ".0/" (25 + k % 8); c++
			if (c < n) { print p ".128/" (25 + (k * 3) % 8); c++ }
		}
	}'
}
MAXN=$(tr ' ' '\n' <<<"$RULES" | sort -n | tail -1)
prefixes $((MAXN - 1)) >"$TMP/prefixes"

# write_rules N: the rule files for N rules ($TMP/*.N).
write_rules() {
	local n=$1 p=$TMP/prefixes
	{
		printf 'audit: false\nprotect:\n  - {proto: udp, port: %d, default: allow}\nrules:\n' $PORT
		printf '  - {action: deny, prefix: %s/32, proto: udp, ports: %d}\n' $SRC $PORT
		head -n $((n - 1)) "$p" | sed 's/^/  - {action: deny, prefix: /; s/$/}/'
	} >"$TMP/policy.$n.yaml"
	# nft: the table is made, then deleted and made again in one transaction.
	{
		echo "table netdev kcb"
		echo "delete table netdev kcb"
		echo "table netdev kcb {"
		echo "	set deny {"
		echo "		type ipv4_addr; flags interval"
		printf '\t\telements = { %s/32' $SRC
		head -n $((n - 1)) "$p" | awk '{ printf ",\n\t\t\t%s", $1 }'
		printf ' }\n\t}\n'
		printf '\tchain in {\n\t\ttype filter hook ingress device "%s" priority -500\n' \
			"${DEV_S[nft]:-none}"
		printf '\t\tip saddr @deny counter drop\n\t}\n}\n'
	} >"$TMP/nft.$n"
	{
		printf '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:kcb - [0:0]\n'
		printf -- '-A PREROUTING -j kcb\n'
		head -n $((n - 1)) "$p" | sed 's/^/-A kcb -s /; s/$/ -j DROP/'
		printf -- '-A kcb -s %s/32 -j DROP\nCOMMIT\n' $SRC
	} >"$TMP/ipt.$n"
	# xdp-filter: exact addresses (the prefixes' first addresses), in its map's layout: key
	# the address, value per CPU the mode bits (1 = match the source address), hits << 6.
	{
		echo $SRC
		head -n $((n - 1)) "$p" | cut -d/ -f1
	} | awk -v m="$PIN/xf/xdp-filter/filter_ipv4" -F. '{
		printf "map update pinned %s key %d %d %d %d value 1 0 0 0 0 0 0 0\n", m, $1, $2, $3, $4 }' \
		>"$TMP/xf.$n"
}

# xf ARGS...: xdp-filter in the xdp-filter receiver's network namespace, with $PIN/xf (a
# directory of the host's bpffs) bind-mounted over /sys/fs/bpf in a mount namespace of its
# own: its pins stay out of the host's /sys/fs/bpf/xdp-filter, which others may use.
xf() {
	unshare -m --propagation private bash -c 'mount --bind "$1" /sys/fs/bpf && shift &&
		exec nsenter --net="$1" -- "${@:2}"' xf "$PIN/xf" "/run/netns/${NS_S[xdp-filter]}" \
		xdp-filter "$@"
}

KC_HTTP=127.0.0.1:18099 # in the kcached receiver namespace's own loopback
KPID=
stop_kc() {
	[ -n "$KPID" ] || return 0
	kill -TERM "$KPID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$KPID" 2>/dev/null || true
	wait "$KPID" 2>/dev/null || true
	KPID=
}
on_exit stop_kc # runs first: the daemon goes before its namespace and pins
kc_metric() {
	ins kcached curl -fsS "http://$KC_HTTP/metrics" 2>/dev/null |
		awk -v n="$1" '$1 == n { v = $2 } END { if (v != "") printf "%.0f\n", v }'
}

# load COL N: installs N rules in COL; sets LOADT to the seconds it took, or NA[COL].
load() {
	local col=$1 n=$2 t0 t1 dev=${DEV_S[$1]}
	t0=$(date +%s.%N)
	case $col in
	bare) ;;
	kcached)
		stop_kc
		rm -rf "$PIN/kc"
		mkdir -p "$PIN/kc"
		nsenter --net="/run/netns/${NS_S[kcached]}" -- "$KCACHED" --listen $DST --port $PORT \
			--http $KC_HTTP --threads 1 --memory 64M --data-dir "$TMP/kc-data" \
			--admin-socket "$TMP/kc.sock" --iface "$dev" --xdp-mode native \
			--pin-path "$PIN/kc" --net-policy "$TMP/policy.$n.yaml" >"$TMP/kcached.$n.log" 2>&1 &
		KPID=$!
		KC_PIDS+=("$KPID")
		for _ in $(seq 600); do
			[ -n "$(kc_metric 'kcache_policy_packets_total{action="deny"}')" ] && break
			kill -0 "$KPID" 2>/dev/null || break
			sleep 0.1
		done
		if [ -z "$(kc_metric 'kcache_policy_packets_total{action="deny"}')" ]; then
			NA[$col]="kcached did not come up with --net-policy ($n rules): $(grep -m1 . "$TMP/kcached.$n.log" | cut -c1-140)"
			stop_kc
			return 0
		fi
		;;
	nft) ins nft nft -f "$TMP/nft.$n" || fail "nft: loading $n rules failed" ;;
	ipt-nft | ipt-legacy)
		ins "$col" "iptables-${col#ipt-}-restore" <"$TMP/ipt.$n" ||
			fail "$col: iptables-restore of $n rules failed" ;;
	xdp-filter)
		if [ "$n" -gt $XF_MAX ]; then
			NA[$col]="xdp-filter holds at most $XF_MAX IPv4 addresses (filter_ipv4's size, compiled in)"
			return 0
		fi
		# A fresh load empties its map; then the addresses go in as xdp-filter writes them.
		xf unload "$dev" >/dev/null 2>&1 || true
		rm -rf "$PIN/xf/xdp-filter" "$PIN/xf/xdp"
		xf load "$dev" --mode native --policy allow --features ipv4 >"$TMP/xf-load.log" 2>&1 ||
			{ cat "$TMP/xf-load.log" >&2; fail "xdp-filter load failed"; }
		bpftool batch file "$TMP/xf.$n" >/dev/null || fail "xdp-filter: loading $n addresses failed"
		[ "$(xf status | grep -c ' src ')" = "$n" ] ||
			fail "xdp-filter status does not list $n addresses"
		;;
	esac
	t1=$(date +%s.%N)
	LOADT=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}
on_exit "xf unload ${DEV_S[xdp-filter]:-none} >/dev/null 2>&1 || true"

# drops COL: packets COL has dropped so far.
drops() {
	case $1 in
	bare) ins bare ethtool -S "${DEV_S[bare]}" | awk '/rx_queue_[0-9]+_xdp_drops:/ { s += $2 } END { print s + 0 }' ;;
	kcached) kc_metric 'kcache_policy_packets_total{action="deny"}' ;;
	nft) ins nft nft list chain netdev kcb in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' ;;
	ipt-nft | ipt-legacy) # the jump into the chain counts every packet the chain sees
		ins "$1" "iptables-${1#ipt-}" -w -t raw -L PREROUTING -v -x -n |
			awk '$3 == "kcb" { print $1 }' ;;
	xdp-filter) xf status | awk -v a=$SRC '$1 == a && $2 == "src" { print $3 }' ;;
	esac
}
# check_ipt COL: the source's rule dropped every packet the chain saw.
check_ipt() {
	local seen dropped
	seen=$(drops "$1")
	dropped=$(ins "$1" "iptables-${1#ipt-}-save" -c -t raw | grep -F -- "-s $SRC/32 -j DROP" |
		sed -n 's/^\[\([0-9]*\):.*/\1/p')
	[ "$seen" = "$dropped" ] || fail "$1: the chain saw $seen packets, the source's rule dropped $dropped"
}
# xmit COL: "frames delivered to the receiver's ring, frames refused (ring full)" so far.
xmit() {
	inc "$1" ethtool -S "${DEV_C[$1]}" | awk '/tx_queue_[0-9]+_xdp_xmit:/ { x += $2 }
		/tx_queue_[0-9]+_xdp_xmit_errors:/ { e += $2 } END { print x + 0, e + 0 }'
}
ksoftirqd0() { awk '{ print $1 }' "/proc/$(pgrep -x ksoftirqd/0)/schedstat"; }
fld() { sed -n "s/^result:.* $1=\([0-9.]*\).*/\1/p"; }

declare -A RATE WALL NS SENT OVF LOADT # "COL N" -> space-separated per-round values
busy=0 overflow=0
# run COL N ROUND: one flood against COL; stores its figures and prints the round.
run() {
	local col=$1 n=$2 r=$3 d0 d1 x0 x1 k0 k1 out secs cpu sent del ovf drop
	d0=$(drops "$col") x0=$(xmit "$col") k0=$(ksoftirqd0)
	out=$(inc "$col" nice -n "$NICE" "$BENCH" -s $DST:$PORT --flood-xdp --threads 2 --cpus 0,0 \
		--batch $BATCH --duration "$SECS" -q 2>&1) || fail "$col: kcache-bench failed: $out"
	sleep 0.3 # kcached may publish its counters a moment late
	d1=$(drops "$col") x1=$(xmit "$col") k1=$(ksoftirqd0)
	secs=$(fld secs <<<"$out") sent=$(fld sent <<<"$out")
	cpu=$(awk -v c="$(fld cpu_s <<<"$out")" -v k=$((k1 - k0)) 'BEGIN { print c + k / 1e9 }')
	drop=$((d1 - d0))
	read -r xa ea <<<"$x0"
	read -r xb eb <<<"$x1"
	del=$((xb - xa)) ovf=$((eb - ea))
	[ "$drop" -gt 0 ] || fail "$col: dropped nothing ($out)"
	# Every frame the receiver got must have been dropped by the dropper under test.
	[ $((del - drop)) -le $((del / 1000 + 10)) ] ||
		fail "$col: received $del frames but dropped only $drop"
	RATE["$col $n"]+=" $(awk -v d=$drop -v c="$cpu" 'BEGIN { printf "%.0f", d / c }')"
	NS["$col $n"]+=" $(awk -v d=$drop -v c="$cpu" 'BEGIN { printf "%.1f", c * 1e9 / d }')"
	WALL["$col $n"]+=" $(awk -v d=$drop -v s="$secs" 'BEGIN { printf "%.0f", d / s }')"
	SENT["$col $n"]+=" $(awk -v d="$sent" -v s="$secs" 'BEGIN { printf "%.0f", d / s }')"
	OVF["$col $n"]+=" $ovf"
	printf '  %6d rules, round %d, %-10s %11d dropped in %5.2f s: %8.1f ns/packet, %6.3f Mpps per core, %6.3f Mpps wall; sent %d, ring overflow %d\n' \
		"$n" "$r" "$col" "$drop" "$secs" "$(awk -v d=$drop -v c="$cpu" 'BEGIN { print c * 1e9 / d }')" \
		"$(awk -v d=$drop -v c="$cpu" 'BEGIN { print d / c / 1e6 }')" \
		"$(awk -v d=$drop -v s="$secs" 'BEGIN { print d / s / 1e6 }')" "$sent" "$ovf"
	[ "$ovf" -le $((sent / 100)) ] || overflow=1
}

# bg_busy: how busy CPU 0 is (percent) over half a second while the bench runs nothing there.
bg_busy() {
	local a b
	a=$(grep '^cpu0 ' /proc/stat)
	sleep 0.5
	b=$(grep '^cpu0 ' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y)
		for (i = 2; i <= 9; i++) t += y[i] - x[i]
		idle = y[5] - x[5] + y[6] - x[6]
		printf "%.0f", t ? 100 * (t - idle) / t : 0 }'
}

# --- rounds ---------------------------------------------------------------------------------
echo "policy-drop: a UDP flood from a denied source ($SRC -> $DST:$PORT, kcache-bench --flood-xdp,"
echo "  2 threads on CPU 0, batches of $BATCH), dropped in softirq on CPU 0 by: ${COLS[*]}"
echo "  rules: $RULES; $ROUNDS rounds of ${SECS}s each; figures per CPU-second of CPU 0"
if has kcached && ! "$KCACHED" --help 2>&1 | grep -q -- '--net-policy'; then
	KC_MISSING="$KCACHED has no --net-policy: build kcached with the network policy (issue 6)"
fi
for n in $RULES; do
	write_rules "$n"
	NA=()
	[ -n "${KC_MISSING:-}" ] && NA[kcached]=$KC_MISSING
	loads=""
	for col in "${COLS[@]}"; do
		[ -n "${NA[$col]:-}" ] && continue
		load "$col" "$n"
		[ -n "${NA[$col]:-}" ] || loads+=" $col ${LOADT}s,"
	done
	echo "$n rules loaded in:${loads%,}"
	for col in "${COLS[@]}"; do
		[ -n "${NA[$col]:-}" ] && echo "  $col: n/a: ${NA[$col]}"
	done
	# One unmeasured flood each first: JIT, page pools and caches warm, counters settle.
	for col in "${COLS[@]}"; do
		[ -n "${NA[$col]:-}" ] && continue
		inc "$col" "$BENCH" -s $DST:$PORT --flood-xdp --threads 2 --cpus 0,0 --batch $BATCH \
			--duration 0.5 -q >/dev/null 2>&1 || fail "$col: kcache-bench --flood-xdp failed"
	done
	# Each round starts at the next dropper: none is always the first after a pause.
	for r in $(seq "$ROUNDS"); do
		bg=$(bg_busy)
		[ "$bg" -le 10 ] || busy=1
		for j in $(seq 0 $((${#COLS[@]} - 1))); do
			col=${COLS[$(((j + r - 1) % ${#COLS[@]}))]}
			[ -n "${NA[$col]:-}" ] && continue
			run "$col" "$n" "$r"
		done
	done
	for col in ipt-nft ipt-legacy; do
		if has $col; then check_ipt $col; fi
	done
	for col in "${COLS[@]}"; do
		if [ -n "${NA[$col]:-}" ]; then NAN["$col $n"]=${NA[$col]}; fi
	done
done
stop_kc

# --- summary --------------------------------------------------------------------------------
median() { { tr ' ' '\n' | grep . || true; } | sort -g | awk '{ v[NR] = $1 } END {
	if (!NR) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A M MNS MOWN
result="result: bench=policy-drop"
for n in $RULES; do
	echo "medians of $ROUNDS rounds, $n rules:"
	printf '  %-10s %14s %10s %9s %14s %14s %s\n' dropper "drops/s/core" "ns/packet" "own ns" \
		"drops/s wall" "sent/s" "ring overflow"
	bare_ns=$(median <<<"${NS["bare $n"]:-}")
	for col in "${COLS[@]}"; do
		k="$col $n"
		M[$k]=$(median <<<"${RATE[$k]:-}")
		MNS[$k]=$(median <<<"${NS[$k]:-}")
		if [ "${M[$k]}" = n/a ]; then
			printf '  %-10s n/a: %s\n' "$col" "${NAN[$k]:-not run}"
			MOWN[$k]=n/a
			continue
		fi
		MOWN[$k]=$(awk -v a="${MNS[$k]}" -v b="$bare_ns" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.1f", a - b }')
		printf '  %-10s %14.0f %10.1f %9s %14.0f %14.0f %s\n' "$col" "${M[$k]}" "${MNS[$k]}" \
			"${MOWN[$k]}" "$(median <<<"${WALL[$k]}")" "$(median <<<"${SENT[$k]}")" \
			"$(median <<<"${OVF[$k]}")"
		result+=" ${col//-/_}_${n}=${M[$k]}"
	done
	# at_floor COL: its ns/packet is within FLOOR_PCT of the bare drop's.
	at_floor() { awk -v a="${MNS["$1 $n"]}" -v b="$bare_ns" -v p=$FLOOR_PCT \
		'BEGIN { exit !(b != "n/a" && a != "n/a" && a <= b * (1 + p / 100)) }'; }
	line="  ratios (drops/s per core):"
	for other in nft ipt-nft ipt-legacy xdp-filter; do
		has "$other" || continue
		a=${M["kcached $n"]:-n/a} b=${M["$other $n"]:-n/a}
		rt=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a / b }')
		if [ "$rt" != n/a ] && at_floor kcached; then
			# kcached costs no more than the floor shows: its true ratio is this or more;
			# both at the floor: the bench cannot tell them apart.
			if at_floor "$other"; then rt="~1 (both at the floor)"; else rt=">=$rt"; fi
		fi
		line+=" kcached/$other $rt"
		case $other in
		nft) [ "$n" = 10000 ] && line+=" (goal >= 3: $(awk -v r="${rt#>=}" 'BEGIN { print r == "n/a" ? "n/a" : r + 0 >= 3 ? "met" : "NOT met" }'))" ;;
		ipt-*) [ "$n" = 10000 ] && line+=" (goal >= 20: $(awk -v r="${rt#>=}" 'BEGIN { print r == "n/a" ? "n/a" : r + 0 >= 20 ? "met" : "NOT met" }'))" ;;
		esac
		line+=","
		result+=" kc_vs_${other//-/_}_${n}=${rt// /_}"
	done
	echo "${line%,}"
	line="  own cost (ns/packet above the bare drop) relative to kcached's:"
	for other in xdp-filter nft ipt-nft ipt-legacy; do
		has "$other" || continue
		line+=" $other/kcached $(awk -v a="${MOWN["$other $n"]:-n/a}" -v b="${MOWN["kcached $n"]:-n/a}" \
			'BEGIN { if (a == "n/a" || b == "n/a" || b <= 0) print "n/a"; else printf "%.1f", a / b }'),"
	done
	echo "${line%,}"
done
lo=$(tr ' ' '\n' <<<"$RULES" | grep . | sort -n | head -1) hi=$MAXN
kr=$(awk -v a="${M["kcached $hi"]:-n/a}" -v b="${M["kcached $lo"]:-n/a}" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.3f", a / b }')
echo "kcached at $hi rules / at $lo rules (drops/s per core): $kr (goal: within 10%:" \
	"$(awk -v r="$kr" 'BEGIN { print r == "n/a" ? "n/a" : (r >= 0.9 && r <= 1.1) ? "met" : "NOT met" }'))"
[ $busy = 0 ] || echo "warning: other work kept CPU 0 over 10% busy before some rounds: wall-clock figures are noisy"
[ $overflow = 0 ] || echo "warning: the receive ring overflowed in some runs: their CPU time includes frames nobody dropped"
echo "$result kc_${hi}_vs_${lo}=$kr"
