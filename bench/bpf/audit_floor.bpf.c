// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* audit_floor.bpf.c: near-empty syscall hook programs for bench/audit-floor.sh, which measures
 * what each kind of hook costs an open/close loop before a program does any work. Not part of
 * kcached (built by the bench script, not the Makefile). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Non-zero for the syscall numbers kcached audits (set by the loader). */
const volatile __u8 tbl[512];
__u64 sink;

SEC("raw_tp/sys_enter")
int raw_enter(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_exit")
int raw_exit(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_enter")
int btf_enter(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int btf_exit(void *ctx)
{
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int tp_openat_enter(void *ctx)
{
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int tp_openat_exit(void *ctx)
{
	return 0;
}

SEC("tp/raw_syscalls/sys_enter")
int tp_raw_syscalls_enter(void *ctx)
{
	return 0;
}

/* kcached's "not audited" path: one load indexed by the syscall number. */
SEC("raw_tp/sys_enter")
int raw_enter_table(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 nr = ctx->args[1];

	if (nr >= 512 || !tbl[nr])
		return 0;
	sink++;
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter_table, struct pt_regs *regs, long id)
{
	if ((__u64)id >= 512 || !tbl[id])
		return 0;
	sink++;
	return 0;
}

/* The least an audited path call needs: its first bytes, read from the caller. */
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter_read3, struct pt_regs *regs, long id)
{
	__u8 h[3];

	if ((__u64)id >= 512 || !tbl[id])
		return 0;
	if (!bpf_probe_read_user(h, sizeof(h), (void *)regs->si))
		sink += h[1];
	return 0;
}
