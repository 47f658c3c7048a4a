#!/usr/bin/env bash
# check_layers: tools/check-layers.sh passes on this tree, and refuses a forbidden include
# planted in a copy of it with the message `make check` prints; an allowed one passes.
# sanitizers: no (it builds nothing)
set -euo pipefail
cd "$(dirname "$0")/../../.."
T=$(mktemp -d /tmp/kclayers.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(tools/check-layers.sh) || fail "the tree breaks its own layering table: $out"
echo "$out"

copy() { rm -rf "$T/tree"; mkdir -p "$T/tree"; cp -r user tools "$T/tree/"; }

# A network-policy file that reaches into the kernel tier.
copy
printf '#include "kernel/cache.h"\n' >"$T/tree/user/netpol/planted.c"
rc=0; out=$(tools/check-layers.sh "$T/tree" 2>&1) || rc=$?
echo "$out"
[ "$rc" -eq 1 ] || fail "planted include: exit $rc, expected 1"
want='user/netpol/planted.c:1: user/netpol/planted.c may not include kernel/cache.h (see the layering table)'
[ "$out" = "$want" ] || fail "planted include: got '$out', expected '$want'"

# core/ may include only core/, even a header a job may include.
copy
printf '#include "core/log.h"\n#include "mem/mem.h"\n' >"$T/tree/user/core/planted.h"
rc=0; out=$(tools/check-layers.sh "$T/tree" 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [ "$out" = 'user/core/planted.h:2: user/core/planted.h may not include mem/mem.h (see the layering table)' ] ||
	fail "core including mem: exit $rc, '$out'"

# serve/ may include tiers/tier.h, but no other header of tiers/.
copy
printf '#include "tiers/tier.h"\n#include "tiers/tier_int.h"\n' >"$T/tree/user/serve/planted.c"
rc=0; out=$(tools/check-layers.sh "$T/tree" 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [ "$out" = 'user/serve/planted.c:2: user/serve/planted.c may not include tiers/tier_int.h (see the layering table)' ] ||
	fail "serve including tier_int.h: exit $rc, '$out'"

# What the table allows passes: the composition root includes every job.
copy
printf '#include "kernel/cache.h"\n#include "audit/audit.h"\n' >"$T/tree/user/planted.c"
tools/check-layers.sh "$T/tree" >/dev/null || fail "the composition root may include every job"

# A row that names nothing is a broken table, not a pass.
copy
printf 'user/mem\n' >>"$T/tree/user/LAYERS"
rc=0; tools/check-layers.sh "$T/tree" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a broken table: exit $rc, expected 2"
echo "check_layers: ok"
