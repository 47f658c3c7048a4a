#!/usr/bin/env bash
# The Redis client's handshake against a real redis-server with requirepass and an ACL user:
# AUTH pass, AUTH user pass, a wrong password (a clear error, logged once however many retries,
# and no crash), no password at all (NOAUTH); then a peer that sends garbage (protocol error:
# the in-flight command fails, the connection is dropped).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/redis_lib.bash"

P=$(free_port)
start_redis auth "$P" --requirepass 's3cr@t pw'
redis-cli -p "$P" --no-auth-warning -a 's3cr@t pw' ACL SETUSER app on '>app-pw' '~app:*' '+@all' \
	>/dev/null || fail "ACL SETUSER"

drv_start pass "redis://:s3cr%40t%20pw@127.0.0.1:$P" --timeout 500
ask_eq "AUTH with a %-encoded password" "up 5000" "up"
ask_eq "as the default user" "cmd ACL WHOAMI" "reply string default"
drv_quit

drv_start acl "redis://app:app-pw@127.0.0.1:$P/0" --timeout 500
ask_eq "AUTH user pass (ACL)" "up 5000" "up"
ask_eq "as the ACL user" "cmd ACL WHOAMI" "reply string app"
ask_eq "its key pattern applies" "cmd SET other x" \
	"reply error NOPERM this user has no permissions to access one of the keys used as arguments"
ask_eq "inside it works" "cmd SET app:x 1" "reply status OK"
drv_quit

conns() { redis-cli -p "$P" --no-auth-warning -a 's3cr@t pw' INFO stats |
	sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p'; }
c0=$(conns)
drv_start wrong "redis://app:wrong@127.0.0.1:$P" --timeout 500
ask_eq "a wrong password: never up" "up 2000" "still down"
[ $(($(conns) - c0)) -ge 4 ] || fail "the client did not retry: $(($(conns) - c0)) connections"
ok "it retried: $(($(conns) - c0 - 1)) connections"
ask_eq "commands fail fast" "cmd GET app:x" "fail not connected"
n=$(log_count 'AUTH failed on 127.0.0.1:[0-9]+: WRONGPASS invalid username-password pair')
expect_eq "the WRONGPASS error is logged once, not per retry" "$n" 1
alive_drv=$(kill -0 "$DRV_PID" 2>/dev/null && echo alive)
expect_eq "and the client did not crash" "$alive_drv" alive
drv_end

drv_start none "redis://127.0.0.1:$P" --timeout 500
ask_eq "no password: never up" "up 1000" "still down"
[ "$(log_count 'NOAUTH Authentication required')" -eq 1 ] || fail "NOAUTH not logged once"
ok "NOAUTH is logged once"
drv_end

# A peer that answers the handshake, then sends garbage in place of a reply.
F=$(free_port)
mkfifo "$TMP/fake.in"
nc -l 127.0.0.1 "$F" <"$TMP/fake.in" >"$TMP/fake.req" &
KC_PIDS+=($!)
exec {FAKE}>"$TMP/fake.in"
drv_start bad "redis://127.0.0.1:$F" --timeout 5000
for _ in $(seq 100); do grep -q SETNAME "$TMP/fake.req" 2>/dev/null && break; sleep 0.05; done
grep -q SETNAME "$TMP/fake.req" || fail "no CLIENT SETNAME from the client"
printf '+OK\r\n' >&"$FAKE"
ask_eq "up on the fake server" "up 5000" "up"
drv "cmd GET x"
for _ in $(seq 100); do grep -q GET "$TMP/fake.req" && break; sleep 0.05; done
printf '?garbage\r\n' >&"$FAKE"
expect_eq "garbage fails the in-flight command" "$(expect '^(reply|fail) ')" "fail protocol error"
[ "$(log_count 'protocol error from 127.0.0.1:[0-9]+: Protocol error, got "\?" as reply type byte')" -eq 1 ] ||
	fail "the protocol error is not logged"
ok "the protocol error is logged with the parser's reason"
drv_end
