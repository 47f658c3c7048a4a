/* test_policy_file: the network policy's file and words (user/netpol/policy_file.c), and the allow
 * directive (user/core/config.c): what is accepted, and that everything else is refused with
 * file:line and what was expected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "netpol/policy_file.h"

static const char good[] =
    "audit: false                 # true: count \"would deny\", drop nothing\n"
    "protect:                     # ports the policy protects, each with its default action\n"
    "  - {proto: udp, port: 11211, default: deny}\n"
    "  - {proto: tcp, port: 11211, default: deny}\n"
    "rules:\n"
    "  - {action: allow, prefix: 198.18.0.0/24, proto: udp, ports: 11211}\n"
    "  - {action: deny, prefix: \"2001:db8::/32\"}              # proto/ports omitted\n"
    "  - {action: limit, prefix: 198.18.1.0/24, proto: udp, ports: 11000-12000, rate: 1000, "
    "burst: 100}\n";

static void test_good_file(void **state)
{
	struct kc_pol_spec s;
	char err[300], t[KC_POL_TEXT_MAX];

	(void)state;
	assert_int_equal(kc_pol_parse_buf(&s, "p.yaml", good, strlen(good), 100, err, sizeof(err)),
			 0);
	assert_false(s.audit);
	assert_true(s.protect_given);
	assert_int_equal(s.n_protect, 2);
	assert_int_equal(s.protect[1].proto, KC_POL_PROTO_TCP);
	assert_int_equal(s.protect[1].port, 11211);
	assert_int_equal(s.protect[1].action, KC_POL_DENY);
	assert_int_equal(s.n_rules, 3);
	kc_pol_rule_text(&s.rules[0], t, sizeof(t));
	assert_string_equal(t, "allow 198.18.0.0/24 udp 11211");
	assert_int_equal(s.rules[0].line, 6);
	kc_pol_rule_text(&s.rules[1], t, sizeof(t));
	assert_string_equal(t, "deny 2001:db8::/32");
	assert_int_equal(s.rules[1].lo, 0);
	assert_int_equal(s.rules[1].hi, 65535);
	kc_pol_rule_text(&s.rules[2], t, sizeof(t));
	assert_string_equal(t, "limit 198.18.1.0/24 udp 11000-12000 --rate 1000 --burst 100");
	assert_int_equal(kc_pol_spec_finish(&s, "p.yaml", 11211, NULL, 0, 100, err, sizeof(err)),
			 0);
	kc_pol_spec_free(&s);

	/* Without protect: the memcached port, udp and tcp, default deny; --allow appended. */
	{
		const char *f = "rules:\n  - {action: deny, prefix: 198.18.9.0/24}\n";
		struct kc_prefix allow[2];

		assert_int_equal(kc_prefix_parse("198.18.0.0/15", &allow[0], err, sizeof(err)), 0);
		assert_int_equal(kc_prefix_parse("2001:2::1", &allow[1], err, sizeof(err)), 0);
		assert_int_equal(allow[1].len, 128);
		assert_int_equal(
		    kc_pol_parse_buf(&s, "p.yaml", f, strlen(f), 100, err, sizeof(err)), 0);
		assert_int_equal(
		    kc_pol_spec_finish(&s, "p.yaml", 4242, allow, 2, 100, err, sizeof(err)), 0);
		assert_int_equal(s.n_protect, 2);
		assert_int_equal(s.protect[0].port, 4242);
		assert_int_equal(s.n_rules, 3);
		kc_pol_rule_text(&s.rules[2], t, sizeof(t));
		assert_string_equal(t, "allow 2001:2::1/128");
		assert_int_equal(s.rules[2].origin, KC_POL_FROM_ALLOW);
		kc_pol_spec_free(&s);
	}
	/* Empty files and documents: no rules. */
	assert_int_equal(kc_pol_parse_buf(&s, "e.yaml", "", 0, 100, err, sizeof(err)), 0);
	assert_int_equal(s.n_rules, 0);
	assert_int_equal(kc_pol_parse_buf(&s, "e.yaml", "---\n", 4, 100, err, sizeof(err)), 0);
	assert_int_equal(kc_pol_parse_buf(&s, "e.yaml", "rules: []\n", 10, 100, err, sizeof(err)),
			 0);
}

/* Each bad file: the error must be exactly "bad.yaml:LINE: ..." and contain what. */
static const struct {
	const char *file;
	const char *want;
} bad[] = {
    {"rules:\n  - {action: allow, prefix: 198.18.0.300/24}\n",
     "bad.yaml:2: prefix: expected an IPv4 or IPv6 prefix such as 198.18.0.0/24 or "
     "2001:db8::/32, got '198.18.0.300/24'"},
    {"rules:\n  - {action: allow, prefix: 198.18.0.0/33}\n",
     "bad.yaml:2: prefix: length 33 is more than 32 in '198.18.0.0/33'"},
    {"rules:\n\n  - {action: deny, prefix: \"2001:db8::/129\"}\n",
     "bad.yaml:3: prefix: length 129 is more than 128"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.1/24}\n",
     "bad.yaml:2: prefix: '198.18.0.1/24' has host bits set (the network is 198.18.0.0/24)"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, proto: udp, ports: 12000-11000}\n",
     "bad.yaml:2: ports: expected PORT or LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got "
     "'12000-11000'"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, ports: 70000}\n",
     "bad.yaml:2: ports: expected PORT or LOW-HIGH"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, ports: 0}\n",
     "bad.yaml:2: ports: expected PORT or LOW-HIGH"},
    {"rules:\n  - action: limit\n    prefix: 198.18.0.0/24\n    rate: 0\n",
     "bad.yaml:4: rate: expected an integer from 1 to 100000000, got '0'"},
    {"rules:\n  - {action: limit, prefix: 198.18.0.0/24, rate: 5, burst: 0}\n",
     "bad.yaml:2: burst: expected an integer from 1 to 1000000, got '0'"},
    {"rules:\n  - {action: limit, prefix: 198.18.0.0/24}\n",
     "bad.yaml:2: limit: expected a rate (packets per second per source)"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, rate: 5}\n",
     "bad.yaml:2: rate: only a limit has a rate and a burst"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, port: 5}\n",
     "bad.yaml:2: unknown key 'port' (a rule has action, prefix, proto, ports, rate, burst)"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, color: blue}\n",
     "bad.yaml:2: unknown key 'color' (a rule has action, prefix, proto, ports, rate, burst)"},
    {"audit: false\nrulez: []\n",
     "bad.yaml:2: unknown key 'rulez' (expected audit, protect, rules)"},
    {"rules:\n  - {action: block, prefix: 198.18.0.0/24}\n",
     "bad.yaml:2: action: expected allow, deny or limit, got 'block'"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24, proto: icmp}\n",
     "bad.yaml:2: proto: expected udp, tcp or any, got 'icmp'"},
    {"rules:\n  - {action: deny}\n", "bad.yaml:2: a rule needs an action and a prefix"},
    {"audit: maybe\n", "bad.yaml:1: audit: expected true or false, got 'maybe'"},
    {"rules: {action: deny}\n", "bad.yaml:1: rules: expected a list, got a mapping"},
    {"rules:\n  - deny 198.18.0.0/24\n",
     "bad.yaml:2: expected a rule ({key: value, ...}), got a scalar"},
    {"rules:\n  - {action: deny, prefix: [198.18.0.0/24]}\n",
     "bad.yaml:2: prefix: expected a value, got a list"},
    {"rules:\n  - {action: deny, action: allow, prefix: 198.18.0.0/24}\n",
     "bad.yaml:2: action: given twice"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24\n", "bad.yaml:3: "},
    {"rules: &a []\nprotect: *a\n", "bad.yaml:2: aliases are not supported"},
    {"rules: []\nrules: []\n", "bad.yaml:2: rules: given twice"},
    {"- 1\n", "bad.yaml:1: expected a mapping with audit, protect and rules, got a list"},
    {"protect:\n  - {proto: udp}\n", "bad.yaml:2: a protect entry needs a proto and a port"},
    {"protect:\n  - {proto: udp, port: 11000-12000}\n",
     "bad.yaml:2: port: expected a port from 1 to 65535, got '11000-12000'"},
    {"protect:\n  - {proto: any, port: 11211}\n",
     "bad.yaml:2: proto: expected udp or tcp, got 'any'"},
    {"protect:\n  - {proto: udp, port: 1}\n  - {proto: udp, port: 1, default: allow}\n",
     "bad.yaml:3: udp port 1 is already protected at line 2"},
    {"protect:\n  - {proto: udp, port: 1, default: limit}\n", "bad.yaml:2: limit: expected a rate"},
    {"protect:\n  - {proto: udp, port: 1, prefix: 198.18.0.0/24}\n",
     "bad.yaml:2: unknown key 'prefix' (a protect entry has proto, port, default, rate, burst)"},
    {"rules:\n  - {action: deny, prefix: 198.18.0.0/24}\n  - {action: deny, prefix: "
     "198.18.1.0/24}\n  - {action: deny, prefix: 198.18.2.0/24}\n  - {action: deny, prefix: "
     "198.18.3.0/24}\n",
     "bad.yaml:5: more than 3 rules (raise net-policy-max-rules)"},
};

static void test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kc_pol_spec s;
		char err[400];
		int rc = kc_pol_parse_buf(&s, "bad.yaml", bad[i].file, strlen(bad[i].file), 3, err,
					  sizeof(err));

		if (rc == 0)
			fail_msg("case %zu accepted:\n%s", i, bad[i].file);
		if (strncmp(err, bad[i].want, strlen(bad[i].want)))
			fail_msg("case %zu: got '%s', want '%s...'", i, err, bad[i].want);
		assert_int_equal(s.n_rules, 0);
		print_message("    %s\n", err);
	}
}

/* Refusals that need the whole policy: duplicates, named by both lines. */
static void test_duplicates(void **state)
{
	const char *f = "rules:\n"
			"  - {action: deny, prefix: 198.18.0.0/24, proto: udp, ports: 11211}\n"
			"  - {action: allow, prefix: 198.18.1.0/24}\n"
			"  - {action: allow, prefix: 198.18.0.0/24, proto: udp, ports: 11211}\n";
	struct kc_pol_spec s;
	char err[300];

	(void)state;
	assert_int_equal(kc_pol_parse_buf(&s, "dup.yaml", f, strlen(f), 100, err, sizeof(err)), 0);
	assert_int_equal(kc_pol_spec_finish(&s, "dup.yaml", 11211, NULL, 0, 100, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "dup.yaml:4: same prefix, protocol and ports as the rule at line 2");
	kc_pol_spec_free(&s);
}

static int words(struct kc_pol_rule_spec *r, const char *line, char *err, size_t errlen)
{
	char buf[256], *argv[16], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok_r(buf, " ", &save); t && argc < 16; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	return kc_pol_parse_words(r, argc, argv, err, errlen);
}

static void test_words(void **state)
{
	static const char *const ok[] = {
	    "allow 198.18.0.0/24",
	    "deny 198.18.0.0/24 udp",
	    "deny 198.18.0.0/24 tcp 11211",
	    "allow 2001:db8::/32 any 11000-12000",
	    "limit 198.18.1.0/24 udp 11000-12000 --rate 1000 --burst 100",
	    "limit 0.0.0.0/0 --rate 5 --burst 1",
	    "deny ::1/128",
	};
	static const struct {
		const char *line, *want;
	} ko[] = {
	    {"allow", "expected allow|deny|limit PREFIX"},
	    {"drop 198.18.0.0/24", "action: expected allow, deny or limit, got 'drop'"},
	    {"allow 198.18.0.0/24 udp 0", "ports: expected PORT or LOW-HIGH"},
	    {"allow 198.18.0.1/24", "has host bits set"},
	    {"allow 198.18.0.0/24 sctp", "proto: expected udp, tcp or any, got 'sctp'"},
	    {"limit 198.18.0.0/24 udp 1", "limit: expected a rate"},
	    {"limit 198.18.0.0/24 --rate", "unexpected '--rate'"},
	    {"limit 198.18.0.0/24 --rate 0", "rate: expected an integer from 1"},
	    {"allow 198.18.0.0/24 --rate 5", "rate: only a limit has a rate and a burst"},
	    {"allow 198.18.0.0/24 udp 1 2", "unexpected '2'"},
	    {"allow 198.18.0.0/24 --burst 1 --burst 2", "unexpected '--burst'"},
	};
	struct kc_pol_rule_spec r, r2;
	char err[300], t[KC_POL_TEXT_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (words(&r, ok[i], err, sizeof(err)))
			fail_msg("'%s' refused: %s", ok[i], err);
		kc_pol_rule_text(&r, t, sizeof(t));
		/* Printing and parsing again gives the same rule. */
		assert_int_equal(words(&r2, t, err, sizeof(err)), 0);
		assert_memory_equal(&r, &r2, sizeof(r));
		print_message("    %-60s -> %s\n", ok[i], t);
	}
	for (size_t i = 0; i < sizeof(ko) / sizeof(ko[0]); i++) {
		if (!words(&r, ko[i].line, err, sizeof(err)))
			fail_msg("'%s' accepted", ko[i].line);
		if (!strstr(err, ko[i].want))
			fail_msg("'%s': got '%s', want '%s'", ko[i].line, err, ko[i].want);
	}
	assert_int_equal(words(&r, "limit 198.18.0.0/24 --rate 2000000", err, sizeof(err)), 0);
	assert_int_equal(r.burst, KC_POL_BURST_MAX); /* burst: a second's worth, capped */
}

static void test_prefixes(void **state)
{
	struct kc_prefix a, b;
	char err[200], t[64];

	(void)state;
	assert_int_equal(kc_prefix_parse("198.18.0.0/15", &a, err, sizeof(err)), 0);
	assert_int_equal(kc_prefix_parse("198.19.255.255", &b, err, sizeof(err)), 0);
	assert_true(kc_prefix_contains(&a, &b));
	assert_false(kc_prefix_contains(&b, &a));
	assert_int_equal(kc_prefix_parse("198.20.0.0/16", &b, err, sizeof(err)), 0);
	assert_false(kc_prefix_contains(&a, &b));
	assert_int_equal(kc_prefix_parse("0.0.0.0/0", &a, err, sizeof(err)), 0);
	assert_true(kc_prefix_contains(&a, &b));
	assert_int_equal(kc_prefix_parse("2001:db8::/32", &a, err, sizeof(err)), 0);
	assert_false(kc_prefix_contains(&a, &b)); /* families differ */
	kc_prefix_text(&a, t, sizeof(t));
	assert_string_equal(t, "2001:db8::/32");
	for (const char *const *p = (const char *const[]){"", "/8", "1.2.3.4/", "1.2.3.4/x",
							  "1.2.3.4/+8", "1.2.3.4/08x", "::/-1",
							  "1.2.3.4 /8", "fe80::1%eth0/64", NULL};
	     *p; p++)
		if (!kc_prefix_parse(*p, &a, err, sizeof(err)))
			fail_msg("'%s' accepted", *p);
}

/* The allow directive: a YAML list, and a flag that may repeat; every value adds. */
static void test_allow_directive(void **state)
{
	char path[] = "/tmp/kc_allow_XXXXXX", err[300];
	char *argv[] = {"kcached",    "--config", path,	 "--allow",
			"10.0.0.0/8", "--allow",  "::1", NULL};
	struct kc_config cfg;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("port: 11311\nallow: [198.18.0.0/24, \"2001:db8::/32\"]\nxdp-mode: skb\niface: lo\n",
	      f);
	fclose(f);
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_parse_args(&cfg, 7, argv, err, sizeof(err)), 0);
	assert_string_equal(cfg.allow, "198.18.0.0/24,2001:db8::/32,10.0.0.0/8,::1");
	assert_false(cfg.net_policy_persist);
	assert_int_equal(cfg.net_policy_max_rules, 131072);

	f = fopen(path, "w");
	fputs("allow:\n  - 198.18.0.0/24\n  - 198.18.0.1/24\n", f);
	fclose(f);
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_load_yaml(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":3: allow: prefix: '198.18.0.1/24' has host bits set"));

	/* No XDP, nothing to enforce the policy with: refused. */
	kc_config_defaults(&cfg);
	{
		char *a2[] = {"kcached", "--allow", "10.0.0.0/8", NULL};

		assert_int_equal(kc_config_parse_args(&cfg, 3, a2, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "allow needs xdp-mode skb or native: XDP enforces the "
					 "network policy");
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_file),  cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_duplicates), cmocka_unit_test(test_words),
	    cmocka_unit_test(test_prefixes),   cmocka_unit_test(test_allow_directive),
	};

	return cmocka_run_group_tests_name("policy_file", tests, NULL, NULL);
}
