#!/usr/bin/env bash
# Network policy on a veth pair (native XDP), clients in their own namespace with one address
# per role: 198.18.0.2 allowed, .3 denied, .4 rate-limited (1/s, burst 10), .5 under no rule
# (the port's default). Denied and defaulted sources get no answer over UDP or TCP while the
# allowed one does; the limited one gets exactly its burst out of a counted burst; per-rule
# counters equal the packets sent; deny events reach the audit stream once per 5 s with their
# count and validate against docs/audit-event.schema.json; /metrics passes promtool; bpftool
# shows the pinned tries with readable prefixes; audit mode lets everything through and counts
# would_deny; bad policy files are refused at start (exit 2, file:line) and at SIGHUP (old
# policy kept); kcachectl policy add/del with bad words fail clearly and the daemon runs on.
# Without --net-policy only loopback and --allow are answered.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc cc jq curl bpftool promtool python3

source "$(dirname "$0")/netpol_lib.bash"
netpol_client
netpol_pair p 3 4 5
head -c 32 /dev/urandom >"$TMP/key"
chmod 600 "$TMP/key"

burst() { in_ns "$C" "$TMP/pc" burst "198.18.0.$1" 198.18.0.1 "$NETNS_PORT" "$2" "${3:-300}"; }
replies() { burst "$@" | awk '{ print $4 }'; }
tcp() { in_ns "$C" "$TMP/pc" tcp "198.18.0.$1" 198.18.0.1 "$NETNS_PORT" 700; }

cat >"$TMP/policy.yaml" <<'EOF'
audit: false
protect:
  - {proto: udp, port: 11211, default: deny}
  - {proto: tcp, port: 11211, default: deny}
rules:
  - {action: allow, prefix: 198.18.0.2/32}
  - {action: deny, prefix: 198.18.0.3/32}
  - {action: limit, prefix: 198.18.0.4/32, proto: udp, ports: 11211, rate: 1, burst: 10}
EOF

# --- bad files: refused before anything starts, exit 2, file:line ----------------------------
bad() { # NAME 'YAML' 'expected message'
	printf '%b' "$2" >"$TMP/$1.yaml"
	local rc=0 out
	out=$(ns_daemon "$S" "$KCACHED" --port 11299 --iface "$DS" --xdp-mode native --pin-path "$PIN" \
		--net-policy "$TMP/$1.yaml" --admin-socket "$TMP/bad.sock" 2>&1) || rc=$?
	[ $rc -eq 2 ] || fail "$1: exit $rc, want 2 ($out)"
	echo "$out" | grep -qF "kcached: $TMP/$1.yaml:$3" || fail "$1: got '$out', want ':$3'"
	echo "  $out"
}
bad prefix 'rules:\n  - {action: deny, prefix: 198.18.0.300/24}\n' "2: prefix: expected an IPv4 or IPv6 prefix"
bad len4 'rules:\n  - {action: deny, prefix: 198.18.0.0/33}\n' "2: prefix: length 33 is more than 32"
bad len6 'rules:\n  - {action: deny, prefix: "2001:db8::/129"}\n' "2: prefix: length 129 is more than 128"
bad hostbits 'audit: false\nrules:\n  - {action: deny, prefix: 198.18.0.1/24}\n' "3: prefix: '198.18.0.1/24' has host bits set"
bad range 'rules:\n  - {action: deny, prefix: 198.18.0.0/24, ports: 12000-11000}\n' "2: ports: expected PORT or LOW-HIGH"
bad rate0 'rules:\n  - {action: limit, prefix: 198.18.0.0/24, rate: 0}\n' "2: rate: expected an integer from 1"
bad key 'rules:\n  - {action: deny, prefix: 198.18.0.0/24, from: x}\n' "2: unknown key 'from'"
bad action 'rules:\n  - {action: reject, prefix: 198.18.0.0/24}\n' "2: action: expected allow, deny or limit"
bad yaml 'rules:\n  - {action: deny\n' "3: "
bad dup 'rules:\n  - {action: deny, prefix: 198.18.0.0/24}\n  - {action: allow, prefix: 198.18.0.0/24}\n' "3: same prefix, protocol and ports as the rule at line 2"
{ echo "rules:"; for i in $(seq 0 16); do echo "  - {action: deny, prefix: 10.0.$i.0/24}"; done; } >"$TMP/many.yaml"
rc=0; out=$(ns_daemon "$S" "$KCACHED" --iface "$DS" --xdp-mode native --net-policy "$TMP/many.yaml" \
	--net-policy-max-rules 16 --admin-socket "$TMP/bad.sock" 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -qF "many.yaml:18: more than 16 rules" || fail "too many rules: $rc $out"
[ -z "$(ip -n "$S" link show "$DS" | grep xdp)" ] || fail "a refused start attached XDP"
[ ! -e "$PIN" ] || fail "a refused start made $PIN"
ok "11 bad policy files refused at start with exit 2 and file:line, nothing attached"

# --- enforcement ---------------------------------------------------------------------------
ns_start_kcached "$S" pol --iface "$DS" --xdp-mode native --pin-path "$PIN" \
	--net-policy "$TMP/policy.yaml" --audit-policy deploy/policies/default.yaml \
	--audit-log "$TMP/audit.log" --audit-key "$TMP/key"
ip -n "$S" -d link show "$DS" | grep -q 'prog/xdp.*name kc_policy' || fail "kc_policy is not what is attached"
ns_mc "$S" 'set k 0 0 5\r\nhello\r\n' >/dev/null

expect_eq "allowed .2: UDP gets answered" "$(replies 2 20)" 20
expect_eq "allowed .2: TCP answered" "$(tcp 2)" VERSION
expect_eq "denied .3: no UDP answer" "$(replies 3 20)" 0
expect_eq "denied .3: no TCP answer (SYN dropped)" "$(tcp 3)" NOREPLY
expect_eq "no rule .5: default deny, UDP" "$(replies 5 5)" 0
expect_eq "no rule .5: default deny, TCP" "$(tcp 5)" NOREPLY

# Per-rule counters equal the packets sent (UDP bursts: one packet per request).
a0=$(rule_cnt "allow 198.18.0.2/32" 2) d0=$(rule_cnt "deny 198.18.0.3/32" 2)
dd0=$(rule_cnt "deny 198.18.0.3/32" 4) b0=$(rule_cnt "deny 198.18.0.3/32" 3)
expect_eq "allowed .2: 250 of 250 answered" "$(replies 2 250)" 250
expect_eq "denied .3: 0 of 137 answered" "$(replies 3 137 100)" 0
expect_eq "allow rule counted 250 packets" "$(($(rule_cnt "allow 198.18.0.2/32" 2) - a0))" 250
expect_eq "deny rule counted 137 packets" "$(($(rule_cnt "deny 198.18.0.3/32" 2) - d0))" 137
expect_eq "deny rule dropped 137 packets" "$(($(rule_cnt "deny 198.18.0.3/32" 4) - dd0))" 137
# each: Ethernet 14 + IP 20 + UDP 8 + frame 8 + "get k\r\n" 7 = 57 bytes, padded to 60 on the wire
bytes=$(($(rule_cnt "deny 198.18.0.3/32" 3) - b0))
[ "$bytes" -eq $((137 * 57)) ] || [ "$bytes" -eq $((137 * 60)) ] || fail "deny rule bytes: $bytes"
ok "deny rule counted $bytes bytes for 137 frames"

# The limited source: one token a second, ten at once. A burst of 50 sent well within a
# second gets exactly 10 answers; the rule counts 50 packets and 40 drops.
l0=$(rule_cnt "limit 198.18.0.4/32 udp 11211 --rate 1 --burst 10" 2)
ld0=$(rule_cnt "limit 198.18.0.4/32 udp 11211 --rate 1 --burst 10" 4)
read -r _ sent _ got _ ms <<<"$(burst 4 50 500)"
echo "limited .4: $got answers to $sent requests sent in $ms ms"
[ "$ms" -lt 900 ] || skip "the burst took $ms ms: too slow a machine to count tokens exactly"
expect_eq "limited .4: exactly the burst answered" "$got" 10
expect_eq "limit rule counted 50 packets" "$(($(rule_cnt "limit 198.18.0.4/32 udp 11211 --rate 1 --burst 10" 2) - l0))" 50
expect_eq "limit rule dropped 40" "$(($(rule_cnt "limit 198.18.0.4/32 udp 11211 --rate 1 --burst 10" 4) - ld0))" 40
sleep 2.1
got=$(replies 4 10 300)
[ "$got" -ge 2 ] && [ "$got" -le 3 ] || fail "2.1 s later: $got answers, want 2 (or 3 at a token's edge)"
ok "2.1 s later the bucket gave $got more"
expect_eq "limited .4 over TCP: no tcp rule, default deny" "$(tcp 4)" NOREPLY

# --- visibility ------------------------------------------------------------------------------
[ "$(metric 'kcache_policy_packets_total{action="deny"}')" -ge 137 ] || fail "kcache_policy_packets_total deny"
[ "$(metric 'kcache_policy_packets_total{action="limit"}')" -ge 40 ] || fail "kcache_policy_packets_total limit"
[ "$(metric 'kcache_policy_packets_total{action="allow"}')" -ge 270 ] || fail "kcache_policy_packets_total allow"
ns_daemon "$S" curl -fsS "http://$NETNS_HTTP/metrics" >"$TMP/metrics.txt"
[ "$(grep -F 'kcache_policy_rule_packets_total{rule="deny 198.18.0.3/32",' "$TMP/metrics.txt" | awk '{ print $NF }')" -ge 137 ] ||
	fail "per-rule metric"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool rejected /metrics"
grep '^kcache_policy_packets_total' "$TMP/metrics.txt"
ok "metrics: totals by action and per-rule counters; promtool passes"

bpftool -j map dump pinned "$PIN/kc_policy_v4_a" >"$TMP/a.json"
bpftool -j map dump pinned "$PIN/kc_policy_v4_b" >"$TMP/b.json"
jq -e -s 'add | map(select(.formatted.key.prefixlen == 32 and .formatted.key.addr == [198,18,0,3]))
	| .[0].formatted.value.r[0] | .action == 2 and .port_hi == 65535' "$TMP/a.json" "$TMP/b.json" >/dev/null ||
	fail "bpftool does not show 198.18.0.3/32 -> deny in the pinned tries"
# The active buffer's port 11211 (key bytes little-endian) names a default slot for udp, and
# that slot holds the port's default rule.
act=$(bpftool -j map dump pinned "$PIN/kc_policy_cfg" | jq '.[0].formatted.value.active')
ab=$([ "$act" = 1 ] && echo b || echo a)
slot=$(bpftool -j map lookup pinned "$PIN/kc_policy_prt_$ab" key 0xcb 0x2b 0 0 | jq '.formatted.value.udp')
[ -n "$slot" ] && [ "$slot" != 0 ] && [ "$slot" != null ] || fail "bpftool does not show udp 11211 as protected (slot '$slot')"
bpftool -j map lookup pinned "$PIN/kc_policy_def_$ab" key "$slot" 0 0 0 |
	jq -e '.formatted.value | .port_lo == 11211 and .port_hi == 11211 and .proto == 17' >/dev/null ||
	fail "bpftool does not show the protected port's default rule"
ok "bpftool map dump shows prefixes, rules and ports with their field names"

# Deny events: one per source and rule every 5 s, with the count, in the audit stream.
for _ in $(seq 50); do grep -q '"net_policy_deny"' "$TMP/audit.log" && break; sleep 0.1; done
jq -c 'select(.type == "net_policy_deny")' "$TMP/audit.log" >"$TMP/deny.jsonl"
cat "$TMP/deny.jsonl"
expect_eq "first event of .3: count 1" "$(jq -s '[.[] | select(.source == "198.18.0.3")][0].count' "$TMP/deny.jsonl")" 1
jq -e -s '[.[] | select(.source == "198.18.0.3")][0] | .action == "deny" and .rule == "deny 198.18.0.3/32" and .proto == "udp" and .port == 11211' \
	"$TMP/deny.jsonl" >/dev/null || fail "deny event fields"
jq -e -s '[.[] | select(.source == "198.18.0.4")][0] | .action == "limit"' "$TMP/deny.jsonl" >/dev/null || fail "limit event"
jq -e -s '[.[] | select(.source == "198.18.0.5")][0] | .rule == "default udp 11211 deny"' "$TMP/deny.jsonl" >/dev/null ||
	fail "default deny event"
n3=$(jq -s '[.[] | select(.source == "198.18.0.3")] | length' "$TMP/deny.jsonl")
sleep 5.1
replies 3 3 100 >/dev/null
for _ in $(seq 50); do [ "$(jq -c 'select(.type == "net_policy_deny" and .source == "198.18.0.3")' "$TMP/audit.log" | wc -l)" -gt "$n3" ] && break; sleep 0.1; done
total3=$(jq -s '[.[] | select(.type == "net_policy_deny" and .source == "198.18.0.3") | .count] | add' "$TMP/audit.log")
drops3=$(rule_cnt "deny 198.18.0.3/32" 4)
tcp3=$(jq -s '[.[] | select(.type == "net_policy_deny" and .source == "198.18.0.3")] | length' "$TMP/audit.log")
echo ".3: $tcp3 events carrying $total3 drops; the rule counted $drops3"
[ "$total3" -le "$drops3" ] && [ "$total3" -ge $((drops3 - 20)) ] || fail "events carry $total3 of $drops3 drops"
python3 - "$TMP/audit.log" <<'EOF' || fail "net_policy_deny records do not validate against the schema"
import json, sys, jsonschema
schema = json.load(open("docs/audit-event.schema.json"))
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] == "net_policy_deny":
        jsonschema.validate(r, schema)
        n += 1
print(f"{n} net_policy_deny records validate")
EOF
ok "deny events in the audit stream: count carried, schema valid"

# --- kcachectl policy and reloads -------------------------------------------------------------
rc=0; ctl policy add deny 198.18.0.300/32 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "policy add: prefix: expected an IPv4 or IPv6 prefix" "$TMP/err" || fail "bad add: $rc $(cat "$TMP/err")"
rc=0; ctl policy add limit 198.18.0.6/32 udp --burst 5 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "limit: expected a rate" "$TMP/err" || fail "bad add: $rc $(cat "$TMP/err")"
rc=0; ctl policy del deny 198.18.0.9/32 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "no rule 'deny 198.18.0.9/32'" "$TMP/err" || fail "bad del: $rc"
rc=0; ctl policy add allow 198.18.0.3/32 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "has the prefix, protocol and ports of 'deny 198.18.0.3/32'" "$TMP/err" || fail "duplicate add: $rc"
rc=0; ctl policy frobnicate 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "usage: policy list" "$TMP/err" || fail "bad subcommand: $rc"
kill -0 "$KC_PID" 2>/dev/null && ns_mc "$S" 'version\r\n' | grep -q '^VERSION' || fail "kcached died"
ok "kcachectl policy with bad words: exit 1 with what was expected, daemon running"

ctl policy add allow 198.18.0.5/32 udp 11211
expect_eq "added at runtime: .5 answered over UDP" "$(replies 5 5)" 5
expect_eq "... but not over TCP" "$(tcp 5)" NOREPLY
ctl policy del allow 198.18.0.5/32 udp 11211
expect_eq "deleted: .5 denied again" "$(replies 5 5)" 0

# SIGHUP with a broken file: refused, logged, the old policy stays.
cp "$TMP/policy.yaml" "$TMP/good.yaml"
printf 'rules:\n  - {action: allow, prefix: 198.18.0.3/33}\n' >"$TMP/policy.yaml"
kill -HUP "$KC_PID"
for _ in $(seq 30); do grep -q 'SIGHUP: network policy refused' "$KC_LOG" && break; sleep 0.1; done
grep -F "SIGHUP: network policy refused, the previous one stays enforced: $TMP/policy.yaml:2: prefix: length 33" "$KC_LOG" ||
	fail "no log line for the refused reload"
expect_eq "after a refused reload .3 is still denied" "$(replies 3 5)" 0
expect_eq "and .2 still answered" "$(replies 2 5)" 5
expect_eq "reload errors counted" "$(metric kcache_policy_reload_errors_total)" 1

# Audit mode: nothing dropped, would_deny counted.
sed 's/^audit: false/audit: true/' "$TMP/good.yaml" >"$TMP/policy.yaml"
kill -HUP "$KC_PID"
for _ in $(seq 30); do [ "$(metric kcache_policy_audit_mode)" = 1 ] && break; sleep 0.1; done
w0=$(metric 'kcache_policy_packets_total{action="would_deny"}') dn0=$(metric 'kcache_policy_packets_total{action="deny"}')
expect_eq "audit mode: .3 answered" "$(replies 3 30)" 30
expect_eq "audit mode: would_deny counted" "$(($(metric 'kcache_policy_packets_total{action="would_deny"}') - w0))" 30
expect_eq "audit mode: nothing denied" "$(metric 'kcache_policy_packets_total{action="deny"}')" "$dn0"
cp "$TMP/good.yaml" "$TMP/policy.yaml"
ctl policy reload | grep -q "loaded $TMP/policy.yaml: 3 rules" || fail "kcachectl policy reload"
expect_eq "enforcing again: .3 denied" "$(replies 3 5)" 0
stop_kcached
[ -z "$(ip -n "$S" link show "$DS" | grep xdp)" ] || fail "XDP left after exit"
[ ! -e "$PIN" ] || fail "pins left after exit: $(ls "$PIN")"
ok "exit detaches and unpins (net-policy-persist off)"

# --- the default protection: loopback and --allow only -----------------------------------------
ns_start_kcached "$S" default --iface "$DS" --xdp-mode native --pin-path "$PIN" --allow 198.18.0.4/32
expect_eq "default: .2 is not answered over UDP" "$(replies 2 5)" 0
expect_eq "default: .2 is not answered over TCP" "$(tcp 2)" NOREPLY
expect_eq "default: --allow .4 answered" "$(replies 4 5)" 5
expect_eq "default: --allow .4 over TCP" "$(tcp 4)" VERSION
expect_eq "default: loopback answered" "$(ns_mc "$S" 'version\r\n' | tr -d '\r' | cut -c1-7)" VERSION
stop_kcached
ok "without --net-policy only loopback and --allow are answered"
