#!/usr/bin/env bash
# Policies: malformed ones (unknown keys, bad types, too many prefixes, a 5,000-byte path,
# broken YAML, too many rules) are refused at start with file:line; on SIGHUP a bad policy is
# refused the same way while the previous one stays active, and a good one takes over.
source "$(dirname "$0")/../../lib/common.sh"
need jq

head -c 48 /dev/urandom >"$TMP/k"; chmod 600 "$TMP/k"
refused() { # WHAT WANT_MESSAGE: kcached must exit 1 with WANT in its log
	local rc=0
	timeout 20 "$KCACHED" --port "$(free_port)" --http 127.0.0.1:$(free_port) \
		--admin-socket "$TMP/r.sock" --data-dir "$TMP/d" --audit-policy "$TMP/p.yaml" \
		--audit-key "$TMP/k" --audit-log "$TMP/r.log" >"$TMP/r.out" 2>&1 || rc=$?
	check_sanitizers "$TMP/r.out"
	[ "$rc" -ne 0 ] || fail "$1: kcached started"
	grep -qF -- "$2" "$TMP/r.out" || { cat "$TMP/r.out" >&2; fail "$1: no '$2'"; }
	ok "$1 refused: $2"
}
P=$TMP/p.yaml
printf 'rules:\n  - name: a\n    syscalls: [openat]\n    sycalls: [openat]\n' >"$P"
refused "unknown key" "$P:4: unknown rule key 'sycalls'"
printf 'rules:\n  - name: a\n    syscalls: [openat]\n    uid: root\n' >"$P"
refused "bad type" "$P:4: uid: expected an integer from 0 to 4294967295, got root"
printf 'rules:\n  - name: a\n    syscalls: [openat]\n    action: maybe\n' >"$P"
refused "bad action" "$P:4: action: expected audit, kill, ignore or deny"
printf 'rules:\n  - name: a\n    syscalls: [opennat]\n' >"$P"
refused "unknown syscall" "$P:3: syscalls: unknown syscall 'opennat'"
{ printf 'rules:\n  - name: a\n    syscalls: [openat]\n    paths:\n'
  for i in $(seq 65); do printf '      - /p/%d\n' "$i"; done; } >"$P"
refused "too many prefixes in a rule" "$P:5: paths: more than 64 entries"
{ printf 'rules:\n'
  for r in $(seq 17); do printf '  - name: r%d\n    syscalls: [openat]\n    paths:\n' "$r"
	for i in $(seq 64); do printf '      - /r%d/%d\n' "$r" "$i"; done; done; } >"$P"
refused "too many prefixes in the policy" "more than 1024 prefixes in the policy"
printf 'rules:\n  - name: a\n    syscalls: [openat]\n    paths: [/%s]\n' "$(head -c 5000 /dev/zero | tr '\0' a)" >"$P"
refused "a 5,000-byte path" "$P:4: paths: 5001 bytes, longer than the 253 allowed"
printf 'rules:\n  - name: a\n    syscalls: [openat\n  - name: b\n' >"$P"
refused "malformed YAML" "$P:4:"
{ printf 'rules:\n'; for r in $(seq 65); do printf '  - name: r%d\n    syscalls: [bpf]\n' "$r"; done; } >"$P"
refused "too many rules" "$P:130: more than 64 rules"
printf 'rules:\n  - name: a\n    syscalls: [openat, connect]\n    paths: [/x]\n' >"$P"
refused "paths on a non-path syscall" "$P:2: rule 'a': paths apply only to"
printf 'rules:\n  - name: a\n    syscalls: [connect]\n    action: deny\n' >"$P"
refused "deny without a cgroup" "rule 'a': deny needs syscalls [connect] and a cgroup"
printf 'rules:\n  - name: a\n    syscalls: [openat]\n' >"$P"
chmod 644 "$TMP/k"
refused "a key others can read" "mode 644 lets others read it"
chmod 600 "$TMP/k"

# Reload (needs the BPF side).
source "$(dirname "$0")/audit_lib.bash"
touch "$TMP/a" "$TMP/b"
printf 'rules:\n  - name: rule-a\n    syscalls: [openat]\n    paths: [%s]\n' "$TMP/a" >"$P"
audit_start reload "$P"
printf 'rules:\n  - name: rule-b\n    syscalls: [openat]\n    pathz: [%s]\n' "$TMP/b" >"$P"
kill -HUP "$KC_PID"
for _ in $(seq 50); do grep -q 'SIGHUP: audit policy refused' "$KC_LOG" && break; sleep 0.1; done
grep -qF "SIGHUP: audit policy refused, the previous one stays active: $P:4: unknown rule key 'pathz'" "$KC_LOG" ||
	{ cat "$KC_LOG" >&2; fail "bad reload not refused with file:line"; }
ok "bad policy on SIGHUP refused with file:line"
"$AH" open "$TMP/a" >/dev/null
wait_event '.rule == "rule-a"' >/dev/null || fail "the previous policy is not active"
ok "the previous policy stays active"
ev=$(jq -c 'select(.type == "policy" and .result == "refused")' "$ALOG" | head -1)
[[ $(field "$ev" .detail) == "$P:4: unknown rule key 'pathz'"* ]] || fail "no refused policy record: $ev"
ok "the refusal is in the stream"
printf 'rules:\n  - name: rule-b\n    syscalls: [openat]\n    paths: [%s]\n' "$TMP/b" >"$P"
kill -HUP "$KC_PID"
for _ in $(seq 50); do grep -q 'policy .* loaded: 1 rules' "$KC_LOG" && break; sleep 0.1; done
"$AH" open "$TMP/b" >/dev/null
"$AH" open "$TMP/a" >/dev/null
wait_event '.rule == "rule-b"' >/dev/null || fail "the new policy is not active"
ok "a good policy takes over on SIGHUP"
stop_kcached
expect_eq "rule-a events (none after the reload)" "$(jq -c 'select(.rule == "rule-a")' "$ALOG" | wc -l)" 1
out=$("$KCACHECTL" audit verify --key "$AKEY" "$ALOG") || fail "verify: $out"
ok "verifies: $out"
