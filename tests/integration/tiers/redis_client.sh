#!/usr/bin/env bash
# The Redis client (user/tiers/redis/redis.c) against a real redis-server: pipelined binary-safe commands,
# SELECT, CLIENT SETNAME, server errors as replies, the in-flight cap, a SIGSTOPped server (every
# command fails with the timeout, then it recovers), kill -9 and restart (it reconnects by
# itself), and pub/sub (messages arrive, and again after the restart).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/redis_lib.bash"

P=$(free_port)
start_redis a "$P"
drv_start c1 "redis://127.0.0.1:$P/5" --timeout 1000
ask_eq "connects" "up 5000" "up"
ask_eq "SET" "cmd SET k\x00\r\n v\x00\xff\x20" "reply status OK"
ask_eq "GET is binary-safe" "cmd GET k\x00\r\n" 'reply string v\x00\xff\x20'
ask_eq "SET in the chosen database" "cmd SET sel yes" "reply status OK"
expect_eq "SELECT 5 chose the database" "$(redis-cli -p "$P" -n 5 GET sel)" yes
expect_eq "nothing in database 0" "$(redis-cli -p "$P" -n 0 DBSIZE)" 0
ask_eq "CLIENT SETNAME" "cmd CLIENT GETNAME" "reply string kc-test"
ask_eq "a server error is a reply" "cmd LPUSH k\x00\r\n x" \
	"reply error WRONGTYPE Operation against a key holding the wrong kind of value"
ask_eq "missing key" "cmd GET nope" "reply nil"
ask_eq "arrays" "cmd MGET k\x00\r\n nope" 'reply array 2 [string v\x00\xff\x20, nil]'
ask_eq "pipelined SET+GET of 200 binary values (one of 1 MiB)" "pipe 200" "pipe ok"
ask_eq "a burst of 5000 pipelined commands" "burst 5000" "burst ok=5000 fail=0 err=-"
ask_eq "cap" "limit 100" "limit 100"
ask_eq "over the in-flight cap: fails fast" "burst 300" "burst ok=100 fail=200 err=too many in flight"
ask_eq "cap back" "limit 65536" "limit 65536"

# Pub/sub on a second client, then a SIGSTOPped server.
ask_eq "subscribe" "sub inval" "sub 0"
expect '^state sub up' >/dev/null
redis-cli -p "$P" PUBLISH inval 'key one' >/dev/null
expect_eq "a published message arrives" "$(expect '^msg ')" 'msg inval key\x20one'

mark
kill -STOP "$RPID_a"
on_exit "kill -CONT $RPID_a"
ask_eq "SIGSTOP: every in-flight command fails with the timeout" "burst 50" \
	"burst ok=0 fail=50 err=timeout after 1000 ms"
r=$(ask "burst 5")
[[ $r =~ ^burst\ ok=0\ fail=5\ err=(not\ connected|timeout\ after\ 1000\ ms)$ ]] ||
	fail "stopped server: got '$r'"
ok "the next ones fail fast or time out: $r"
saw '^state main down'
saw '^state sub down' 10
ok "the subscriber noticed too (its ping timed out)"
kill -CONT "$RPID_a"
ask_eq "SIGCONT: back up" "up 10000" "up"
ask_eq "and serving" "retry 5000 GET k\x00\r\n" 'reply string v\x00\xff\x20'
saw '^state sub up' 10
redis-cli -p "$P" PUBLISH inval after-stop >/dev/null
expect_eq "resubscribed after the stop" "$(expect '^msg ')" "msg inval after-stop"
st=$(ask stats)
[[ $st =~ timeouts=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge 50 ] || fail "timeouts not counted: $st"
ok "timeouts counted: $st"

# kill -9 and a new server on the same port: the client and the subscriber come back by themselves.
mark
stop_redis a
saw '^state main down'
saw '^state sub down'
ask_eq "down: commands fail fast" "cmd GET k" "fail not connected"
start_redis a "$P"
ask_eq "reconnects by itself after a restart" "up 15000" "up"
saw '^state sub up' 15
ask_eq "SET after the restart" "cmd SET k2 v2" "reply status OK"
expect_eq "in the same database" "$(redis-cli -p "$P" -n 5 GET k2)" "v2"
redis-cli -p "$P" PUBLISH inval after-restart >/dev/null
expect_eq "resubscribed after the restart" "$(expect '^msg ')" "msg inval after-restart"
st=$(ask stats)
[[ $st =~ reconnects=([1-9][0-9]*) ]] || fail "reconnects not counted: $st"
ok "reconnects counted: $st"
[ "$(log_count 'down \(redis://127.0.0.1:[0-9]+/5\): 127.0.0.1:[0-9]+ closed the connection')" -ge 1 ] ||
	fail "the loss is not logged"
ok "the loss is logged"
drv_quit
