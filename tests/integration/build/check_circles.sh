#!/usr/bin/env bash
# check_circles: tools/check-circles.sh passes on this build, and refuses a circle planted in a
# scratch build folder (two objects of one archive that call each other), but not one inside
# user/tiers/redis/, the one circle the project allows.
# sanitizers: no (it reads the normal build's archives)
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/kccircles.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(BUILD=$BUILD tools/check-circles.sh) || fail "this build has a circle: $out"
echo "$out"

# plant DIR: a scratch build whose archive lib/DIR.a holds a.o -> b.o -> a.o.
plant() {
	rm -rf "$T/b"; mkdir -p "$T/b/lib/$(dirname "$1")" "$T/o"
	printf 'int kc_b(int);\nint kc_a(int x) { return x ? kc_b(x - 1) : 0; }\n' >"$T/o/a.c"
	printf 'int kc_a(int);\nint kc_b(int x) { return x ? kc_a(x - 1) : 1; }\n' >"$T/o/b.c"
	cc -c -o "$T/o/a.o" "$T/o/a.c" && cc -c -o "$T/o/b.o" "$T/o/b.c"
	ar rcs "$T/b/lib/$1.a" "$T/o/a.o" "$T/o/b.o"
}
plant serve
rc=0; out=$(BUILD=$T/b tools/check-circles.sh 2>&1) || rc=$?
echo "$out"
[ "$rc" -eq 1 ] || fail "planted circle in serve/: exit $rc, expected 1"
echo "$out" | grep -qx 'circle: user/serve/a.c -> user/serve/b.c -> user/serve/a.c' ||
	fail "planted circle in serve/ not named: '$out'"

plant tiers/redis
BUILD=$T/b tools/check-circles.sh >/dev/null || fail "a circle inside tiers/redis/ is allowed"
echo "check_circles: ok"
