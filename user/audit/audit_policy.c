/* audit_policy.c: the audit policy's parser (libyaml's document API) and compiler, and the
 * hook and syscall tables. See audit_policy.h and docs/audit.md. */
#include "audit/audit_policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "core/num.h"
#include "core/yaml.h"

static const char *const hook_names[KC_HOOK__COUNT] = {
    [KC_HOOK_NONE] = "none",
    [KC_HOOK_EXECVE] = "execve",
    [KC_HOOK_EXECVEAT] = "execveat",
    [KC_HOOK_OPENAT] = "openat",
    [KC_HOOK_OPENAT2] = "openat2",
    [KC_HOOK_CONNECT] = "connect",
    [KC_HOOK_BIND] = "bind",
    [KC_HOOK_PTRACE] = "ptrace",
    [KC_HOOK_SETUID] = "setuid",
    [KC_HOOK_SETGID] = "setgid",
    [KC_HOOK_SETREUID] = "setreuid",
    [KC_HOOK_SETRESUID] = "setresuid",
    [KC_HOOK_SETRESGID] = "setresgid",
    [KC_HOOK_CAPSET] = "capset",
    [KC_HOOK_INIT_MODULE] = "init_module",
    [KC_HOOK_FINIT_MODULE] = "finit_module",
    [KC_HOOK_DELETE_MODULE] = "delete_module",
    [KC_HOOK_MOUNT] = "mount",
    [KC_HOOK_UMOUNT2] = "umount2",
    [KC_HOOK_UNLINKAT] = "unlinkat",
    [KC_HOOK_RENAMEAT2] = "renameat2",
    [KC_HOOK_FCHMODAT] = "fchmodat",
    [KC_HOOK_FCHOWNAT] = "fchownat",
    [KC_HOOK_BPF] = "bpf",
    [KC_HOOK_MEMFD_CREATE] = "memfd_create",
    [KC_HOOK_OPEN_BY_HANDLE_AT] = "open_by_handle_at",
    [KC_HOOK_SETREGID] = "setregid",
    [KC_HOOK_SETGROUPS] = "setgroups",
    [KC_HOOK_PROCESS_VM_READV] = "process_vm_readv",
    [KC_HOOK_PROCESS_VM_WRITEV] = "process_vm_writev",
    [KC_HOOK_IO_URING_SETUP] = "io_uring_setup",
    [KC_HOOK_PROC] = "proc",
};

const char *kc_audit_hook_name(unsigned hook)
{
	return hook < KC_HOOK__COUNT && hook_names[hook] ? hook_names[hook] : "unknown";
}

static const char *const action_names[] = {"audit", "kill", "ignore", "deny"};

const char *kc_audit_action_name(unsigned action)
{
	return action < 4 ? action_names[action] : "unknown";
}

unsigned kc_audit_hook_by_name(const char *name)
{
	for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++)
		if (!strcmp(hook_names[h], name))
			return h;
	if (!strcmp(name, "umount"))
		return KC_HOOK_UMOUNT2;
	return 0;
}

#define SC(n, h, f)                                                                                \
	{                                                                                          \
#n, KC_HOOK_##h, SYS_##n, f, false                                                 \
	}
#if defined(__x86_64__)
#define SC32(n, nr, h, f)                                                                          \
	{                                                                                          \
#n, KC_HOOK_##h, nr, f, true                                                       \
	}
#endif
const struct kc_audit_sc kc_audit_syscalls[] = {
    SC(execve, EXECVE, 0),
    SC(execveat, EXECVEAT, 0),
    SC(openat, OPENAT, 0),
    SC(openat2, OPENAT2, 0),
    SC(connect, CONNECT, 0),
    SC(bind, BIND, 0),
    SC(ptrace, PTRACE, 0),
    SC(setuid, SETUID, 0),
    SC(setgid, SETGID, 0),
    SC(setreuid, SETREUID, 0),
    SC(setresuid, SETRESUID, 0),
    SC(setresgid, SETRESGID, 0),
    SC(capset, CAPSET, 0),
    SC(init_module, INIT_MODULE, 0),
    SC(finit_module, FINIT_MODULE, 0),
    SC(delete_module, DELETE_MODULE, 0),
    SC(mount, MOUNT, 0),
    SC(umount2, UMOUNT2, 0),
    SC(unlinkat, UNLINKAT, 0),
    SC(renameat2, RENAMEAT2, 0),
    SC(fchmodat, FCHMODAT, 0),
    SC(fchownat, FCHOWNAT, 0),
    SC(bpf, BPF, 0),
    SC(memfd_create, MEMFD_CREATE, 0),
    SC(open_by_handle_at, OPEN_BY_HANDLE_AT, 0),
    SC(setregid, SETREGID, 0),
    SC(setgroups, SETGROUPS, 0),
    SC(process_vm_readv, PROCESS_VM_READV, 0),
    SC(process_vm_writev, PROCESS_VM_WRITEV, 0),
    SC(io_uring_setup, IO_URING_SETUP, 0),
#ifdef SYS_open
    SC(open, OPENAT, KC_SC_SHIFT1),
    SC(creat, OPENAT, KC_SC_SHIFT1),
    SC(unlink, UNLINKAT, KC_SC_SHIFT1),
    SC(rmdir, UNLINKAT, KC_SC_SHIFT1 | KC_SC_RMDIR),
    SC(rename, RENAMEAT2, KC_SC_RENAME),
    SC(chmod, FCHMODAT, KC_SC_SHIFT1),
    SC(chown, FCHOWNAT, KC_SC_SHIFT1),
    SC(lchown, FCHOWNAT, KC_SC_SHIFT1),
#endif
#if defined(__x86_64__)
    /* ia32 numbers (asm/unistd_32.h); socketcall(2)'s connect and bind are not audited. */
    SC32(execve, 11, EXECVE, 0),
    SC32(execveat, 358, EXECVEAT, 0),
    SC32(openat, 295, OPENAT, 0),
    SC32(openat2, 437, OPENAT2, 0),
    SC32(open, 5, OPENAT, KC_SC_SHIFT1),
    SC32(creat, 8, OPENAT, KC_SC_SHIFT1),
    SC32(connect, 362, CONNECT, 0),
    SC32(bind, 361, BIND, 0),
    SC32(ptrace, 26, PTRACE, 0),
    SC32(setuid, 23, SETUID, 0),
    SC32(setuid32, 213, SETUID, 0),
    SC32(setgid, 46, SETGID, 0),
    SC32(setgid32, 214, SETGID, 0),
    SC32(setreuid, 70, SETREUID, 0),
    SC32(setreuid32, 203, SETREUID, 0),
    SC32(setresuid, 164, SETRESUID, 0),
    SC32(setresuid32, 208, SETRESUID, 0),
    SC32(setresgid, 170, SETRESGID, 0),
    SC32(setresgid32, 210, SETRESGID, 0),
    SC32(capset, 185, CAPSET, 0),
    SC32(init_module, 128, INIT_MODULE, 0),
    SC32(finit_module, 350, FINIT_MODULE, 0),
    SC32(delete_module, 129, DELETE_MODULE, 0),
    SC32(mount, 21, MOUNT, 0),
    SC32(umount2, 52, UMOUNT2, 0),
    SC32(unlinkat, 301, UNLINKAT, 0),
    SC32(open_by_handle_at, 342, OPEN_BY_HANDLE_AT, 0),
    SC32(setregid, 71, SETREGID, 0),
    SC32(setregid32, 204, SETREGID, 0),
    SC32(setgroups, 81, SETGROUPS, 0),
    SC32(setgroups32, 206, SETGROUPS, 0),
    SC32(process_vm_readv, 347, PROCESS_VM_READV, 0),
    SC32(process_vm_writev, 348, PROCESS_VM_WRITEV, 0),
    SC32(io_uring_setup, 425, IO_URING_SETUP, 0),
    SC32(unlink, 10, UNLINKAT, KC_SC_SHIFT1),
    SC32(rmdir, 40, UNLINKAT, KC_SC_SHIFT1 | KC_SC_RMDIR),
    SC32(renameat2, 353, RENAMEAT2, 0),
    SC32(rename, 38, RENAMEAT2, KC_SC_RENAME),
    SC32(fchmodat, 306, FCHMODAT, 0),
    SC32(chmod, 15, FCHMODAT, KC_SC_SHIFT1),
    SC32(fchownat, 298, FCHOWNAT, 0),
    SC32(chown32, 212, FCHOWNAT, KC_SC_SHIFT1),
    SC32(bpf, 357, BPF, 0),
    SC32(memfd_create, 356, MEMFD_CREATE, 0),
#endif
};
const unsigned kc_audit_n_syscalls = sizeof(kc_audit_syscalls) / sizeof(kc_audit_syscalls[0]);

const char *kc_audit_syscall_name(unsigned nr, bool ia32)
{
	for (unsigned i = 0; i < kc_audit_n_syscalls; i++)
		if (kc_audit_syscalls[i].nr == (int)nr && kc_audit_syscalls[i].ia32 == ia32)
			return kc_audit_syscalls[i].name;
	return NULL;
}

/* --- parsing ------------------------------------------------------------------------------ */

struct parse {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	struct kc_audit_policy *p;
};

static int perr(struct parse *ps, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct parse *ps, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kc_yaml_verrf(ps->err, ps->errlen, ps->file, kc_yaml_node_line(n), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(struct parse *ps, int id)
{
	return yaml_document_get_node(ps->doc, id);
}

/* Calls fn for each item of a list node (a scalar is a list of one), at most max items. */
static int each_item(struct parse *ps, yaml_node_t *n, const char *what, unsigned max,
		     int (*fn)(struct parse *, yaml_node_t *, void *), void *ctx)
{
	unsigned count = 0;

	if (n->type == YAML_SCALAR_NODE)
		return fn(ps, n, ctx);
	if (n->type != YAML_SEQUENCE_NODE)
		return perr(ps, n, "%s: expected a list", what);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		int rc;

		if (++count > max)
			return perr(ps, n, "%s: more than %u entries", what, max);
		rc = fn(ps, node(ps, *it), ctx);
		if (rc)
			return rc;
	}
	if (!count)
		return perr(ps, n, "%s: expected at least one entry", what);
	return 0;
}

static int parse_u32(struct parse *ps, yaml_node_t *n, const char *what, uint32_t *out)
{
	const char *s = scalar(n);
	uint64_t v;

	if (!s || kc_parse_u64(s, UINT32_MAX, &v))
		return perr(ps, n, "%s: expected an integer from 0 to 4294967295, got %s", what,
			    s ? s : "a list or mapping");
	*out = (uint32_t)v;
	return 0;
}

/* uid: N or [MIN, MAX] */
static int parse_range(struct parse *ps, yaml_node_t *n, const char *what, uint32_t *lo,
		       uint32_t *hi)
{
	yaml_node_item_t *it;

	if (n->type == YAML_SCALAR_NODE) {
		if (parse_u32(ps, n, what, lo))
			return -EINVAL;
		*hi = *lo;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE ||
	    n->data.sequence.items.top - n->data.sequence.items.start != 2)
		return perr(ps, n, "%s: expected an integer or [min, max]", what);
	it = n->data.sequence.items.start;
	if (parse_u32(ps, node(ps, it[0]), what, lo) || parse_u32(ps, node(ps, it[1]), what, hi))
		return -EINVAL;
	if (*lo > *hi)
		return perr(ps, n, "%s: min %u is above max %u", what, *lo, *hi);
	return 0;
}

struct rule_ctx {
	unsigned idx;
	uint8_t kind;
	const char *what;
	unsigned n_values;
};

static int add_syscall(struct parse *ps, yaml_node_t *n, void *ctx)
{
	struct rule_ctx *rc = ctx;
	const char *s = scalar(n);
	unsigned h = s ? kc_audit_hook_by_name(s) : 0;

	if (!h)
		return perr(ps, n, "syscalls: unknown syscall '%.64s' (see docs/audit.md)",
			    s ? s : "(list)");
	ps->p->hooks[rc->idx] |= 1ULL << h;
	return 0;
}

static int add_prefix(struct parse *ps, yaml_node_t *n, void *ctx)
{
	struct rule_ctx *rc = ctx;
	struct kc_audit_policy *p = ps->p;
	const char *s = scalar(n);
	struct kc_audit_prefix e = {.kind = rc->kind};
	size_t len;

	if (!s)
		return perr(ps, n, "%s: expected a string, got a list or mapping", rc->what);
	len = strlen(s);
	if (len == 0 || s[0] != '/')
		return perr(ps, n, "%s: expected an absolute path, got '%.64s'", rc->what, s);
	if (len > KC_AUDIT_PREFIX_MAX)
		return perr(ps, n, "%s: %zu bytes, longer than the %d allowed", rc->what, len,
			    KC_AUDIT_PREFIX_MAX);
	if (memchr(s, '*', len) && s[len - 1] != '*')
		return perr(ps, n, "%s: '*' is allowed only at the end, got '%.64s'", rc->what, s);
	e.exact = s[len - 1] != '/' && s[len - 1] != '*';
	if (s[len - 1] == '*')
		len--;
	memcpy(e.s, s, len);
	e.len = len;
	e.rules = 1ULL << rc->idx;
	for (int pass = 0; pass < 2; pass++) {
		unsigned i;

		for (i = 0; i < p->n_prefixes; i++) {
			struct kc_audit_prefix *q = &p->prefixes[i];

			if (q->kind == e.kind && q->exact == e.exact && q->len == e.len &&
			    !memcmp(q->s, e.s, e.len)) {
				q->rules |= e.rules;
				break;
			}
		}
		if (i == p->n_prefixes) {
			if (p->n_prefixes >= KC_AUDIT_MAX_PREFIXES)
				return perr(ps, n, "%s: more than %d prefixes in the policy",
					    rc->what, KC_AUDIT_MAX_PREFIXES);
			p->prefixes[p->n_prefixes++] = e;
		}
		/* A cgroup directory "x/" also matches the cgroup x itself. */
		if (e.kind != KC_LPM_CG || e.exact || len < 2 || e.s[len - 1] != '/')
			break;
		e.len = --len;
		e.s[len] = 0;
		e.exact = 1;
	}
	return 0;
}

static int add_value(struct parse *ps, yaml_node_t *n, void *ctx)
{
	struct rule_ctx *rc = ctx;
	struct kc_audit_rule *r = &ps->p->rules[rc->idx];
	uint32_t v = 0;

	if (parse_u32(ps, n, "args: in", &v))
		return -EINVAL;
	if (r->n_values >= KC_AUDIT_ARG_VALUES)
		return perr(ps, n, "args: in: more than %d values", KC_AUDIT_ARG_VALUES);
	r->arg_values[r->n_values++] = v;
	return 0;
}

static int parse_args(struct parse *ps, yaml_node_t *n, unsigned idx)
{
	struct kc_audit_rule *r = &ps->p->rules[idx];
	struct rule_ctx rc = {.idx = idx};
	bool have_index = false, have_in = false;

	if (n->type != YAML_MAPPING_NODE)
		return perr(ps, n, "args: expected a mapping {index: N, in: [values]}");
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
		const char *ks = scalar(k), *vs = scalar(v);
		uint32_t i = 0;

		if (ks && !strcmp(ks, "index")) {
			if (vs && !strcmp(vs, "any")) {
				r->arg_index = KC_RULE_ARG_ANY;
			} else {
				if (parse_u32(ps, v, "args: index", &i) || i > 5)
					return perr(ps, v, "args: index: expected 0 to 5 or any");
				r->arg_index = i;
			}
			have_index = true;
		} else if (ks && !strcmp(ks, "in")) {
			if (have_in)
				return perr(ps, k, "args: in given twice");
			if (each_item(ps, v, "args: in", KC_AUDIT_ARG_VALUES, add_value, &rc))
				return -EINVAL;
			have_in = true;
		} else {
			return perr(ps, k, "args: unknown key '%.64s' (expected index, in)",
				    ks ? ks : "?");
		}
	}
	if (!have_index || !have_in)
		return perr(ps, n, "args: needs both index and in");
	r->flags |= KC_RULE_ARG;
	return 0;
}

#define PATH_HOOKS                                                                                 \
	((1ULL << KC_HOOK_EXECVE) | (1ULL << KC_HOOK_EXECVEAT) | (1ULL << KC_HOOK_OPENAT) |        \
	 (1ULL << KC_HOOK_OPENAT2) | (1ULL << KC_HOOK_UNLINKAT) | (1ULL << KC_HOOK_RENAMEAT2) |    \
	 (1ULL << KC_HOOK_FCHMODAT) | (1ULL << KC_HOOK_FCHOWNAT) | (1ULL << KC_HOOK_MOUNT) |       \
	 (1ULL << KC_HOOK_UMOUNT2) | (1ULL << KC_HOOK_OPEN_BY_HANDLE_AT))
#define ID_HOOKS                                                                                   \
	((1ULL << KC_HOOK_SETUID) | (1ULL << KC_HOOK_SETGID) | (1ULL << KC_HOOK_SETREUID) |        \
	 (1ULL << KC_HOOK_SETRESUID) | (1ULL << KC_HOOK_SETRESGID) | (1ULL << KC_HOOK_SETREGID))

static int parse_rule(struct parse *ps, yaml_node_t *n)
{
	struct kc_audit_policy *p = ps->p;
	unsigned idx = p->n_rules;
	struct kc_audit_rule *r = &p->rules[idx];
	struct rule_ctx rc = {.idx = idx};
	bool has_path = false, has_cg = false, has_name = false, has_sc = false;
	uint32_t rate = 0, burst = 0;

	if (idx >= KC_AUDIT_MAX_RULES)
		return perr(ps, n, "more than %d rules", KC_AUDIT_MAX_RULES);
	if (n->type != YAML_MAPPING_NODE)
		return perr(ps, n, "rules: each rule is a mapping (name:, syscalls:, ...)");
	p->n_rules++;
	r->uid_max = r->euid_max = UINT32_MAX;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
		const char *ks = scalar(k), *vs = scalar(v);
		int rc2 = 0;

		if (!ks)
			return perr(ps, k, "rule keys are strings");
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr; q++) {
			const char *qs = scalar(node(ps, q->key));

			if (qs && !strcmp(qs, ks))
				return perr(ps, k, "%s: given twice in the rule", ks);
		}
		if (!strcmp(ks, "name")) {
			if (!vs || !*vs || strlen(vs) > KC_AUDIT_NAME_MAX ||
			    strspn(vs, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789_.-") != strlen(vs))
				return perr(ps, v, "name: expected 1 to %d of [A-Za-z0-9_.-]",
					    KC_AUDIT_NAME_MAX);
			for (unsigned i = 0; i < idx; i++)
				if (!strcmp(p->names[i], vs))
					return perr(ps, v, "name: '%s' is used by another rule",
						    vs);
			strcpy(p->names[idx], vs);
			has_name = true;
		} else if (!strcmp(ks, "description") || !strcmp(ks, "desc")) {
			if (!vs)
				return perr(ps, v, "%s: expected a string", ks);
		} else if (!strcmp(ks, "syscalls")) {
			rc2 = each_item(ps, v, "syscalls", 64, add_syscall, &rc);
			has_sc = true;
		} else if (!strcmp(ks, "paths")) {
			rc = (struct rule_ctx){.idx = idx, .kind = KC_LPM_PATH, .what = "paths"};
			rc2 = each_item(ps, v, "paths", KC_AUDIT_RULE_PREFIXES, add_prefix, &rc);
			has_path = true;
		} else if (!strcmp(ks, "binary")) {
			rc = (struct rule_ctx){.idx = idx, .kind = KC_LPM_BIN, .what = "binary"};
			rc2 = each_item(ps, v, "binary", KC_AUDIT_RULE_PREFIXES, add_prefix, &rc);
			p->pol.bin_any &= ~(1ULL << idx);
		} else if (!strcmp(ks, "cgroup")) {
			rc = (struct rule_ctx){.idx = idx, .kind = KC_LPM_CG, .what = "cgroup"};
			rc2 = each_item(ps, v, "cgroup", KC_AUDIT_RULE_PREFIXES, add_prefix, &rc);
			has_cg = true;
		} else if (!strcmp(ks, "uid")) {
			rc2 = parse_range(ps, v, "uid", &r->uid_min, &r->uid_max);
			r->flags |= KC_RULE_UID;
		} else if (!strcmp(ks, "euid")) {
			rc2 = parse_range(ps, v, "euid", &r->euid_min, &r->euid_max);
			r->flags |= KC_RULE_EUID;
		} else if (!strcmp(ks, "args")) {
			rc2 = parse_args(ps, v, idx);
		} else if (!strcmp(ks, "action")) {
			unsigned a;

			for (a = 0; a < 4 && (!vs || strcmp(vs, action_names[a])); a++)
				;
			if (a == 4)
				return perr(ps, v, "action: expected audit, kill, ignore or deny");
			r->action = a;
		} else if (!strcmp(ks, "rate_limit")) {
			rc2 = parse_u32(ps, v, "rate_limit", &rate);
			if (!rc2 && (rate == 0 || rate > 1000000))
				return perr(ps, v, "rate_limit: expected 1 to 1000000 events/s");
		} else if (!strcmp(ks, "rate_burst")) {
			rc2 = parse_u32(ps, v, "rate_burst", &burst);
			if (!rc2 && (burst == 0 || burst > 1000000))
				return perr(ps, v, "rate_burst: expected 1 to 1000000");
		} else {
			return perr(
			    ps, k,
			    "unknown rule key '%.64s' (expected name, description, syscalls, "
			    "paths, binary, uid, euid, cgroup, args, action, rate_limit, "
			    "rate_burst)",
			    ks);
		}
		if (rc2)
			return rc2;
	}
	if (!has_name)
		return perr(ps, n, "rule has no name");
	if (!has_sc)
		return perr(ps, n, "rule '%s' has no syscalls", p->names[idx]);
	if (has_path) {
		p->pol.path_any &= ~(1ULL << idx);
		if (p->hooks[idx] & ~PATH_HOOKS)
			return perr(
			    ps, n,
			    "rule '%s': paths apply only to execve, execveat, openat, "
			    "openat2, unlinkat, renameat2, fchmodat, fchownat, mount, umount2, "
			    "open_by_handle_at",
			    p->names[idx]);
	}
	if (has_cg)
		p->pol.cg_any &= ~(1ULL << idx);
	if ((r->flags & KC_RULE_ARG) && r->arg_index == KC_RULE_ARG_ANY &&
	    (p->hooks[idx] & ~ID_HOOKS))
		return perr(ps, n, "rule '%s': args index any is for the setuid/setgid family only",
			    p->names[idx]);
	if (burst && !rate)
		return perr(ps, n, "rule '%s': rate_burst without rate_limit", p->names[idx]);
	if (rate) {
		r->flags |= KC_RULE_RATE;
		r->interval_ns = 1000000000ULL / rate;
		r->burst_ns = (uint64_t)((burst ? burst : rate) - 1) * r->interval_ns;
	}
	if (r->action == KC_ACT_DENY) {
		if (p->hooks[idx] != 1ULL << KC_HOOK_CONNECT || !has_cg ||
		    (r->flags & (KC_RULE_ARG | KC_RULE_EUID)))
			return perr(
			    ps, n,
			    "rule '%s': deny needs syscalls [connect] and a cgroup, and allows "
			    "no args or euid (the kernel refuses the connect in the cgroup hook)",
			    p->names[idx]);
		p->pol.deny |= 1ULL << idx;
		p->has_deny = true;
	}
	if (r->flags & (KC_RULE_UID | KC_RULE_EUID | KC_RULE_ARG))
		p->pol.slow |= 1ULL << idx;
	for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++)
		if (p->hooks[idx] & (1ULL << h))
			p->pol.hook_rules[h] |= 1ULL << idx;
	return 0;
}

static int parse_root(struct parse *ps)
{
	yaml_node_t *root = yaml_document_get_root_node(ps->doc);
	bool have_rules = false;

	if (!root)
		return perr(ps, NULL, "empty policy (expected a mapping with rules:)");
	if (root->type != YAML_MAPPING_NODE)
		return perr(ps, root, "expected a mapping with version: and rules:");
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
		const char *ks = scalar(k);

		if (ks && !strcmp(ks, "version")) {
			const char *vs = scalar(v);

			if (!vs || strcmp(vs, "1"))
				return perr(ps, v, "version: expected 1");
		} else if (ks && !strcmp(ks, "rules")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return perr(ps, v, "rules: expected a list of rules");
			for (yaml_node_item_t *it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				int rc = parse_rule(ps, node(ps, *it));

				if (rc)
					return rc;
			}
			have_rules = true;
		} else {
			return perr(ps, k, "unknown key '%.64s' (expected version, rules)",
				    ks ? ks : "?");
		}
	}
	if (!have_rules)
		return perr(ps, root, "no rules: list");
	return 0;
}

/* Each entry's mask: its rules and those of every same-kind entry that is a prefix of it, so
 * that the kernel's longest-prefix lookup returns every rule that matches. */
static void compile(struct kc_audit_policy *p)
{
	for (unsigned i = 0; i < p->n_prefixes; i++) {
		struct kc_audit_prefix *e = &p->prefixes[i];

		e->mask = 0;
		for (unsigned j = 0; j < p->n_prefixes; j++) {
			struct kc_audit_prefix *q = &p->prefixes[j];

			if (q->kind != e->kind)
				continue;
			if (q->exact ? (e->exact && q->len == e->len && !memcmp(q->s, e->s, e->len))
				     : (q->len <= e->len && !memcmp(q->s, e->s, q->len)))
				e->mask |= q->rules;
		}
	}
}

uint64_t kc_audit_policy_match(const struct kc_audit_policy *p, uint8_t kind, const char *s)
{
	size_t len = strlen(s);
	int best = -1;

	for (unsigned i = 0; i < p->n_prefixes; i++) {
		const struct kc_audit_prefix *e = &p->prefixes[i];
		bool hit =
		    e->kind == kind && (e->exact ? (e->len == len && !memcmp(e->s, s, len))
						 : (e->len <= len && !memcmp(e->s, s, e->len)));

		if (hit && (best < 0 ||
			    e->len + e->exact > p->prefixes[best].len + p->prefixes[best].exact))
			best = i;
	}
	return best < 0 ? 0 : p->prefixes[best].mask;
}

uint32_t kc_audit_policy_head_slot(const char *s)
{
	uint8_t c1 = s[0] ? (uint8_t)s[1] : 0;
	uint8_t c2 = c1 ? (uint8_t)s[2] : 0;

	return kc_audit_head_slot(c1, c2);
}

void kc_audit_policy_head(const struct kc_audit_policy *p, uint64_t *head)
{
	memset(head, 0, KC_AUDIT_HEAD_SLOTS * sizeof(*head));
	for (unsigned i = 0; i < p->n_prefixes; i++) {
		const struct kc_audit_prefix *e = &p->prefixes[i];
		/* The bytes every matching string starts with: the prefix, and its NUL if exact. */
		unsigned n = e->len + e->exact;

		if (e->kind != KC_LPM_PATH)
			continue;
		if (n >= 3) {
			head[kc_audit_head_slot((uint8_t)e->s[1], (uint8_t)e->s[2])] |= e->mask;
		} else if (n == 2) {
			for (unsigned c2 = 0; c2 < 256; c2++)
				head[kc_audit_head_slot((uint8_t)e->s[1], (uint8_t)c2)] |= e->mask;
		} else {
			for (unsigned k = 0; k < KC_AUDIT_HEAD_SLOTS; k++)
				head[k] |= e->mask;
		}
	}
}

struct kc_audit_policy *kc_audit_policy_parse(const char *name, const char *buf, size_t len,
					      char *err, size_t errlen)
{
	struct kc_audit_policy *p = calloc(1, sizeof(*p));
	yaml_document_t doc;
	struct parse ps = {.file = name, .doc = &doc, .err = err, .errlen = errlen, .p = p};
	int rc;

	if (!p || !(p->prefixes = calloc(KC_AUDIT_MAX_PREFIXES, sizeof(*p->prefixes)))) {
		snprintf(err, errlen, "%s: out of memory", name);
		kc_audit_policy_free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->pol.path_any = p->pol.bin_any = p->pol.cg_any = ~0ULL;
	rc = kc_yaml_load(&doc, name, buf, len, err, errlen);
	if (rc) {
		kc_audit_policy_free(p);
		errno = -rc;
		return NULL;
	}
	rc = parse_root(&ps);
	yaml_document_delete(&doc);
	if (rc) {
		kc_audit_policy_free(p);
		errno = EINVAL;
		return NULL;
	}
	compile(p);
	return p;
}

struct kc_audit_policy *kc_audit_policy_load(const char *path, char *err, size_t errlen)
{
	struct kc_audit_policy *p;
	char *buf;
	size_t n;
	int rc;

	rc = kc_yaml_read_file(path, KC_AUDIT_POLICY_FILE_MAX, &buf, &n, err, errlen);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	p = kc_audit_policy_parse(path, buf, n, err, errlen);
	free(buf);
	return p;
}

void kc_audit_policy_free(struct kc_audit_policy *p)
{
	if (!p)
		return;
	free(p->prefixes);
	free(p);
}
