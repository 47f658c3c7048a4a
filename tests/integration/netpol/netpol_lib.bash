# tests/integration/netpol/netpol_lib.bash: sourced by the policy_*.sh tests after common.sh and
# netns.sh. The pair they all use, and the ways they read the policy back.

# netpol_pair TAG [N...]: a server namespace S (198.18.0.1 on DS) and a client namespace C
# (198.18.0.2 on DC, plus 198.18.0.N for each N), a pass-through XDP program on DC so XDP_TX
# replies arrive, and a private pin folder PIN. Names carry TAG and the test's pid; everything
# is removed on exit.
netpol_pair() {
	local tag=$1 a
	shift
	S=k${tag}s$$ C=k${tag}c$$ DS=k${tag}s$$a DC=k${tag}c$$b PIN=/sys/fs/bpf/kctest-$$
	on_exit "rm -rf $PIN"
	netns_add "$S"
	netns_add "$C"
	netns_veth "$S" "$DS" 198.18.0.1/24 "$C" "$DC" 198.18.0.2/24
	for a in "$@"; do ip -n "$C" addr add "198.18.0.$a/24" dev "$DC"; done
	netns_xdp_pass "$C" "$DC"
}

# netpol_client: builds kc_polclient (bursts of UDP gets, TCP connects) as $TMP/pc.
netpol_client() {
	cc -O2 -Wall -Wextra -Werror -o "$TMP/pc" tests/integration/netpol/kc_polclient.c ||
		fail "cannot build kc_polclient"
}

ctl() { "$KCACHECTL" --admin-socket "$KC_SOCK" "$@"; }
metric() { ns_metric "$S" "$1"; }
# rule_cnt 'RULE WORDS' FIELD: a rule's packets (2), bytes (3) or drops (4) from policy list.
rule_cnt() { ctl policy list | awk -v r="$1" -v f="$2" '{ w = $5; for (i = 6; i <= NF; i++) w = w " " $i } w == r { print $f; n++ } END { if (!n) print "none" }'; }
