#!/usr/bin/env bash
# memcached-tcp.sh: kcached against Debian's memcached 1.6 over TCP, driven by a third-party
# client (memcaslap): 90% get / 10% set, 32-byte keys, 100-1000-byte values, 2 client threads
# and 64 concurrent connections, both servers with 2 worker threads. Rounds alternate
# (kcached, memcached, kcached, ...), ROUNDS of each, SECS seconds each; the script prints every
# round, the medians and the ratio kcached/memcached (the goal is at least 1.0).
#
# Keys: memcaslap keeps a window of live keys per connection, in multiples of 1024; 64 x 2048
# = 131072 live keys is its closest setting to 100k. Gets pick a live key at random, sets
# replace the oldest with a new one, so every get hits once the window is filled.
#
# CPUs: this host has 2 cores, shared by client and server. memcaslap binds its thread i to
# CPU i; each server runs on both cores (taskset 0,1: the same for both, no pinning of the
# server's threads). The client takes about half the machine, so these figures compare the
# servers to each other, not to what they do on a host of their own.
#
# Priority: servers and client run at nice NICE (-10), the same for both: the host is shared
# with other work, and this keeps it from preempting the bench as often.
#
#   bench/memcached-tcp.sh                 ROUNDS=3 SECS=10 NICE=-10 by default
#   ROUNDS=5 SECS=20 bench/memcached-tcp.sh
#   PERF=1 bench/memcached-tcp.sh          also perf record kcached's last round into $BUILD/
source "$(dirname "$0")/../tests/lib/common.sh"
source "$(dirname "$0")/lib.bash"
need memcaslap memcached nc taskset
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
NICE=${NICE:--10}
THREADS=2
CONC=64
WIN=2k
CPUS=0,1

[ -x "$KCACHED" ] || fail "$KCACHED is not built: run make"
cat >"$TMP/slap.cnf" <<'EOF'
key
32 32 1
value
100 1000 1
cmd
0 0.1
1 0.9
EOF

# start_memcached: Debian's memcached on free loopback ports, UDP off; sets MC_PORT, MC_PID.
start_memcached() {
	MC_PORT=$(free_port)
	nice -n "$NICE" taskset -c "$CPUS" memcached -u nobody -l 127.0.0.1 -p "$MC_PORT" -U 0 -t "$THREADS" \
		-m 1024 -c 4096 >"$TMP/memcached.log" 2>&1 &
	MC_PID=$!
	KC_PIDS+=("$MC_PID")
	for _ in $(seq 100); do
		printf 'version\r\n' | nc -N -w1 127.0.0.1 "$MC_PORT" 2>/dev/null | grep -q '^VERSION' &&
			return 0
		kill -0 "$MC_PID" 2>/dev/null || { cat "$TMP/memcached.log" >&2; fail "memcached exited"; }
		sleep 0.1
	done
	fail "memcached did not answer within 10 s"
}


# cpu_ticks PID: user + system clock ticks the process has used (all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# round NAME PORT PID: empties the server, runs memcaslap, prints the round; stores its ops/s
# in $tps and the server's CPU microseconds per operation in $cpu.
round() {
	local name=$1 port=$2 pid=$3 out misses bg t0 t1
	bg=$(bg_busy)
	printf 'flush_all\r\n' | nc -N -w2 127.0.0.1 "$port" | grep -q '^OK' ||
		fail "$name: flush_all was not answered"
	t0=$(cpu_ticks "$pid")
	out=$(nice -n "$NICE" memcaslap -s "127.0.0.1:$port" -F "$TMP/slap.cnf" -T "$THREADS" -c "$CONC" \
		-w "$WIN" -t "${SECS}s" 2>&1) || { echo "$out" >&2; fail "memcaslap against $name failed"; }
	t1=$(cpu_ticks "$pid")
	tps=$(sed -n 's/^Run time: .* TPS: *\([0-9]*\).*/\1/p' <<<"$out")
	misses=$(sed -n 's/^get_misses: *//p' <<<"$out")
	[ -n "$tps" ] || { echo "$out" >&2; fail "$name: no TPS in memcaslap's output"; }
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v ops="$tps" -v s="$SECS" \
		'BEGIN { printf "%.2f", ops ? t / hz * 1e6 / (ops * s) : 0 }')
	printf '  %-9s round %d: %8d ops/s  server CPU %5s us/op  (get misses %s; host busy before: %s%%)\n' \
		"$name" "$r" "$tps" "$cpu" "${misses:-?}" "$bg"
	[ "$bg" -le 10 ] || busy=1
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# memcached keeps nothing on disk: kcached's memory tier alone (--data-dir '') is the peer.
start_kcached tcp --threads "$THREADS" --memory 1G --data-dir '' --allow-flush true
taskset -apc "$CPUS" "$KC_PID" >/dev/null
# start_kcached (tests/lib) starts it at nice 0; nice is per thread on Linux: every thread.
for t in /proc/"$KC_PID"/task/*; do renice -n "$NICE" -p "${t##*/}" >/dev/null; done
start_memcached

echo "memcached-tcp: memcaslap over TCP, 90% get / 10% set, keys 32 B, values 100-1000 B,"
echo "  $THREADS client threads x $CONC connections (window $WIN per connection), $ROUNDS rounds"
echo "  of ${SECS}s each; servers: $("$KCACHED" --version 2>&1 | head -1) and $(memcached -V),"
echo "  both with $THREADS worker threads, on CPUs $CPUS shared with the client"
kc_all="" mc_all="" kc_cpu="" mc_cpu="" busy=0
for r in $(seq "$ROUNDS"); do
	if [ "${PERF:-0}" = 1 ] && [ "$r" = "$ROUNDS" ] && command -v perf >/dev/null; then
		perf record -g -o "$BUILD/perf-kcached-tcp.data" -p "$KC_PID" -- sleep "$SECS" \
			>/dev/null 2>&1 &
		perf_pid=$!
	fi
	round kcached "$KC_PORT" "$KC_PID"; kc_all+=" $tps" kc_cpu+=" $cpu"
	if [ -n "${perf_pid:-}" ]; then
		wait "$perf_pid"
		echo "  (perf data: $BUILD/perf-kcached-tcp.data)"
		perf_pid=
	fi
	round memcached "$MC_PORT" "$MC_PID"; mc_all+=" $tps" mc_cpu+=" $cpu"
done
kc=$(median <<<"$kc_all")
mc=$(median <<<"$mc_all")
# Judged on the exact ratio: a rounded 0.998 must not read as "1.00: met".
ratio=$(awk -v a="$kc" -v b="$mc" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
kcc=$(median <<<"$kc_cpu")
mcc=$(median <<<"$mc_cpu")
echo "median: kcached $kc ops/s ($kcc us CPU/op), memcached $mc ops/s ($mcc us CPU/op)"
echo "ratio kcached/memcached: $ratio (goal >= 1.000: $(awk -v a="$kc" -v b="$mc" 'BEGIN { print (a >= b ? "met" : "NOT met") }'))"
[ $busy = 0 ] || echo "warning: other work kept the host over 10% busy before some rounds: the figures are noisy"
echo "server CPU per operation, kcached/memcached: $(awk -v a="$kcc" -v b="$mcc" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (below 1: kcached does the same work with less CPU)"
echo "result: bench=memcached-tcp kcached_ops=$kc memcached_ops=$mc ratio=$ratio kcached_cpu_us=$kcc memcached_cpu_us=$mcc"
alive
stop_kcached
