#!/usr/bin/env bash
# udp-get.sh: memcached UDP gets from a client in a network namespace over veth pairs with
# native XDP, side by side in one run:
#   memcached   Debian's memcached 1.6, UDP on, 2 threads
#   kc-off      kcached --xdp-mode off (the daemon answers every get), 2 threads
#   kc-kernel   kcached with the kernel tier (--xdp-mode native): hot keys answered by XDP
#   ceiling     bpf/bench_ceiling.bpf.o: XDP answers every get with a fixed value, no lookup
# Workload: Zipf 0.99 over 100k keys of 32 bytes, values of 100-500 bytes, gets only (the
# servers are prefilled over TCP). Every column has its own veth pair (198.18.N.0/24) so all
# servers run at once and the rounds alternate between them; all share the same client.
#
# Fairness: while a column is measured, the other servers are stopped (SIGSTOP): an idle
# kcached with a populated kernel tier still folds hit counters every 100 ms, and memcached
# runs its LRU maintainer; neither may take CPU from another column's run.
#
# Per round and column: a closed-loop run (max requests/s; its latency is at saturation) and
# an open-loop run at LAT_RATE requests/s (latency at the same offered load for all, measured
# from the intended send time). Then the medians and the ratios; goals: kc-kernel >= 5x
# memcached's requests/s with a lower p99 (at LAT_RATE), and >= 0.8x the ceiling.
# Also: kcache-bench --verify against each server, and memcaslap --udp against kcached (the
# kernel tier when there is one), to show a third-party client gets correct answers.
#
# Padded frames: the client sends each request as an Ethernet frame of PAD bytes (the request,
# then a trailer the stack trims; kcache-bench --pad-frames). On a veth, XDP otherwise gets a
# buffer only as large as the request and cannot grow it into a reply with a 300-byte value
# (see tools/bench/bench_raw.c); a NIC gives it that room. PAD=0 sends plain datagrams instead.
#
# CPUs: 2 cores for everything. The client's 2 threads are pinned to CPU 0 and 1; servers run
# unpinned on both (taskset 0,1); XDP (kernel tier, ceiling) runs in softirq on the sending
# client's CPU. Figures compare the columns to each other, on this host.
#
# Only 198.18.0.0/15 addresses the script creates are used; the namespaces, veths, XDP programs,
# pinned maps and processes are removed at exit, whatever happens.
#
# Priority: servers and clients run at nice NICE (-10): the host is shared with other work, and
# this keeps it from preempting the bench as often (the same for every column).
#
#   bench/udp-get.sh      ROUNDS=3 SECS=5 WARMUP=1 LAT_RATE=50000 PAD=640 NICE=-10 by default
#   BPF_STATS=1 bench/udp-get.sh   also turn on kernel.bpf_stats_enabled for the runs (it is
#                         restored at exit) and print the XDP programs' nanoseconds per packet
#   PERF=1 bench/udp-get.sh   also perf record (all CPUs) the last round's closed-loop runs of
#                         kc-kernel and ceiling into $BUILD/perf-udp-<column>.data
# sanitizers: no
source "$(dirname "$0")/../tests/lib/common.sh"
source "$(dirname "$0")/lib.bash"
need memcached nc taskset ip
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, XDP)"
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
LAT_RATE=${LAT_RATE:-50000}
PAD=${PAD:-640}
NICE=${NICE:--10}
DEPTH=${DEPTH:-16} # closed loop: requests in flight per socket (4 sockets per client thread)
BPF_STATS=${BPF_STATS:-0}
THREADS=2
CPUS=0,1
KEYS=100000
PORT=11211
BENCH=$BUILD/kcache-bench
# make deletes BPF objects as intermediates of the skeletons; naming them as goals keeps them.
make -s --no-print-directory BUILD="$BUILD" "$BUILD/bpf/xdp_pass.bpf.o" \
	"$BUILD/bpf/bench_ceiling.bpf.o" >/dev/null || fail "cannot build the BPF objects"
for f in "$BENCH" "$KCACHED"; do
	[ -x "$f" ] || fail "$f is not built: run make"
done
KS=(--keys "$KEYS" --key-size 32 --value-size 100-500 --zipf 0.99)
PADOPT=(); [ "$PAD" != 0 ] && PADOPT=(--pad-frames "$PAD")

NS_S=kcb-s$$ NS_C=kcb-c$$ PIN=/sys/fs/bpf/kcb$$
COLS=(memcached kc-off kc-kernel ceiling)
declare -A ADDR=([memcached]=198.18.1.1 [kc-off]=198.18.2.1 [kc-kernel]=198.18.3.1 [ceiling]=198.18.4.1)
declare -A DEV=([memcached]=kb1s$$ [kc-off]=kb2s$$ [kc-kernel]=kb3s$$ [ceiling]=kb4s$$)
declare -A HTTP=([kc-off]=127.0.0.1:18082 [kc-kernel]=127.0.0.1:18083)
declare -A NA=()   # column -> why it does not run
declare -A SPID=() # column -> server process

# --- the network: two namespaces, one veth pair per column ---------------------------------
stop_servers() {
	for p in "${KC_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; done # a stopped one ignores TERM
	for p in "${KC_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 50); do
		local alive=0
		for p in "${KC_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
}
ip netns add "$NS_S"; on_exit "ip netns del $NS_S"
ip netns add "$NS_C"; on_exit "ip netns del $NS_C"
on_exit "rm -rf $PIN"
on_exit stop_servers # runs first: processes go before their namespaces
ip -n "$NS_S" link set lo up
ip -n "$NS_C" link set lo up
i=0
for col in "${COLS[@]}"; do
	i=$((i + 1))
	s=${DEV[$col]} c=kb${i}c$$
	ip link add "$s" numtxqueues 2 numrxqueues 2 netns "$NS_S" type veth \
		peer name "$c" numtxqueues 2 numrxqueues 2 netns "$NS_C"
	ip -n "$NS_S" addr add "198.18.$i.1/24" dev "$s"
	ip -n "$NS_C" addr add "198.18.$i.2/24" dev "$c"
	ip -n "$NS_S" link set "$s" up
	ip -n "$NS_C" link set "$c" up
	# XDP_TX frames reach a veth peer only if it runs XDP itself.
	ip -n "$NS_C" link set dev "$c" xdpdrv obj "$BUILD/bpf/xdp_pass.bpf.o" sec xdp
done
inc() { ip netns exec "$NS_C" nice -n "$NICE" "$@"; }
# Servers enter the network namespace only (ip netns exec would also mount the namespace's own
# /sys, hiding the bpffs where kcached pins its maps); nsenter execs, so $! is the server when
# it is started directly (never through a shell function: that would fork a subshell).
ins() { nsenter --net="/run/netns/$NS_S" -- "$@"; }

# --- the servers --------------------------------------------------------------------------
# wait_up COL PID LOG: until the server answers `version` over TCP from the client's side.
wait_up() {
	for _ in $(seq 100); do
		if printf 'version\r\n' | inc nc -N -w1 "${ADDR[$1]}" $PORT 2>/dev/null | grep -q '^VERSION'; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

NSENTER_S=(nsenter --net="/run/netns/$NS_S" -- nice -n "$NICE") # not a function: "$!" is the server
"${NSENTER_S[@]}" taskset -c $CPUS memcached -u nobody -l "${ADDR[memcached]}" -p $PORT -U $PORT -t $THREADS \
	-m 1024 -c 4096 >"$TMP/memcached.log" 2>&1 &
KC_PIDS+=($!)
SPID[memcached]=$!
wait_up memcached $! || { cat "$TMP/memcached.log" >&2; fail "memcached did not start"; }

# start_kcached_ns COL FLAGS...: kcached in the server namespace; sets PID. No lower tiers
# (--data-dir ''): memcached, the peer, keeps nothing on disk either. --udp-writes: memcaslap
# --udp below sends 10% sets over UDP, which kcached refuses by default.
start_kcached_ns() {
	local col=$1; shift
	"${NSENTER_S[@]}" taskset -c $CPUS "$KCACHED" --listen "${ADDR[$col]}" --port $PORT --http "${HTTP[$col]}" \
		--threads $THREADS --memory 1G --data-dir '' --udp-writes true \
		--admin-socket "$TMP/$col.sock" "$@" >"$TMP/$col.log" 2>&1 &
	PID=$!
	KC_PIDS+=("$PID")
	SPID[$col]=$PID
	wait_up "$col" "$PID"
}
start_kcached_ns kc-off --xdp-mode off || { cat "$TMP/kc-off.log" >&2; fail "kcached did not start"; }

# The kernel tier runs once kcached accepts --xdp-mode native: try it, and say why not if not.
mkdir -p "$PIN"
# The network policy in front of the kernel tier answers only loopback unless told otherwise.
kernel_flags=(--xdp-mode native --iface "${DEV[kc-kernel]}" --pin-path "$PIN" --kernel-entries $KEYS
	--allow 198.18.0.0/15)
if ! start_kcached_ns kc-kernel "${kernel_flags[@]}"; then
	if grep -q 'kernel-entries' "$TMP/kc-kernel.log"; then # accepted mode, older flag set
		kernel_flags=(--xdp-mode native --iface "${DEV[kc-kernel]}" --pin-path "$PIN")
		start_kcached_ns kc-kernel "${kernel_flags[@]}" || true
	fi
fi
if ! kill -0 "$PID" 2>/dev/null; then
	NA[kc-kernel]="kcached does not start with --xdp-mode native: $(grep -m1 -v '^$' "$TMP/kc-kernel.log" | cut -c1-120)"
elif ! ip -n "$NS_S" link show "${DEV[kc-kernel]}" | grep -q 'prog/xdp'; then
	NA[kc-kernel]="kcached started with --xdp-mode native but attached no XDP program"
fi

ip -n "$NS_S" link set dev "${DEV[ceiling]}" xdpdrv obj "$BUILD/bpf/bench_ceiling.bpf.o" sec xdp
if [ "$BPF_STATS" = 1 ]; then bpf_stats_on; fi

# --- prefill and correctness --------------------------------------------------------------
echo "udp-get: gets over UDP, Zipf 0.99, $KEYS keys of 32 B, values 100-500 B; client $THREADS threads"
echo "  (CPUs $CPUS) in a namespace, veth with native XDP, frames padded to ${PAD} B; $ROUNDS rounds,"
echo "  ${SECS}s measured (+${WARMUP}s warmup) closed loop, then ${SECS}s open loop at $LAT_RATE req/s"
for col in memcached kc-off kc-kernel; do
	[ -n "${NA[$col]:-}" ] && continue
	out=$(inc "$BENCH" -s "${ADDR[$col]}:$PORT" "${KS[@]}" --prefill --duration 0 --threads 2 -q) ||
		{ echo "$out" >&2; fail "$col: prefill failed"; }
	grep -q " stored=$KEYS " <<<"$out" || fail "$col: prefill: $out"
	out=$(inc "$BENCH" -s "${ADDR[$col]}:$PORT" --udp "${KS[@]}" --get-ratio 1 --duration 2 \
		--warmup 1 --threads 2 --verify --timeout-ms 200 "${PADOPT[@]}" -q 2>&1) ||
		{ echo "$out" >&2; fail "$col: kcache-bench --verify found errors"; }
	echo "  $col: prefilled; kcache-bench --verify over UDP: $(sed -n 's/^result: .*\( hits=[0-9]*\).*\( lost=[0-9]*\).*\( verify_fail=[0-9]*\).*/\1\2\3/p' <<<"$out")"
done

# kstats: the kernel tier's hits, misses and no-room passes so far.
kstats() {
	ins curl -fsS "http://${HTTP[kc-kernel]}/metrics" 2>/dev/null | awk '
		$1 == "kcache_kernel_hits_total" { h = $2 }
		$1 == "kcache_kernel_misses_total" { m = $2 }
		$1 == "kcache_kernel_passes_total{reason=\"no_room\"}" { n = $2 }
		END { print h + 0, m + 0, n + 0 }'
}
# cpu_ticks COL: user + system clock ticks of COL's server process (0 for the ceiling).
cpu_ticks() { if [ -n "${SPID[$1]:-}" ]; then awk '{ print $14 + $15 }' "/proc/${SPID[$1]}/stat"; else echo 0; fi; }
fld() { sed -n "s/^result:.* $1=\([0-9.]*\).*/\1/p"; }
# xdpstat COL: "run_time_ns run_cnt" of the XDP program on COL's server-side veth.
xdpstat() {
	local id
	id=$(ip -n "$NS_S" -d link show "${DEV[$1]}" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1)
	[ -n "$id" ] || { echo "0 0"; return; }
	bpftool prog show id "$id" 2>/dev/null |
		sed -n 's/.*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\1 \2/p' | grep . || echo "0 0"
}
declare -A RPS P50 P99 LOST OP50 OP99 OLOST CPU
# only COL: lets COL's server run and stops the others (the ceiling has none: all stop).
only() {
	local c
	for c in "${!SPID[@]}"; do
		if [ "$c" = "$1" ]; then kill -CONT "${SPID[$c]}"; else kill -STOP "${SPID[$c]}"; fi
	done
}
run_col() { # COL ROUND
	local col=$1 out lat common bg
	only "$col"
	bg=$(bg_busy)
	[ "$bg" -le 10 ] || busy=1
	common=(-s "${ADDR[$col]}:$PORT" --udp "${KS[@]}" --get-ratio 1 --threads $THREADS --cpus $CPUS
		--duration "$SECS" --warmup "$WARMUP" "${PADOPT[@]}" -q)
	[ "$col" = kc-kernel ] && k0=$(kstats)
	x0=$(xdpstat "$col")
	c0=$(cpu_ticks "$col")
	perf_pid=
	if [ "${PERF:-0}" = 1 ] && [ "$2" = "$ROUNDS" ] && { [ "$col" = kc-kernel ] || [ "$col" = ceiling ]; }; then
		perf record -a -g -o "$BUILD/perf-udp-$col.data" -- sleep $((WARMUP + SECS)) >/dev/null 2>&1 &
		perf_pid=$!
	fi
	out=$(inc "$BENCH" "${common[@]}" --conns 4 --depth "$DEPTH" --timeout-ms 20) ||
		fail "$col: kcache-bench failed: $out"
	[ -n "$perf_pid" ] && wait "$perf_pid"
	x1=$(xdpstat "$col")
	c1=$(cpu_ticks "$col")
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$(fld replies <<<"$out")" \
		'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
	CPU[$col]+=" $cpu"
	[ "$col" = kc-kernel ] && k1=$(kstats)
	lat=$(inc "$BENCH" "${common[@]}" --conns 4 --depth 256 --timeout-ms 100 --rate "$LAT_RATE") ||
		fail "$col: kcache-bench failed: $lat"
	RPS[$col]+=" $(fld rps <<<"$out")"; P50[$col]+=" $(fld p50_us <<<"$out")"
	P99[$col]+=" $(fld p99_us <<<"$out")"; LOST[$col]+=" $(fld lost <<<"$out")"
	OP50[$col]+=" $(fld p50_us <<<"$lat")"; OP99[$col]+=" $(fld p99_us <<<"$lat")"
	OLOST[$col]+=" $(fld lost <<<"$lat")"
	printf '  round %d %-9s %9.0f req/s  p50 %7.1f  p99 %7.1f us  lost %-6s| at %d/s: p50 %6.1f  p99 %7.1f us  lost %s (host busy before: %s%%)\n' \
		"$2" "$col" "$(fld rps <<<"$out")" "$(fld p50_us <<<"$out")" "$(fld p99_us <<<"$out")" \
		"$(fld lost <<<"$out")" "$LAT_RATE" "$(fld p50_us <<<"$lat")" "$(fld p99_us <<<"$lat")" \
		"$(fld lost <<<"$lat")" "$bg"
	if [ "$BPF_STATS" = 1 ] && { [ "$col" = kc-kernel ] || [ "$col" = ceiling ]; }; then
		read -r t0 c0 <<<"$x0"
		read -r t1 c1 <<<"$x1"
		if [ $((c1 - c0)) -gt 0 ]; then
			printf '          %s: XDP program %d ns per packet over %d packets\n' \
				"$col" $(((t1 - t0) / (c1 - c0))) $((c1 - c0))
		fi
	fi
	if [ "$col" = kc-kernel ]; then
		read -r h0 m0 n0 <<<"$k0"
		read -r h1 m1 n1 <<<"$k1"
		printf '          kc-kernel closed loop: XDP answered %d gets, passed %d misses and %d for lack of room\n' \
			$((h1 - h0)) $((m1 - m0)) $((n1 - n0))
	fi
	if [ -n "${SPID[$col]:-}" ]; then
		printf '          %s: server process CPU %s us per answered request (closed loop)\n' "$col" "$cpu"
	fi
}
busy=0
for r in $(seq "$ROUNDS"); do
	for col in "${COLS[@]}"; do
		[ -n "${NA[$col]:-}" ] && continue
		run_col "$col" "$r"
	done
done

# --- summary ------------------------------------------------------------------------------
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
	if (!NR) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
declare -A M
echo "medians of $ROUNDS rounds:"
printf '  %-9s %12s %9s %9s %8s | %9s %9s %8s | %s\n' column "req/s" "p50 us" "p99 us" lost \
	"p50@rate" "p99@rate" lost "server us/req"
for col in "${COLS[@]}"; do
	if [ -n "${NA[$col]:-}" ]; then
		printf '  %-9s n/a: %s\n' "$col" "${NA[$col]}"
		M[$col]=n/a M[$col.p99]=n/a
		continue
	fi
	M[$col]=$(median <<<"${RPS[$col]}")
	M[$col.p99]=$(median <<<"${OP99[$col]}")
	printf '  %-9s %12.0f %9.1f %9.1f %8s | %9.1f %9.1f %8s | %s\n' "$col" "${M[$col]}" \
		"$(median <<<"${P50[$col]}")" "$(median <<<"${P99[$col]}")" "$(median <<<"${LOST[$col]}")" \
		"$(median <<<"${OP50[$col]}")" "${M[$col.p99]}" "$(median <<<"${OLOST[$col]}")" \
		"$(median <<<"${CPU[$col]}")"
done
k_m=$(ratio "${M[kc-kernel]}" "${M[memcached]}")
k_c=$(ratio "${M[kc-kernel]}" "${M[ceiling]}")
o_m=$(ratio "${M[kc-off]}" "${M[memcached]}")
c_m=$(ratio "${M[ceiling]}" "${M[memcached]}")
goal() { awk -v r="$1" -v g="$2" 'BEGIN { print (r == "n/a" ? "n/a" : (r >= g ? "met" : "NOT met")) }'; }
p99_lower=n/a
[ "${M[kc-kernel]}" != n/a ] && p99_lower=$(awk -v a="${M[kc-kernel.p99]}" -v b="${M[memcached.p99]}" 'BEGIN { print (a < b ? "yes" : "no") }')
echo "ratios (req/s): kc-kernel/memcached $k_m (goal >= 5: $(goal "$k_m" 5)), kc-kernel/ceiling $k_c (goal >= 0.8: $(goal "$k_c" 0.8))"
echo "                kc-off/memcached $o_m, ceiling/memcached $c_m; kc-kernel p99 at $LAT_RATE/s below memcached's: $p99_lower"

[ $busy = 0 ] || echo "warning: other work kept the host over 10% busy before some runs: the figures are noisy"
for p in "${SPID[@]}"; do kill -CONT "$p"; done

# --- a third-party client against kcached -------------------------------------------------
slap_col=kc-kernel
[ -n "${NA[kc-kernel]:-}" ] && slap_col=kc-off
if command -v memcaslap >/dev/null; then
	printf 'key\n32 32 1\nvalue\n100 500 1\ncmd\n0 0.1\n1 0.9\n' >"$TMP/slap.cnf"
	kh() { ins curl -s "http://${HTTP[$slap_col]}/metrics" 2>/dev/null | awk '
		$1 == "kcache_kernel_hits_total" { h = $2 }
		$1 == "kcache_kernel_passes_total{reason=\"parse\"}" { p = $2 }
		END { print h + 0, p + 0 }'; }
	before=$(kh)
	out=$(inc memcaslap -s "${ADDR[$slap_col]}:$PORT" --udp -F "$TMP/slap.cnf" -T 2 -c 16 -w 1k \
		-t 5s --verify=1.0 2>&1) || { echo "$out" >&2; fail "memcaslap --udp against $slap_col failed"; }
	after=$(kh)
	vf=$(sed -n 's/^verify_failed: *//p' <<<"$out")
	gets=$(sed -n 's/^cmd_get: *//p' <<<"$out")
	[ -n "$vf" ] && [ -n "$gets" ] || { echo "$out" >&2; fail "memcaslap: no statistics"; }
	read -r h0 p0 <<<"$before"
	read -r h1 p1 <<<"$after"
	echo "memcaslap --udp --verify=1.0 against $slap_col: $gets gets, $vf verification failures;"
	echo "  the kernel tier answered $((h1 - h0)) of them and passed $((p1 - p0)) as unparseable"
	echo "  (memcaslap's keys start with 8 binary bytes, some below 0x21, which XDP does not accept)"
	[ "$vf" = 0 ] || fail "memcaslap --udp: $vf verification failures against $slap_col"
fi
echo "result: bench=udp-get memcached_rps=${M[memcached]} kc_off_rps=${M[kc-off]} kc_kernel_rps=${M[kc-kernel]} ceiling_rps=${M[ceiling]} kernel_vs_memcached=$k_m kernel_vs_ceiling=$k_c memcached_p99_us=${M[memcached.p99]} kc_kernel_p99_us=${M[kc-kernel.p99]} lat_rate=$LAT_RATE pad=$PAD"
