#!/usr/bin/env bash
# Who may flush (issue 13, item 2): the protocol's flush_all is off by default (memcached -F's
# reply); with --allow-flush it hides everything from this node until it restarts, and never
# reaches another node. The lasting flush is the operator's: kcachectl flush (this node, kept in
# data-dir/flush across restarts) and kcachectl flush --all-nodes (through Redis, every node).
source "$(dirname "$0")/../../lib/common.sh"
need nc redis-server redis-cli
CTL() { "$KCACHECTL" --admin-socket "$TMP/$1.sock" "${@:2}"; }
mcp() { printf "$2" | nc -N -w3 127.0.0.1 "$1"; }
D=$'VALUE d 0 7\r\ndurable\r\nEND\r'

start_kcached a
mc 'set d 0 0 7\r\ndurable\r\n' >/dev/null
expect_eq "flush_all refused by default" "$(mc 'flush_all\r\n')" $'CLIENT_ERROR flush_all not allowed\r'
expect_eq "flush_all noreply refused in silence" "$(mc 'flush_all noreply\r\nget d\r\n')" "$D"
stop_kcached

start_kcached a --allow-flush true
expect_eq "flush_all with --allow-flush" "$(mc 'flush_all\r\n')" $'OK\r'
expect_eq "flushed for this node" "$(mc 'get d\r\n')" $'END\r'
stop_kcached
start_kcached a
expect_eq "the protocol's flush_all did not last" "$(mc 'get d\r\n')" "$D"

expect_eq "kcachectl flush" "$(CTL a flush)" "flushed: this node (kept in data-dir/flush)"
expect_eq "flushed by kcachectl" "$(mc 'get d\r\n')" $'END\r'
out=$(CTL a flush --all-nodes 2>&1) && fail "flush --all-nodes without Redis succeeded: $out"
grep -q 'needs the Redis tier' <<<"$out" || fail "flush --all-nodes without Redis: $out"
ok "flush --all-nodes without Redis refused: $out"
stop_kcached
start_kcached a
expect_eq "kcachectl flush lasts across a restart" "$(mc 'get d\r\n')" $'END\r'
stop_kcached

# Two nodes on one Redis.
RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
KC_PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$RP" ping | grep -q PONG || fail "redis-server did not start"
start_kcached a --redis "redis://127.0.0.1:$RP" --write-mode through --allow-flush true
A=$KC_PORT A_PID=$KC_PID A_LOG=$KC_LOG
start_kcached b --redis "redis://127.0.0.1:$RP" --write-mode through
B=$KC_PORT
mcp "$A" 'set x 0 0 1\r\n1\r\nset y 0 0 1\r\n2\r\n' >/dev/null
expect_eq "b reads x from Redis" "$(mcp "$B" 'get x y\r\n')" $'VALUE x 0 1\r\n1\r\nVALUE y 0 1\r\n2\r\nEND\r'
expect_eq "flush_all on a" "$(mcp "$A" 'flush_all\r\n')" $'OK\r'
expect_eq "a's flush_all: a sees nothing" "$(mcp "$A" 'get x\r\n')" $'END\r'
sleep 0.5 # an invalidation, were one sent, would have come by now
expect_eq "a's flush_all never reaches b" "$(mcp "$B" 'get x y\r\n')" $'VALUE x 0 1\r\n1\r\nVALUE y 0 1\r\n2\r\nEND\r'
expect_eq "kcachectl flush --all-nodes" "$(CTL a flush --all-nodes)" \
	"flushed: every node (Redis has the flush, kept in data-dir/flush)"
for _ in $(seq 50); do [ "$(mcp "$B" 'get x\r\n')" == $'END\r' ] && break; sleep 0.1; done
expect_eq "flush --all-nodes reached b" "$(mcp "$B" 'get x y\r\n')" $'END\r'
stop_kcached
stop_kcached "$A_PID" "$A_LOG"
