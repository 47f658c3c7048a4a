#!/usr/bin/env bash
# The store directory on a small filesystem (a 4 MB tmpfs made here) that fills up: writes get
# SERVER_ERROR, nothing already stored is damaged. Then a bit flipped in a stored object is
# detected, treated as a miss, removed and counted.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"
[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"

MNT=$TMP/small
mkdir -p "$MNT"
mount -t tmpfs -o size=4m tmpfs "$MNT" || skip "cannot mount a tmpfs"
on_exit "umount -l '$MNT'"
flags=(--write-mode through --threads 2 --data-dir "$MNT/data" --store-max-size 1G
	--memory 64M --compress-min 0)
start_kcached full "${flags[@]}"

# 100 KB values until the filesystem is full.
head -c 75000 /dev/urandom | base64 -w0 >"$TMP/v" # exactly 100000 characters
stored=0 errors=0
for i in $(seq 0 79); do
	r=$({ printf 'set big%d 0 0 100000\r\n' "$i"; cat "$TMP/v"; printf '\r\n'; } | nc -N -w5 127.0.0.1 "$KC_PORT" | tr -d '\r')
	case "$r" in
	STORED) stored=$((stored + 1)); echo "$i" >>"$TMP/stored" ;;
	SERVER_ERROR*) errors=$((errors + 1)); last_err=$r ;;
	*) fail "set big$i: unexpected '$r'" ;;
	esac
done
echo "stored $stored, refused $errors: $last_err"
[ "$errors" -gt 0 ] || fail "a 4 MB filesystem took 8 MB"
[ "$stored" -gt 10 ] || fail "only $stored stored"
alive
[ -z "$(find "$MNT/data/store/tmp" -type f)" ] || fail "temporary files left in the store"
stop_kcached
# Restart with an empty memory tier: everything acknowledged reads back intact from the store.
start_kcached full2 "${flags[@]}"
while read -r i; do
	got=$(mc "get big$i\r\n" | sed -n 2p | tr -d '\r')
	[ "$got" = "$(cat "$TMP/v")" ] || fail "big$i damaged or lost after the disk filled"
done <"$TMP/stored"
ok "all $stored acknowledged values intact after the filesystem filled"

# Flip one bit in one object file.
obj=$(find "$MNT/data/store" -type f -path '*objects*' -print -quit)
[ -n "$obj" ] || fail "no object file found"
stop_kcached
python3 - "$obj" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x10
open(p, 'wb').write(b)
PY
start_kcached full3 "${flags[@]}"
misses=0
while read -r i; do
	r=$(mc "get big$i\r\n" | head -1 | tr -d '\r')
	[ "$r" = END ] && misses=$((misses + 1))
done <"$TMP/stored"
expect_eq "the flipped object reads as a miss" "$misses" 1
[ ! -e "$obj" ] || fail "the corrupt object is still there"
c=$(metric "$KC_HTTP" 'kcache_tier_corrupt_total{tier="store"}')
expect_eq "corrupt objects counted" "$c" 1
stop_kcached
