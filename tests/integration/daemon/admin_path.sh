#!/usr/bin/env bash
# The admin socket's path (issue 13 item 17): a file there that is not a socket is never
# removed (kcached refuses to start and says why), and the socket's folder must be owned by
# root or kcached's user and not writable by group or others. A folder kcached creates is 0755.
source "$(dirname "$0")/../../lib/common.sh"
[ "$(id -u)" -eq 0 ] || skip "chown of the test folder needs root"
start_fails() { # NAME WANT SOCKET: kcached must not start, with WANT in its log
	local rc=0
	start_kcached_try "$1" --admin-socket "$3" || rc=$?
	[ $rc -eq 1 ] || { [ $rc -eq 0 ] && stop_kcached; fail "$1: kcached started (rc $rc), want a refusal"; }
	grep -qF -- "$2" "$KC_LOG" || { cat "$KC_LOG" >&2; fail "$1: log lacks '$2'"; }
	ok "$1: $(grep -m1 -F -- "$2" "$KC_LOG" | cut -c1-200)"
}
mkdir -m 0700 "$TMP/run"
echo precious >"$TMP/run/admin.sock"
start_fails regular-file "is not a socket" "$TMP/run/admin.sock"
expect_eq "the regular file is still there" "$(cat "$TMP/run/admin.sock")" precious
rm "$TMP/run/admin.sock"

mkdir -m 0777 "$TMP/open"; chmod 0777 "$TMP/open"
start_fails group-writable "writable by group or others" "$TMP/open/admin.sock"
mkdir -m 0755 "$TMP/theirs"; chown nobody "$TMP/theirs"
start_fails foreign-owner "owned by uid $(id -u nobody)" "$TMP/theirs/admin.sock"

start_kcached fresh --admin-socket "$TMP/new/admin.sock"
expect_eq "a folder kcached made" "$(stat -c '%a %u' "$TMP/new")" "755 $(id -u)"
[ -S "$TMP/new/admin.sock" ] || fail "no socket"
"$KCACHECTL" --admin-socket "$TMP/new/admin.sock" status | grep -q '^kcached' || fail "status over the socket"
ok "the socket answers"
stop_kcached
