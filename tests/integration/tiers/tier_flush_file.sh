#!/usr/bin/env bash
# data-dir/flush (issue 13, items 10 and 14): a damaged flush file is ignored with an error
# naming it, set aside as flush.bad, and every stored object stays readable; later writes
# survive a restart. A symlink planted at data-dir/flush.tmp is never followed by the lasting
# flush (kcachectl flush: the protocol's flush_all never writes data-dir/flush).
source "$(dirname "$0")/../../lib/common.sh"
need nc

D=$TMP/dd
mkdir -m 0700 "$D"
flags=(--write-mode through --data-dir "$D")
start_kcached ff1 "${flags[@]}"
expect_eq "set k1" "$(mc 'set k1 0 0 2\r\nv1\r\n' | tr -d '\r')" STORED
# kcachectl flush writes data-dir/flush; a symlink at flush.tmp must not be written through.
echo precious >"$TMP/target"
ln -s "$TMP/target" "$D/flush.tmp"
expect_eq "kcachectl flush" "$("$KCACHECTL" --admin-socket "$TMP/ff1.sock" flush)" \
	"flushed: this node (kept in data-dir/flush)"
expect_eq "the symlink's target is untouched" "$(cat "$TMP/target")" precious
[ -f "$D/flush" ] && [ ! -L "$D/flush" ] || fail "data-dir/flush was not written as a file"
grep -q '^KCF1 ' "$D/flush" || fail "data-dir/flush has no checksummed line: $(cat "$D/flush")"
expect_eq "set k2 after the flush" "$(mc 'set k2 0 0 2\r\nv2\r\n' | tr -d '\r')" STORED
stop_kcached

# One bad digit: the old reader took "99999999999999999999" as a flush newer than everything.
printf '99999999999999999999 0\n' >"$D/flush"
start_kcached ff2 "${flags[@]}"
grep -q "ignoring $D/flush" "$KC_LOG" || fail "no error naming the damaged flush file"
[ -f "$D/flush.bad" ] || fail "the damaged file was not set aside as flush.bad"
expect_eq "k2 stays readable" "$(mc 'get k2\r\n' | sed -n 2p | tr -d '\r')" v2
expect_eq "set k3" "$(mc 'set k3 0 0 2\r\nv3\r\n' | tr -d '\r')" STORED
stop_kcached
start_kcached ff3 "${flags[@]}"
expect_eq "k3 survives the next restart" "$(mc 'get k3\r\n' | sed -n 2p | tr -d '\r')" v3
stop_kcached
