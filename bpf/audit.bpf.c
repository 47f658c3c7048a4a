// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* audit.bpf.c: the syscall audit's kernel side. Layout and map contract: include/kcache/audit.h;
 * the loader, policy compiler and event pipeline: user/audit/audit*.c; the design: docs/audit.md.
 *
 * Two BTF tracepoints (tp_btf), sys_enter and sys_exit, see every syscall. A syscall that is not
 * audited costs one load from a read-only table. An audited path call whose candidate rules all
 * need a path is first checked against the head filter (3 bytes read from the caller, one load);
 * most paths end there. The rest is matched at enter against the active
 * policy (per-hook rule masks, one LPM lookup for its path, the cgroup and binary masks, then
 * the per-rule checks of the first candidates); a call no rule keeps is counted and dropped
 * here. A kept call is parked in kc_audit_infl until its exit, where the result is added and
 * the event goes into the ring buffer; when the table is full the event is sent at enter,
 * without the result, so that a call is never lost for want of an entry. Kill actions send
 * SIGKILL at enter (and, for an exec matched only on its resolved binary, at
 * sched_process_exec, before the new image runs).
 *
 * sched_process_exec/fork/exit keep kc_audit_proc, the kernel's process table (exec ids,
 * parent, resolved exe), and feed every exec's argv to the daemon; sched_process_exec also
 * matches execs on the binary the kernel resolved. open_by_handle_at is matched at sys_exit on
 * the path of the descriptor it returned. io_uring_submit_req sees IORING_OP_OPENAT/OPENAT2,
 * which bypass openat(2), and matches them as the openat/openat2 hooks. cgroup_mkdir/rmdir keep
 * kc_audit_cg for cgroup-scoped rules. cgroup/connect4 and connect6 refuse connects for deny
 * rules (EPERM).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <kcache/audit.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Syscall number -> hook, for native 64-bit calls; set by the loader from <sys/syscall.h>. */
const volatile __u8 kc_sc_hook[KC_AUDIT_NR_MAX];
/* The same for ia32 calls of compat tasks (x86 only); all zero elsewhere. */
const volatile __u8 kc_sc_hook32[KC_AUDIT_NR_MAX];
/* KC_SC_* per syscall number, native and ia32. */
const volatile __u8 kc_sc_flags[KC_AUDIT_NR_MAX];
const volatile __u8 kc_sc_flags32[KC_AUDIT_NR_MAX];
/* Non-zero where either table has a hook: the one load an unaudited syscall pays. */
const volatile __u8 kc_sc_any[KC_AUDIT_NR_MAX];
/* Set when kc_sc_hook32 is filled: check thread_info.status & TS_COMPAT (x86: 0x0002). */
const volatile __u32 kc_ts_compat;

/* Active generation and on/off, written by the daemon through the .bss mmap. */
struct kc_audit_ctl kc_audit_ctl;
/* The path head filter of each generation (see KC_AUDIT_HEAD_SLOTS), written by the daemon
 * through the .bss mmap before it switches kc_audit_ctl.gen. */
__u64 kc_audit_head[2 * KC_AUDIT_HEAD_SLOTS];
/* Entries in kc_audit_infl, never below the truth (incremented on insert, decremented on a
 * delete that found the entry): while it is 0, sys_exit has nothing to look up. */
__u64 kc_audit_infl_n;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct kc_audit_pol);
} kc_audit_pol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * KC_AUDIT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct kc_audit_rule);
} kc_audit_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, KC_AUDIT_LPM_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kc_audit_lpm_key);
	__type(value, __u64);
} kc_audit_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KC_AUDIT_CG_DEFAULT);
	__type(key, __u64);
	__type(value, struct kc_audit_cgval);
} kc_audit_cg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KC_AUDIT_PROC_DEFAULT);
	__type(key, __u32);
	__type(value, struct kc_audit_proc);
} kc_audit_proc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KC_AUDIT_INFL_DEFAULT);
	__type(key, __u32);
	__type(value, struct kc_audit_infl);
} kc_audit_infl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KC_AUDIT_RATE_DEFAULT);
	__type(key, struct kc_audit_rate_key);
	__type(value, __u64);
} kc_audit_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KC_HOOK__COUNT);
	__type(key, __u32);
	__type(value, struct kc_audit_stats);
} kc_audit_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* the loader sets --audit-ring-size */
} kc_audit_rb SEC(".maps");

/* Per-CPU scratch: too big for the 512-byte stack. */
struct scratch {
	struct kc_audit_lpm_key key;
	struct kc_audit_infl infl;
	struct kc_audit_proc proc;
	struct pt_regs regs;
	char walk[512];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} kc_audit_scr SEC(".maps");

#define EPERM 1

static __always_inline void count(__u32 hook, __u32 stat)
{
	struct kc_audit_stats *s = bpf_map_lookup_elem(&kc_audit_stats, &hook);

	if (s && stat < KC_ST__COUNT)
		s->v[stat]++;
}

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&kc_audit_scr, &zero);
}

/* Index of the lowest set bit of a non-zero mask (de Bruijn). */
static const __u8 debruijn[64] = {0,  1,  2,  53, 3,  7,  54, 27, 4,  38, 41, 8,  34, 55, 48, 28,
				  62, 5,  39, 46, 44, 42, 22, 9,  24, 35, 59, 56, 49, 18, 29, 11,
				  63, 52, 6,  26, 37, 40, 33, 47, 61, 45, 43, 21, 23, 58, 17, 10,
				  51, 25, 36, 32, 60, 20, 57, 16, 50, 31, 19, 15, 30, 14, 13, 12};

static __always_inline __u32 lowest_bit(__u64 m)
{
	return debruijn[(((m & -m) * 0x022fdd63cc95386dULL) >> 58) & 63];
}

/* Builds an LPM key for gen/kind over the string already at key->data + 2 (n bytes read, NUL
 * included, or < 0) and returns the rule mask of the longest matching prefix, 0 for none. */
static __always_inline __u64 lpm_mask(struct kc_audit_lpm_key *key, __u32 gen, __u8 kind, long n)
{
	__u64 *v;

	if (n < 0)
		n = 0;
	if (n > KC_AUDIT_STR_MAX - 2)
		n = KC_AUDIT_STR_MAX - 2;
	key->data[0] = gen;
	key->data[1] = kind;
	key->prefixlen = (2 + n) * 8;
	v = bpf_map_lookup_elem(&kc_audit_lpm, key);
	return v ? *v : 0;
}

struct walk_ctx {
	struct dentry *d;
	struct mount *mnt;
	char *walk;
	__u32 pos;
};

/* bpf_loop callback: prepends one path component (or crosses one mount). */
static long walk_step(__u64 i, void *ctx)
{
	struct walk_ctx *w = ctx;
	struct mount *mnt = w->mnt;
	struct dentry *d = w->d;
	struct dentry *root = BPF_CORE_READ(mnt, mnt.mnt_root), *parent;
	const unsigned char *name;
	__u32 len, pos = w->pos;

	if (d == root) {
		struct mount *pm = BPF_CORE_READ(mnt, mnt_parent);

		if (pm == mnt)
			return 1;
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = pm;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	name = BPF_CORE_READ(d, d_name.name);
	len = BPF_CORE_READ(d, d_name.len);
	if (parent == d) {
		/* A pseudo file's own root (memfd: "memfd:name"): keep its name, then stop. */
		char c = 0;

		bpf_probe_read_kernel(&c, 1, name);
		if (c == '/' || !len)
			return 1;
	}
	if (len + 1 > pos || pos > 255)
		return 1; /* does not fit: keep the tail we have */
	pos -= len;
	bpf_probe_read_kernel(w->walk + (pos & 255), len & 255, name);
	pos -= 1;
	w->walk[pos & 255] = '/';
	w->pos = pos;
	w->d = parent;
	return parent == d;
}

/* Writes the path of f (from the global root, crossing mounts) into out; returns its length
 * with NUL, or < 0. Components are prepended from the leaf in walk[] (right-aligned at 255). */
static __always_inline long file_path(struct file *f, char *walk, char *out)
{
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct walk_ctx w = {
	    .d = BPF_CORE_READ(f, f_path.dentry),
	    .mnt = container_of(vm, struct mount, mnt),
	    .walk = walk,
	    .pos = 255,
	};

	walk[255] = 0;
	bpf_loop(64, walk_step, &w, 0);
	if (w.pos >= 255) {
		w.pos = 254;
		walk[254] = '/';
	}
	return bpf_probe_read_kernel_str(out, KC_AUDIT_STR_MAX, walk + (w.pos & 255));
}

/* Fills a kc_audit_proc for the current task when we did not see it start. */
static __always_inline struct kc_audit_proc *proc_late(struct scratch *s, __u32 tgid)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(t, real_parent);
	__u32 ppid = BPF_CORE_READ(parent, tgid);
	struct kc_audit_proc *pp = bpf_map_lookup_elem(&kc_audit_proc, &ppid);
	struct file *exe = BPF_CORE_READ(t, mm, exe_file);
	struct kc_audit_proc *p = &s->proc;

	p->exec_id = BPF_CORE_READ(t, group_leader, start_time);
	p->image_id = p->exec_id;
	p->parent_exec_id = pp ? pp->exec_id : BPF_CORE_READ(parent, group_leader, start_time);
	p->ppid = ppid;
	p->flags = KC_PROC_LATE;
	p->bin_gen = 0;
	p->bin_mask = 0;
	p->exe[0] = 0;
	if (exe)
		file_path(exe, s->walk, p->exe);
	count(KC_HOOK_PROC, KC_ST_PROC_MISS);
	bpf_map_update_elem(&kc_audit_proc, &tgid, p, BPF_NOEXIST);
	return bpf_map_lookup_elem(&kc_audit_proc, &tgid);
}

/* Binary-condition rules the process's exe matches in generation gen (cached in the entry). */
static __always_inline __u64 proc_bin_mask(struct scratch *s, struct kc_audit_proc *p, __u32 gen)
{
	long n;

	if (p->bin_gen == gen + 1)
		return p->bin_mask;
	n = bpf_probe_read_kernel_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2, p->exe);
	p->bin_mask = lpm_mask(&s->key, gen, KC_LPM_BIN, n);
	p->bin_gen = gen + 1;
	return p->bin_mask;
}

struct rule_walk {
	__u64 cand;
	__u32 gen;
	__u32 hook;
	__u32 uid, euid;
	__u64 *args;
	__u32 nargs;
	int found;
};

static __always_inline int arg_in(const struct kc_audit_rule *r, __u32 v)
{
	for (int k = 0; k < KC_AUDIT_ARG_VALUES; k++)
		if (k < r->n_values && r->arg_values[k] == v)
			return 1;
	return 0;
}

/* bpf_loop callback: checks the next candidate rule's own conditions. */
static long rule_step(__u64 i, void *ctx)
{
	struct rule_walk *w = ctx;
	struct kc_audit_rule *r;
	__u32 bit, idx;
	int ok = 1;

	if (!w->cand)
		return 1;
	bit = lowest_bit(w->cand);
	w->cand &= w->cand - 1;
	idx = w->gen * KC_AUDIT_MAX_RULES + bit;
	r = bpf_map_lookup_elem(&kc_audit_rules, &idx);
	if (!r)
		return 0;
	if ((r->flags & KC_RULE_UID) && (w->uid < r->uid_min || w->uid > r->uid_max))
		ok = 0;
	if ((r->flags & KC_RULE_EUID) && (w->euid < r->euid_min || w->euid > r->euid_max))
		ok = 0;
	if (ok && (r->flags & KC_RULE_ARG) && w->args) {
		if (r->arg_index == KC_RULE_ARG_ANY) {
			ok = 0;
			for (int a = 0; a < 3; a++)
				if (a < w->nargs && arg_in(r, (__u32)w->args[a]))
					ok = 1;
		} else {
			__u32 ai = r->arg_index;

			ok = ai < 6 && arg_in(r, (__u32)w->args[ai < 6 ? ai : 0]);
		}
	}
	if (ok) {
		w->found = bit;
		return 1;
	}
	return 0;
}

/* Numeric id arguments per hook, for "args: {index: any}" (setuid family). */
static __always_inline __u32 id_args(__u32 hook)
{
	switch (hook) {
	case KC_HOOK_SETUID:
	case KC_HOOK_SETGID:
		return 1;
	case KC_HOOK_SETREUID:
	case KC_HOOK_SETREGID:
		return 2;
	case KC_HOOK_SETRESUID:
	case KC_HOOK_SETRESGID:
		return 3;
	}
	return 1;
}

struct verdict {
	int rule; /* -1: no rule */
	__u8 action;
	__u8 limited;
};

/* The first rule of m (already narrowed by hook and path) whose other conditions hold.
 * proc may be NULL (cgroup hooks: binary-scoped rules are then considered only with a cached
 * mask); args may be NULL (no args condition can hold). rate: consume the rate budget. */
static __always_inline struct verdict decide(struct scratch *s, const struct kc_audit_pol *pol,
					     __u32 gen, __u32 hook, __u64 m,
					     struct kc_audit_proc *proc, __u32 tgid, __u32 uid,
					     __u32 euid, __u64 *args, int rate)
{
	struct verdict v = {.rule = -1};
	struct kc_audit_rule *r;
	__u32 idx;

	if (m & ~pol->cg_any) {
		__u64 cgid = bpf_get_current_cgroup_id();
		struct kc_audit_cgval *cv = bpf_map_lookup_elem(&kc_audit_cg, &cgid);

		m &= pol->cg_any | (cv ? cv->mask[gen & 1] : 0);
	}
	if (m & ~pol->bin_any) {
		__u64 b = 0;

		if (proc && s)
			b = proc_bin_mask(s, proc, gen);
		else if (proc && proc->bin_gen == gen + 1)
			b = proc->bin_mask;
		m &= pol->bin_any | b;
	}
	if (!m)
		return v;
	if (m & pol->slow) {
		struct rule_walk w = {.cand = m,
				      .gen = gen,
				      .hook = hook,
				      .uid = uid,
				      .euid = euid,
				      .args = args,
				      .nargs = id_args(hook),
				      .found = -1};

		bpf_loop(KC_AUDIT_MAX_RULES, rule_step, &w, 0);
		if (w.found < 0)
			return v;
		v.rule = w.found;
	} else {
		v.rule = lowest_bit(m);
	}
	idx = gen * KC_AUDIT_MAX_RULES + KC_AUDIT_RULE_IDX(v.rule); /* bounded for the verifier */
	r = bpf_map_lookup_elem(&kc_audit_rules, &idx);
	if (!r) {
		v.rule = -1;
		return v;
	}
	v.action = r->action;
	if (rate && (r->flags & KC_RULE_RATE) && r->action != KC_ACT_IGNORE) {
		struct kc_audit_rate_key k = {.tgid = tgid, .rule = v.rule};
		__u64 now = bpf_ktime_get_ns(), *tat = bpf_map_lookup_elem(&kc_audit_rate, &k);
		__u64 t = tat && *tat > now ? *tat : now;

		/* GCRA: one event per interval, bursts of burst_ns / interval + 1. */
		if (t - now > r->burst_ns) {
			v.limited = 1;
		} else {
			t += r->interval_ns;
			if (tat)
				*tat = t;
			else
				bpf_map_update_elem(&kc_audit_rate, &k, &t, BPF_ANY);
		}
	}
	return v;
}

static __always_inline int is_path_hook(__u32 hook)
{
	switch (hook) {
	case KC_HOOK_EXECVE:
	case KC_HOOK_EXECVEAT:
	case KC_HOOK_OPENAT:
	case KC_HOOK_OPENAT2:
	case KC_HOOK_UNLINKAT:
	case KC_HOOK_RENAMEAT2:
	case KC_HOOK_FCHMODAT:
	case KC_HOOK_FCHOWNAT:
	case KC_HOOK_MOUNT:
	case KC_HOOK_UMOUNT2:
	case KC_HOOK_OPEN_BY_HANDLE_AT:
		return 1;
	}
	return 0;
}

/* Hooks matched (again) after the call on the file the kernel resolved: an exec on its binary
 * (at sched_process_exec), open_by_handle_at on the file it opened (at sys_exit). They are
 * parked at enter even when no rule matched there. */
static __always_inline int late_hook(__u32 hook)
{
	return hook == KC_HOOK_EXECVE || hook == KC_HOOK_EXECVEAT ||
	       hook == KC_HOOK_OPEN_BY_HANDLE_AT;
}

/* Which argument holds the path (or the string) of a hook; -1 for none. */
static __always_inline int str_arg(__u32 hook)
{
	switch (hook) {
	case KC_HOOK_EXECVE:
	case KC_HOOK_UMOUNT2:
	case KC_HOOK_DELETE_MODULE:
	case KC_HOOK_MEMFD_CREATE:
		return 0;
	case KC_HOOK_EXECVEAT:
	case KC_HOOK_OPENAT:
	case KC_HOOK_OPENAT2:
	case KC_HOOK_UNLINKAT:
	case KC_HOOK_RENAMEAT2:
	case KC_HOOK_FCHMODAT:
	case KC_HOOK_FCHOWNAT:
	case KC_HOOK_MOUNT: /* the target */
	case KC_HOOK_FINIT_MODULE:
		return 1;
	case KC_HOOK_INIT_MODULE:
		return 2;
	}
	return -1;
}

/* Argument i (0-5) of the call as made, before shift_args. regs is a BTF pointer (tp_btf):
 * plain loads, no helper call. */
static __always_inline __u64 raw_arg(struct pt_regs *regs, int compat, int i)
{
#if defined(__TARGET_ARCH_x86)
	if (compat)
		return (__u32)(i == 0	? regs->bx
			       : i == 1 ? regs->cx
			       : i == 2 ? regs->dx
			       : i == 3 ? regs->si
			       : i == 4 ? regs->di
					: regs->bp);
	return i == 0	? regs->di
	       : i == 1 ? regs->si
	       : i == 2 ? regs->dx
	       : i == 3 ? regs->r10
	       : i == 4 ? regs->r8
			: regs->r9;
#else
	return i == 0	? PT_REGS_PARM1_CORE_SYSCALL(regs)
	       : i == 1 ? PT_REGS_PARM2_CORE_SYSCALL(regs)
	       : i == 2 ? PT_REGS_PARM3_CORE_SYSCALL(regs)
	       : i == 3 ? PT_REGS_PARM4_CORE_SYSCALL(regs)
	       : i == 4 ? PT_REGS_PARM5_CORE_SYSCALL(regs)
			: 0;
#endif
}

/* Makes a legacy call's arguments read like its *at form. */
static __always_inline void shift_args(__u8 f, __u64 *a)
{
	if (f & KC_SC_RENAME) {
		a[3] = a[1];
		a[1] = a[0];
		a[0] = (__u64)-100;
		a[2] = (__u64)-100;
		a[4] = 0;
	} else if (f & KC_SC_SHIFT1) {
		a[5] = a[4];
		a[4] = a[3];
		a[3] = a[2];
		a[2] = a[1];
		a[1] = a[0];
		a[0] = (__u64)-100; /* AT_FDCWD */
		if (f & KC_SC_RMDIR)
			a[2] = 0x200; /* AT_REMOVEDIR */
	}
}

static __always_inline void read_args(struct pt_regs *regs, int compat, __u64 *args)
{
#pragma unroll
	for (int i = 0; i < 6; i++)
		args[i] = raw_arg(regs, compat, i);
}

/* The hook-specific extras read once a call is kept: sockaddr, open_how, capsets, bpf attr,
 * mount's source and fstype. */
static __always_inline void read_extras(struct kc_audit_infl *in)
{
	__u64 *a = in->args;
	__u32 len;

	switch (in->hook) {
	case KC_HOOK_CONNECT:
	case KC_HOOK_BIND:
		len = a[2] < sizeof(in->aux) ? a[2] : sizeof(in->aux);
		bpf_probe_read_user(in->aux, len & 127, (void *)a[1]);
		break;
	case KC_HOOK_OPENAT2:
		bpf_probe_read_user(in->aux, 24, (void *)a[2]);
		break;
	case KC_HOOK_CAPSET:
		bpf_probe_read_user(in->aux, 24, (void *)a[1]);
		break;
	case KC_HOOK_BPF:
		bpf_probe_read_user(in->aux, 64, (void *)a[1]);
		break;
	case KC_HOOK_OPEN_BY_HANDLE_AT: /* struct file_handle: handle_bytes, handle_type */
		bpf_probe_read_user(in->aux, 8, (void *)a[1]);
		break;
	case KC_HOOK_SETGROUPS: /* the first 16 gids */
		len = a[0] < 16 ? a[0] * 4 : 64;
		bpf_probe_read_user(in->aux, len & 127, (void *)a[1]);
		break;
	case KC_HOOK_IO_URING_SETUP: /* struct io_uring_params: sq_entries, cq_entries, flags */
		bpf_probe_read_user(in->aux, 12, (void *)a[1]);
		break;
	case KC_HOOK_MOUNT:
		if (bpf_probe_read_user_str(in->str[1], KC_AUDIT_STR_MAX, (void *)a[0]) >= 0)
			in->flags |= KC_EV_HAVE_STR1;
		bpf_probe_read_user_str(in->aux, 32, (void *)a[2]);
		break;
	}
}

static __always_inline int task_compat(void)
{
	struct task_struct *t;

	if (!kc_ts_compat)
		return 0;
#if defined(__TARGET_ARCH_x86)
	t = bpf_get_current_task_btf();
	return (t->thread_info.status & kc_ts_compat) != 0;
#else
	t = (void *)bpf_get_current_task();
	return (BPF_CORE_READ(t, thread_info.status) & kc_ts_compat) != 0;
#endif
}

/* Head filter: the rules of m that the path at user address p can still match, after a read of
 * its first 3 bytes (all of m when they cannot be read: the full read decides). */
static __always_inline __u64 head_mask(__u64 m, const struct kc_audit_pol *pol, __u32 gen,
				       const void *p)
{
	__u8 h[3];
	__u8 c1, c2;

	if (bpf_probe_read_user(h, sizeof(h), p))
		return m;
	c1 = h[0] ? h[1] : 0;
	c2 = c1 ? h[2] : 0;
	return m & (pol->path_any |
		    kc_audit_head[((gen & 1) * KC_AUDIT_HEAD_SLOTS + kc_audit_head_slot(c1, c2)) &
				  (2 * KC_AUDIT_HEAD_SLOTS - 1)]);
}

/* Sends the event of the call in, with result ret, for the current task into the ring buffer,
 * and counts it (emitted, or lost_ringbuf). Every member is written from in or the task: a
 * record never carries a string an earlier call left in the per-CPU scratch (each string is
 * copied up to its NUL, and in's strings are set for every call). */
static __always_inline void emit(struct kc_audit_infl *in, __s64 ret, __u32 tgid, __u32 tid)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u64 ug = bpf_get_current_uid_gid();
	struct kc_audit_proc *proc = bpf_map_lookup_elem(&kc_audit_proc, &tgid);
	__u32 hook = in->hook;
	struct kc_audit_event *e;

	e = bpf_ringbuf_reserve(&kc_audit_rb, sizeof(*e), 0);
	if (!e) {
		count(hook, KC_ST_LOST_RINGBUF);
		return;
	}
	e->type = KC_REC_EVENT;
	e->hook = hook;
	e->rule = in->rule;
	e->action = in->action;
	e->flags = in->flags;
	e->xflags = in->xflags;
	e->nr = in->nr;
	e->pid = tgid;
	e->tid = tid;
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->euid = BPF_CORE_READ(t, cred, euid.val);
	e->egid = BPF_CORE_READ(t, cred, egid.val);
	e->ktime = in->ktime;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ret = ret;
	__builtin_memcpy(e->args, in->args, sizeof(e->args));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel(e->aux, sizeof(e->aux), in->aux);
	e->str[0][0] = 0;
	e->str[1][0] = 0;
	bpf_probe_read_kernel_str(e->str[0], KC_AUDIT_STR_MAX, in->str[0]);
	bpf_probe_read_kernel_str(e->str[1], KC_AUDIT_STR_MAX, in->str[1]);
	if (proc) {
		e->ppid = proc->ppid;
		e->exec_id = proc->exec_id;
		e->parent_exec_id = proc->parent_exec_id;
		e->image_id = proc->image_id;
		if (proc->flags & KC_PROC_LATE)
			e->flags |= KC_EV_LATE;
		if (proc->flags & KC_PROC_FORKED)
			e->flags |= KC_EV_FORKED;
		if (proc->flags & KC_PROC_MEMFD)
			e->flags |= KC_EV_MEMFD;
		e->exe[0] = 0;
		bpf_probe_read_kernel_str(e->exe, sizeof(e->exe), proc->exe);
	} else {
		e->ppid = BPF_CORE_READ(t, real_parent, tgid);
		e->exec_id = BPF_CORE_READ(t, group_leader, start_time);
		e->parent_exec_id = 0;
		e->image_id = e->exec_id;
		e->flags |= KC_EV_LATE;
		e->exe[0] = 0;
	}
	bpf_ringbuf_submit(e, 0);
	count(hook, KC_ST_EMITTED);
}

/* The file behind descriptor fd of the current task, or NULL. */
static __always_inline struct file *task_fd_file(long fd)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* tp_btf rather than raw_tp: the registers are read with plain loads (BTF pointer), not copied
 * with a helper. Both run through the same bpf_trace_run2; the hook's own cost is the same. */
SEC("tp_btf/sys_enter")
int BPF_PROG(kc_audit_enter, struct pt_regs *regs, long id)
{
	__u64 nr = id, pid_tgid, ug, m;
	struct kc_audit_pol *pol;
	struct kc_audit_proc *proc;
	struct kc_audit_infl *in;
	struct verdict v;
	struct scratch *s;
	__u32 hook, gen, tgid, tid, euid = 0;
	int compat, sa;
	__u8 flags;
	long n = -1, n2 = -1;

	if (nr >= KC_AUDIT_NR_MAX || !kc_sc_any[nr] || !kc_audit_ctl.enabled)
		return 0;
	compat = task_compat();
	hook = compat ? kc_sc_hook32[nr] : kc_sc_hook[nr];
	if (!hook || hook >= KC_HOOK__SYSCALLS)
		return 0;
	gen = kc_audit_ctl.gen & 1;
	pol = bpf_map_lookup_elem(&kc_audit_pol, &gen);
	if (!pol)
		return 0;
	m = pol->hook_rules[hook];
	if (!m) {
		count(hook, KC_ST_FILTERED);
		return 0;
	}
	flags = compat ? kc_sc_flags32[nr] : kc_sc_flags[nr];
	sa = str_arg(hook);
	if (is_path_hook(hook) && sa >= 0 && hook != KC_HOOK_EXECVE && hook != KC_HOOK_EXECVEAT &&
	    hook != KC_HOOK_RENAMEAT2 && (m & ~pol->path_any)) {
		/* Most paths share not even their head with a rule: drop them before copying
		 * anything (the legacy calls, SHIFT1, have the path one argument earlier). */
		m = head_mask(m, pol, gen,
			      (void *)raw_arg(regs, compat, sa - !!(flags & KC_SC_SHIFT1)));
		if (!m) {
			count(hook, KC_ST_FILTERED);
			return 0;
		}
	}
	s = scratch();
	if (!s)
		return 0;
	in = &s->infl;
	in->hook = hook;
	in->flags = compat ? KC_EV_COMPAT : 0;
	in->xflags = 0;
	in->rule = 0;
	in->action = 0;
	read_args(regs, compat, in->args);
	shift_args(flags, in->args);
	in->nr = nr;
	if (sa >= 0) {
		n = bpf_probe_read_user_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2,
					    (void *)in->args[sa < 6 ? sa : 0]);
		if (n >= KC_AUDIT_STR_MAX - 2)
			in->flags |= KC_EV_TRUNC0;
		if (n < 0) {
			/* Not readable now (a page not yet faulted in, or a bad pointer): the
			 * record says so and carries no string, never the scratch's last one. */
			s->key.data[2] = 0;
			in->xflags |= KC_EVX_STR0_FAULT;
		}
	}
	if (is_path_hook(hook) && (m & ~pol->path_any)) {
		__u64 pm = lpm_mask(&s->key, gen, KC_LPM_PATH, n);

		if (hook == KC_HOOK_RENAMEAT2) {
			/* Either name may be the sensitive one: match both. The first stays in
			 * str[0]; the second is read into str[1]. */
			bpf_probe_read_kernel_str(in->str[0], KC_AUDIT_STR_MAX, &s->key.data[2]);
			n2 = bpf_probe_read_user_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2,
						     (void *)in->args[3]);
			if (n2 >= KC_AUDIT_STR_MAX - 2)
				in->flags |= KC_EV_TRUNC1;
			if (n2 < 0)
				s->key.data[2] = 0;
			pm |= lpm_mask(&s->key, gen, KC_LPM_PATH, n2);
			bpf_probe_read_kernel_str(in->str[1], KC_AUDIT_STR_MAX, &s->key.data[2]);
			in->flags |= KC_EV_HAVE_STR1;
			n = -2; /* already copied */
		}
		m &= pol->path_any | pm;
	}
	if (!m && !late_hook(hook)) {
		count(hook, KC_ST_FILTERED);
		return 0;
	}
	/* Kept so far (an exec always is: it is matched again on its resolved binary later).
	 * Save the string before decide() reuses the key. */
	if (sa >= 0 && n != -2)
		bpf_probe_read_kernel_str(in->str[0], KC_AUDIT_STR_MAX, &s->key.data[2]);
	else if (n != -2)
		in->str[0][0] = 0;
	if (!(in->flags & KC_EV_HAVE_STR1))
		in->str[1][0] = 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	tid = (__u32)pid_tgid;
	in->matched = 0;
	if (m) {
		struct task_struct *t = (void *)bpf_get_current_task();

		ug = bpf_get_current_uid_gid();
		euid = BPF_CORE_READ(t, cred, euid.val);
		proc = bpf_map_lookup_elem(&kc_audit_proc, &tgid);
		if (!proc)
			proc = proc_late(s, tgid);
		v = decide(s, pol, gen, hook, m, proc, tgid, (__u32)ug, euid, in->args, 1);
		if (v.rule >= 0) {
			if (v.action == KC_ACT_IGNORE) {
				count(hook, KC_ST_IGNORED);
				in->matched = 2; /* a late hook is parked as dropped */
			} else {
				if (v.action == KC_ACT_KILL) {
					bpf_send_signal(9);
					in->flags |= KC_EV_KILLED;
					count(hook, KC_ST_KILLED);
				}
				if (v.limited) {
					count(hook, KC_ST_RATELIMITED);
					in->matched = 2;
				}
			}
			if (in->matched > 1 && !late_hook(hook))
				return 0;
			if (!in->matched)
				in->matched = 1;
			in->rule = KC_AUDIT_RULE_PACK(v.rule, gen);
			in->action = v.action;
		}
	}
	if (!in->matched && !late_hook(hook)) {
		count(hook, KC_ST_FILTERED);
		return 0;
	}
	if (in->matched == 1)
		count(hook, KC_ST_SEEN);
	in->ktime = bpf_ktime_get_ns();
	__builtin_memset(in->aux, 0, sizeof(in->aux));
	read_extras(in);
	if (bpf_map_update_elem(&kc_audit_infl, &tid, in, BPF_ANY)) {
		/* The table is full (threads blocked inside matched calls, say): send the event
		 * now, without its result, rather than lose who did what. An exec not matched
		 * yet is matched at sched_process_exec without the entry. */
		if (in->matched == 1) {
			in->xflags |= KC_EVX_EARLY;
			emit(in, 0, tgid, tid);
		}
		return 0;
	}
	__sync_fetch_and_add(&kc_audit_infl_n, 1);
	return 0;
}

/* A call parked unmatched (an exec, open_by_handle_at), matched now on the path the kernel
 * resolved, already at s->key.data + 2 (n bytes read). Returns 1 when in is matched (rule and
 * action set, a kill sent), 0 when it is dropped (counted). */
static __always_inline int match_late(struct scratch *s, struct kc_audit_infl *in, long n,
				      struct kc_audit_proc *proc, __u32 tgid)
{
	__u32 gen = kc_audit_ctl.gen & 1, hook = in->hook & 31;
	struct kc_audit_pol *pol = bpf_map_lookup_elem(&kc_audit_pol, &gen);
	struct task_struct *t = (void *)bpf_get_current_task();
	struct verdict v;
	__u64 m;

	if (!pol || !kc_audit_ctl.enabled)
		goto filtered;
	m = pol->hook_rules[hook];
	m &= pol->path_any | lpm_mask(&s->key, gen, KC_LPM_PATH, n);
	if (!m)
		goto filtered;
	v = decide(s, pol, gen, hook, m, proc, tgid, (__u32)bpf_get_current_uid_gid(),
		   BPF_CORE_READ(t, cred, euid.val), in->args, 1);
	if (v.rule < 0)
		goto filtered;
	if (v.action == KC_ACT_IGNORE) {
		count(hook, KC_ST_IGNORED);
		return 0;
	}
	if (v.action == KC_ACT_KILL) {
		/* Before the new image (or the caller) runs a single instruction. */
		bpf_send_signal(9);
		in->flags |= KC_EV_KILLED;
		count(hook, KC_ST_KILLED);
	}
	if (v.limited) {
		count(hook, KC_ST_RATELIMITED);
		return 0;
	}
	in->rule = KC_AUDIT_RULE_PACK(v.rule, gen);
	in->action = v.action;
	in->matched = 1;
	count(hook, KC_ST_SEEN);
	return 1;
filtered:
	count(hook, KC_ST_FILTERED);
	return 0;
}

static __always_inline void infl_delete(__u32 tid)
{
	if (!bpf_map_delete_elem(&kc_audit_infl, &tid))
		__sync_fetch_and_add(&kc_audit_infl_n, -1);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kc_audit_exit, struct pt_regs *regs, long ret)
{
	__u64 nr, pid_tgid;
	struct kc_audit_infl *in;
	struct scratch *s;
	__u32 tid, tgid, hook;

	/* Every syscall's exit comes here: the common case costs one load. */
	if (!kc_audit_infl_n)
		return 0;
#if defined(__TARGET_ARCH_x86)
	nr = regs->orig_ax;
#else
	nr = BPF_CORE_READ(regs, orig_ax);
#endif
	if (nr >= KC_AUDIT_NR_MAX || !kc_sc_any[nr])
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tid = (__u32)pid_tgid;
	tgid = pid_tgid >> 32;
	in = bpf_map_lookup_elem(&kc_audit_infl, &tid);
	if (!in)
		return 0;
	hook = in->hook;
	if (hook >= KC_HOOK__SYSCALLS || in->matched > 1)
		goto out; /* dropped at enter (an exec parked only so that it is not matched late)
			   */
	if (hook == KC_HOOK_OPEN_BY_HANDLE_AT && ret >= 0 && (s = scratch())) {
		/* The handle names no path: the file it opened does. */
		struct file *f = task_fd_file(ret);
		long n = -1;

		in->str[1][0] = 0;
		if (f && file_path(f, s->walk, in->str[1]) > 0) {
			in->xflags |= KC_EVX_FDPATH;
			in->flags |= KC_EV_HAVE_STR1;
			n = bpf_probe_read_kernel_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2,
						      in->str[1]);
		}
		if (!in->matched &&
		    !match_late(s, in, n, bpf_map_lookup_elem(&kc_audit_proc, &tgid), tgid))
			goto out;
	}
	if (!in->matched) {
		/* An exec that failed (a successful one was matched, and its entry removed, at
		 * sched_process_exec), or an open_by_handle_at that opened nothing. */
		count(hook, KC_ST_FILTERED);
		goto out;
	}
	emit(in, ret, tgid, tid);
out:
	infl_delete(tid);
	return 0;
}

/* An exec's call as sched_process_exec finds it: the entry parked at enter (moved to the new
 * tid when a thread other than the leader exec'd), matched on the resolved binary here; or,
 * when the in-flight table was full at enter, rebuilt from the registers and the kernel's
 * copy of the filename. Runs after the exec record, so that the daemon knows the argv. */
static __always_inline void exec_call(struct scratch *s, struct linux_binprm *bprm, __u32 old_pid,
				      __u32 tgid, struct kc_audit_proc *np)
{
	struct kc_audit_infl *in = bpf_map_lookup_elem(&kc_audit_infl, &old_pid);
	const char *kname = BPF_CORE_READ(bprm, filename);
	__u32 gen = kc_audit_ctl.gen & 1;
	struct kc_audit_pol *pol;
	long n;

	if (in) {
		if (in->matched) {
			if (old_pid != tgid &&
			    !bpf_map_update_elem(&kc_audit_infl, &tgid, in, BPF_NOEXIST)) {
				__sync_fetch_and_add(&kc_audit_infl_n, 1);
				infl_delete(old_pid);
			}
			return; /* sys_exit sends it, with the result */
		}
	} else {
		struct task_struct *t = bpf_get_current_task_btf();
		struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);
		__u32 nr, hook, compat;

		pol = bpf_map_lookup_elem(&kc_audit_pol, &gen);
		if (!pol || !(pol->hook_rules[KC_HOOK_EXECVE] | pol->hook_rules[KC_HOOK_EXECVEAT]))
			return;
		if (bpf_probe_read_kernel(&s->regs, sizeof(s->regs), r))
			return;
		nr = s->regs.orig_ax;
		compat = task_compat();
		if (nr >= KC_AUDIT_NR_MAX)
			return;
		hook = compat ? kc_sc_hook32[nr] : kc_sc_hook[nr];
		if (hook != KC_HOOK_EXECVE && hook != KC_HOOK_EXECVEAT)
			return;
		in = &s->infl;
		in->hook = hook;
		in->nr = nr;
		in->flags = compat ? KC_EV_COMPAT : 0;
		in->xflags = KC_EVX_STR0_FAULT; /* replaced by the kernel's copy below */
		in->matched = 0;
		in->rule = in->action = 0;
		in->ktime = bpf_ktime_get_ns();
		read_args(&s->regs, compat, in->args);
		__builtin_memset(in->aux, 0, sizeof(in->aux));
		in->str[1][0] = 0;
		old_pid = 0; /* nothing to delete */
	}
	if ((in->xflags & KC_EVX_STR0_FAULT) &&
	    bpf_probe_read_kernel_str(in->str[0], KC_AUDIT_STR_MAX, kname) > 0)
		in->xflags &= ~KC_EVX_STR0_FAULT; /* the name the kernel copied in */
	n = bpf_probe_read_kernel_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2, np->exe);
	if (match_late(s, in, n, bpf_map_lookup_elem(&kc_audit_proc, &tgid), tgid))
		emit(in, 0, tgid, tgid);
	if (old_pid)
		infl_delete(old_pid);
}

/* raw_tp sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("raw_tp/sched_process_exec")
int kc_audit_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];
	struct kc_audit_proc *old, *np;
	struct kc_audit_exec *r;
	struct scratch *s = scratch();
	struct file *f;
	__u32 tgid = BPF_CORE_READ(p, tgid), ppid, hook = KC_HOOK_PROC;
	__u64 now = bpf_ktime_get_ns(), as, ae, len;

	if (!s || !kc_audit_ctl.enabled)
		return 0;
	np = &s->proc;
	old = bpf_map_lookup_elem(&kc_audit_proc, &tgid);
	ppid = BPF_CORE_READ(p, real_parent, tgid);
	if (old) {
		np->parent_exec_id = old->parent_exec_id;
	} else {
		struct kc_audit_proc *pp = bpf_map_lookup_elem(&kc_audit_proc, &ppid);

		np->parent_exec_id =
		    pp ? pp->exec_id : BPF_CORE_READ(p, real_parent, group_leader, start_time);
	}
	np->exec_id = now;
	np->image_id = now;
	np->ppid = ppid;
	np->flags = 0;
	np->bin_gen = 0;
	np->bin_mask = 0;
	f = BPF_CORE_READ(bprm, file);
	if (file_path(f, s->walk, np->exe) < 0)
		bpf_probe_read_kernel_str(np->exe, sizeof(np->exe), BPF_CORE_READ(bprm, filename));
	if (BPF_CORE_READ(f, f_inode, __i_nlink) == 0)
		np->flags |= KC_PROC_MEMFD;
	bpf_map_update_elem(&kc_audit_proc, &tgid, np, BPF_ANY);

	count(hook, KC_ST_CALLS);
	count(hook, KC_ST_SEEN);
	r = bpf_ringbuf_reserve(&kc_audit_rb, sizeof(*r), 0);
	if (!r) {
		count(hook, KC_ST_LOST_RINGBUF);
		goto call;
	}
	r->type = KC_REC_EXEC;
	r->pid = tgid;
	r->ppid = ppid;
	r->ktime = now;
	r->exec_id = now;
	r->parent_exec_id = np->parent_exec_id;
	r->flags = np->flags << 8;
	bpf_probe_read_kernel_str(r->exe, sizeof(r->exe), np->exe);
	as = BPF_CORE_READ(p, mm, arg_start);
	ae = BPF_CORE_READ(p, mm, arg_end);
	len = ae > as ? ae - as : 0;
	if (len > KC_AUDIT_ARGV_MAX) {
		len = KC_AUDIT_ARGV_MAX;
		r->flags |= 1;
	}
	barrier_var(len);
	if (len > KC_AUDIT_ARGV_MAX || bpf_probe_read_user(r->argv, len, (void *)as))
		len = 0;
	r->argv_len = len;
	bpf_ringbuf_submit(r, 0);
	count(hook, KC_ST_EMITTED);
call:
	exec_call(s, bprm, (__u32)ctx->args[1], tgid, np);
	return 0;
}

/* raw_tp sched_process_fork(struct task_struct *parent, struct task_struct *child) */
SEC("raw_tp/sched_process_fork")
int kc_audit_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0], *child = (void *)ctx->args[1];
	__u32 ctgid = BPF_CORE_READ(child, tgid), ptgid = BPF_CORE_READ(parent, tgid);
	struct kc_audit_proc *pp;
	struct scratch *s;

	if (BPF_CORE_READ(child, pid) != ctgid || !kc_audit_ctl.enabled)
		return 0; /* a new thread, not a process */
	s = scratch();
	pp = bpf_map_lookup_elem(&kc_audit_proc, &ptgid);
	if (!s || !pp)
		return 0; /* the parent predates us: the child is filled in late, if it matters */
	bpf_probe_read_kernel(&s->proc, sizeof(s->proc), pp);
	s->proc.parent_exec_id = pp->exec_id;
	s->proc.exec_id = bpf_ktime_get_ns();
	s->proc.ppid = ptgid;
	s->proc.flags = (pp->flags & KC_PROC_MEMFD) | KC_PROC_FORKED;
	bpf_map_update_elem(&kc_audit_proc, &ctgid, &s->proc, BPF_ANY);
	return 0;
}

/* raw_tp sched_process_exit(struct task_struct *p): a thread ends. */
SEC("raw_tp/sched_process_exit")
int kc_audit_task_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (void *)ctx->args[0];
	__u32 tid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
	struct kc_audit_infl *in = bpf_map_lookup_elem(&kc_audit_infl, &tid);

	if (in) {
		if (in->matched == 1)
			count(in->hook, KC_ST_LOST_EXIT);
		if (!bpf_map_delete_elem(&kc_audit_infl, &tid))
			__sync_fetch_and_add(&kc_audit_infl_n, -1);
	}
	if (tid == tgid)
		bpf_map_delete_elem(&kc_audit_proc, &tgid);
	return 0;
}

/* raw_tp cgroup_mkdir(struct cgroup *cgrp, const char *path): keeps kc_audit_cg current for
 * cgroups created after the policy was loaded. */
SEC("raw_tp/cgroup_mkdir")
int kc_audit_cg_mkdir(struct bpf_raw_tracepoint_args *ctx)
{
	struct cgroup *cg = (void *)ctx->args[0];
	const char *path = (const char *)ctx->args[1];
	struct kc_audit_cgval val;
	struct scratch *s = scratch();
	__u64 id;
	long n;

	if (!s || BPF_CORE_READ(cg, root, hierarchy_id) != 0)
		return 0; /* cgroup v1 hierarchy */
	id = BPF_CORE_READ(cg, kn, id);
	n = bpf_probe_read_kernel_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2, path);
	val.mask[0] = lpm_mask(&s->key, 0, KC_LPM_CG, n);
	val.mask[1] = lpm_mask(&s->key, 1, KC_LPM_CG, n);
	if (val.mask[0] | val.mask[1])
		bpf_map_update_elem(&kc_audit_cg, &id, &val, BPF_ANY);
	return 0;
}

SEC("raw_tp/cgroup_rmdir")
int kc_audit_cg_rmdir(struct bpf_raw_tracepoint_args *ctx)
{
	struct cgroup *cg = (void *)ctx->args[0];
	__u64 id;

	if (BPF_CORE_READ(cg, root, hierarchy_id) != 0)
		return 0;
	id = BPF_CORE_READ(cg, kn, id);
	bpf_map_delete_elem(&kc_audit_cg, &id);
	return 0;
}

/* Deny rules: the first matching connect rule decides, exactly as at sys_enter (no path, no
 * args, no euid: the policy compiler refuses those on deny rules). 1 allows, 0 is EPERM. */
static __always_inline int connect_verdict(void)
{
	__u32 gen = kc_audit_ctl.gen & 1, tgid;
	struct kc_audit_pol *pol;
	struct kc_audit_proc *proc;
	struct verdict v;
	__u64 m;

	if (!kc_audit_ctl.enabled)
		return 1;
	pol = bpf_map_lookup_elem(&kc_audit_pol, &gen);
	if (!pol || !(pol->hook_rules[KC_HOOK_CONNECT] & pol->deny))
		return 1;
	m = pol->hook_rules[KC_HOOK_CONNECT];
	tgid = bpf_get_current_pid_tgid() >> 32;
	proc = bpf_map_lookup_elem(&kc_audit_proc, &tgid);
	v = decide(NULL, pol, gen, KC_HOOK_CONNECT, m, proc, tgid, (__u32)bpf_get_current_uid_gid(),
		   0, NULL, 0);
	if (v.rule < 0 || v.action != KC_ACT_DENY)
		return 1;
	count(KC_HOOK_CONNECT, KC_ST_DENIED);
	return 0;
}

SEC("cgroup/connect4")
int kc_audit_connect4(struct bpf_sock_addr *ctx)
{
	return connect_verdict();
}

SEC("cgroup/connect6")
int kc_audit_connect6(struct bpf_sock_addr *ctx)
{
	return connect_verdict();
}

/* io_uring requests open files without a syscall: IORING_OP_OPENAT and IORING_OP_OPENAT2 are
 * matched as the openat and openat2 hooks, on the kernel's copy of the path (prep has run when
 * the tracepoint fires), and sent at once: the result arrives later, in a CQE, so ret is
 * unknown (KC_EVX_URING). nr is the opcode. A kill stops the submitter (the process; an SQPOLL
 * thread belongs to it). Optional: the loader leaves it out on kernels without the tracepoint
 * (io_uring_submit_sqe before 5.17 has other arguments). */
#define KC_IORING_OP_OPENAT  18
#define KC_IORING_OP_OPENAT2 28

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(kc_audit_uring, struct io_kiocb *req)
{
	__u8 op = BPF_CORE_READ(req, opcode);
	__u32 hook, gen, tgid, tid;
	struct kc_audit_pol *pol;
	struct kc_audit_infl *in;
	struct io_open *o;
	struct scratch *s;
	__u64 m, pid_tgid;
	long n;

	if ((op != KC_IORING_OP_OPENAT && op != KC_IORING_OP_OPENAT2) || !kc_audit_ctl.enabled)
		return 0;
	hook = op == KC_IORING_OP_OPENAT ? KC_HOOK_OPENAT : KC_HOOK_OPENAT2;
	count(hook, KC_ST_CALLS);
	gen = kc_audit_ctl.gen & 1;
	pol = bpf_map_lookup_elem(&kc_audit_pol, &gen);
	s = scratch();
	if (!pol || !s)
		return 0;
	m = pol->hook_rules[hook];
	if (!m) {
		count(hook, KC_ST_FILTERED);
		return 0;
	}
	o = (struct io_open *)&req->cmd;
	in = &s->infl;
	in->hook = hook;
	in->nr = op;
	in->flags = 0;
	in->xflags = KC_EVX_URING;
	in->matched = 0;
	in->rule = in->action = 0;
	__builtin_memset(in->args, 0, sizeof(in->args));
	__builtin_memset(in->aux, 0, sizeof(in->aux));
	in->args[0] = (__u64)(__s64)BPF_CORE_READ(o, dfd);
	in->args[2] = BPF_CORE_READ(o, how.flags);
	in->args[3] = BPF_CORE_READ(o, how.mode);
	if (hook == KC_HOOK_OPENAT2) {
		__u64 how[3] = {in->args[2], in->args[3], BPF_CORE_READ(o, how.resolve)};

		__builtin_memcpy(in->aux, how, sizeof(how));
	}
	n = bpf_probe_read_kernel_str(&s->key.data[2], KC_AUDIT_STR_MAX - 2,
				      BPF_CORE_READ(o, filename, name));
	if (n < 0) {
		s->key.data[2] = 0;
		in->xflags |= KC_EVX_STR0_FAULT;
	}
	if (n >= KC_AUDIT_STR_MAX - 2)
		in->flags |= KC_EV_TRUNC0;
	m &= pol->path_any | lpm_mask(&s->key, gen, KC_LPM_PATH, n);
	if (!m) {
		count(hook, KC_ST_FILTERED);
		return 0;
	}
	bpf_probe_read_kernel_str(in->str[0], KC_AUDIT_STR_MAX, &s->key.data[2]);
	in->str[1][0] = 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	tid = (__u32)pid_tgid;
	in->ktime = bpf_ktime_get_ns();
	if (!match_late(s, in, n, bpf_map_lookup_elem(&kc_audit_proc, &tgid), tgid))
		return 0;
	emit(in, 0, tgid, tid);
	return 0;
}
