/* policy_file.h: a network policy as the daemon holds it (struct kc_pol_spec): read from the
 * YAML file of --net-policy, from kcachectl's words, or made from --allow alone; checked
 * against every bound; printed back in kcachectl's words. No BPF and no global state here:
 * user/netpol/policy_maps.h turns a spec into the kernel's entries.
 *
 * The file (docs/network-policy.md has every bound):
 *
 *   audit: false                 # true: count "would deny", drop nothing
 *   protect:                     # ports the policy protects, each with its default action
 *     - {proto: udp, port: 11211, default: deny}
 *     - {proto: tcp, port: 11211, default: deny}
 *   rules:
 *     - {action: allow, prefix: 198.18.0.0/24, proto: udp, ports: 11211}
 *     - {action: deny, prefix: "2001:db8::/32"}   # proto/ports omitted: any protected port
 *     - {action: limit, prefix: 198.18.1.0/24, proto: udp, ports: 11000-12000, rate: 1000,
 *        burst: 100}
 *
 * Without `protect`, the memcached port is protected for udp and tcp with default deny.
 * A prefix with host bits set is refused (it is almost always a typo for a wider or narrower
 * network); a bare address is a /32 or /128.
 */
#ifndef KC_POLICY_FILE_H
#define KC_POLICY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kcache/policy.h>

#include "core/prefix.h"

/* Largest policy file read (a 100,000-rule file is about 7 MB). */
#define KC_POL_FILE_MAX (64u << 20)
/* Longest rule in kcachectl's words, with its NUL. */
#define KC_POL_TEXT_MAX 128

/* Where a rule came from, in precedence order among rules otherwise equal. */
enum kc_pol_origin {
	KC_POL_FROM_FILE = 0,	  /* the policy file */
	KC_POL_FROM_ALLOW = 1,	  /* --allow */
	KC_POL_FROM_RUNTIME = 2,  /* kcachectl policy add */
	KC_POL_FROM_LOOPBACK = 3, /* the implicit loopback allows */
};

struct kc_pol_rule_spec {
	struct kc_prefix pfx;
	uint8_t proto;	 /* KC_POL_PROTO_ANY, _TCP, _UDP */
	uint8_t action;	 /* enum kc_pol_action */
	uint8_t origin;	 /* enum kc_pol_origin */
	uint16_t lo, hi; /* destination ports, inclusive; 0-65535 when omitted */
	uint32_t rate;	 /* limit: packets per second per source */
	uint32_t burst;	 /* limit: packets at once */
	uint32_t line;	 /* line in the file, 0 when not from one */
};

/* A protected port and its default action. */
struct kc_pol_protect {
	uint8_t proto; /* KC_POL_PROTO_TCP or _UDP */
	uint8_t action;
	uint16_t port;
	uint32_t rate, burst; /* default: limit */
	uint32_t line;
};

struct kc_pol_spec {
	bool audit;
	bool protect_given; /* the file had a protect list (else kc_pol_spec_finish fills it) */
	struct kc_pol_protect protect[KC_POL_PORTS_MAX];
	uint32_t n_protect;
	struct kc_pol_rule_spec *rules;
	uint32_t n_rules, cap;
};

void kc_pol_spec_init(struct kc_pol_spec *s);
void kc_pol_spec_free(struct kc_pol_spec *s);

/* Deep copy. Returns 0 or -ENOMEM (dst is then empty). */
int kc_pol_spec_copy(struct kc_pol_spec *dst, const struct kc_pol_spec *src);

/* Appends r. Returns 0, -ENOMEM, or -E2BIG past max_rules. */
int kc_pol_spec_add(struct kc_pol_spec *s, const struct kc_pol_rule_spec *r, uint32_t max_rules);

/* Parses a policy from buf (name is used in messages). Rules beyond max_rules are refused.
 * Returns 0, or -EINVAL with "NAME:LINE: what was expected" in err; s is then empty. */
int kc_pol_parse_buf(struct kc_pol_spec *s, const char *name, const char *buf, size_t len,
		     uint32_t max_rules, char *err, size_t errlen);

/* Reads and parses path, a regular file of at most KC_POL_FILE_MAX bytes (core/yaml.h).
 * Returns 0, -EINVAL as above (also "PATH:1: expected a regular file, got a FIFO"), -EFBIG
 * above the cap, or -errno ("PATH: No such file"). */
int kc_pol_parse_file(struct kc_pol_spec *s, const char *path, uint32_t max_rules, char *err,
		      size_t errlen);

/* Parses kcachectl's words, argv[0] being the action:
 *   allow|deny|limit PREFIX [udp|tcp|any [PORT[-PORT]]] [--rate PPS] [--burst N]
 * Returns 0, or -EINVAL with what was expected in err. */
int kc_pol_parse_words(struct kc_pol_rule_spec *r, int argc, char **argv, char *err, size_t errlen);

/* Completes a parsed spec for use: without a protect list, protects port for udp and tcp
 * with default deny; appends an allow rule per --allow prefix (allow[0..n_allow)). Checks
 * that no two rules share prefix, protocol and ports. Returns 0, or -EINVAL / -E2BIG with
 * the reason (naming the file's lines where it can) in err. */
int kc_pol_spec_finish(struct kc_pol_spec *s, const char *name, uint16_t port,
		       const struct kc_prefix *allow, uint32_t n_allow, uint32_t max_rules,
		       char *err, size_t errlen);

/* The index of the rule with the same prefix, protocol and ports as r, or -1. */
int kc_pol_spec_find(const struct kc_pol_spec *s, const struct kc_pol_rule_spec *r);

/* Writes r in kcachectl's words ("limit 198.18.1.0/24 udp 11000-12000 --rate 1000 --burst
 * 100") into buf (KC_POL_TEXT_MAX is enough). */
void kc_pol_rule_text(const struct kc_pol_rule_spec *r, char *buf, size_t len);

/* "allow", "deny", "limit"; "udp", "tcp", "any". */
const char *kc_pol_action_name(unsigned action);
const char *kc_pol_proto_name(unsigned proto);

/* Does prefix a contain address/prefix b (same family, a->len <= b->len)? */

#endif
