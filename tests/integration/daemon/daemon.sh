#!/usr/bin/env bash
# kcached as a process: flags and YAML errors with exit status 2 and file:line, a taken port,
# clean shutdown on SIGTERM and SIGINT (ports and admin socket released), and `make run`
# answering `version` on TCP and UDP port 11211 (the README's first command).
# sanitizers: no   (make run builds and runs the normal build)
source "$(dirname "$0")/../../lib/common.sh"
need nc curl

expect_exit() { # WHAT WANT_STATUS WANT_STDERR_SUBSTRING CMD...
	local what=$1 want=$2 msg=$3 rc=0; shift 3
	timeout 10 "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$TMP/err" >&2; fail "$what: exit $rc, want $want"; }
	grep -qF -- "$msg" "$TMP/err" "$TMP/out" || { cat "$TMP/err" >&2; fail "$what: no '$msg'"; }
	ok "$what"
}
expect_exit "--version" 0 "kcached 0." "$KCACHED" --version
expect_exit "--help lists directives" 0 "--memory" "$KCACHED" --help
expect_exit "unknown flag" 2 "--nope: unknown option" "$KCACHED" --nope
expect_exit "bad size" 2 "--memory: expected a size" "$KCACHED" --memory 12Q
printf 'port: 1\nthreads: two\n' >"$TMP/bad.yaml"
expect_exit "bad YAML value" 2 "$TMP/bad.yaml:2: threads: expected an integer from 0 to 256, got 'two'" \
	"$KCACHED" --config "$TMP/bad.yaml"
printf 'port: 1\nnonsense: 2\n' >"$TMP/bad2.yaml"
expect_exit "unknown YAML key" 2 "$TMP/bad2.yaml:2: unknown key 'nonsense'" "$KCACHED" --config "$TMP/bad2.yaml"
expect_exit "missing config file" 2 "$TMP/none.yaml: No such file or directory" "$KCACHED" --config "$TMP/none.yaml"

# A YAML config is applied, and flags override it.
port=$(free_port)
printf 'port: %s\nmemory: 32M\nthreads: 1\n' "$port" >"$TMP/good.yaml"
start_kcached yaml --config "$TMP/good.yaml"
expect_exit "flag overrides file" 0 "maxbytes 33554432" bash -c "printf 'stats settings\r\n' | nc -N -w2 127.0.0.1 $KC_PORT"
first_port=$KC_PORT first_pid=$KC_PID first_log=$KC_LOG

# The same port again: a clear message and exit 1.
expect_exit "port in use" 1 "bind 127.0.0.1:$first_port/tcp: Address already in use" \
	"$KCACHED" --port "$first_port" --http "127.0.0.1:$(free_port)" --admin-socket "$TMP/other.sock"
expect_exit "admin socket in use" 1 "in use by a running kcached" \
	"$KCACHED" --port "$(free_port)" --http "127.0.0.1:$(free_port)" --admin-socket "$TMP/yaml.sock"

# SIGTERM: exit 0, sockets released, so a new daemon binds the same ports at once.
stop_kcached "$first_pid" "$first_log"
[ ! -e "$TMP/yaml.sock" ] || fail "admin socket left behind"
"$KCACHED" --port "$first_port" --http "127.0.0.1:$(free_port)" --admin-socket "$TMP/again.sock" >"$TMP/again.log" 2>&1 &
pid=$!; KC_PIDS+=("$pid")
for _ in $(seq 50); do printf 'version\r\n' | nc -N -w1 127.0.0.1 "$first_port" 2>/dev/null | grep -q VERSION && break; sleep 0.1; done
kill -INT "$pid"; rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "SIGINT: exit $rc"
ok "SIGTERM and SIGINT stop cleanly and release the port"

# `make run` on the embedded defaults: memcached on 11211 (TCP and UDP), HTTP on 8080.
for p in 11211 8080; do
	ss -Htanu "( sport = :$p )" | grep -q . && fail "port $p is taken: cannot check make run's defaults"
done
setsid make --no-print-directory -s run BUILD="$BUILD" >"$TMP/run.log" 2>&1 &
run_pid=$!
on_exit "kill -TERM -- -$run_pid; sleep 1; kill -KILL -- -$run_pid"
for _ in $(seq 300); do
	printf 'version\r\n' | nc -N -w1 127.0.0.1 11211 2>/dev/null | grep -q '^VERSION' && break
	kill -0 "$run_pid" 2>/dev/null || { cat "$TMP/run.log" >&2; fail "make run exited"; }
	sleep 0.1
done
expect_eq "make run: version over TCP 11211" "$(printf 'version\r\n' | nc -N -w2 127.0.0.1 11211)" $'VERSION 1.6.0-kcache-0.1.0\r'
KC_PORT=11211
expect_eq "make run: version over UDP 11211" "$(mcu 'version\r\n')" $'VERSION 1.6.0-kcache-0.1.0\r'
expect_eq "make run: /healthz on 8080" "$(curl -fsS http://127.0.0.1:8080/healthz)" "ok"
kill -TERM -- -"$run_pid"
for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
ok "make run stopped"
