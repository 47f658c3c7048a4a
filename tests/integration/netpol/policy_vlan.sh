#!/usr/bin/env bash
# Network policy against hand-made frames on a veth pair (native XDP), issue 13 items 3 and 7.
# Clients in their own namespace: 198.18.0.2 allowed, .3 denied. Linux strips priority tags
# (VID 0) and delivers what is behind them, so a priority tag in front of a second tag reached
# kcached as "not IP" to the policy: the allowed source behind such stacks is answered over UDP
# and TCP (so the frames do reach the socket, and the test can see a bypass), the denied one is
# not, and the deny rule counts every frame (behind a VLAN id too); a frame with more tags than
# the program walks is dropped as invalid. A forged 127.0.0.1 source asking for a key the
# kernel tier holds gets no XDP_TX answer, and is counted as invalid.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need curl python3

source "$(dirname "$0")/netpol_lib.bash"
netpol_pair v 3
SMAC=$(ip netns exec "$S" cat "/sys/class/net/$DS/address")

# raw SRC udp|tcp TAGS N: "sent N replies R" for N frames from SRC behind TAGS.
raw() { in_ns "$C" python3 tests/integration/netpol/kc_rawframe.py "$DC" "$SMAC" "$1" 198.18.0.1 "$2" "$3" "${5:-40000}" "$4" 400; }
replies() { raw "$@" | awk '$1 == "sent" { print $4 }'; }

cat >"$TMP/policy.yaml" <<'EOF'
audit: false
protect:
  - {proto: udp, port: 11211, default: deny}
  - {proto: tcp, port: 11211, default: deny}
rules:
  - {action: allow, prefix: 198.18.0.2/32}
  - {action: deny, prefix: 198.18.0.3/32}
EOF
ns_start_kcached "$S" vlan --iface "$DS" --xdp-mode native --pin-path "$PIN" --net-policy "$TMP/policy.yaml"
ip -n "$S" -d link show "$DS" | grep -q 'prog/xdp.*name kc_policy' || fail "kc_policy is not what is attached"
ns_mc "$S" 'set k 0 0 5\r\nhello\r\n' >/dev/null

# --- tag stacks ------------------------------------------------------------------------------
expect_eq "allowed .2 untagged: UDP answered" "$(replies 198.18.0.2 udp - 5)" 5
expect_eq "denied .3 untagged: no UDP answer" "$(replies 198.18.0.3 udp - 5)" 0
n=0
for tags in 8100:0,8100:0 88a8:0,8100:0 8100:0,88a8:0,8100:0 88a8:0; do
	expect_eq "allowed .2 behind $tags: UDP answered (the stack delivers it)" "$(replies 198.18.0.2 udp "$tags" 5)" 5
	expect_eq "allowed .2 behind $tags: TCP SYN answered" "$(replies 198.18.0.2 tcp "$tags" 3 41000)" 3
	d0=$(rule_cnt "deny 198.18.0.3/32" 4)
	expect_eq "denied .3 behind $tags: no UDP answer" "$(replies 198.18.0.3 udp "$tags" 7)" 0
	expect_eq "denied .3 behind $tags: no SYN-ACK" "$(replies 198.18.0.3 tcp "$tags" 4 42000)" 0
	expect_eq "denied .3 behind $tags: the deny rule dropped all 11" "$(($(rule_cnt "deny 198.18.0.3/32" 4) - d0))" 11
	n=$((n + 11))
done
# A tag with a VID: without that VLAN's device the stack drops the frame (so the allowed source
# is not answered either), with one it would deliver it; the policy judges it by its source.
d0=$(rule_cnt "deny 198.18.0.3/32" 4)
expect_eq "allowed .2 behind 8100:0,8100:100: the stack drops it (no VLAN device)" "$(replies 198.18.0.2 udp 8100:0,8100:100 3)" 0
expect_eq "denied .3 behind 8100:0,8100:100: no UDP answer" "$(replies 198.18.0.3 udp 8100:0,8100:100 6)" 0
expect_eq "denied .3 behind 8100:0,8100:100: the deny rule dropped all 6" "$(($(rule_cnt "deny 198.18.0.3/32" 4) - d0))" 6
n=$((n + 6))
[ "$(metric 'kcache_policy_packets_total{action="deny"}')" -ge $((n + 5)) ] || fail "kcache_policy_packets_total deny below $((n + 5))"
i0=$(metric 'kcache_policy_packets_total{action="invalid"}')
five=8100:0,8100:0,8100:0,8100:0,8100:0
expect_eq "allowed .2 behind 5 tags: no UDP answer" "$(replies 198.18.0.2 udp "$five" 5)" 0
expect_eq "5 tags: counted invalid" "$(($(metric 'kcache_policy_packets_total{action="invalid"}') - i0))" 5
ok "stacked tags: judged by the source behind them; more than 4 dropped"

# --- forged loopback source --------------------------------------------------------------------
# The kernel tier installs a key read twice; then XDP answers it (XDP_TX) before the stack.
for _ in $(seq 50); do
	replies 198.18.0.2 udp - 2 >/dev/null
	[ "$(metric kcache_kernel_entries)" -ge 1 ] && break
	sleep 0.05
done
[ "$(metric kcache_kernel_entries)" -ge 1 ] || fail "the key never became resident in the kernel tier"
h0=$(metric kcache_kernel_hits_total)
expect_eq "allowed .2: answered" "$(replies 198.18.0.2 udp - 5)" 5
[ "$(metric kcache_kernel_hits_total)" -ge $((h0 + 5)) ] || fail "the kernel tier did not answer .2's gets"
ok "the kernel tier answers the resident key"
i0=$(metric 'kcache_policy_packets_total{action="invalid"}') h0=$(metric kcache_kernel_hits_total)
expect_eq "forged 127.0.0.1: no UDP answer" "$(replies 127.0.0.1 udp - 6)" 0
expect_eq "forged 127.0.0.1 behind two priority tags: no answer" "$(replies 127.0.0.1 udp 8100:0,8100:0 4)" 0
expect_eq "forged 127.1.2.3 TCP: no SYN-ACK" "$(replies 127.1.2.3 tcp - 3 43000)" 0
expect_eq "forged loopback: all 13 counted invalid" "$(($(metric 'kcache_policy_packets_total{action="invalid"}') - i0))" 13
expect_eq "forged loopback: no kernel-tier hit" "$(metric kcache_kernel_hits_total)" "$h0"
expect_eq "loopback on lo still answered" "$(ns_mc "$S" 'version\r\n' | tr -d '\r' | cut -c1-7)" VERSION
stop_kcached
ok "forged loopback sources on the veth dropped; lo served"
