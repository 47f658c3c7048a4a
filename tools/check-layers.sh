#!/usr/bin/env bash
# tools/check-layers.sh: enforces user/LAYERS, the table of which folder may include which.
# Reads every .c and .h under user/ and tools/ (git's list, or every file when not in a
# checkout) and prints, for each include the table forbids,
#   FILE:LINE: user/netpol/x.c may not include kernel/y.h (see the layering table)
# Exit 0 when nothing is forbidden, 1 otherwise, 2 on a bad table.
# Usage: tools/check-layers.sh [ROOT]   (default: the checkout this script is in)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"
[ -f user/LAYERS ] || { echo "check-layers: user/LAYERS is missing" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files --cached --others --exclude-standard 'user/*.[ch]' 'tools/*.[ch]')
else
	files=$(find user tools -name '*.[ch]' | sort)
fi
# shellcheck disable=SC2086 # one word per file
tops=$(cd user && find . -mindepth 1 -maxdepth 1 -type d | sed 's|^\./||' | tr '\n' ' ')
awk -v table=user/LAYERS -v tops="$tops" '
BEGIN {
	while ((getline line < table) > 0) {
		sub(/#.*/, "", line)
		n = split(line, w, /[ \t]+/)
		k = 0
		for (i = 1; i <= n; i++) if (w[i] != "") v[++k] = w[i]
		if (k == 0) continue
		if (k < 2) { printf "check-layers: %s: row \"%s\" names nothing it may include\n", table, v[1] > "/dev/stderr"; bad = 2; exit 2 }
		rows[v[1]] = ""
		for (i = 2; i <= k; i++) rows[v[1]] = rows[v[1]] " " v[i]
	}
	close(table)
	n = split(tops, t, " ")
	for (i = 1; i <= n; i++) top_dir[t[i]] = 1
}
# The longest row that is the file itself or a folder above it.
function row_of(f,   p) {
	p = f
	while (p != "") {
		if (p in rows) return p
		if (p !~ /\//) return ""
		sub(/\/[^\/]*$/, "", p)
	}
	return ""
}
function allowed(f, inc,   r, dir, idir, n, a, i) {
	dir = f; sub(/\/[^\/]*$/, "", dir)
	idir = inc; if (idir ~ /\//) sub(/\/[^\/]*$/, "", idir); else idir = "."
	if ("user/" idir == dir) return 1
	r = row_of(f)
	if (r == "") return 0
	n = split(rows[r], a, " ")
	for (i = 1; i <= n; i++) {
		if (a[i] == "*" || a[i] == inc || a[i] == idir) return 1
	}
	return 0
}
FNR == 1 { r = row_of(FILENAME) }
/^[ \t]*#[ \t]*include[ \t]*"/ {
	inc = $0
	sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", inc); sub(/".*/, "", inc)
	# Only the project'"'"'s own headers: a folder under user/ (skeletons and test headers are not).
	top = inc; sub(/\/.*/, "", top)
	if (inc !~ /\// || !(top in top_dir)) next
	if (r == "" && FILENAME !~ /^user\//) next
	if (!allowed(FILENAME, inc)) {
		printf "%s:%d: %s may not include %s (see the layering table)\n", FILENAME, FNR, FILENAME, inc
		bad = 1
	}
	nchk++
}
END {
	if (bad == 2) exit 2
	if (bad) exit 1
	printf "check-layers: %d includes in %d files follow user/LAYERS\n", nchk, nfiles
}
FNR == 1 { nfiles++ }
' $files
