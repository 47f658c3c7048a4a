#!/usr/bin/env bash
# Commands that read the current value (incr, append, delete, touch, add, replace, ma, md) on
# keys only the store holds: after a restart with an empty memory tier they act on the stored
# values, as if the keys had never left memory.
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/tier_lib.bash"

flags=(--write-mode through --threads 2 --data-dir "$TMP/data-rmw")
start_kcached rmw1 "${flags[@]}"
mc 'set a 0 0 1\r\n1\r\nset b 0 0 1\r\nx\r\nset c 0 0 1\r\ny\r\nset d 0 0 1\r\nz\r\nset e 0 0 1\r\nq\r\n' >/dev/null
stop_kcached
start_kcached rmw2 "${flags[@]}"
got=$(mc 'incr a 5\r\nappend b 0 0 2\r\nxx\r\ndelete c\r\ntouch d 100\r\nadd e 0 0 1\r\nw\r\nreplace zz 0 0 1\r\nw\r\nma a N0 J9\r\nmd nope\r\n' | tr -d '\r' | tr '\n' ' ')
expect_eq "read-modify-write commands on keys only the store holds" "$got" \
	"6 STORED DELETED TOUCHED NOT_STORED NOT_STORED HD NF "
got=$(mc 'get a b c d e\r\n' | tr -d '\r' | tr '\n' ' ')
expect_eq "their results" "$got" "VALUE a 0 1 7 VALUE b 0 3 xxx VALUE d 0 1 z VALUE e 0 1 q END "
stop_kcached
