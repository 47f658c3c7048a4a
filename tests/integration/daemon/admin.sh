#!/usr/bin/env bash
# kcachectl over the admin socket: plain commands, errors and exit codes, and a streaming
# command (audit tail) that must send OK before its first event and ERR when it refuses.
source "$(dirname "$0")/../../lib/common.sh"
[ "$(id -u)" -eq 0 ] || skip "audit tail needs root"
head -c 32 /dev/urandom >"$TMP/key"; chmod 600 "$TMP/key"
start_kcached admin --audit-policy deploy/policies/default.yaml --audit-log "$TMP/audit.log" --audit-key "$TMP/key"
ctl() { "$KCACHECTL" --admin-socket "$TMP/admin.sock" "$@"; }
ctl status | grep -q "^memcached 127.0.0.1:$KC_PORT tcp+udp$" || fail "status"
ok "status"
mc 'set a 0 0 1\r\nx\r\n' >/dev/null
ctl stats | grep -q '^requests tcp set stored: 1$' || fail "stats"
ok "stats"
ctl help | grep -q '^audit ' || fail "help lists audit"
rc=0; ctl nonsense 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "unknown command 'nonsense'" "$TMP/err" || fail "unknown command: exit $rc"
ok "unknown command: exit 1"
rc=0; "$KCACHECTL" --admin-socket "$TMP/none.sock" status 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "no daemon: exit $rc, want 2"
ok "no daemon: exit 2"
rc=0; ctl audit bogus 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'usage: audit status' "$TMP/err" || fail "audit bogus: exit $rc"
ok "streaming command refusal: ERR, exit 1"
ctl audit status | grep -q '^policy deploy/policies/default.yaml: ' || fail "audit status"
ok "audit status"
timeout 4 "$KCACHECTL" --admin-socket "$TMP/admin.sock" audit tail >"$TMP/tail" 2>&1 &
tail_pid=$!
sleep 0.5
cat /etc/shadow >/dev/null
wait "$tail_pid" || true
grep -q '"path":"/etc/shadow"' "$TMP/tail" || { cat "$TMP/tail" >&2; fail "audit tail did not stream the event"; }
ok "audit tail streams events"
stop_kcached
