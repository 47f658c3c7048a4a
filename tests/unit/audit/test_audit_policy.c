/* test_audit_policy.c: the audit policy compiler without the kernel: masks per hook, the
 * longest-prefix masks the LPM trie will return (exact, directory and '*' prefixes, ancestors
 * folded in), the path head filter (a superset of them), rule conditions, and refusals with
 * file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_policy.h"

static struct kc_audit_policy *parse(const char *text, char *err, size_t errlen)
{
	return kc_audit_policy_parse("p.yaml", text, strlen(text), err, errlen);
}

static void refused(const char *text, const char *want)
{
	char err[512] = "";
	struct kc_audit_policy *p = parse(text, err, sizeof(err));

	if (p || !strstr(err, want))
		fail_msg("want '%s', got %s '%s'", want, p ? "a policy" : "error", err);
	kc_audit_policy_free(p);
}

static void test_masks(void **state)
{
	char err[512];
	struct kc_audit_policy *p = parse("version: 1\n"
					  "rules:\n"
					  "  - name: etc-exact\n"
					  "    syscalls: [openat, openat2]\n"
					  "    paths: [/etc/shadow]\n"
					  "  - name: etc-dir\n"
					  "    syscalls: [openat]\n"
					  "    paths: [/etc/]\n"
					  "    uid: [1000, 2000]\n"
					  "  - name: star\n"
					  "    syscalls: [execve]\n"
					  "    paths: [\"/etc/sha*\"]\n"
					  "    binary: [/usr/bin/sudo]\n"
					  "    action: kill\n"
					  "  - name: cg\n"
					  "    syscalls: [connect]\n"
					  "    cgroup: [/kube/]\n"
					  "    action: deny\n"
					  "  - name: ids\n"
					  "    syscalls: [setuid, setresuid]\n"
					  "    args: {index: any, in: [0]}\n"
					  "    rate_limit: 10\n",
					  err, sizeof(err));

	(void)state;
	if (!p)
		fail_msg("%s", err);
	assert_int_equal(p->n_rules, 5);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_OPENAT], 0x3);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_OPENAT2], 0x1);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_EXECVE], 0x4);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_CONNECT], 0x8);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_SETRESUID], 0x10);
	assert_int_equal(p->pol.path_any & 0x1f, 0x18);
	assert_int_equal(p->pol.bin_any & 0x1f, 0x1b);
	assert_int_equal(p->pol.cg_any & 0x1f, 0x17);
	assert_int_equal(p->pol.deny, 0x8);
	assert_int_equal(p->pol.slow, 0x12);
	assert_true(p->has_deny);
	/* Exact, directory and '*' entries, each with its ancestors folded in. */
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/etc/shadow"), 0x7);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/etc/shadow-"), 0x6);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/etc/passwd"), 0x2);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/etc"), 0x0);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/tmp/x"), 0x0);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_BIN, "/usr/bin/sudo"), 0x4);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_BIN, "/usr/bin/sudoedit"), 0x0);
	/* A cgroup directory matches itself and what is below it. */
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_CG, "/kube"), 0x8);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_CG, "/kube/pod1"), 0x8);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_CG, "/kubelet"), 0x0);
	assert_int_equal(p->rules[1].uid_min, 1000);
	assert_int_equal(p->rules[1].uid_max, 2000);
	assert_int_equal(p->rules[2].action, KC_ACT_KILL);
	assert_int_equal(p->rules[4].arg_index, KC_RULE_ARG_ANY);
	assert_int_equal(p->rules[4].interval_ns, 100000000ULL);
	assert_int_equal(p->rules[4].burst_ns, 900000000ULL);
	kc_audit_policy_free(p);
}

static void test_refusals(void **state)
{
	char longpath[300];

	(void)state;
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    bogus: 1\n",
		"p.yaml:4: unknown rule key 'bogus'");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    uid: [5, 1]\n",
		"p.yaml:4: uid: min 5 is above max 1");
	refused("rules:\n  - name: a\n    syscalls: openat\n    paths: relative\n",
		"p.yaml:4: paths: expected an absolute path");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    paths: [/a*b]\n",
		"'*' is allowed only at the end");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n  - name: a\n    syscalls: [bpf]\n",
		"p.yaml:4: name: 'a' is used by another rule");
	refused("rules:\n  - syscalls: [openat]\n", "p.yaml:2: rule has no name");
	refused("rules:\n  - name: a\n", "rule 'a' has no syscalls");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    args: {index: 7, in: [1]}\n",
		"args: index: expected 0 to 5 or any");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    args: {index: any, in: [1]}\n",
		"args index any is for the setuid/setgid family only");
	refused(
	    "rules:\n  - name: a\n    syscalls: [ptrace]\n    args: {index: 0, in: [1,2,3,4,5]}\n",
	    "args: in: more than 4 entries");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    rate_burst: 3\n",
		"rate_burst without rate_limit");
	refused("version: 2\nrules: []\n", "p.yaml:1: version: expected 1");
	refused("nothing: here\n", "p.yaml:1: unknown key 'nothing'");
	refused("", "empty policy");
	refused("rules: {a: 1}\n", "rules: expected a list of rules");
	refused("rules:\n  - name: a\n    syscalls: [openat]\n    paths: &x [/a]\n  - name: b\n"
		"    syscalls: [openat]\n    paths: *x\n    uid: *x\n",
		"uid: expected an integer or [min, max]");
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[254] = 0;
	{
		char text[600];

		snprintf(text, sizeof(text),
			 "rules:\n  - name: a\n    syscalls: [openat]\n    paths: [%s]\n",
			 longpath);
		refused(text, "p.yaml:4: paths: 254 bytes, longer than the 253 allowed");
		longpath[253] = 0;
		snprintf(text, sizeof(text),
			 "rules:\n  - name: a\n    syscalls: [openat]\n    paths: [%s]\n",
			 longpath);
		struct kc_audit_policy *p = parse(text, text, sizeof(text));

		assert_non_null(p);
		kc_audit_policy_free(p);
	}
}

/* The head filter is a superset of the LPM: every rule a path matches is in the path's slot,
 * for short, exact, directory and '*' prefixes and for paths of 0 to 3 bytes; and it filters:
 * a path sharing no head with any prefix has an empty slot. */
static void test_head(void **state)
{
	static const char *const paths[] = {"",
					    "/",
					    "/e",
					    "/et",
					    "/etc",
					    "/etc/shadow",
					    "/etc/shadow-",
					    "/etc/passwd",
					    "/root/.ssh/id",
					    "/r",
					    "/x",
					    "/xy",
					    "/xyz",
					    "x",
					    "xy",
					    "/var/tmp/f",
					    "/usr/lib/x",
					    "relative/p",
					    "/proc/1/x",
					    "/tmp/x"};
	char err[512];
	struct kc_audit_policy *p =
	    parse("rules:\n"
		  "  - name: files\n"
		  "    syscalls: [openat]\n"
		  "    paths: [/etc/shadow, /root/.ssh/, \"/etc/ssh/ssh_host_*\"]\n"
		  "  - name: short\n"
		  "    syscalls: [unlinkat]\n"
		  "    paths: [/x, \"/r*\"]\n"
		  "  - name: root\n"
		  "    syscalls: [fchmodat]\n"
		  "    paths: [/]\n"
		  "  - name: all\n"
		  "    syscalls: [mount]\n"
		  "    paths: [\"/*\"]\n",
		  err, sizeof(err));
	uint64_t *head = calloc(KC_AUDIT_HEAD_SLOTS, sizeof(*head));

	(void)state;
	if (!p || !head)
		fail_msg("%s", err);
	kc_audit_policy_head(p, head);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		uint64_t m = kc_audit_policy_match(p, KC_LPM_PATH, paths[i]);
		uint64_t h = head[kc_audit_policy_head_slot(paths[i])];

		if ((m & h) != m)
			fail_msg("%s: LPM 0x%llx, head slot 0x%llx", paths[i],
				 (unsigned long long)m, (unsigned long long)h);
	}
	/* "/" followed by anything (rule 3) is in every slot; the rule on /etc and /root files
	 * (rule 0) is not in the slots of other heads. */
	assert_int_equal(head[kc_audit_policy_head_slot("/var/tmp/f")] & 0x9, 0x8);
	assert_int_equal(head[kc_audit_policy_head_slot("/usr/lib/x")] & 0x9, 0x8);
	assert_int_equal(head[kc_audit_policy_head_slot("relative/p")] & 0x9, 0x8);
	assert_int_equal(head[kc_audit_policy_head_slot("/etc/passwd")] & 0x1, 0x1);
	assert_int_equal(head[kc_audit_policy_head_slot("/x")] & 0x2, 0x2);
	assert_int_equal(head[kc_audit_policy_head_slot("/")] & 0x4, 0x4);
	free(head);
	kc_audit_policy_free(p);
}

/* Issue 13: open_by_handle_at takes paths (matched on the file it opened), setregid takes
 * "args: any" like the rest of the setuid family, setgroups (an array) does not. */
static void test_new_hooks(void **state)
{
	char err[512] = "";
	struct kc_audit_policy *p =
	    parse("rules:\n"
		  "  - name: h\n"
		  "    syscalls: [open_by_handle_at, openat]\n"
		  "    paths: [/etc/shadow]\n"
		  "  - name: g\n"
		  "    syscalls: [setregid]\n"
		  "    args: {index: any, in: [0]}\n"
		  "  - name: v\n"
		  "    syscalls: [process_vm_readv, process_vm_writev, setgroups, "
		  "io_uring_setup]\n",
		  err, sizeof(err));

	(void)state;
	if (!p)
		fail_msg("refused: %s", err);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_OPEN_BY_HANDLE_AT], 1);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_SETREGID], 2);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_PROCESS_VM_READV], 4);
	assert_int_equal(p->pol.hook_rules[KC_HOOK_IO_URING_SETUP], 4);
	assert_int_equal(kc_audit_policy_match(p, KC_LPM_PATH, "/etc/shadow"), 1);
	kc_audit_policy_free(p);
	refused("rules:\n  - name: a\n    syscalls: [setgroups]\n    args: {index: any, in: [0]}\n",
		"args index any is for the setuid/setgid family only");
	refused("rules:\n  - name: a\n    syscalls: [setgroups]\n    paths: [/x]\n", "paths");
}

static void test_tables(void **state)
{
	(void)state;
	assert_string_equal(kc_audit_hook_name(KC_HOOK_OPENAT), "openat");
	assert_int_equal(kc_audit_hook_by_name("umount"), KC_HOOK_UMOUNT2);
	assert_int_equal(kc_audit_hook_by_name("proc"), 0);
	for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++) {
		int native = 0;

		for (unsigned i = 0; i < kc_audit_n_syscalls; i++)
			native |= kc_audit_syscalls[i].hook == h && !kc_audit_syscalls[i].ia32;
		if (!native)
			fail_msg("hook %s has no syscall number", kc_audit_hook_name(h));
	}
	assert_string_equal(kc_audit_syscall_name(257, false), "openat");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_masks),     cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_head),      cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_new_hooks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
