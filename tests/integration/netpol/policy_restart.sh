#!/usr/bin/env bash
# What happens to enforcement across kcached restarts (docs/network-policy.md, Restarts).
# With --net-policy-persist: after SIGTERM and after kill -9 the policy stays attached through
# its pinned link, so a denied source (198.18.0.3) still gets nothing while no kcached runs
# (its TCP SYN is dropped, where the allowed 198.18.0.2 gets the RST of a closed port), and the
# kernel tier answers no one; the next kcached takes the link over (same link, its program,
# its policy swapped in) and enforces its own file; kcachectl policy uninstall refuses while
# kcached runs and afterwards removes everything (no XDP on the interface, no pins). Without
# persistence an exit (clean or kill -9) takes the policy away, and a persisting policy taken
# over by a kcached without persistence goes away when that one exits.
# sanitizers: no   (root, netns and XDP; run by hand with BUILD=build/san-address)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/../../lib/netns.sh"
netns_require
need nc cc jq bpftool

source "$(dirname "$0")/netpol_lib.bash"
netpol_client
netpol_pair r 3
# Whatever a failed run leaves enforced: the pinned link holds the program on the interface.
# (Registered after the pair: cleanup runs in reverse, so this goes before the namespaces and
# the pins are removed.)
on_exit "nsenter --net=/run/netns/$S -- $KCACHECTL policy uninstall --pin-path $PIN"

replies() { in_ns "$C" "$TMP/pc" burst "198.18.0.$1" 198.18.0.1 "$NETNS_PORT" "$2" 300 | awk '{ print $4 }'; }
tcp() { in_ns "$C" "$TMP/pc" tcp "198.18.0.$1" 198.18.0.1 "$NETNS_PORT" 700; }
xdp_prog() { ip -n "$S" -d link show "$DS" | awk '/prog\/xdp/ { for (i = 1; i < NF; i++) if ($i == "name") print $(i + 1) }'; }
link_id() { bpftool -j link show pinned "$PIN/kc_policy_link" 2>/dev/null | jq .id; }
denied_total() { bpftool -j map lookup pinned "$PIN/kc_policy_tot" key 0 0 0 0 | jq '[.formatted.values[].value.v[1]] | add'; }
uninstall() { ns_daemon "$S" "$KCACHECTL" policy uninstall --pin-path "$PIN"; }

cat >"$TMP/policy.yaml" <<'EOF'
rules:
  - {action: allow, prefix: 198.18.0.2/32}
  - {action: deny, prefix: 198.18.0.3/32}
EOF
flags=(--iface "$DS" --xdp-mode native --pin-path "$PIN" --net-policy "$TMP/policy.yaml")
up() { # NAME FLAG...: a kcached with the flags above; k resident in its kernel tier
	ns_start_kcached "$S" "$@" "${flags[@]}"
	ns_mc "$S" 'set k 0 0 5\r\nhello\r\n' >/dev/null
	expect_eq "$1: .2 answered" "$(replies 2 20)" 20
	expect_eq "$1: .3 denied" "$(replies 3 5)" 0
	[ "$(ns_metric "$S" kcache_kernel_entries)" -ge 1 ] || fail "$1: k not resident"
}
# While no kcached runs: .3's SYN is dropped by the policy, .2's gets the closed port's RST,
# and nobody answers UDP (the kernel tier's slot is empty, or its heartbeat lapsed).
enforced_while_down() {
	local d0
	d0=$(denied_total)
	expect_eq "$1: .3 over TCP: dropped (no RST)" "$(tcp 3)" NOREPLY
	expect_eq "$1: .2 over TCP: the closed port's RST" "$(tcp 2)" REFUSED
	expect_eq "$1: .2 over UDP: no kernel tier answers" "$(replies 2 20)" 0
	[ "$(denied_total)" -gt "$d0" ] || fail "$1: the pinned policy counted no deny"
	expect_eq "$1: kc_policy still attached" "$(xdp_prog)" kc_policy
}

# --- persistence on -------------------------------------------------------------------------
up first --net-policy-persist true
link=$(link_id)
[ -n "$link" ] && [ "$link" != null ] || fail "no pinned policy link with --net-policy-persist"
stop_kcached
grep -q "stays enforced on $DS after exit (net-policy-persist)" "$KC_LOG" || fail "no exit log line"
[ -e "$PIN/kc_policy_v4_a" ] && [ ! -e "$PIN/kc_index" ] || fail "after SIGTERM: $(ls "$PIN")"
enforced_while_down "after SIGTERM"
ok "SIGTERM with persistence: the policy stays enforced, the kernel tier is gone"

# The next kcached takes over the same link, with a policy that now lets .3 in.
sed -i 's/deny, prefix: 198.18.0.3/allow, prefix: 198.18.0.3/' "$TMP/policy.yaml"
ns_start_kcached "$S" second --net-policy-persist true "${flags[@]}"
grep -q "taking over the policy a previous kcached left enforced on $DS" "$KC_LOG" || fail "no takeover"
expect_eq "the same pinned link" "$(link_id)" "$link"
expect_eq "second: its own policy: .3 answered now" "$(replies 3 5)" 5
sed -i 's/allow, prefix: 198.18.0.3/deny, prefix: 198.18.0.3/' "$TMP/policy.yaml"
kill -HUP "$KC_PID"
for _ in $(seq 30); do [ "$(replies 3 1)" = 0 ] && break; sleep 0.1; done
expect_eq "second: .3 denied after SIGHUP" "$(replies 3 5)" 0
ns_mc "$S" 'set k 0 0 5\r\nhello\r\n' >/dev/null
replies 2 20 >/dev/null
rc=0; out=$(uninstall 2>&1) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -qF "a running kcached holds $PIN: stop it first" || fail "uninstall while running: $rc $out"
expect_eq "uninstall refused: still attached" "$(xdp_prog)" kc_policy
ok "the restarted kcached took over the link and swapped its policy in; uninstall refused while it runs"

kill -KILL "$KC_PID"
wait "$KC_PID" 2>/dev/null || true
sleep 1.1 # the kernel tier's heartbeat window
enforced_while_down "after kill -9"
expect_eq "the link survived kill -9" "$(link_id)" "$link"
ok "kill -9 with persistence: the policy stays enforced, the kernel tier stops answering"

up third --net-policy-persist true
grep -q "taking over the policy a previous kcached left enforced" "$KC_LOG" || fail "third: no takeover"
stop_kcached
enforced_while_down "third stopped"
uninstall
[ -z "$(xdp_prog)" ] || fail "uninstall left $(xdp_prog) on $DS"
[ ! -e "$PIN" ] || fail "uninstall left $PIN: $(ls "$PIN")"
expect_eq "after uninstall: .3 over TCP gets the RST" "$(tcp 3)" REFUSED
expect_eq "uninstall with nothing left" "$(uninstall)" \
	"nothing to remove: no $PIN and no kcache XDP program attached"
ok "kcachectl policy uninstall removed the link, the program and every pin"

# --- persistence off (the default) --------------------------------------------------------------
up fourth
[ ! -e "$PIN/kc_policy_link" ] || fail "a link pinned without --net-policy-persist"
stop_kcached
[ -z "$(xdp_prog)" ] || fail "XDP still attached after a clean exit"
[ ! -e "$PIN" ] || fail "pins left after a clean exit"
expect_eq "no kcached, no policy: .3 gets the RST" "$(tcp 3)" REFUSED
up fifth
kill -KILL "$KC_PID"
wait "$KC_PID" 2>/dev/null || true
[ -z "$(xdp_prog)" ] || fail "XDP still attached after kill -9 without persistence"
expect_eq "after kill -9 without persistence: .3 gets the RST" "$(tcp 3)" REFUSED
up sixth
grep -q "removed $PIN/kc_policy_v4_a left by a previous run" "$KC_LOG" || fail "the dead one's pins were not cleared"
stop_kcached
ok "without persistence the policy ends with the process (SIGTERM and kill -9)"

# A persisting policy taken over by a kcached without persistence goes when that one exits.
up seventh --net-policy-persist true
stop_kcached
up eighth
grep -q "unpinned $PIN/kc_policy_link (net-policy-persist is off)" "$KC_LOG" || fail "link not unpinned"
stop_kcached
[ -z "$(xdp_prog)" ] && [ ! -e "$PIN" ] || fail "the taken-over policy outlived a kcached without persistence"
ok "persistence switched off: the next exit detaches"
