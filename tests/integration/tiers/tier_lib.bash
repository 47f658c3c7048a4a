# tier_lib.bash: sourced by the lower-tier tests (tier_*.sh) after tests/lib/common.sh.
need redis-server redis-cli cc curl
cc -O2 -Wall -Wextra -Werror -o "$TMP/kc_load" tests/integration/tiers/kc_load.c
LOAD=$TMP/kc_load

# redis_start NAME PORT [redis-server flags...]: a redis-server on loopback, killed at exit.
# Sets RPID (the last started).
redis_start() {
	local name=$1 port=$2
	shift 2
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
		"$@" >"$TMP/redis-$name.log" 2>&1 &
	RPID=$!
	KC_PIDS+=("$RPID")
	for _ in $(seq 100); do
		redis-cli -p "$port" ping 2>/dev/null | grep -Eq 'PONG|NOAUTH' && return 0
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TMP/redis-$name.log" >&2
	fail "redis-server $name did not start"
}

# metric HOSTPORT NAME{labels}: one sample's value from /metrics (empty if absent).
metric() { curl -sf "http://$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }

# wait_metric HOSTPORT NAME OP VALUE [SECONDS]: polls until the sample compares true (awk OP).
wait_metric() {
	local hp=$1 name=$2 op=$3 want=$4 secs=${5:-20} v
	for _ in $(seq $((secs * 10))); do
		v=$(metric "$hp" "$name")
		if [ -n "$v" ] && awk -v a="$v" -v b="$want" "BEGIN { exit !(a $op b) }"; then
			return 0
		fi
		sleep 0.1
	done
	fail "$name is '${v:-absent}', want $op $want within ${secs}s"
}
