# tests/integration/tiers/store_lib.bash: sourced by the store_*.sh tests after common.sh.
# Builds kc_store_tool (tests/integration/tiers/kc_store_tool.c) against the library of the build
# under test ($BUILD/lib/tiers/store.a and core.a, sanitized when BUILD is a san-* build), and small helpers.

need cc pkg-config cmp python3
[ -f "$BUILD/lib/tiers/store.a" ] || fail "$BUILD/lib/tiers/store.a missing: run make"
STORE_TOOL=$TMP/kc_store_tool
store_san=
case $BUILD in *san-*) store_san="-fsanitize=${BUILD##*san-} -fno-omit-frame-pointer" ;; esac
# shellcheck disable=SC2086,SC2046 # word splitting wanted for the flag lists
cc -O1 -g -Wall -Wextra -Werror $store_san -Iinclude -Iuser -o "$STORE_TOOL" \
	tests/integration/tiers/kc_store_tool.c "$BUILD/lib/tiers/store.a" "$BUILD/lib/core.a" \
	$(pkg-config --libs libbpf libcrypto libxxhash libcurl) -pthread || fail "cannot build kc_store_tool"

# st ARGS...: runs the tool; its stderr is kept in $TMP/st.err (and shown), its status in $rc.
st() {
	rc=0
	"$STORE_TOOL" "$@" 2>"$TMP/st.err" || rc=$?
	cat "$TMP/st.err" >&2
	check_sanitizers "$TMP/st.err"
}

# expect_rc WHAT WANT: $rc of the last st is WANT (0 ok, 1 miss, 2 error, 3 full, 4 corrupt).
expect_rc() { [ "$rc" -eq "$2" ] || fail "$1: exit $rc, want $2: $(cat "$TMP/st.err")"; ok "$1"; }

# expect_err WHAT TEXT: the last st's stderr holds TEXT.
expect_err() { grep -qF -- "$2" "$TMP/st.err" || fail "$1: no \"$2\" in: $(cat "$TMP/st.err")"; ok "$1"; }

# flip_byte FILE OFFSET: inverts one bit of FILE at OFFSET, in place.
flip_byte() {
	python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x10]))
PY
}

# addr KEY: the store address of KEY (hex SHA-256).
addr() { printf '%s' "$1" | sha256sum | cut -c1-64; }
