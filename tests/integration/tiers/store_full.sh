#!/usr/bin/env bash
# Object store (directory backend) on a full filesystem: the store lives on a 2 MiB tmpfs made
# by the test. Puts succeed until the filesystem is full, then fail with FULL (ENOSPC) cleanly:
# no temp file is left, every object stored before reads back intact, an overwrite that does
# not fit leaves the old value, and a del frees room for the next put. Then the same store
# under a max_bytes limit evicts instead of failing.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/store_lib.bash"

MNT=$TMP/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=2m,mode=0700 kctest-store "$MNT" 2>"$TMP/mount.err" ||
	skip "cannot mount a tmpfs (needs root): $(cat "$TMP/mount.err")"
on_exit "umount -l $MNT"
S=$MNT/store

stored=()
for i in $(seq 1 60); do
	head -c 100000 /dev/urandom >"$TMP/v$i"
	st put "$S" "key-$i" "$TMP/v$i"
	if [ "$rc" -eq 3 ]; then break; fi
	expect_rc "put key-$i" 0
	stored+=("$i")
done
[ "$rc" -eq 3 ] || fail "60 puts of 100 kB fit in a 2 MiB tmpfs"
expect_err "FULL names the cause" "No space left on device"
[ "${#stored[@]}" -ge 10 ] || fail "only ${#stored[@]} objects fit before FULL"
ok "${#stored[@]} objects stored, then FULL"
full_i=$i

[ -z "$(ls -A "$S/tmp")" ] || fail "temp files left after FULL: $(ls "$S/tmp")"
ok "no temp file left"
st get "$S" "key-$full_i"
expect_rc "the object that did not fit is absent" 1

# An overwrite that cannot fit leaves the old value whole.
head -c 400000 /dev/urandom >"$TMP/huge"
st put "$S" key-1 "$TMP/huge"
expect_rc "overwrite on a full filesystem" 3
[ -z "$(ls -A "$S/tmp")" ] || fail "temp files left after a failed overwrite"

for i in "${stored[@]}"; do
	st get "$S" "key-$i" "$TMP/out"
	[ "$rc" -eq 0 ] || fail "key-$i after FULL: exit $rc"
	cmp -s "$TMP/out" "$TMP/v$i" || fail "key-$i changed after FULL"
done
ok "all ${#stored[@]} objects read back intact"

"$STORE_TOOL" stat "$S" >"$TMP/stat"
expect_eq "objects counted" "$(awk '$1 == "objects" {print $2}' "$TMP/stat")" "${#stored[@]}"

st del "$S" key-2
expect_rc "del frees room" 0
st put "$S" "key-$full_i" "$TMP/v$full_i"
expect_rc "a put fits again after the del" 0
st get "$S" "key-$full_i" "$TMP/out"
cmp -s "$TMP/out" "$TMP/v$full_i" || fail "key-$full_i read back differs"
ok "key-$full_i stored and read back"

# Under a limit below the filesystem's size, puts evict the least recently used instead.
st -m 700000 put "$S" fresh "$TMP/v3"
expect_rc "put under a 700 kB limit" 0
"$STORE_TOOL" -m 700000 stat "$S" >"$TMP/stat"
bytes=$(awk '$1 == "bytes" {print $2}' "$TMP/stat")
[ "$bytes" -le 700000 ] || fail "$bytes bytes stored under a 700000-byte limit"
ok "limit holds: $bytes bytes"
st -m 700000 get "$S" fresh "$TMP/out"
expect_rc "the newest object survives eviction" 0
cmp -s "$TMP/out" "$TMP/v3" || fail "fresh read back differs"
# 4 threads racing puts, gets and dels of shared keys under the limit: never a torn or wrong
# value, and no failure but FULL (puts in flight may hold the room another put needs).
out=$("$STORE_TOOL" -m 700000 stress "$S" 4 200 2>"$TMP/st.err") || true
echo "$out"
check_sanitizers "$TMP/st.err"
[[ $out == *", 0 torn or wrong values,"* ]] || fail "stress: $out $(cat "$TMP/st.err")"
grep -E "stress: (error|corrupt)" "$TMP/st.err" && fail "stress: errors other than FULL"
ok "4 threads under the limit: $out"
[ -z "$(ls -A "$S/tmp")" ] || fail "temp files left at the end"
ok "no temp file left at the end"
