#!/usr/bin/env bash
# memcached over UDP is spoofable (no handshake) and amplifies: what a datagram may do and how
# much it may get back (issue 13, items 2 and 5). A table of request kinds with bytes in and out,
# printed and checked: no reply above --udp-max-reply (default one datagram, 1400 bytes), error
# replies at most 4x their request, malformed frames no larger than the request; mutations,
# flush_all, verbosity and stats refused over UDP by default (each key unchanged afterwards,
# checked over TCP), mutations served with --udp-writes; flush_all over UDP never flushes, a
# durable key survives it and a restart.
source "$(dirname "$0")/../../lib/common.sh"
need nc python3 curl
PROBE="$(dirname "$0")/udp_probe.py"
CAP=1400

# row KIND 'request': one line for udp_probe.py (frame header: id 0x1234, seq 0 of 1).
row() {
	printf '%s\t' "$1"
	{ printf '\x12\x34\x00\x00\x00\x01\x00\x00'; printf "$2"; } | od -An -v -tx1 | tr -d ' \n'
	echo
}
# rawrow KIND 'bytes': the datagram as given, no header added.
rawrow() { printf '%s\t' "$1"; printf "$2" | od -An -v -tx1 | tr -d ' \n'; echo; }
metric() { curl -fsS "http://$KC_HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

start_kcached udp
k250=$(printf 'k%.0s' {1..250})
v1024=$(head -c 1024 /dev/zero | tr '\0' v)
mc 'set s 0 0 5\r\nhello\r\nset m 0 0 4\r\norig\r\nset n 0 0 2\r\n10\r\nset d 7 0 7\r\ndurable\r\n' >/dev/null
mc "set $k250 0 0 1024\r\n$v1024\r\n" | grep -q STORED || fail "set of a kernel-sized item"
{ printf 'set big 0 0 1000000\r\n'; head -c 1000000 /dev/zero; printf '\r\n'; } |
	nc -N -w5 127.0.0.1 "$KC_PORT" | grep -q STORED || fail "set of a 1 MB value"
big33=$(printf ' big%.0s' {1..33})
s500=$(printf ' s%.0s' {1..500})
miss50=$(printf ' nokey%s' {1..50})

# kind class request: class is read (served), size (over the cap), write/control (refused),
# quiet (refused noreply: no reply), frame (malformed frame), error (a malformed command).
table() {
	{
		row "get small|read" 'get s\r\n'
		row "get kernel-sized (250 B key, 1 KiB value)|read" "get $k250\r\n"
		row "get 50 missing keys|read" "get$miss50\r\n"
		row "gets small|read" 'gets s\r\n'
		row "mg small v|read" 'mg s v f\r\n'
		row "mn|read" 'mn\r\n'
		row "version|read" 'version\r\n'
		row "get 1 MB value|size" 'get big\r\n'
		row "get 1 MB value x33|size" "get$big33\r\n"
		row "get small x500|size" "get$s500\r\n"
		row "stats|control" 'stats\r\n'
		row "stats settings|control" 'stats settings\r\n'
		row "flush_all|control" 'flush_all\r\n'
		row "flush_all noreply|quiet" 'flush_all noreply\r\n'
		row "flush_all 0 noreply|quiet" 'flush_all 0 noreply\r\n'
		row "verbosity 1|control" 'verbosity 1\r\n'
		row "verbosity noreply|quiet" 'verbosity noreply\r\n'
		row "set|write" 'set m 0 0 3\r\nnew\r\n'
		row "set noreply|quiet" 'set m 0 0 3 noreply\r\nnew\r\n'
		row "append|write" 'append m 0 0 1\r\nx\r\n'
		row "delete|write" 'delete m\r\n'
		row "delete noreply|quiet" 'delete m noreply\r\n'
		row "incr|write" 'incr n 5\r\n'
		row "incr noreply|quiet" 'incr n 5 noreply\r\n'
		row "decr|write" 'decr n 1\r\n'
		row "touch|write" 'touch m 100\r\n'
		row "gat|write" 'gat 100 m\r\n'
		row "ms|write" 'ms m 3\r\nnew\r\n'
		row "md|write" 'md m\r\n'
		row "md q|write" 'md m q\r\n'
		row "ma|write" 'ma n\r\n'
		row "mg T (touch)|write" 'mg m T100 v\r\n'
		row "get then set|write" 'get s\r\nset m 0 0 3\r\nnew\r\n'
		row "unknown command|error" 'frobnicate\r\n'
		row "empty line|error" '\r\n'
		row "get without CRLF|error" 'get s'
		row "set with its value cut|error" 'set m 0 0 100\r\nabc'
		rawrow "frame seq 1 of 2|frame" '\x00\x07\x00\x01\x00\x02\x00\x00get s\r\n'
		rawrow "frame seq 0 of 2|frame" '\x00\x07\x00\x00\x00\x02\x00\x00get s\r\n'
		rawrow "frame header only|frame" '\x00\x07\x00\x00\x00\x01\x00\x00'
		rawrow "3 bytes|frame" '\x01\x02\x03'
	} | python3 "$PROBE" "$KC_PORT"
}

# check_table OUTPUT: prints it as a table and checks every row against its class.
check_table() {
	local bad=0 kind class in out dg first
	printf '%-46s %-7s %8s %9s %4s  %s\n' kind class "bytes in" "bytes out" dgrams "first line"
	while IFS=$'\t' read -r kind in out dg first; do
		class=${kind#*|}; kind=${kind%|*}
		printf '%-46s %-7s %8s %9s %4s  %s\n' "$kind" "$class" "$in" "$out" "$dg" "$first"
		if [ "$out" -gt "$CAP" ]; then echo "  ^ over the cap of $CAP bytes"; bad=1; fi
		case $class in
		read) [[ $first != -* && $first != *ERROR* ]] || { echo "  ^ not served"; bad=1; } ;;
		size) [[ $first == "SERVER_ERROR reply too large for UDP; use TCP" && $dg -eq 1 ]] ||
			{ echo "  ^ want one datagram: SERVER_ERROR reply too large for UDP; use TCP"; bad=1; } ;;
		control|write) [[ $first == "CLIENT_ERROR not allowed over UDP; use TCP" && $dg -eq 1 ]] ||
			{ echo "  ^ want one datagram: CLIENT_ERROR not allowed over UDP; use TCP"; bad=1; } ;;
		quiet) [ "$out" -eq 0 ] || { echo "  ^ noreply: want no reply"; bad=1; } ;;
		frame) [ "$out" -le "$in" ] || { echo "  ^ reply larger than the malformed frame"; bad=1; } ;;
		esac
		case $class in size|control|write|error)
			[ "$out" -le $((4 * in)) ] || { echo "  ^ error reply over 4x its request"; bad=1; } ;;
		esac
	done <<<"$1"
	[ $bad -eq 0 ] || fail "$2: some UDP replies broke the rules (marked above)"
	ok "$2: every UDP reply within $CAP bytes, errors within 4x, frames no larger"
}

unchanged() { # the keys the refused writes named are as they were, over TCP
	expect_eq "$1: m unchanged" "$(mc 'get m\r\n')" $'VALUE m 0 4\r\norig\r\nEND\r'
	expect_eq "$1: n unchanged" "$(mc 'get n\r\n')" $'VALUE n 0 2\r\n10\r\nEND\r'
	expect_eq "$1: durable key d kept" "$(mc 'get d\r\n')" $'VALUE d 7 7\r\ndurable\r\nEND\r'
}

echo "== defaults (udp-max-reply $CAP, no udp-writes)"
check_table "$(table)" "defaults"
unchanged "defaults"
for r in write command size frame; do
	v=$(metric "kcache_udp_refused_total{reason=\"$r\"}")
	[ "${v:-0}" -gt 0 ] || fail "kcache_udp_refused_total{reason=\"$r\"} is ${v:-absent}"
	ok "refusals counted: $r $v"
done

stop_kcached
start_kcached udp # the same data-dir
unchanged "after a restart"

echo "== --udp-writes true"
stop_kcached
start_kcached udp --udp-writes true
expect_eq "udp set" "$(mcu 'set w 0 0 3\r\nnew\r\n')" $'STORED\r'
expect_eq "udp set, seen over tcp" "$(mc 'get w\r\n')" $'VALUE w 0 3\r\nnew\r\nEND\r'
expect_eq "udp incr" "$(mcu 'incr n 5\r\n')" $'15\r'
expect_eq "udp delete" "$(mcu 'delete w\r\n')" $'DELETED\r'
expect_eq "udp delete, seen over tcp" "$(mc 'get w\r\n')" $'END\r'
expect_eq "udp flush_all still refused" "$(mcu 'flush_all\r\n')" $'CLIENT_ERROR not allowed over UDP; use TCP\r'
expect_eq "udp flush_all noreply still silent" "$(mcu 'flush_all noreply\r\n')" ""
expect_eq "udp verbosity still refused" "$(mcu 'verbosity 1\r\n')" $'CLIENT_ERROR not allowed over UDP; use TCP\r'
expect_eq "udp stats still refused" "$(mcu 'stats\r\n')" $'CLIENT_ERROR not allowed over UDP; use TCP\r'
expect_eq "durable key after udp flush_all" "$(mc 'get d\r\n')" $'VALUE d 7 7\r\ndurable\r\nEND\r'
mc 'set n 0 0 2\r\n10\r\n' >/dev/null

echo "== --udp-max-reply 8K"
stop_kcached
CAP=8192
start_kcached udp --udp-max-reply 8K
v5000=$(head -c 5000 /dev/zero | tr '\0' w)
mc "set v5k 0 0 5000\r\n$v5000\r\n" | grep -q STORED || fail "set of a 5000-byte value"
out=$(row "get 5000-byte value|read" 'get v5k\r\n' | python3 "$PROBE" "$KC_PORT")
check_table "$out" "udp-max-reply 8K"
[ "$(cut -f4 <<<"$out")" -eq 4 ] || fail "a 5000-byte value should take 4 datagrams: $out"
check_table "$(table)" "udp-max-reply 8K, the whole table"
unchanged "udp-max-reply 8K"
stop_kcached
