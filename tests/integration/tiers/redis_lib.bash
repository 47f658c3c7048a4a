# redis_lib.bash: sourced by the redis_*.sh tests after tests/lib/common.sh.
# Starts redis-servers on free loopback ports and drives the client through drv_redis
# (tests/integration/tiers/drv_redis.c): commands go to its stdin through a fifo, results are read
# from its stdout file. Everything started here is killed at exit by common.sh.
need redis-server redis-cli
DRV=$BUILD/tests/drv_redis
[ -x "$DRV" ] || fail "$DRV is not built: run make"

# start_redis NAME PORT [redis-server args...]: sets RPID_<NAME>; waits until it answers.
start_redis() {
	local name=$1 port=$2; shift 2
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
		--dbfilename "$name.rdb" --logfile '' "$@" >>"$TMP/redis-$name.log" 2>&1 &
	local pid=$!
	KC_PIDS+=("$pid")
	printf -v "RPID_$name" %s "$pid"
	wait_redis "$port" "${REDIS_CLI_ARGS[@]}"
}
REDIS_CLI_ARGS=()

# wait_redis PORT [redis-cli args]: until PONG (or NOAUTH: it is up, with a password).
wait_redis() {
	local port=$1; shift
	for _ in $(seq 100); do
		redis-cli -p "$port" "$@" ping 2>&1 | grep -qE 'PONG|NOAUTH' && return 0
		sleep 0.1
	done
	fail "redis-server on port $port did not start"
}

stop_redis() { # NAME: kill -9 and reap
	local v="RPID_$1"
	kill -KILL "${!v}" 2>/dev/null || true
	wait "${!v}" 2>/dev/null || true
}

# drv_start NAME URL [--timeout MS]: one driver; later drv/expect calls talk to the last one.
drv_start() {
	DRV_NAME=$1; shift
	mkfifo "$TMP/$DRV_NAME.in"
	"$DRV" "$@" <"$TMP/$DRV_NAME.in" >"$TMP/$DRV_NAME.out" 2>"$TMP/$DRV_NAME.log" &
	DRV_PID=$!
	KC_PIDS+=("$DRV_PID")
	exec {DRV_FD}>"$TMP/$DRV_NAME.in"
	DRV_OUT=$TMP/$DRV_NAME.out
	echo 0 >"$TMP/$DRV_NAME.seen"
	expect '^ready' >/dev/null
}

# expect REGEX [SECONDS]: the first line after the last match that matches; prints it.
# The position is kept in a file, so that $(expect …) moves it too.
expect() {
	local re=$1 secs=${2:-15} line n seen
	seen=$(cat "$TMP/$DRV_NAME.seen")
	for _ in $(seq $((secs * 20))); do
		n=$(tail -n +$((seen + 1)) "$DRV_OUT" | grep -n -m1 -E "$re" || true)
		if [ -n "$n" ]; then
			echo $((seen + ${n%%:*})) >"$TMP/$DRV_NAME.seen"
			line=${n#*:}
			echo "$line"
			return 0
		fi
		kill -0 "$DRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "--- driver output" >&2; cat "$DRV_OUT" >&2
	echo "--- driver log (last 30)" >&2; tail -n 30 "$TMP/$DRV_NAME.log" >&2
	fail "driver $DRV_NAME: no line matching '$re' within ${secs}s"
}

drv() { echo "$*" >&"$DRV_FD"; }

# mark, then saw REGEX [SECONDS]: waits for a line after the mark, in any order, leaving the
# position of expect where it is (for up/down lines of two clients that race each other).
mark() { DRV_MARK=$(wc -l <"$DRV_OUT"); }
saw() {
	local secs=${2:-15}
	for _ in $(seq $((secs * 20))); do
		tail -n +$((DRV_MARK + 1)) "$DRV_OUT" | grep -qE "$1" && return 0
		sleep 0.05
	done
	cat "$DRV_OUT" >&2
	fail "driver $DRV_NAME: no line matching '$1' within ${secs}s"
}

# ask LINE: sends a command and prints its one-line result.
ask() {
	drv "$@"
	expect '^(reply|fail|pipe|burst|up|down|still|stats|sub|quit|limit|unknown)( |$)' 30 ||
		{ echo "$*: no answer" >&2; return 1; }
}

# ask_eq WHAT LINE WANT
ask_eq() { expect_eq "$1" "$(ask "$2")" "$3"; }

# drv_quit: frees the client with commands in flight, checks every callback came, a clean
# exit and a log free of sanitizer reports.
drv_quit() {
	drv "quit 5"
	expect_eq "$DRV_NAME: free calls back every pending command" "$(expect '^quit ')" \
		"quit called=5 of 5"
	exec {DRV_FD}>&-
	local rc=0
	wait "$DRV_PID" || rc=$?
	check_sanitizers "$TMP/$DRV_NAME.log"
	[ $rc -eq 0 ] || fail "driver $DRV_NAME exited with $rc"
}

# drv_end: frees a client that may be down (its callbacks then carry other errors than
# "client closed"), checks a clean exit and a log free of sanitizer reports.
drv_end() {
	drv "quit 1"
	expect '^quit ' >/dev/null
	exec {DRV_FD}>&-
	local rc=0
	wait "$DRV_PID" || rc=$?
	check_sanitizers "$TMP/$DRV_NAME.log"
	[ $rc -eq 0 ] || fail "driver $DRV_NAME exited with $rc"
}

# log_count REGEX: how many lines of the driver's log match.
log_count() { grep -cE "$1" "$TMP/$DRV_NAME.log" || true; }
