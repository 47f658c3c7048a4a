# bench/lib.bash: what the benches share (sourced after tests/lib/common.sh).

# bg_busy [CPU]: how busy the host is (percent) over half a second while the bench runs nothing:
# other work, which the figures of the next run share the cores with. Without CPU, all CPUs
# together; with it, that CPU alone.
bg_busy() {
	local line="cpu${1:-} " a b
	a=$(grep "^$line" /proc/stat)
	sleep 0.5
	b=$(grep "^$line" /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y)
		for (i = 2; i <= 9; i++) t += y[i] - x[i]
		idle = y[5] - x[5] + y[6] - x[6]
		printf "%.0f", t ? 100 * (t - idle) / t : 0 }'
}

# bpf_stats_on: turns on kernel.bpf_stats_enabled (BPF programs' run time and count) until the
# bench exits (on_exit, tests/lib/common.sh, restores the setting it found). It slows every BPF
# program on the host meanwhile.
bpf_stats_on() {
	on_exit "sysctl -qw kernel.bpf_stats_enabled=$(sysctl -n kernel.bpf_stats_enabled)"
	sysctl -qw kernel.bpf_stats_enabled=1
}
