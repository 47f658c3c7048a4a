#!/usr/bin/env bash
# Bad lower-tier configuration and unreachable or unwelcoming peers: malformed Redis and S3
# URLs are refused at start with a clear message; an unreachable Redis, a wrong Redis password
# and wrong S3 credentials are reported in the log and the metrics, and never crash kcached.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"
source "$(dirname "$0")/s3_lib.bash"

refused() { # refused WHAT PATTERN FLAGS...: kcached must exit non-zero, saying PATTERN
	local what=$1 pat=$2 rc=0
	shift 2
	"$KCACHED" --port "$(free_port)" --http 127.0.0.1:"$(free_port)" --data-dir "$TMP/d-bad" \
		--admin-socket "$TMP/bad.sock" "$@" >"$TMP/bad.out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "$what: kcached started"
	grep -Eq "$pat" "$TMP/bad.out" || { cat "$TMP/bad.out" >&2; fail "$what: no message matching '$pat'"; }
	check_sanitizers "$TMP/bad.out"
	ok "$what refused: $(grep -Em1 "$pat" "$TMP/bad.out")"
}
refused "redis URL with a bad port" 'port' --redis 'redis://127.0.0.1:99999'
refused "redis URL with an unknown scheme" 'scheme' --redis 'http://127.0.0.1:6379'
refused "redis URL with no host" 'host' --redis 'redis://:6379'
refused "redis URL with a bad db" 'db|database' --redis 'redis://127.0.0.1:6379/x'
refused "sentinel URL with no master" 'master' --redis 'redis+sentinel://@127.0.0.1:26379'
refused "S3 URL with no bucket" 'bucket' --store 's3://'
refused "S3 URL with a bad endpoint" 'endpoint' --store 's3://bkt/p?endpoint=ftp://x'
refused "S3 URL with an unknown option" 'option|unknown' --store 's3://bkt/p?colour=blue'
refused "write mode" 'write-mode' --write-mode sometimes

# Unreachable Redis at start: kcached serves, the set is journaled (write-behind) and waits.
DOWN=$(free_port)
start_kcached down --redis "redis://127.0.0.1:$DOWN" --write-mode behind --threads 2 \
	--redis-timeout 100
expect_eq "set with Redis unreachable" "$(mc 'set k 0 0 1\r\nx\r\n' | tr -d '\r')" STORED
expect_eq "get with Redis unreachable" "$(mc 'get k\r\n' | sed -n 2p | tr -d '\r')" x
expect_eq "redis up" "$(metric "$KC_HTTP" kcache_redis_up)" 0
# The write waits in the journal for Redis, without spending its flush attempts.
sleep 1
expect_eq "write queued while Redis is unreachable" "$(metric "$KC_HTTP" kcache_writebehind_queue_depth)" 1
expect_eq "no attempts spent on an unreachable Redis" "$(metric "$KC_HTTP" kcache_writebehind_dead_letters)" 0
grep -qi 'redis' "$KC_LOG" || fail "nothing about Redis in the log"
alive
stop_kcached

# Wrong Redis password.
RP=$(free_port)
redis_start auth "$RP" --requirepass right-secret
start_kcached wrongpass --redis "redis://:wrong-secret@127.0.0.1:$RP" --write-mode through \
	--threads 2 --redis-timeout 200
sleep 0.5
expect_eq "redis up with a wrong password" "$(metric "$KC_HTTP" kcache_redis_up)" 0
r=$(mc 'set k 0 0 1\r\nx\r\n' | tr -d '\r')
[[ $r == SERVER_ERROR* ]] || fail "write-through set with Redis refusing us: '$r'"
grep -Eqi 'WRONGPASS|invalid password|auth' "$KC_LOG" || fail "the log does not name the auth failure"
grep -q 'wrong-secret' "$KC_LOG" && fail "the log shows the password"
ok "wrong Redis password: '$r', logged without the secret"
alive
stop_kcached

# Wrong S3 credentials.
s3_start
AWS_SECRET_ACCESS_KEY=not-the-secret start_kcached s3bad --store "$S3_URL" --write-mode through \
	--threads 2
r=$(mc 'set k 0 0 1\r\nx\r\n' | tr -d '\r')
[[ $r == SERVER_ERROR*403* ]] || fail "set with a wrong S3 secret: '$r'"
ok "wrong S3 credentials: $r"
e=$(metric "$KC_HTTP" 'kcache_tier_write_errors_total{tier="store"}')
[ "${e:-0}" -ge 1 ] || fail "store write errors not counted"
alive
stop_kcached
