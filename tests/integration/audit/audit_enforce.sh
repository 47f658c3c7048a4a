#!/usr/bin/env bash
# Enforcement: a kill rule kills its target (SIGKILL from the BPF program, event action kill);
# a cgroup-scoped deny rule makes connect() fail with EPERM for processes in that cgroup only.
# sanitizers: no   (kernel test)
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/audit_lib.bash"
need nc

CGROOT=/sys/fs/cgroup/unified
[ -d "$CGROOT" ] || CGROOT=/sys/fs/cgroup
CG=$CGROOT/kctest-deny-$$
mkdir "$CG" || skip "cannot create a cgroup under $CGROOT"
on_exit "rmdir '$CG'"
cat >"$TMP/e.yaml" <<YAML
rules:
  - name: kill-canary
    syscalls: [openat]
    paths: [$TMP/canary]
    action: kill
  - name: no-egress
    syscalls: [connect]
    cgroup: [/kctest-deny-$$/]
    action: deny
YAML
touch "$TMP/canary" "$TMP/other"
audit_start enforce "$TMP/e.yaml"

rc=0; "$AH" open "$TMP/canary" >"$TMP/out" || rc=$?
expect_eq "the canary opener dies of SIGKILL" "$rc" 137
ev=$(wait_event '.rule == "kill-canary"') || fail "no kill event"
expect_field "kill: action" "$ev" .action kill
expect_field "kill: path" "$ev" .syscall.args.path "$TMP/canary"
rc=0; "$AH" open "$TMP/other" >/dev/null || rc=$?
expect_eq "another open survives" "$rc" 0

port=$(free_port)
nc -lk 127.0.0.1 "$port" >/dev/null 2>&1 &
KC_PIDS+=($!)
for _ in $(seq 50); do ss -Htln "( sport = :$port )" | grep -q . && break; sleep 0.1; done
out=$(sh -c "echo \$\$ >$CG/cgroup.procs; exec $AH connect 127.0.0.1 $port")
expect_eq "connect from the cgroup" "$out" "ret=-1 errno=EPERM"
out=$("$AH" connect 127.0.0.1 "$port")
expect_eq "connect from elsewhere" "$out" "ret=0 errno=0"
ev=$(wait_event '.rule == "no-egress"') || fail "no deny event"
expect_field "deny: action" "$ev" .action deny
expect_field "deny: error" "$ev" .syscall.error EPERM
expect_field "deny: address" "$ev" .syscall.args.address 127.0.0.1
expect_field "deny: port" "$ev" .syscall.args.port "$port"
expect_field "deny: cgroup" "$ev" .process.cgroup "/kctest-deny-$$"
n=$(jq -c 'select(.rule == "no-egress")' "$ALOG" | wc -l)
expect_eq "only the cgroup's connect is reported" "$n" 1
sleep 1.2 # counters are read once a second
[ "$(metric 'kcache_audit_enforced_total{hook="connect",action="deny"}')" -ge 1 ] || fail "deny not counted"
ok "deny counted"
stop_kcached
