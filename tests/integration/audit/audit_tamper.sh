#!/usr/bin/env bash
# Tamper evidence: kcachectl audit verify says OK (exit 0) on an intact log, across rotated
# files given in any order and across a daemon restart, and names the exact first bad seq
# (exit 1) for a modified, a deleted, an inserted and two swapped records, and for a log cut
# short (against the checkpoint kept beside it).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/audit_lib.bash"

cat >"$TMP/t.yaml" <<YAML
rules:
  - name: touch-marker
    syscalls: [openat]
    paths: [$TMP/marker]
YAML
touch "$TMP/marker"
audit_start tamper "$TMP/t.yaml" --audit-log-max-size 8K --audit-log-max-files 50
"$AH" openloop 20 "$TMP/marker" >/dev/null
sleep 1.5
stop_kcached
# A restart continues the chain in the same files.
audit_start tamper2 "$TMP/t.yaml" --audit-log-max-size 8K --audit-log-max-files 50
"$AH" openloop 10 "$TMP/marker" >/dev/null
sleep 1.5
stop_kcached

files=("$ALOG"*)
nfiles=$(ls "$ALOG".[0-9]* | wc -l)
[ "$nfiles" -ge 2 ] || fail "no rotation happened ($nfiles rotated files)"
for f in "${files[@]}"; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f"), want 600"
done
ok "$nfiles rotated files, all mode 0600"
# Oldest first, as one stream.
cat $(ls -v "$ALOG".[0-9]* | tac) "$ALOG" >"$TMP/all.log"
last=$(tail -1 "$TMP/all.log" | jq .seq)
expect_eq "seq 1 has a zero prev" "$(jq -r 'select(.seq == 1) | .prev' "$TMP/all.log")" \
	0000000000000000000000000000000000000000000000000000000000000000
expect_eq "one chain over restart and rotation" "$(jq -s '[.[].seq] == [range(1; length + 1)]' "$TMP/all.log")" true

verify() { "$KCACHECTL" audit verify --key "$AKEY" "$@"; }
out=$(verify "${files[@]}") || fail "intact log: $out"
ok "intact, files in glob order: $out"
out=$(verify $(printf '%s\n' "${files[@]}" | sort -r)) || fail "intact, reversed: $out"
ok "intact, files reversed: OK"

# case NAME WANT_SEQ: verifies $TMP/bad.log (+ the kept checkpoint), wants exit 1 and seq.
case_bad() {
	local rc=0 out
	out=$(verify "$TMP/bad.log" "$ALOG.checkpoint") || rc=$?
	expect_eq "$1: exit status" "$rc" 1
	[[ $out == "FAIL: seq $2:"* ]] || fail "$1: got '$out', want seq $2"
	ok "$1: $out"
}
line_of() { grep -n "^{\"v\":1,\"seq\":$1," "$TMP/all.log" | cut -d: -f1; }

cp "$TMP/all.log" "$TMP/bad.log"
sed -i "$(line_of 5)s/\"ret\":[0-9]*/\"ret\":99/" "$TMP/bad.log"
cmp -s "$TMP/all.log" "$TMP/bad.log" && fail "the modification did not apply"
case_bad "modified record" 5

cp "$TMP/all.log" "$TMP/bad.log"
sed -i "$(line_of 7)d" "$TMP/bad.log"
case_bad "deleted record" 7

cp "$TMP/all.log" "$TMP/bad.log"
forged=$(sed -n "$(line_of 10)p" "$TMP/all.log" | sed 's/"time":"2/"time":"1/')
sed -i "$(line_of 9)a\\$forged" "$TMP/bad.log"
case_bad "inserted record" 10

cp "$TMP/all.log" "$TMP/bad.log"
a=$(line_of 12)
sed -i "${a}{h;d};$((a + 1)){G}" "$TMP/bad.log"
[ "$(sed -n "${a}p" "$TMP/bad.log" | jq .seq)" = 13 ] || fail "the swap did not apply"
case_bad "two swapped records" 12

head -n -3 "$TMP/all.log" >"$TMP/bad.log"
case_bad "truncated log" $((last - 2))
