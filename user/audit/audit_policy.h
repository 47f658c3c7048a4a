/* audit_policy.h: the audit policy (YAML, --audit-policy) and its compilation into the
 * kernel's maps (include/kcache/audit.h). Pure userspace: parsing and compiling never touch
 * the kernel, so a bad policy is refused before anything changes.
 *
 * Format and every bound: docs/audit.md ("Policy"). In short:
 *
 *   rules:
 *     - name: sensitive-files         # required, [A-Za-z0-9_.-], at most 63 bytes, unique
 *       syscalls: [openat, openat2]   # required, names from kc_audit_hook_name()
 *       paths: [/etc/shadow, /root/.ssh/, "/etc/ssh/ssh_host_*"]
 *       binary: [/usr/bin/sudo]       # the caller's resolved executable
 *       uid: 1000 | [1000, 60000]     # real uid range; euid: the same for the effective uid
 *       cgroup: [/kubepods/]          # cgroup v2 path
 *       args: {index: 0, in: [16]}    # index 0-5 or any (setuid family), up to 4 values
 *       action: audit | kill | ignore | deny
 *       rate_limit: 10                # events per second per process; rate_burst: 20
 *
 * A string "x/" matches everything below x/, "x*" matches every string starting with x, any
 * other string matches exactly. Rules are tried in file order; the first that matches decides.
 */
#ifndef KC_AUDIT_POLICY_H
#define KC_AUDIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kcache/audit.h>

/* Prefixes one rule may list per kind (paths, binary, cgroup). */
#define KC_AUDIT_RULE_PREFIXES 64
/* Longest rule name. */
#define KC_AUDIT_NAME_MAX 63
/* Largest policy file read. */
#define KC_AUDIT_POLICY_FILE_MAX (1 << 20)

struct kc_audit_prefix {
	uint8_t kind;  /* KC_LPM_PATH, KC_LPM_BIN, KC_LPM_CG */
	uint8_t exact; /* matched with its NUL */
	uint16_t len;  /* bytes of s, NUL excluded */
	char s[KC_AUDIT_PREFIX_MAX + 1];
	uint64_t rules; /* rules listing this string */
	uint64_t mask;	/* compiled: rules of this entry and of every entry that prefixes it */
};

struct kc_audit_policy {
	unsigned n_rules;
	char names[KC_AUDIT_MAX_RULES][KC_AUDIT_NAME_MAX + 1];
	uint64_t hooks[KC_AUDIT_MAX_RULES]; /* bit per enum kc_audit_hook */
	struct kc_audit_rule rules[KC_AUDIT_MAX_RULES];
	struct kc_audit_pol pol;
	unsigned n_prefixes;
	struct kc_audit_prefix *prefixes; /* n_prefixes, compiled masks filled in */
	bool has_deny;			  /* a deny rule: attach the cgroup connect hooks */
};

/* Parses and compiles the policy in path, a regular file of at most KC_AUDIT_POLICY_FILE_MAX
 * bytes (core/yaml.h). Returns a policy (free with kc_audit_policy_free), or NULL with
 * "FILE:LINE: what was wrong" in err (errno EINVAL, EFBIG, ENOMEM, or the open error). */
struct kc_audit_policy *kc_audit_policy_load(const char *path, char *err, size_t errlen);

/* The same from a buffer; name is used in messages. */
struct kc_audit_policy *kc_audit_policy_parse(const char *name, const char *buf, size_t len,
					      char *err, size_t errlen);

void kc_audit_policy_free(struct kc_audit_policy *p);

/* The rule mask of the longest entry of kind that matches s (a NUL-terminated string), as the
 * kernel's LPM lookup would return it; for tests and for the cgroup scan. */
uint64_t kc_audit_policy_match(const struct kc_audit_policy *p, uint8_t kind, const char *s);

/* Fills head[KC_AUDIT_HEAD_SLOTS], the path head filter of p (see kc_audit_head_slot): for
 * every path s, kc_audit_policy_match(p, KC_LPM_PATH, s) is a subset of the slot of s. */
void kc_audit_policy_head(const struct kc_audit_policy *p, uint64_t *head);

/* The slot of string s in that table, as the kernel computes it. */
uint32_t kc_audit_policy_head_slot(const char *s);

/* Names: "openat", ... for hooks ("proc" for KC_HOOK_PROC); "audit", "kill", "ignore",
 * "deny" for actions. Static strings; "unknown" when out of range. */
const char *kc_audit_hook_name(unsigned hook);
const char *kc_audit_action_name(unsigned action);
/* Hook of a syscall name, or 0. */
unsigned kc_audit_hook_by_name(const char *name);

/* One row of the BPF program's dispatch tables: a syscall number on this machine (native, or
 * ia32 for compat tasks on x86-64) and the hook that audits it. Legacy calls (open, unlink,
 * rename, chmod, chown, lchown, rmdir) are audited by their *at form's hook (KC_SC_* flags). */
struct kc_audit_sc {
	const char *name;
	unsigned hook;
	int nr;
	uint8_t flags; /* KC_SC_* */
	bool ia32;
};
extern const struct kc_audit_sc kc_audit_syscalls[];
extern const unsigned kc_audit_n_syscalls;

/* Name of syscall nr as audited ("open", "openat", ...), or NULL. */
const char *kc_audit_syscall_name(unsigned nr, bool ia32);

#endif
