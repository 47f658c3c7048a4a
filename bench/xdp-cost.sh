#!/bin/bash
# xdp-cost.sh: nanoseconds per packet of the kernel tier's XDP program next to the bench ceiling,
# by BPF_PROG_TEST_RUN on bench/udp-get.sh's workload (100k keys of 32 B, 100-500-byte values,
# Zipf 0.99). No network, no daemon: the program's own cost, cache misses included. Builds
# bench/xdp-cost.c against the skeletons and the kernel tier's archive. Needs root (BPF).
#
#   bench/xdp-cost.sh [NKEYS [NREQ [ZIPF]]]     defaults 100000 200000 0.99
#   JIT=FILE bench/xdp-cost.sh                  also write kc_cache's JIT image (see the .c)
# On a shared host, run it under the lock file the other benches there take: flock LOCKFILE bench/xdp-cost.sh
# sanitizers: no
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ "$(id -u)" = 0 ] || { echo "xdp-cost: needs root (BPF); skipped" >&2; exit 77; }
make -s --no-print-directory BUILD="$BUILD" "$BUILD/lib/kernel.a" "$BUILD/lib/core.a" "$BUILD/skel/cache.skel.h" \
	"$BUILD/skel/bench_ceiling.skel.h" "$BUILD/obj/tests/lib/pkt.o" >&2
cc -O2 -g -Iinclude -Iuser -Itests/lib -I"$BUILD/skel" bench/xdp-cost.c "$BUILD/obj/tests/lib/pkt.o" \
	"$BUILD/lib/kernel.a" "$BUILD/lib/core.a" $(pkg-config --libs libbpf libelf zlib) -lm -o "$BUILD/bench-xdp-cost"
exec "$BUILD/bench-xdp-cost" "$@"
