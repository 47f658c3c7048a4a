#!/usr/bin/env bash
# sanitizers: no (one million commands; the unit tests cover the same paths under ASan)
# 1,000,000 mixed commands (set, get, delete, incr, add) in one write to kcached on its default
# configuration (data-dir on, write-behind): every reply comes, in order, each the one the
# command must answer (issue 13, item 1: 98,304 of 200,000 replies, then a hang).
source "$(dirname "$0")/../../lib/common.sh"
need python3 nc
N=${KC_PIPELINE_N:-1000000}
start_kcached pipe
grep -q 'lower tiers: write-behind' "$KC_LOG" || fail "not the default write-behind config"
# The timeout only turns a hang into a failure: each write waits for the journal's group
# commit, one at a time on one connection.
python3 tests/integration/serve/pipeline_client.py "$KC_PORT" "$N" 1 900 "${KC_PIPELINE_STALL:-120}" ||
	fail "pipelined replies missing or wrong"
ok "$N pipelined commands answered in order"
alive
stop_kcached
