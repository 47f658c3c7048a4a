#!/bin/bash
# hitratio.sh: the memory tier's W-TinyLFU against plain LRU of the same byte capacity on Zipf
# traces (fixed seed). Builds bench/hitratio.c against the memory tier (build/lib/mem.a) and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SAN=()
case "$BUILD" in
*/san-*) SAN=(-fsanitize="${BUILD##*/san-}") ;;
esac
make --no-print-directory BUILD="$BUILD" "$BUILD/lib/mem.a" "$BUILD/lib/core.a" >&2
cc -O2 "${SAN[@]}" -Iuser -Iinclude bench/hitratio.c "$BUILD/lib/mem.a" "$BUILD/lib/core.a" \
	$(pkg-config --libs libxxhash libbpf libelf zlib libevent libevent_pthreads yaml-0.1 libcrypto) \
	-lpthread -lm -o "$BUILD/bench-hitratio"
exec "$BUILD/bench-hitratio" "$@"
