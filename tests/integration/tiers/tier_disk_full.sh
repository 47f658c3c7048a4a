#!/usr/bin/env bash
# Write-behind with data-dir on a small filesystem (a 4 MB tmpfs made here, partly taken by a
# filler file) that fills up (issue 13, items 8 and 9): every write refused with SERVER_ERROR
# leaves no trace (a reader never gets it, an overwritten key keeps its old value, a restart
# does not bring it back); the journal's files stay few while full and the error is not logged
# every round; once the filler goes, writes resume without a restart; every acknowledged write
# reads back, before and after a restart.
source "$(dirname "$0")/../../lib/common.sh"
[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"
need nc

MNT=$TMP/small
mkdir -p "$MNT"
mount -t tmpfs -o size=4m,mode=0700 kctest-full "$MNT" || skip "cannot mount a tmpfs"
on_exit "umount -l '$MNT'"
head -c 1500000 /dev/zero >"$MNT/filler"
flags=(--write-mode behind --threads 2 --data-dir "$MNT/data" --store-max-size 1G
	--memory 64M --compress-min 0)
start_kcached full "${flags[@]}"

head -c 75000 /dev/urandom | base64 -w0 >"$TMP/v"  # 100000 characters
head -c 75000 /dev/urandom | base64 -w0 >"$TMP/v2" # another value, for overwrites
set_big() { # set_big KEY FILE: prints the reply's first line
	{ printf 'set %s 0 0 100000\r\n' "$1"; cat "$2"; printf '\r\n'; } |
		nc -N -w5 127.0.0.1 "$KC_PORT" | head -1 | tr -d '\r'
}
get_val() { mc "get $1\r\n" | sed -n 2p | tr -d '\r'; }
nsegs() { find "$MNT/data/journal" -maxdepth 1 -name 'journal-*.log' | wc -l; }

[ "$(set_big old "$TMP/v")" = STORED ] || fail "the first write was refused"
: >"$TMP/stored"
: >"$TMP/refused"
refused=0
for i in $(seq 0 59); do
	r=$(set_big "big$i" "$TMP/v")
	case "$r" in
	STORED) echo "big$i" >>"$TMP/stored" ;;
	SERVER_ERROR*)
		refused=$((refused + 1)) last_err=$r
		echo "big$i" >>"$TMP/refused"
		[ -z "$(get_val "big$i")" ] || fail "big$i was refused ($r) and then served"
		;;
	*) fail "set big$i: unexpected '$r'" ;;
	esac
done
echo "stored $(wc -l <"$TMP/stored"), refused $refused: $last_err"
[ "$refused" -gt 0 ] || fail "a 4 MB filesystem took 7.5 MB"
[ "$(wc -l <"$TMP/stored")" -gt 3 ] || fail "only $(wc -l <"$TMP/stored") stored"
ok "no refused write was served"

# Still full: more refused writes, some of them overwrites; the old value stays.
for i in $(seq 0 29); do
	r=$(set_big old "$TMP/v2")
	[ "$r" = STORED ] && break
	echo "$r" | grep -q '^SERVER_ERROR' || fail "set old: unexpected '$r'"
	[ "$(get_val old)" = "$(cat "$TMP/v")" ] || fail "a refused overwrite replaced the old value"
done
[ "$r" != STORED ] || fail "an overwrite fit on the full filesystem"
ok "a refused overwrite keeps the old value"
n=$(nsegs)
echo "journal segments while full: $n"
[ "$n" -le 3 ] || fail "$n journal segments after 90 refused writes"
errs=$(grep -c 'writing segment' "$KC_LOG" || true)
echo "'writing segment' errors logged: $errs"
[ "$errs" -le 5 ] || fail "the journal's write error was logged $errs times"
ok "journal files and error lines bounded while full"
alive

# Free the filler: writes resume without a restart.
rm -f "$MNT/filler"
for _ in $(seq 60); do
	r=$(set_big after "$TMP/v2")
	[ "$r" = STORED ] && break
	sleep 0.5
done
[ "$r" = STORED ] || fail "writes did not resume after space was freed: $r"
echo after >>"$TMP/stored"
[ "$(set_big old "$TMP/v2")" = STORED ] || fail "the overwrite was refused with space"
ok "writes resume once space is freed, without a restart"
[ "$(nsegs)" -le 3 ] || fail "$(nsegs) journal segments after recovery"

check_all() {
	while read -r k; do
		want=$TMP/v
		[ "$k" = after ] && want=$TMP/v2
		[ "$(get_val "$k")" = "$(cat "$want")" ] || fail "$k ($1): acknowledged, not read back"
	done <"$TMP/stored"
	while read -r k; do
		[ -z "$(get_val "$k")" ] || fail "$k ($1): refused, and served"
	done <"$TMP/refused"
	[ "$(get_val old)" = "$(cat "$TMP/v2")" ] || fail "old ($1): not the acknowledged value"
}
check_all "before a restart"
stop_kcached
start_kcached full2 "${flags[@]}"
check_all "after a restart"
ok "every acknowledged write reads back, no refused one does, after a restart too"
stop_kcached
