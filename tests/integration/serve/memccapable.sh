#!/usr/bin/env bash
# memccapable -a (libmemcached's protocol conformance suite) against kcached: 27 of 27 ASCII tests.
source "$(dirname "$0")/../../lib/common.sh"
need memccapable
# memccapable checks flush_all: --allow-flush serves it (off by default; this node only).
start_kcached capable --allow-flush true
out=$(memccapable -h 127.0.0.1 -p "$KC_PORT" -a 2>&1) || { echo "$out"; fail "memccapable failed"; }
echo "$out"
passed=$(grep -c '\[pass\]' <<<"$out" || true)
[ "$passed" -eq 27 ] || fail "memccapable: $passed of 27 ASCII tests passed"
grep -q 'All tests passed' <<<"$out" || fail "memccapable did not report 'All tests passed'"
ok "memccapable: 27 of 27"
stop_kcached
