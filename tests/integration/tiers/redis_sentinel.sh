#!/usr/bin/env bash
# The Redis client through Sentinel (redis+sentinel://) with real processes: a master, a replica
# and one sentinel (quorum 1), listed after a sentinel address where nothing listens. The client
# discovers the master and checks it with ROLE; kill -9 of the master: it follows the failover to
# the promoted replica by itself; then a manual SENTINEL FAILOVER back, with the old master alive
# (READONLY / +switch-master), and it follows again. Polls; no timing is asserted.
# sanitizers: no   (waits on Sentinel's failover; the client code it drives runs under the sanitizers in redis_client, redis_auth and redis_tls)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/redis_lib.bash"

MP=$(free_port) RP=$(free_port) SP=$(free_port) DEAD=$(free_port)
start_redis master "$MP"
start_redis replica "$RP" --replicaof 127.0.0.1 "$MP"
for _ in $(seq 100); do
	redis-cli -p "$RP" INFO replication | grep -q 'master_link_status:up' && break
	sleep 0.1
done
redis-cli -p "$RP" INFO replication | grep -q 'master_link_status:up' || fail "replica not in sync"
cat >"$TMP/sentinel.conf" <<EOF
port $SP
bind 127.0.0.1
dir $TMP
sentinel monitor m 127.0.0.1 $MP 1
sentinel down-after-milliseconds m 500
sentinel failover-timeout m 2000
sentinel parallel-syncs m 1
EOF
redis-server "$TMP/sentinel.conf" --sentinel >"$TMP/redis-sentinel.log" 2>&1 &
KC_PIDS+=($!)
for _ in $(seq 100); do
	redis-cli -p "$SP" SENTINEL master m 2>/dev/null | grep -qx 'num-slaves' &&
		[ "$(redis-cli -p "$SP" SENTINEL master m | grep -A1 -x num-slaves | tail -1)" = 1 ] && break
	sleep 0.1
done
[ "$(redis-cli -p "$SP" SENTINEL master m | grep -A1 -x num-slaves | tail -1)" = 1 ] ||
	fail "the sentinel does not see the replica"

port_is() { # PORT: the client is connected to the node listening on PORT
	ask "cmd CONFIG GET port" | grep -qx "reply array 2 \[string port, string $1\]"
}
drv_start sent "redis+sentinel://m@127.0.0.1:$DEAD,127.0.0.1:$SP/2" --timeout 1000
ask_eq "discovers the master past a dead sentinel" "up 10000" "up"
port_is "$MP" || fail "not connected to the master"
ok "connected to the master, port $MP"
ask_eq "writes" "cmd SET f one" "reply status OK"

stop_redis master
ask_eq "after kill -9 of the master, writes succeed again (on the promoted replica)" \
	"retry 60000 SET f two" "reply status OK"
port_is "$RP" || fail "not on the promoted replica"
ok "the client follows the failover to port $RP"
expect_eq "the write landed on the new master, db 2" "$(redis-cli -p "$RP" -n 2 GET f)" two
st=$(ask stats)
[[ $st =~ failovers=1 ]] || fail "failover not counted: $st"
ok "counted: $st"
[ "$(log_count "failover: master 'm' is now 127.0.0.1:$RP \(was 127.0.0.1:$MP\)")" -eq 1 ] ||
	fail "the failover is not logged"
ok "logged"

# The old master comes back (the sentinel turns it into a replica), then a manual failover back
# to it while the current master stays alive.
start_redis master "$MP"
for _ in $(seq 300); do
	redis-cli -p "$SP" SENTINEL failover m 2>&1 | grep -q '^OK' && break
	sleep 0.1
done
for _ in $(seq 300); do
	port_is "$MP" && ask "cmd SET f three" | grep -qx "reply status OK" && break
	sleep 0.1
done
port_is "$MP" || fail "the client did not follow the manual failover back to $MP"
expect_eq "the write landed on the old master again" "$(redis-cli -p "$MP" -n 2 GET f)" three
[ "$(log_count "sentinel: \+switch-master 'm' 127.0.0.1:$RP -> 127.0.0.1:$MP")" -ge 1 ] ||
	fail "the watcher did not see +switch-master"
ok "the watcher saw +switch-master"
st=$(ask stats)
[[ $st =~ failovers=2 ]] || fail "second failover not counted: $st"
ok "counted: $st"

# The master turned into a replica behind the sentinel's back: the next write gets READONLY, the
# client runs discovery again (ROLE refuses the node while it is a replica), and writes succeed
# once the sentinel has made it a master again.
redis-cli -p "$MP" REPLICAOF 127.0.0.1 "$RP" >/dev/null
ask_eq "writes succeed again after a READONLY" "retry 60000 SET f five" "reply status OK"
[ "$(log_count "down .*READONLY: the node is no longer the master")" -ge 1 ] ||
	fail "no READONLY drop in the log"
ok "READONLY dropped the connection and sent the client back to discovery"
drv_quit
echo "--- the client's log"
cat "$TMP/sent.log"
