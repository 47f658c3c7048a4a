#!/usr/bin/env bash
# Listeners the network policy does not cover are refused (issue 13 item 4). A server
# namespace with two veths: XDP protects only the first (--iface), so memcached on 0.0.0.0
# would answer on the second unfiltered; kcached must refuse to start, saying which interface
# is unprotected and the two ways out. The same for an address of the second interface, for a
# non-loopback address with --xdp-mode off and for HTTP off loopback. Listening on the
# protected interface's address starts and serves through it; --insecure-listen starts on
# 0.0.0.0 with a warning.
# sanitizers: no   (root, netns and XDP)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc
S=kxs$$ C=kxc$$ D=kxd$$ PIN=/sys/fs/bpf/kctest-$$
on_exit "rm -rf $PIN"
netns_add "$S"
netns_add "$C"
netns_add "$D"
netns_veth "$S" kxs$$a 198.18.0.1/24 "$C" kxc$$a 198.18.0.2/24
netns_veth "$S" kxs$$b 198.18.1.1/24 "$D" kxd$$b 198.18.1.2/24
netns_xdp_pass "$C" kxc$$a
common=(--port 11299 --http 127.0.0.1:8099 --pin-path "$PIN" --data-dir "")
allow=(--allow 198.18.0.2/32)

refused() { # NAME WANT FLAG...: kcached must exit 2 at start with WANT in its message
	local name=$1 want=$2 out rc=0
	shift 2
	out=$(timeout 20 nsenter --net="/run/netns/$S" -- "$KCACHED" "${common[@]}" \
		--admin-socket "$TMP/$name.sock" "$@" 2>&1) || rc=$?
	[ $rc -eq 2 ] || fail "$name: exit $rc, want 2 (refused): $out"
	grep -qF -- "$want" <<<"$out" || fail "$name: message lacks '$want': $out"
	grep -qF -- "--insecure-listen" <<<"$out" || fail "$name: message does not name --insecure-listen: $out"
	ok "$name refused: $out"
}
refused wildcard "would answer on kxs$$b (198.18.1.1)" --listen 0.0.0.0 --iface kxs$$a --xdp-mode native "${allow[@]}"
refused other-iface "not an address of iface kxs$$a" --listen 198.18.1.1 --iface kxs$$a --xdp-mode native "${allow[@]}"
refused xdp-off "xdp-mode is off" --listen 198.18.0.1 --xdp-mode off
refused http-open "http 0.0.0.0:8099 is not a loopback address" --listen 198.18.0.1 --iface kxs$$a \
	--xdp-mode native "${allow[@]}" --http 0.0.0.0:8099
# --check-config says the same
rc=0; out=$(nsenter --net="/run/netns/$S" -- "$KCACHED" --check-config "${common[@]}" --listen 0.0.0.0 \
	--iface kxs$$a --xdp-mode native "${allow[@]}" 2>&1) || rc=$?
[ $rc -eq 2 ] && grep -qF "kxs$$b" <<<"$out" || fail "--check-config accepted 0.0.0.0: $out"
ok "--check-config refuses it too"

# The protected interface's address: starts, and the allowed client gets answers through it.
NETNS_PORT=11299 NETNS_HTTP=127.0.0.1:8099 NETNS_MC_ADDR=198.18.0.1
ns_start_kcached "$S" good "${common[@]}" --listen 198.18.0.1 --iface kxs$$a --xdp-mode native "${allow[@]}"
got=$(printf 'version\r\n' | ns_daemon "$C" nc -N -w3 198.18.0.1 11299 | tr -d '\r')
[[ $got == VERSION* ]] || fail "allowed client through the protected interface: got '$got'"
ok "listen on the protected interface's address: served ($got)"
stop_kcached
# --insecure-listen: the operator accepts the unprotected interface; kcached says so.
NETNS_MC_ADDR=127.0.0.1
ns_start_kcached "$S" insecure "${common[@]}" --listen 0.0.0.0 --iface kxs$$a --xdp-mode native "${allow[@]}" \
	--insecure-listen true
grep -q 'insecure-listen' "$KC_LOG" || fail "no warning with --insecure-listen"
ok "--insecure-listen starts, with a warning: $(grep -m1 insecure-listen "$KC_LOG" | cut -c1-160)"
stop_kcached
