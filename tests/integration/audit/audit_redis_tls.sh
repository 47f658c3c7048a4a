#!/usr/bin/env bash
# The Redis stream sink over TLS with AUTH (rediss://:PASS@host/KEY?ca=...), through the tiers'
# Redis client, to a redis-server started with TLS and a password: the events arrive, the
# stream is one chain that kcachectl audit verify accepts, with the same events as the file
# log; the password shows neither in kcached's log nor in its refusals of bad URLs.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/audit_lib.bash"
source "$(dirname "$0")/../tiers/redis_tls_lib.bash"

PASS="kc-pw-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
T=$(free_port)
start_tls audit "$T" no --requirepass "$PASS"
R() { tls_cli "$T" --no-auth-warning -a "$PASS" "$@"; }
expect_eq "the server wants the password" "$(tls_cli "$T" XLEN kcache:audit 2>&1 | grep -c NOAUTH)" 1

cat >"$TMP/r.yaml" <<YAML
rules:
  - name: marker
    syscalls: [openat]
    paths: [$TMP/marker]
YAML
touch "$TMP/marker"
URL="rediss://:$PASS@127.0.0.1:$T/kcache:audit?ca=$D/ca.crt"
audit_start tls "$TMP/r.yaml" --audit-redis-stream "$URL" --audit-redis-maxlen 1000
"$AH" openloop 5 "$TMP/marker" >/dev/null
for _ in $(seq 50); do [ "$(R XLEN kcache:audit)" -ge 6 ] && break; sleep 0.1; done
R --raw XRANGE kcache:audit - + | grep '^{"v":1' >"$TMP/stream.log" || true
expect_eq "the events arrived over TLS" "$(jq -c 'select(.rule == "marker")' "$TMP/stream.log" | wc -l)" 5
expect_eq "stream records are a chain from seq 1" \
	"$(jq -s '[.[].seq] == [range(1; length + 1)]' "$TMP/stream.log")" true
for _ in $(seq 50); do [ "$(events_where '.rule == "marker"' | wc -l)" -ge 5 ] && break; sleep 0.1; done
ev() { jq -c 'select(.type == "syscall") | [.time, .rule, .pid, .ret]' "$1"; }
expect_eq "the stream has the file log's events" "$(ev "$TMP/stream.log")" "$(ev "$ALOG")"
[ "$(metric 'kcache_audit_sink_up{sink="redis"}')" = 1 ] || fail "the redis sink is not up"
ok "the redis sink is up"
stop_kcached
R --raw XRANGE kcache:audit - + | grep '^{"v":1' >"$TMP/stream.log"
expect_eq "a checkpoint closes the stream at stop" "$(tail -1 "$TMP/stream.log" | jq -r .type)" checkpoint
out=$("$KCACHECTL" audit verify --key "$AKEY" "$TMP/stream.log") || fail "verify: $out"
ok "kcachectl audit verify accepts the stream: $out"

grep -q "audit sink redis: stream kcache:audit on rediss://:\*\*\*@127.0.0.1:$T/0?ca=" "$KC_LOG" ||
	{ cat "$KC_LOG" >&2; fail "no redacted URL in the log"; }
ok "the log names the sink with the password redacted"
! grep -qF -- "$PASS" "$KC_LOG" || fail "the password is in kcached's log"
ok "the password is not in kcached's log"

# Refusals say what is wrong without the password.
# kcached in the foreground: it must exit at start (the cache may answer for a moment before
# the audit refuses, so start_kcached_try cannot tell).
refused() { # WHAT URL WANT_REGEX
	local rc=0
	KC_LOG=$TMP/bad$RANDOM.log
	timeout 30 "$KCACHED" --port "$(free_port)" --http "127.0.0.1:$(free_port)" \
		--data-dir "$TMP/data-bad" --admin-socket "$TMP/bad.sock" --audit-policy "$TMP/r.yaml" \
		--audit-key "$AKEY" --audit-log "$ALOG" --pin-path "$TMP/pins" \
		--audit-redis-stream "$2" >"$KC_LOG" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || fail "$1: kcached did not refuse it cleanly (rc $rc)"
	check_sanitizers "$KC_LOG"
	grep -qE -- "$3" "$KC_LOG" || { cat "$KC_LOG" >&2; fail "$1: no '$3' in the log"; }
	! grep -qF -- "$PASS" "$KC_LOG" || { cat "$KC_LOG" >&2; fail "$1: the password is in the error"; }
	ok "$1: exit $rc, $(grep -m1 -oE -- "$3" "$KC_LOG"), without the password"
}
refused "a CA file that cannot be read" "rediss://:$PASS@127.0.0.1:$T/k?ca=$D/missing.crt" \
	"audit-redis-stream rediss://:\*\*\*@127.0.0.1:$T/0\?ca=$D/missing.crt: redis TLS: CA file"
refused "a bad port" "rediss://:$PASS@127.0.0.1:99999/k" "audit-redis-stream: redis URL: port 99999 out of range"
refused "no key" "rediss://:$PASS@127.0.0.1:$T" "audit-redis-stream: redis URL: missing key"
refused "no scheme" "default:$PASS@127.0.0.1:$T/k" "redis URL: '\*\*\*@127.0.0.1:$T/k' has no scheme"
