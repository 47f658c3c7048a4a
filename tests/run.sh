#!/usr/bin/env bash
# tests/run.sh: runs kcache's tests and prints one closing line "tests: N passed, N failed, N skipped".
#   tests/run.sh                 every suite: unit, bpf, integration
#   tests/run.sh unit|bpf|integration|NAME...   a suite, or tests whose name contains NAME
# Environment: BUILD (default build), KC_SAN_BUILDS (extra sanitized build folders whose unit
# tests and protocol integration tests run too), KCACHE_REQUIRE_BPF=1 (a skip is a failure).
# A test passes with exit 0 and skips with exit 77 (automake's skip code; xdp-tools uses 249).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
declare -a names=() cmds=() builds=()

add_suite() { # $1 suite, $2 build folder, $3 name prefix
	local f
	case $1 in
	unit) for f in "$2"/tests/test_*; do [ -x "$f" ] && names+=("$3unit/${f##*/}") && cmds+=("$f") && builds+=("$2"); done ;;
	bpf) for f in "$2"/tests/bpf_*; do [ -x "$f" ] && names+=("$3bpf/${f##*/}") && cmds+=("$f") && builds+=("$2"); done ;;
	integration) for f in tests/integration/*/*.sh; do [ -x "$f" ] || continue
		# Sanitized builds rerun the protocol tests; the long load and kernel tests run once.
		if [ -n "$3" ] && grep -q '^# sanitizers: no' "$f"; then continue; fi
		n=${f#tests/integration/}; names+=("$3integration/${n%.sh}"); cmds+=("$f"); builds+=("$2"); done ;;
	esac
}

sel=("$@")
[ ${#sel[@]} -eq 0 ] && sel=(unit bpf integration)
suites=() words=()
for s in "${sel[@]}"; do
	case $s in unit|bpf|integration) suites+=("$s") ;; *) words+=("$s") ;; esac
done
for s in "${suites[@]}"; do add_suite "$s" "$BUILD" ""; done
for b in ${KC_SAN_BUILDS:-}; do
	p="$(basename "$b" | sed 's/^san-//'):"
	for s in "${suites[@]}"; do case $s in unit|integration) add_suite "$s" "$b" "$p" ;; esac; done
done
if [ ${#words[@]} -gt 0 ]; then # tests named by part of their name, from every suite
	keep_n=("${names[@]}") keep_c=("${cmds[@]}") keep_b=("${builds[@]}")
	names=() cmds=() builds=()
	add_suite unit "$BUILD" ""; add_suite bpf "$BUILD" ""; add_suite integration "$BUILD" ""
	for i in "${!names[@]}"; do
		for w in "${words[@]}"; do
			if [[ ${names[$i]} == *"$w"* ]]; then
				keep_n+=("${names[$i]}"); keep_c+=("${cmds[$i]}"); keep_b+=("${builds[$i]}"); break
			fi
		done
	done
	names=("${keep_n[@]}"); cmds=("${keep_c[@]}"); builds=("${keep_b[@]}")
fi
if [ ${#names[@]} -eq 0 ]; then
	echo "tests/run.sh: nothing matches: ${sel[*]}" >&2
	echo "tests: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

pass=0 fail=0 skip=0 failed=()
for i in "${!names[@]}"; do
	n=${names[$i]} log="$LOGS/$(echo "${names[$i]}" | tr '/:' '__').log"
	start=$(date +%s)
	BUILD=${builds[$i]} timeout --kill-after=10 600 "${cmds[$i]}" >"$log" 2>&1 </dev/null
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf 'PASS  %-44s %4ss\n' "$n" "$secs"
	elif [ $rc -eq 77 ] && [ "${KCACHE_REQUIRE_BPF:-0}" != 1 ]; then
		skip=$((skip + 1)); printf 'SKIP  %-44s %s\n' "$n" "$(grep -m1 -i 'skip' "$log" | cut -c1-80)"
	else
		fail=$((fail + 1)); failed+=("$n")
		[ $rc -eq 77 ] && echo "      (skipped, but KCACHE_REQUIRE_BPF=1 makes a skip a failure)" >>"$log"
		printf 'FAIL  %-44s %4ss (exit %d, log %s)\n' "$n" "$secs" "$rc" "$log"
		tail -n 25 "$log" | sed 's/^/      | /'
	fi
done
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ $((pass + skip)) -gt 0 ]
