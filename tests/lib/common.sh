# tests/lib/common.sh: sourced by the integration tests (bash).
# Starts daemons and peers on free loopback ports, and removes everything they created on exit,
# whether the test passed or failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
KCACHED=$BUILD/kcached
KCACHECTL=$BUILD/kcachectl
TMP=$(mktemp -d /tmp/kctest.XXXXXX)
declare -a KC_PIDS=()
declare -a KC_CLEANUP=()

cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then # the daemons' own logs, for the test's log
		for l in "$TMP"/*.log; do
			[ -f "$l" ] && { echo "--- $(basename "$l") (last 60 lines)"; tail -n 60 "$l"; } >&2
		done
	fi
	for ((i = ${#KC_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${KC_CLEANUP[$i]}" >/dev/null 2>&1 || true; done
	for p in "${KC_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Adds a shell command to run at exit (last added runs first).
on_exit() { KC_CLEANUP+=("$*"); }

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
skip() {
	if [ "${KCACHE_REQUIRE_BPF:-0}" = 1 ]; then fail "cannot run ($*) and KCACHE_REQUIRE_BPF=1"; fi
	echo "SKIP: $*"; exit 77
}
need() { for c in "$@"; do command -v "$c" >/dev/null || fail "$c is not installed: run 'make deps'"; done; }

# A TCP and UDP port nobody listens on.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		if ! ss -Htanu "( sport = :$p )" | grep -q .; then echo "$p"; return; fi
	done
	fail "no free port"
}

# start_kcached_try NAME [flags...]: runs kcached on free ports; sets KC_PORT, KC_HTTP, KC_PID
# and KC_LOG, and waits until it answers `version`. Returns 0, 1 if kcached exited at start,
# or 2 if it did not answer within 10 s.
start_kcached_try() {
	local name=$1; shift
	KC_PORT=$(free_port); KC_HTTP=127.0.0.1:$(free_port)
	KC_LOG=$TMP/$name.log
	"$KCACHED" --port "$KC_PORT" --http "$KC_HTTP" --data-dir "$TMP/data-$name" \
		--admin-socket "$TMP/$name.sock" "$@" >"$KC_LOG" 2>&1 &
	KC_PID=$!
	KC_PIDS+=("$KC_PID")
	for _ in $(seq 100); do
		if printf 'version\r\n' | nc -N -w1 127.0.0.1 "$KC_PORT" 2>/dev/null | grep -q '^VERSION'; then
			return 0
		fi
		kill -0 "$KC_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 2
}

# start_kcached NAME [flags...]: start_kcached_try, failing the test if kcached does not come up.
start_kcached() {
	local rc=0
	start_kcached_try "$@" || rc=$?
	[ $rc -eq 0 ] && return 0
	cat "$KC_LOG" >&2
	[ $rc -eq 1 ] && fail "kcached exited at start"
	fail "kcached did not answer within 10 s"
}

# stop_kcached [PID] [LOG]: SIGTERM, then checks a clean exit and a log free of sanitizer reports.
stop_kcached() {
	local pid=${1:-$KC_PID} log=${2:-$KC_LOG} rc=0
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "kcached did not stop within 10 s of SIGTERM"
	wait "$pid" || rc=$?
	check_sanitizers "$log"
	[ "$rc" -eq 0 ] || { tail -20 "$log" >&2; fail "kcached exited with $rc"; }
}

check_sanitizers() {
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
		grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1" | head -40 >&2
		fail "sanitizer report in $1"
	fi
}

# mc 'request': sends raw bytes over TCP, prints the reply (the connection is half-closed
# after the request so the daemon answers and closes).
mc() { printf "$1" | nc -N -w3 127.0.0.1 "$KC_PORT"; }

# mcu 'request': sends one UDP datagram with a memcached frame header (id 0x1234, seq 0 of 1),
# prints the reply payloads with their 8-byte headers removed.
mcu() { { printf '\x12\x34\x00\x00\x00\x01\x00\x00'; printf "$1"; } | nc -u -w1 127.0.0.1 "$KC_PORT" | tail -c +9; }

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" == "$3" ] || fail "$1: got $(printf %q "$2"), want $(printf %q "$3")"; ok "$1"; }

alive() { kill -0 "$KC_PID" 2>/dev/null || fail "kcached died"; mc 'version\r\n' | grep -q '^VERSION' || fail "kcached stopped answering"; }
