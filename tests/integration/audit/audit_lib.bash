# tests/integration/audit/audit_lib.bash: sourced by the audit_*.sh tests after common.sh.
# Builds the helper child program, makes a key, starts kcached with an audit policy, and
# reads the stream with jq.

need jq cc
[ "$(id -u)" -eq 0 ] || skip "the audit needs root (BPF)"
AH=$TMP/audit_helper
cc -O1 -Wall -o "$AH" tests/integration/audit/audit_helper.c || fail "cannot build audit_helper"
AKEY=$TMP/audit.key
head -c 48 /dev/urandom >"$AKEY"
chmod 600 "$AKEY"
ALOG=$TMP/audit.log

# audit_start NAME POLICY [flags...]: kcached with the audit on, its log in $ALOG. Skips
# when this kernel refuses the BPF programs.
audit_start() {
	local name=$1 policy=$2; shift 2
	if ! start_kcached_try "$name" --audit-policy "$policy" --audit-key "$AKEY" \
		--audit-log "$ALOG" --pin-path "$TMP/pins" "$@"; then
		if grep -q 'load BPF programs\|attach raw tracepoints' "$KC_LOG"; then
			skip "BPF refused: $(grep -m1 'audit:' "$KC_LOG")"
		fi
		cat "$KC_LOG" >&2
		fail "kcached with the audit did not start"
	fi
}


# events_where JQ_FILTER: the syscall events of the log that match, one JSON per line.
events_where() { jq -c "select(.type == \"syscall\") | select($1)" "$ALOG"; }

# wait_event JQ_FILTER: waits (5 s) until an event matching the filter is in the log and
# prints it.
wait_event() {
	local e
	for _ in $(seq 50); do
		e=$(events_where "$1" 2>/dev/null | head -1)
		[ -n "$e" ] && { echo "$e"; return 0; }
		sleep 0.1
	done
	return 1
}

# field EVENT JQ_PATH: one field of an event, raw.
field() { jq -r "$2" <<<"$1"; }

# expect_field WHAT EVENT JQ_PATH WANT
expect_field() { expect_eq "$1" "$(field "$2" "$3")" "$4"; }

metric() { # metric NAME_WITH_LABELS: its value from /metrics (0 when absent)
	curl -fsS "http://$KC_HTTP/metrics" | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
