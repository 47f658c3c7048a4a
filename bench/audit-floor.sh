#!/usr/bin/env bash
# bench/audit-floor.sh: the floor under bench/audit-overhead.sh. What each kind of syscall hook
# costs an open/close loop before its program does anything, and what kcached's own sys_enter
# and sys_exit programs (deploy/policies/default.yaml) add above that floor. One process
# (bench/audit_floor.c) attaches and detaches the variants in turn, ROUNDS rounds of CHUNKS
# chunks of 1000 open/close pairs each, pinned to CPU, and prints p10/p25/median per variant
# against no hook. Root.
#   ROUNDS=60 CPU=1 AUDIT_CONTEXT=0 BUILD=build bench/audit-floor.sh
# AUDIT_CONTEXT=0 (default): the loop runs without a kernel audit context, as on a node where
# audit was never enabled (an "-a never,task" rule is added for the run and removed after:
# once auditd has run since boot every new task gets one, and with it the syscall slow path
# that a hook would otherwise add). AUDIT_CONTEXT=1 measures with whatever the host gives.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-60}
CHUNKS=${CHUNKS:-5}
CPU=${CPU:-1}
AUDIT_CONTEXT=${AUDIT_CONTEXT:-0}
ARCH=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
[ "$(id -u)" -eq 0 ] || { echo "audit-floor: needs root" >&2; exit 1; }
[ "$ARCH" = x86 ] || { echo "audit-floor: x86-64 only (register names)" >&2; exit 1; }
make --no-print-directory BUILD="$BUILD" "$BUILD/kcached" >&2
T=$(mktemp -d /var/tmp/kcfloor.XXXXXX) # not under /tmp: the default policy audits execs there
KPID= RULE=
cleanup() {
	[ -n "$KPID" ] && kill -KILL "$KPID" 2>/dev/null
	[ -n "$RULE" ] && auditctl -d never,task >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
make -s --no-print-directory BUILD="$BUILD" "$BUILD/bpf/audit_floor.bpf.o" >&2
cp "$BUILD/bpf/audit_floor.bpf.o" "$T/floor.bpf.o"
cc -O2 -Wall -o "$T/audit_floor" bench/audit_floor.c $(pkg-config --cflags --libs libbpf)
touch "$T/file"

# kcached with the default policy; its programs are taken over by audit_floor (-K).
head -c 48 /dev/urandom >"$T/key"; chmod 600 "$T/key"
"$BUILD/kcached" --port 0 --http 127.0.0.1:0 --threads 1 --admin-socket "$T/admin.sock" \
	--data-dir "$T/data" --pin-path "" --audit-policy deploy/policies/default.yaml \
	--audit-key "$T/key" --audit-log "$T/audit.log" >"$T/kcached.log" 2>&1 &
KPID=$!
disown "$KPID" # audit_floor SIGKILLs it; no job report for that
for _ in $(seq 100); do grep -q 'audit: .* rules' "$T/kcached.log" && break
	kill -0 "$KPID" 2>/dev/null || { cat "$T/kcached.log" >&2; exit 1; }; sleep 0.1; done
prog_id() { # prog_id NAME: the id of kcached's program NAME (from its fds)
	for id in $(sed -n 's/^prog_id:\s*//p' /proc/"$KPID"/fdinfo/* 2>/dev/null | sort -u); do
		bpftool prog show id "$id" 2>/dev/null | grep -q " name $1 " && { echo "$id"; return; }
	done
	echo "audit-floor: no program $1 in kcached" >&2; exit 1
}
ENTER=$(prog_id kc_audit_enter) EXIT=$(prog_id kc_audit_exit)
tp() { bpftool prog show id "$1" | grep -q ' tracing ' && echo "" || echo "$2"; } # tp_btf: ""
KE="id:$ENTER@$(tp "$ENTER" sys_enter)" KX="id:$EXIT@$(tp "$EXIT" sys_exit)"

if [ "$AUDIT_CONTEXT" = 0 ] && command -v auditctl >/dev/null; then
	auditctl -a never,task >/dev/null && RULE=1
fi
echo "audit-floor: open/close on $(uname -r), CPU $CPU, audit context: $([ -n "$RULE" ] && echo none || echo host default)," \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)"
K=$KPID
taskset -c "$CPU" "$T/audit_floor" -o "$T/floor.bpf.o" -r "$ROUNDS" -c "$CHUNKS" -S 20 -K "$K" \
	"$T/file" \
	raw_tp:enter=raw_enter \
	raw_tp:enter+exit=raw_enter+raw_exit \
	raw_tp:exit=raw_exit \
	tp_btf:enter=btf_enter \
	tp_btf:enter+exit=btf_enter+btf_exit \
	tp:sys_enter_openat=tp_openat_enter \
	tp:openat:enter+exit=tp_openat_enter+tp_openat_exit \
	tp:raw_syscalls:enter=tp_raw_syscalls_enter \
	raw_tp:enter+table=raw_enter_table \
	tp_btf:enter+table=btf_enter_table \
	tp_btf:enter+read3=btf_enter_read3 \
	kcached:enter="$KE" \
	kcached:enter+exit="$KE+$KX"
KPID= # killed by audit_floor
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
