/* audit.h: data layout of the syscall audit, shared by bpf/audit.bpf.c and the daemon
 * (user/audit/audit*.c). Layout: fixed-width types, explicit padding, size asserts; and the one
 * function both sides must compute alike (kc_audit_head_slot).
 *
 * Maps (BTF-typed; pinned under <pin-path>/ by the loader):
 *
 *   .bss kc_audit_ctl  struct kc_audit_ctl (mmapped)   active policy generation, on/off
 *   .bss kc_audit_head __u64[2 * KC_AUDIT_HEAD_SLOTS]  path head filter of each generation
 *   kc_audit_pol   ARRAY  gen -> struct kc_audit_pol        per-hook rule masks of a generation
 *   kc_audit_rules ARRAY  gen*KC_AUDIT_MAX_RULES+i -> struct kc_audit_rule
 *   kc_audit_lpm   LPM_TRIE struct kc_audit_lpm_key -> __u64 rule mask (path, binary, cgroup)
 *   kc_audit_cg    HASH   cgroup id -> struct kc_audit_cgval rule masks of both generations
 *   kc_audit_proc  LRU_HASH tgid -> struct kc_audit_proc    the kernel's process table
 *   kc_audit_infl  HASH   tid -> struct kc_audit_infl       a matched call between enter and exit
 *   kc_audit_rate  LRU_HASH struct kc_audit_rate_key -> __u64 next allowed time (GCRA)
 *   kc_audit_stats PERCPU_ARRAY hook -> struct kc_audit_stats
 *   kc_audit_rb    RINGBUF  struct kc_audit_event / struct kc_audit_exec records
 *
 * A policy is compiled by the daemon into one generation (0 or 1) of kc_audit_pol,
 * kc_audit_rules, kc_audit_lpm and kc_audit_cg, then made active by one write of
 * kc_audit_ctl.gen; the programs read the generation once per call, so a call is always
 * matched against one whole policy, and a reload never opens a window with no policy.
 */
#ifndef KCACHE_AUDIT_H
#define KCACHE_AUDIT_H

#if !defined(__bpf__) && !defined(__BPF__)
#include <linux/types.h>
#endif

/* JSON schema version of the records (docs/audit-event.schema.json). */
#define KC_AUDIT_SCHEMA 1
/* Rules per policy: a rule set is a __u64 bitmask. */
#define KC_AUDIT_MAX_RULES 64
/* The rule byte of struct kc_audit_event and kc_audit_infl, written by the programs and read
 * by the daemon: bits 0-5 the index of the first matching rule (0..KC_AUDIT_MAX_RULES-1),
 * bit 6 zero, bit 7 the policy generation (0 or 1) the rule was matched in, so that the
 * daemon names it from that generation's policy even after a reload flipped the active one. */
#define KC_AUDIT_RULE_BITS	 6
#define KC_AUDIT_RULE_MASK	 ((1u << KC_AUDIT_RULE_BITS) - 1)
#define KC_AUDIT_GEN_SHIFT	 7
#define KC_AUDIT_RULE_PACK(i, g) ((i) | (g) << KC_AUDIT_GEN_SHIFT)
#define KC_AUDIT_RULE_IDX(b)	 ((b)&KC_AUDIT_RULE_MASK)
#define KC_AUDIT_RULE_GEN(b)	 ((b) >> KC_AUDIT_GEN_SHIFT)
_Static_assert(1u << KC_AUDIT_RULE_BITS == KC_AUDIT_MAX_RULES,
	       "the rule index bits hold every rule of a policy");
_Static_assert(KC_AUDIT_GEN_SHIFT >= KC_AUDIT_RULE_BITS && KC_AUDIT_GEN_SHIFT < 8,
	       "the generation bit is above the index, inside the byte");
/* Bytes of a path or string argument read from the caller, NUL included; longer ones are cut
 * and flagged truncated. */
#define KC_AUDIT_STR_MAX 256
/* Longest path, binary or cgroup prefix in a policy (two key bytes are the generation and
 * the kind, and an exact match needs its NUL: 256 - 3). */
#define KC_AUDIT_PREFIX_MAX 253
/* Entries in kc_audit_lpm: all prefixes of both generations together. */
#define KC_AUDIT_LPM_MAX 2048
/* Prefixes (paths + binaries + cgroups) one policy may hold: half the trie, for reloads. */
#define KC_AUDIT_MAX_PREFIXES (KC_AUDIT_LPM_MAX / 2)
/* Values per rule in an args condition. */
#define KC_AUDIT_ARG_VALUES 4
/* Bytes of argv captured at exec (NUL separated); longer is flagged truncated. */
#define KC_AUDIT_ARGV_MAX 1024
/* Dispatch table flags (kc_sc_flags): the legacy calls are audited as their *at form, their
 * arguments moved so that they read like it (dirfd AT_FDCWD). */
#define KC_SC_SHIFT1 0x1 /* open, unlink, chmod, chown, lchown, rmdir: (path, ...) */
#define KC_SC_RENAME 0x2 /* rename(old, new) */
#define KC_SC_RMDIR  0x4 /* rmdir: flags AT_REMOVEDIR */
/* Path head filter (kc_audit_head in the program's .bss): per generation, KC_AUDIT_HEAD_SLOTS
 * rule masks indexed by the second and third bytes of a path (kc_audit_head_slot). A slot holds
 * every path rule with a prefix that a path with those bytes can start with, so a path hook
 * whose candidate rules all need a path, and whose slot has none of them, is dropped after a
 * 3-byte read: no string copy, no LPM lookup. Only a superset filter: the LPM decides. */
#define KC_AUDIT_HEAD_SLOTS 4096
/* c1, c2: the string's bytes 1 and 2, each 0 from the string's NUL on. Distinct (c1, c2) pairs
 * with the same c1 never share a slot. */
static inline __u32 kc_audit_head_slot(__u8 c1, __u8 c2)
{
	return (((__u32)c1 << 4) ^ c2) & (KC_AUDIT_HEAD_SLOTS - 1);
}
/* Syscall numbers the dispatch table covers. */
#define KC_AUDIT_NR_MAX 512
/* Default sizes of the bounded tables; the loader may change them before load. */
#define KC_AUDIT_PROC_DEFAULT 16384 /* kc_audit_proc entries (processes) */
#define KC_AUDIT_INFL_DEFAULT 4096  /* kc_audit_infl: threads inside a matched call at once */
#define KC_AUDIT_RATE_DEFAULT 8192  /* kc_audit_rate: (process, rule) pairs with a limit */
#define KC_AUDIT_CG_DEFAULT   16384 /* kc_audit_cg: cgroups a cgroup-scoped rule matches */

/* Hooks: one per audited syscall, plus the process feed and the connect enforcement hook.
 * Stable numbers, used as metric labels (names in user/audit/audit_policy.c). */
enum kc_audit_hook {
	KC_HOOK_NONE = 0,
	KC_HOOK_EXECVE,
	KC_HOOK_EXECVEAT,
	KC_HOOK_OPENAT,
	KC_HOOK_OPENAT2,
	KC_HOOK_CONNECT,
	KC_HOOK_BIND,
	KC_HOOK_PTRACE,
	KC_HOOK_SETUID,
	KC_HOOK_SETGID,
	KC_HOOK_SETREUID,
	KC_HOOK_SETRESUID,
	KC_HOOK_SETRESGID,
	KC_HOOK_CAPSET,
	KC_HOOK_INIT_MODULE,
	KC_HOOK_FINIT_MODULE,
	KC_HOOK_DELETE_MODULE,
	KC_HOOK_MOUNT,
	KC_HOOK_UMOUNT2,
	KC_HOOK_UNLINKAT,
	KC_HOOK_RENAMEAT2,
	KC_HOOK_FCHMODAT,
	KC_HOOK_FCHOWNAT,
	KC_HOOK_BPF,
	KC_HOOK_MEMFD_CREATE,
	KC_HOOK_OPEN_BY_HANDLE_AT, /* matched at exit on the path of the fd it returned */
	KC_HOOK_SETREGID,
	KC_HOOK_SETGROUPS,
	KC_HOOK_PROCESS_VM_READV,
	KC_HOOK_PROCESS_VM_WRITEV,
	KC_HOOK_IO_URING_SETUP, /* io_uring openat ops themselves are reported as openat(2) */
	KC_HOOK__SYSCALLS,	/* hooks below are not syscalls */
	KC_HOOK_PROC = KC_HOOK__SYSCALLS, /* exec records feeding the daemon's process table */
	KC_HOOK__COUNT
};
_Static_assert(KC_HOOK__COUNT <= 32, "hook numbers fit the programs' 5-bit bounds");

enum kc_audit_action {
	KC_ACT_AUDIT = 0,  /* emit an event */
	KC_ACT_KILL = 1,   /* emit, and SIGKILL the caller from the program */
	KC_ACT_IGNORE = 2, /* drop in the kernel: earlier rules win, so this carves exceptions */
	KC_ACT_DENY = 3,   /* connect only, cgroup-scoped: connect() fails with EPERM */
};

/* Per-hook counters (struct kc_audit_stats.v). The pipeline is
 *   calls -> filtered (no rule) | ignored (an ignore rule) | ratelimited | seen
 *   seen  -> emitted (in the ring) | lost_ringbuf | lost_inflight | lost_exit
 * so that seen == emitted + lost_* once no call is between its enter and exit. */
enum kc_audit_stat {
	KC_ST_CALLS = 0,
	KC_ST_FILTERED,
	KC_ST_IGNORED,
	KC_ST_RATELIMITED,
	KC_ST_SEEN,
	KC_ST_EMITTED,
	KC_ST_LOST_RINGBUF,  /* the ring buffer was full */
	KC_ST_LOST_INFLIGHT, /* kc_audit_infl was full at enter */
	KC_ST_LOST_EXIT,     /* the thread died between enter and exit */
	KC_ST_KILLED,	     /* SIGKILLs sent */
	KC_ST_DENIED,	     /* connects refused by the cgroup hook */
	KC_ST_PROC_MISS,     /* a process was not in kc_audit_proc (evicted or older than us) */
	KC_ST__COUNT
};

struct kc_audit_stats {
	__u64 v[KC_ST__COUNT];
};
_Static_assert(sizeof(struct kc_audit_stats) == 8 * KC_ST__COUNT, "kc_audit_stats layout");

/* The global kc_audit_ctl in the program's .bss; the daemon writes it through the mmap. */
struct kc_audit_ctl {
	__u32 gen;     /* active generation, 0 or 1 */
	__u32 enabled; /* 0: every hook returns at once */
};
_Static_assert(sizeof(struct kc_audit_ctl) == 8, "kc_audit_ctl layout");

/* kc_audit_pol[gen]: which rules each hook, and each kind of condition, concerns. */
struct kc_audit_pol {
	__u64 hook_rules[KC_HOOK__COUNT]; /* rules that list the hook's syscall */
	__u64 path_any;			  /* rules with no path condition */
	__u64 bin_any;			  /* rules with no binary condition */
	__u64 cg_any;			  /* rules with no cgroup condition */
	__u64 slow;			  /* rules needing the per-rule check (uid, args, rate) */
	__u64 deny;			  /* rules whose action is deny */
	__u64 pad;
};
_Static_assert(sizeof(struct kc_audit_pol) == 8 * (KC_HOOK__COUNT + 6), "kc_audit_pol layout");

/* Rule condition flags (struct kc_audit_rule.flags). */
#define KC_RULE_UID	0x01 /* uid_min <= uid <= uid_max */
#define KC_RULE_EUID	0x02 /* euid_min <= euid <= euid_max */
#define KC_RULE_ARG	0x04 /* syscall argument arg_index (or any, 0xff) in arg_values */
#define KC_RULE_RATE	0x08 /* at most one event per interval_ns per process, burst */
#define KC_RULE_ARG_ANY 0xff /* arg_index: any of the hook's numeric id arguments */

struct kc_audit_rule {
	__u32 uid_min, uid_max;
	__u32 euid_min, euid_max;
	__u8 action; /* enum kc_audit_action */
	__u8 flags;  /* KC_RULE_* */
	__u8 arg_index;
	__u8 n_values;
	__u32 arg_values[KC_AUDIT_ARG_VALUES]; /* compared as 32-bit unsigned */
	__u64 interval_ns;		       /* rate limit: 1e9 / events per second */
	__u64 burst_ns;			       /* (burst - 1) * interval_ns */
};
_Static_assert(sizeof(struct kc_audit_rule) == 56, "kc_audit_rule layout");

/* kc_audit_lpm key. data[0] is the generation, data[1] the kind, then the string; an exact
 * entry includes the NUL, a prefix entry does not. prefixlen counts bits of data. */
#define KC_LPM_PATH 'P'
#define KC_LPM_BIN  'B'
#define KC_LPM_CG   'C'
struct kc_audit_lpm_key {
	__u32 prefixlen;
	__u8 data[KC_AUDIT_STR_MAX];
};
_Static_assert(sizeof(struct kc_audit_lpm_key) == 260, "kc_audit_lpm_key layout");

/* kc_audit_cg value: the cgroup-condition rules this cgroup matches, per generation. */
struct kc_audit_cgval {
	__u64 mask[2];
};

/* kc_audit_proc value. exec_id identifies the process image across the node's lifetime
 * together with the tgid: it is the CLOCK_MONOTONIC time of the exec (or of the fork, for a
 * child that has not exec'd, or the task's start time when we did not see it start). */
#define KC_PROC_FORKED 0x1 /* a fork child that has not exec'd: its image is the parent's */
#define KC_PROC_LATE   0x2 /* started before the audit: filled in from the task */
#define KC_PROC_MEMFD  0x4 /* the image is a memfd or an unlinked file */
struct kc_audit_proc {
	__u64 exec_id;
	__u64 parent_exec_id;
	__u64 image_id; /* exec_id of the exec that loaded the running image */
	__u32 ppid;
	__u32 flags;
	__u32 bin_gen; /* generation bin_mask was computed for, +1 (0 = never) */
	__u32 pad;
	__u64 bin_mask; /* binary-condition rules the exe matches */
	char exe[KC_AUDIT_STR_MAX];
};
_Static_assert(sizeof(struct kc_audit_proc) == 304, "kc_audit_proc layout");

struct kc_audit_rate_key {
	__u32 tgid;
	__u32 rule;
};

/* Record types in kc_audit_rb. */
enum kc_audit_rec_type {
	KC_REC_EVENT = 1, /* struct kc_audit_event */
	KC_REC_EXEC = 2,  /* struct kc_audit_exec: process table feed, every exec */
};

/* struct kc_audit_event.flags */
#define KC_EV_TRUNC0	0x01 /* str[0] was cut at KC_AUDIT_STR_MAX */
#define KC_EV_TRUNC1	0x02 /* str[1] was cut */
#define KC_EV_KILLED	0x04 /* a SIGKILL was sent */
#define KC_EV_COMPAT	0x08 /* a 32-bit (ia32) syscall */
#define KC_EV_LATE	0x10 /* the process was not in kc_audit_proc */
#define KC_EV_FORKED	0x20 /* a fork child that has not exec'd */
#define KC_EV_MEMFD	0x40 /* the process image is a memfd or an unlinked file */
#define KC_EV_HAVE_STR1 0x80

/* struct kc_audit_event.xflags (and kc_audit_infl.xflags) */
#define KC_EVX_EARLY	  0x01 /* sent at enter (kc_audit_infl was full): ret is unknown */
#define KC_EVX_URING	  0x02 /* an io_uring request, not a syscall: nr is the opcode */
#define KC_EVX_STR0_FAULT 0x04 /* the caller's string could not be read (str[0] empty) */
#define KC_EVX_FDPATH	  0x08 /* str[1]: the path of the file descriptor the call returned */
#define KC_EVX_NOARGS	  0x10 /* exec seen only at sched_process_exec: args[] unknown */
#define KC_EVX_SCRIPT	  0x20 /* exec of a script: str[1] is the script, exe the interpreter */

/* A matched syscall, sent at its exit. Strings are NUL terminated within their arrays. For
 * the meaning of args[], str[] and aux[] per hook see docs/audit.md ("Arguments"). */
struct kc_audit_event {
	__u16 type; /* KC_REC_EVENT */
	__u8 hook;
	__u8 rule; /* KC_AUDIT_RULE_PACK(first matching rule, policy generation) */
	__u8 action;
	__u8 flags; /* KC_EV_* */
	__u16 nr;   /* the syscall number (open is reported as openat's hook, with nr 2) */
	__u32 pid, tid, ppid;
	__u32 uid, gid, euid, egid;
	__u32 xflags;  /* KC_EVX_* */
	__u64 ktime;   /* CLOCK_MONOTONIC ns at enter */
	__u64 exec_id; /* at exit: after a successful exec, the new image */
	__u64 parent_exec_id;
	__u64 image_id;
	__u64 cgroup_id; /* cgroup v2 id */
	__s64 ret;
	__u64 args[6];
	char comm[16];
	__u8 aux[112]; /* sockaddr (connect, bind), fstype (mount), capability sets (capset) */
	char str[2][KC_AUDIT_STR_MAX];
	char exe[KC_AUDIT_STR_MAX]; /* the process's exe from kc_audit_proc (after the call) */
};
_Static_assert(sizeof(struct kc_audit_event) == 1032, "kc_audit_event layout");

/* Every exec, matched or not: the daemon's process table learns argv from it. */
struct kc_audit_exec {
	__u16 type; /* KC_REC_EXEC */
	__u16 argv_len;
	__u32 pid;
	__u32 ppid;
	__u32 flags; /* bit 0: argv truncated; KC_PROC_* << 8 */
	__u64 ktime;
	__u64 exec_id;
	__u64 parent_exec_id;
	char exe[KC_AUDIT_STR_MAX];
	char argv[KC_AUDIT_ARGV_MAX]; /* NUL separated */
};
_Static_assert(sizeof(struct kc_audit_exec) == 1320, "kc_audit_exec layout");

/* A call between its enter and exit (kc_audit_infl value). */
struct kc_audit_infl {
	__u64 ktime;
	__u64 args[6];
	__u8 hook;
	__u8 rule; /* KC_AUDIT_RULE_PACK(first matching rule, generation), when matched */
	__u8 action;
	__u8 flags;   /* KC_EV_* */
	__u8 matched; /* 0 for an exec not matched at enter: matched again at exit */
	__u8 xflags;  /* KC_EVX_* */
	__u16 nr;
	__u8 aux[112];
	char str[2][KC_AUDIT_STR_MAX];
};
_Static_assert(sizeof(struct kc_audit_infl) == 688, "kc_audit_infl layout");

#endif
