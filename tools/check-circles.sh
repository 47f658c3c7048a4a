#!/usr/bin/env bash
# tools/check-circles.sh: fails when files of the daemon call each other in a circle.
# Reads nm of the per-folder archives ($BUILD/lib/*.a, $BUILD/lib/tiers/*.a) and of the root's
# objects ($BUILD/obj/user/*.o; BUILD defaults to build): object A -> object B when A references
# a symbol that B defines. Each strongly
# connected component of more than one file is a circle; it is printed as
#   circle: user/x/a.c -> user/x/b.c -> user/x/a.c
# (one shortest cycle per file not yet shown) and fails the check, unless every file of it is
# under user/tiers/redis/: the Redis client is one state machine, contained behind redis.h.
# Exit 0 with one summary line, 1 on a circle, 2 when there is nothing to read.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ALLOWED=user/tiers/redis/

shopt -s nullglob
archives=("$BUILD"/lib/*.a "$BUILD"/lib/tiers/*.a)
if [ ${#archives[@]} -eq 0 ]; then
	echo "check-circles: no archive under $BUILD/lib (run make all first)" >&2
	exit 2
fi

# One line per symbol: "D file sym" (defined, global) or "U file sym" (referenced), where file
# is the source the object came from: $BUILD/lib/tiers/store.a:store.o -> user/tiers/store/store.c.
# The composition root (user/kcached.c, user/server.c) is read too, so that a folder calling
# back up into it shows as a circle.
for a in "${archives[@]}" "$BUILD"/obj/user/*.o; do
	case $a in
	*.a) dir=${a#"$BUILD"/lib/} dir=user/${dir%.a} ;;
	*) dir=user ;;
	esac
	nm -A -g --defined-only "$a" | awk -v d="$dir" '{ n = split($1, p, ":"); o = p[n - 1];
		sub(/.*\//, "", o); sub(/\.o$/, ".c", o); print "D", d "/" o, $NF }'
	nm -A -u "$a" | awk -v d="$dir" '{ n = split($1, p, ":"); o = p[n - 1];
		sub(/.*\//, "", o); sub(/\.o$/, ".c", o); print "U", d "/" o, $NF }'
done | awk -v allowed="$ALLOWED" '
$1 == "D" { def[$3] = $2; files[$2] = 1; next }
$1 == "U" { files[$2] = 1; nref++; rf[nref] = $2; rs[nref] = $3 }

# Tarjan: idx/low per node, an explicit stack; comp[v] names the component of v.
function strong(v,    i, w) {
	idx[v] = low[v] = ++counter
	stack[++sp] = v; onstack[v] = 1
	for (i = 1; i <= nout[v]; i++) {
		w = out[v, i]
		if (!(w in idx)) {
			strong(w)
			if (low[w] < low[v]) low[v] = low[w]
		} else if (onstack[w] && idx[w] < low[v]) {
			low[v] = idx[w]
		}
	}
	if (low[v] == idx[v]) {
		ncomp++
		do {
			w = stack[sp--]; onstack[w] = 0
			comp[w] = ncomp; csize[ncomp]++
			cmem[ncomp] = (cmem[ncomp] == "" ? w : cmem[ncomp] " " w)
		} while (w != v)
	}
}

# The shortest cycle through s inside its component (breadth first), as "s -> ... -> s".
function cycle(s,    q, head, tail, v, w, i, seen, from, path) {
	split("", seen); split("", from)
	head = tail = 1; q[1] = s
	while (head <= tail) {
		v = q[head++]
		for (i = 1; i <= nout[v]; i++) {
			w = out[v, i]
			if (comp[w] != comp[s]) continue
			if (w == s) {
				path = s
				for (; v != s; v = from[v]) path = v " -> " path
				return s " -> " path
			}
			if (!(w in seen)) { seen[w] = 1; from[w] = v; q[++tail] = w }
		}
	}
	return ""
}

function sorted(list,    a, n, i, j, t, r) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	r = a[1]
	for (i = 2; i <= n; i++) r = r " " a[i]
	return r
}

END {
	for (i = 1; i <= nref; i++) {
		a = rf[i]; b = def[rs[i]]
		if (b == "" || a == b || ((a, b) in edge)) continue
		edge[a, b] = 1; out[a, ++nout[a]] = b
	}
	# Visit files in name order so the output is the same on every run.
	list = ""
	for (f in files) list = list " " f
	list = sorted(substr(list, 2)); nfiles = split(list, order, " ")
	for (i = 1; i <= nfiles; i++) if (!(order[i] in idx)) strong(order[i])

	bad = 0; nallowed = 0; allowed_names = ""
	for (c = 1; c <= ncomp; c++) {
		if (csize[c] < 2) continue
		members = sorted(cmem[c]); n = split(members, m, " ")
		ok = 1
		for (i = 1; i <= n; i++) if (index(m[i], allowed) != 1) ok = 0
		if (ok) {
			nallowed++
			for (i = 1; i <= n; i++) {
				short = m[i]; sub(/.*\//, "", short)
				allowed_names = allowed_names (allowed_names == "" ? "" : " ") short
			}
			continue
		}
		bad++
		split("", shown)
		for (i = 1; i <= n; i++) {
			if (m[i] in shown) continue
			cyc = cycle(m[i]); print "circle: " cyc
			k = split(cyc, p, " -> ")
			for (j = 1; j <= k; j++) shown[p[j]] = 1
		}
	}
	if (bad) {
		printf "check-circles: %d group(s) of files in a circle outside tiers/redis (%d files)\n", bad, nfiles
		exit 1
	}
	printf "check-circles: %d files, no circle outside tiers/redis (%d allowed%s)\n", nfiles,
		nallowed, nallowed ? ": " allowed_names : ""
}'
