/* policy_file.c: the network policy's YAML file and kcachectl's words (see policy_file.h).
 *
 * The file is read with libyaml's event API rather than its document API: a 100,000-rule file
 * is 700,000 nodes as a document, and a flat walk needs none of them. Every rule, from the file
 * or from words, goes through one checker (rule_check) so both refuse the same things with the
 * same words.
 */
#include "netpol/policy_file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/num.h"
#include "core/yaml.h"

#define VAL_MAX 64 /* longest scalar value kept (a prefix is at most 43 bytes) */

const char *kc_pol_action_name(unsigned action)
{
	switch (action) {
	case KC_POL_ALLOW:
		return "allow";
	case KC_POL_DENY:
		return "deny";
	case KC_POL_LIMIT:
		return "limit";
	}
	return "none";
}

const char *kc_pol_proto_name(unsigned proto)
{
	return proto == KC_POL_PROTO_UDP ? "udp" : proto == KC_POL_PROTO_TCP ? "tcp" : "any";
}

void kc_pol_spec_init(struct kc_pol_spec *s)
{
	memset(s, 0, sizeof(*s));
}

void kc_pol_spec_free(struct kc_pol_spec *s)
{
	free(s->rules);
	kc_pol_spec_init(s);
}

int kc_pol_spec_copy(struct kc_pol_spec *dst, const struct kc_pol_spec *src)
{
	*dst = *src;
	dst->rules = NULL;
	dst->cap = dst->n_rules = 0;
	if (!src->n_rules)
		return 0;
	dst->rules = malloc(src->n_rules * sizeof(*dst->rules));
	if (!dst->rules) {
		kc_pol_spec_init(dst);
		return -ENOMEM;
	}
	memcpy(dst->rules, src->rules, src->n_rules * sizeof(*dst->rules));
	dst->n_rules = dst->cap = src->n_rules;
	return 0;
}

int kc_pol_spec_add(struct kc_pol_spec *s, const struct kc_pol_rule_spec *r, uint32_t max_rules)
{
	if (s->n_rules >= max_rules)
		return -E2BIG;
	if (s->n_rules == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 64;
		struct kc_pol_rule_spec *n = realloc(s->rules, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->rules = n;
		s->cap = cap;
	}
	s->rules[s->n_rules++] = *r;
	return 0;
}

/* ---- prefixes and numbers ---------------------------------------------------------------- */

/* ---- one rule, from whatever source --------------------------------------------------- */

enum field { F_ACTION, F_PREFIX, F_PROTO, F_PORTS, F_PORT, F_RATE, F_BURST, F_DEFAULT, F__N };
static const char *const field_names[F__N] = {"action", "prefix", "proto", "ports",
					      "port",	"rate",	  "burst", "default"};

struct fields {
	bool set[F__N];
	size_t line[F__N];
	char val[F__N][VAL_MAX + 1];
};

static int parse_action(const char *v, uint8_t *out, char *err, size_t errlen, const char *what)
{
	for (unsigned a = KC_POL_ALLOW; a <= KC_POL_LIMIT; a++)
		if (!strcmp(v, kc_pol_action_name(a))) {
			*out = (uint8_t)a;
			return 0;
		}
	kc_errf(err, errlen, "%s: expected allow, deny or limit, got '%s'", what, v);
	return -EINVAL;
}

static int parse_proto(const char *v, bool any_ok, uint8_t *out, char *err, size_t errlen)
{
	if (!strcmp(v, "udp"))
		*out = KC_POL_PROTO_UDP;
	else if (!strcmp(v, "tcp"))
		*out = KC_POL_PROTO_TCP;
	else if (any_ok && !strcmp(v, "any"))
		*out = KC_POL_PROTO_ANY;
	else {
		kc_errf(err, errlen, "proto: expected %s, got '%s'",
			any_ok ? "udp, tcp or any" : "udp or tcp", v);
		return -EINVAL;
	}
	return 0;
}

static int parse_ports(const char *v, uint16_t *lo, uint16_t *hi, char *err, size_t errlen)
{
	char a[16];
	const char *dash = strchr(v, '-');
	uint64_t x, y;

	if (strlen(v) >= sizeof(a))
		goto bad;
	if (!dash) {
		if (kc_parse_u64(v, 65535, &x) || x == 0)
			goto bad;
		*lo = *hi = (uint16_t)x;
		return 0;
	}
	memcpy(a, v, (size_t)(dash - v));
	a[dash - v] = 0;
	if (kc_parse_u64(a, 65535, &x) || kc_parse_u64(dash + 1, 65535, &y) || x == 0 || x > y)
		goto bad;
	*lo = (uint16_t)x;
	*hi = (uint16_t)y;
	return 0;
bad:
	kc_errf(err, errlen,
		"ports: expected PORT or LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '%s'", v);
	return -EINVAL;
}

static int parse_bounded(const char *v, const char *what, uint64_t max, uint32_t *out, char *err,
			 size_t errlen)
{
	uint64_t x;

	if (kc_parse_u64(v, max, &x) || x == 0) {
		kc_errf(err, errlen, "%s: expected an integer from 1 to %llu, got '%s'", what,
			(unsigned long long)max, v);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

/* rate and burst for an action: required rate and optional burst (default: one second's
 * worth, at most KC_POL_BURST_MAX) for limit, neither for allow and deny. *bad_line gets the
 * line of the field at fault. */
static int parse_rate(const struct fields *f, uint8_t action, uint32_t *rate, uint32_t *burst,
		      size_t *bad_line, char *err, size_t errlen)
{
	*rate = *burst = 0;
	if (action != KC_POL_LIMIT) {
		for (int k = F_RATE; k <= F_BURST; k++)
			if (f->set[k]) {
				*bad_line = f->line[k];
				kc_errf(err, errlen, "%s: only a limit has a rate and a burst",
					field_names[k]);
				return -EINVAL;
			}
		return 0;
	}
	if (!f->set[F_RATE]) {
		kc_errf(err, errlen, "limit: expected a rate (packets per second per source)");
		return -EINVAL;
	}
	*bad_line = f->line[F_RATE];
	if (parse_bounded(f->val[F_RATE], "rate", KC_POL_RATE_MAX, rate, err, errlen))
		return -EINVAL;
	*burst = *rate < KC_POL_BURST_MAX ? *rate : KC_POL_BURST_MAX;
	if (f->set[F_BURST]) {
		*bad_line = f->line[F_BURST];
		if (parse_bounded(f->val[F_BURST], "burst", KC_POL_BURST_MAX, burst, err, errlen))
			return -EINVAL;
	}
	return 0;
}

/* Checks a rule's fields and fills r. On error *bad_line is the line of the field at fault. */
static int rule_check(const struct fields *f, struct kc_pol_rule_spec *r, size_t *bad_line,
		      char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->lo = 0;
	r->hi = 65535;
	for (int k = F_PORT; k < F__N; k++)
		if (k != F_RATE && k != F_BURST && f->set[k]) {
			*bad_line = f->line[k];
			kc_errf(err, errlen,
				"unknown key '%s' (a rule has action, prefix, proto, ports, rate, "
				"burst)",
				field_names[k]);
			return -EINVAL;
		}
	if (!f->set[F_ACTION] || !f->set[F_PREFIX]) {
		kc_errf(err, errlen, "a rule needs an action and a prefix");
		return -EINVAL;
	}
	*bad_line = f->line[F_ACTION];
	if (parse_action(f->val[F_ACTION], &r->action, err, errlen, "action"))
		return -EINVAL;
	*bad_line = f->line[F_PREFIX];
	if (kc_prefix_parse(f->val[F_PREFIX], &r->pfx, err, errlen))
		return -EINVAL;
	r->proto = KC_POL_PROTO_ANY;
	if (f->set[F_PROTO]) {
		*bad_line = f->line[F_PROTO];
		if (parse_proto(f->val[F_PROTO], true, &r->proto, err, errlen))
			return -EINVAL;
	}
	if (f->set[F_PORTS]) {
		*bad_line = f->line[F_PORTS];
		if (parse_ports(f->val[F_PORTS], &r->lo, &r->hi, err, errlen))
			return -EINVAL;
	}
	*bad_line = f->line[F_ACTION];
	return parse_rate(f, r->action, &r->rate, &r->burst, bad_line, err, errlen);
}

static int protect_check(const struct fields *f, struct kc_pol_protect *p, size_t *bad_line,
			 char *err, size_t errlen)
{
	uint16_t lo, hi;

	memset(p, 0, sizeof(*p));
	for (int k = 0; k < F__N; k++)
		if (f->set[k] && (k == F_ACTION || k == F_PREFIX || k == F_PORTS)) {
			*bad_line = f->line[k];
			kc_errf(err, errlen,
				"unknown key '%s' (a protect entry has proto, port, default, rate, "
				"burst)",
				field_names[k]);
			return -EINVAL;
		}
	if (!f->set[F_PROTO] || !f->set[F_PORT]) {
		kc_errf(err, errlen, "a protect entry needs a proto and a port");
		return -EINVAL;
	}
	*bad_line = f->line[F_PROTO];
	if (parse_proto(f->val[F_PROTO], false, &p->proto, err, errlen))
		return -EINVAL;
	*bad_line = f->line[F_PORT];
	if (parse_ports(f->val[F_PORT], &lo, &hi, err, errlen) || lo != hi) {
		kc_errf(err, errlen, "port: expected a port from 1 to 65535, got '%s'",
			f->val[F_PORT]);
		return -EINVAL;
	}
	p->port = lo;
	p->action = KC_POL_DENY;
	if (f->set[F_DEFAULT]) {
		*bad_line = f->line[F_DEFAULT];
		if (parse_action(f->val[F_DEFAULT], &p->action, err, errlen, "default"))
			return -EINVAL;
	}
	return parse_rate(f, p->action, &p->rate, &p->burst, bad_line, err, errlen);
}

int kc_pol_parse_words(struct kc_pol_rule_spec *r, int argc, char **argv, char *err, size_t errlen)
{
	struct fields f;
	size_t line = 0;
	int i = 2;

	memset(&f, 0, sizeof(f));
	if (argc < 2) {
		kc_errf(err, errlen,
			"expected allow|deny|limit PREFIX [udp|tcp|any [PORT[-PORT]]] [--rate PPS] "
			"[--burst N]");
		return -EINVAL;
	}
	for (int k = 0; k < argc; k++)
		if (strlen(argv[k]) > VAL_MAX) {
			kc_errf(err, errlen, "'%.20s...' is too long", argv[k]);
			return -EINVAL;
		}
	f.set[F_ACTION] = f.set[F_PREFIX] = true;
	strcpy(f.val[F_ACTION], argv[0]);
	strcpy(f.val[F_PREFIX], argv[1]);
	if (i < argc && argv[i][0] != '-') {
		f.set[F_PROTO] = true;
		strcpy(f.val[F_PROTO], argv[i++]);
		if (i < argc && argv[i][0] != '-') {
			f.set[F_PORTS] = true;
			strcpy(f.val[F_PORTS], argv[i++]);
		}
	}
	while (i < argc) {
		int k = !strcmp(argv[i], "--rate")    ? F_RATE
			: !strcmp(argv[i], "--burst") ? F_BURST
						      : -1;

		if (k < 0 || i + 1 >= argc || f.set[k]) {
			kc_errf(err, errlen,
				"unexpected '%s': expected allow|deny|limit PREFIX [udp|tcp|any "
				"[PORT[-PORT]]] [--rate PPS] [--burst N]",
				argv[i]);
			return -EINVAL;
		}
		f.set[k] = true;
		strcpy(f.val[k], argv[i + 1]);
		i += 2;
	}
	return rule_check(&f, r, &line, err, errlen);
}

/* ---- the file ----------------------------------------------------------------------------- */

struct parse {
	struct kc_yaml y; /* the events, the name and err */
	uint32_t max_rules;
	struct kc_pol_spec *s;
};

static int perr(struct parse *ps, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct parse *ps, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kc_yaml_verrf(ps->y.err, ps->y.errlen, ps->y.name, line, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* One {key: scalar, ...} mapping (ps->ev is its MAPPING_START) into f. */
static int parse_fields(struct parse *ps, struct fields *f, const char *what)
{
	memset(f, 0, sizeof(*f));
	for (;;) {
		const char *k;
		int idx = -1;
		size_t line;

		if (kc_yaml_next(&ps->y))
			return -EINVAL;
		if (ps->y.ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (ps->y.ev.type != YAML_SCALAR_EVENT)
			return perr(ps, kc_yaml_line(&ps->y), "%s: expected key: value, got %s",
				    what, kc_yaml_kind(ps->y.ev.type));
		k = (const char *)ps->y.ev.data.scalar.value;
		line = kc_yaml_line(&ps->y);
		for (int i = 0; i < F__N; i++)
			if (!strcmp(k, field_names[i]))
				idx = i;
		if (idx < 0)
			return perr(ps, line, "unknown key '%.40s' (a %s has %s)", k, what,
				    !strcmp(what, "rule")
					? "action, prefix, proto, ports, rate, burst"
					: "proto, port, default, rate, burst");
		if (f->set[idx])
			return perr(ps, line, "%s: given twice", k);
		if (kc_yaml_next(&ps->y))
			return -EINVAL;
		if (ps->y.ev.type != YAML_SCALAR_EVENT)
			return perr(ps, kc_yaml_line(&ps->y), "%s: expected a value, got %s",
				    field_names[idx], kc_yaml_kind(ps->y.ev.type));
		if (ps->y.ev.data.scalar.length > VAL_MAX)
			return perr(ps, kc_yaml_line(&ps->y), "%s: value longer than %d bytes",
				    field_names[idx], VAL_MAX);
		f->set[idx] = true;
		f->line[idx] = line;
		memcpy(f->val[idx], ps->y.ev.data.scalar.value, ps->y.ev.data.scalar.length);
		f->val[idx][ps->y.ev.data.scalar.length] = 0;
	}
}

/* A list (ps->ev is the event after its key) of rule or protect mappings. */
static int parse_list(struct parse *ps, bool rules)
{
	const char *what = rules ? "rule" : "protect entry";

	if (ps->y.ev.type != YAML_SEQUENCE_START_EVENT)
		return perr(ps, kc_yaml_line(&ps->y), "%s: expected a list, got %s",
			    rules ? "rules" : "protect", kc_yaml_kind(ps->y.ev.type));
	for (;;) {
		struct fields f;
		size_t start, bad = 0;
		char msg[240];
		int rc;

		if (kc_yaml_next(&ps->y))
			return -EINVAL;
		if (ps->y.ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		start = kc_yaml_line(&ps->y);
		if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
			return perr(ps, start, "expected a %s ({key: value, ...}), got %s", what,
				    kc_yaml_kind(ps->y.ev.type));
		if (parse_fields(ps, &f, what))
			return -EINVAL;
		if (rules) {
			struct kc_pol_rule_spec r;

			if (rule_check(&f, &r, &bad, msg, sizeof(msg)))
				return perr(ps, bad ? bad : start, "%s", msg);
			r.line = (uint32_t)start;
			r.origin = KC_POL_FROM_FILE;
			rc = kc_pol_spec_add(ps->s, &r, ps->max_rules);
			if (rc == -E2BIG)
				return perr(ps, start,
					    "more than %u rules (raise net-policy-max-rules)",
					    ps->max_rules);
			if (rc)
				return perr(ps, start, "out of memory");
		} else {
			struct kc_pol_protect p;

			if (protect_check(&f, &p, &bad, msg, sizeof(msg)))
				return perr(ps, bad ? bad : start, "%s", msg);
			if (ps->s->n_protect >= KC_POL_PORTS_MAX)
				return perr(ps, start, "more than %d protected ports",
					    KC_POL_PORTS_MAX);
			for (uint32_t i = 0; i < ps->s->n_protect; i++)
				if (ps->s->protect[i].port == p.port &&
				    ps->s->protect[i].proto == p.proto)
					return perr(ps, start,
						    "%s port %u is already protected "
						    "at line %u",
						    kc_pol_proto_name(p.proto), p.port,
						    ps->s->protect[i].line);
			p.line = (uint32_t)start;
			ps->s->protect[ps->s->n_protect++] = p;
		}
	}
}

static int parse_top(struct parse *ps)
{
	bool seen[3] = {false, false, false};

	if (kc_yaml_next(&ps->y))
		return -EINVAL; /* STREAM_START */
	if (kc_yaml_next(&ps->y))
		return -EINVAL;
	if (ps->y.ev.type == YAML_STREAM_END_EVENT)
		return 0;	  /* an empty file: no rules */
	if (kc_yaml_next(&ps->y)) /* after DOCUMENT_START */
		return -EINVAL;
	if (ps->y.ev.type == YAML_SCALAR_EVENT && ps->y.ev.data.scalar.length == 0)
		return 0; /* a document with nothing in it */
	if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
		return perr(ps, kc_yaml_line(&ps->y),
			    "expected a mapping with audit, protect and rules, got %s",
			    kc_yaml_kind(ps->y.ev.type));
	for (;;) {
		const char *k;
		int which;
		size_t line;

		if (kc_yaml_next(&ps->y))
			return -EINVAL;
		if (ps->y.ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (ps->y.ev.type != YAML_SCALAR_EVENT)
			return perr(ps, kc_yaml_line(&ps->y),
				    "expected a key (audit, protect, rules)");
		k = (const char *)ps->y.ev.data.scalar.value;
		line = kc_yaml_line(&ps->y);
		which = !strcmp(k, "audit")	? 0
			: !strcmp(k, "protect") ? 1
			: !strcmp(k, "rules")	? 2
						: -1;
		if (which < 0)
			return perr(ps, line,
				    "unknown key '%.40s' (expected audit, protect, rules)", k);
		if (seen[which])
			return perr(ps, line, "%s: given twice", k);
		seen[which] = true;
		if (kc_yaml_next(&ps->y))
			return -EINVAL;
		if (which == 0) {
			const char *v = (const char *)ps->y.ev.data.scalar.value;

			if (ps->y.ev.type != YAML_SCALAR_EVENT)
				return perr(ps, kc_yaml_line(&ps->y),
					    "audit: expected true or false, got %s",
					    kc_yaml_kind(ps->y.ev.type));
			if (!strcmp(v, "true"))
				ps->s->audit = true;
			else if (!strcmp(v, "false"))
				ps->s->audit = false;
			else
				return perr(ps, kc_yaml_line(&ps->y),
					    "audit: expected true or false, got '%.40s'", v);
		} else if (which == 1) {
			ps->s->protect_given = true;
			if (parse_list(ps, false))
				return -EINVAL;
		} else if (parse_list(ps, true)) {
			return -EINVAL;
		}
	}
	if (kc_yaml_next(&ps->y)) /* DOCUMENT_END */
		return -EINVAL;
	if (kc_yaml_next(&ps->y))
		return -EINVAL;
	if (ps->y.ev.type != YAML_STREAM_END_EVENT)
		return perr(ps, kc_yaml_line(&ps->y), "expected one YAML document, found another");
	return 0;
}

int kc_pol_parse_buf(struct kc_pol_spec *s, const char *name, const char *buf, size_t len,
		     uint32_t max_rules, char *err, size_t errlen)
{
	struct parse ps = {.max_rules = max_rules, .s = s};
	int rc;

	kc_pol_spec_init(s);
	rc = kc_yaml_open(&ps.y, name, buf, len, err, errlen);
	if (!rc)
		rc = parse_top(&ps);
	kc_yaml_close(&ps.y);
	if (rc)
		kc_pol_spec_free(s);
	return rc;
}

int kc_pol_parse_file(struct kc_pol_spec *s, const char *path, uint32_t max_rules, char *err,
		      size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	kc_pol_spec_init(s);
	rc = kc_yaml_read_file(path, KC_POL_FILE_MAX, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = kc_pol_parse_buf(s, path, buf, len, max_rules, err, errlen);
	free(buf);
	return rc;
}

/* ---- completing and printing -------------------------------------------------------------- */

static int same_match(const struct kc_pol_rule_spec *a, const struct kc_pol_rule_spec *b)
{
	return a->pfx.v6 == b->pfx.v6 && a->pfx.len == b->pfx.len &&
	       !memcmp(a->pfx.a, b->pfx.a, 16) && a->proto == b->proto && a->lo == b->lo &&
	       a->hi == b->hi;
}

int kc_pol_spec_find(const struct kc_pol_spec *s, const struct kc_pol_rule_spec *r)
{
	for (uint32_t i = 0; i < s->n_rules; i++)
		if (same_match(&s->rules[i], r))
			return (int)i;
	return -1;
}

static int cmp_match(const void *x, const void *y)
{
	const struct kc_pol_rule_spec *a = *(const struct kc_pol_rule_spec *const *)x;
	const struct kc_pol_rule_spec *b = *(const struct kc_pol_rule_spec *const *)y;
	int c;

	if (a->pfx.v6 != b->pfx.v6)
		return a->pfx.v6 - b->pfx.v6;
	if (a->pfx.len != b->pfx.len)
		return a->pfx.len - b->pfx.len;
	c = memcmp(a->pfx.a, b->pfx.a, 16);
	if (c)
		return c;
	if (a->proto != b->proto)
		return a->proto - b->proto;
	if (a->lo != b->lo)
		return a->lo - b->lo;
	if (a->hi != b->hi)
		return a->hi - b->hi;
	return a < b ? -1 : a > b; /* file order */
}

int kc_pol_spec_finish(struct kc_pol_spec *s, const char *name, uint16_t port,
		       const struct kc_prefix *allow, uint32_t n_allow, uint32_t max_rules,
		       char *err, size_t errlen)
{
	const struct kc_pol_rule_spec **v;
	int rc = 0;

	if (!s->protect_given) {
		s->n_protect = 2;
		s->protect[0] = (struct kc_pol_protect){
		    .proto = KC_POL_PROTO_UDP, .action = KC_POL_DENY, .port = port};
		s->protect[1] = (struct kc_pol_protect){
		    .proto = KC_POL_PROTO_TCP, .action = KC_POL_DENY, .port = port};
	}
	for (uint32_t i = 0; i < n_allow; i++) {
		struct kc_pol_rule_spec r = {.pfx = allow[i],
					     .proto = KC_POL_PROTO_ANY,
					     .action = KC_POL_ALLOW,
					     .origin = KC_POL_FROM_ALLOW,
					     .lo = 0,
					     .hi = 65535};
		char t[64];

		if (kc_pol_spec_find(s, &r) >= 0)
			continue; /* the file says what this prefix gets */
		rc = kc_pol_spec_add(s, &r, max_rules);
		if (rc) {
			kc_prefix_text(&allow[i], t, sizeof(t));
			kc_errf(err, errlen, "allow %s: %s", t,
				rc == -E2BIG ? "more rules than net-policy-max-rules"
					     : "out of memory");
			return rc;
		}
	}
	if (s->n_rules < 2)
		return 0;
	/* Two rules for the same prefix, protocol and ports would leave the winner to chance. */
	v = malloc(s->n_rules * sizeof(*v));
	if (!v) {
		kc_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->n_rules; i++)
		v[i] = &s->rules[i];
	qsort(v, s->n_rules, sizeof(*v), cmp_match);
	for (uint32_t i = 1; i < s->n_rules; i++)
		if (same_match(v[i - 1], v[i])) {
			char t[KC_POL_TEXT_MAX];

			kc_pol_rule_text(v[i], t, sizeof(t));
			if (v[i]->line)
				kc_errf(
				    err, errlen,
				    "%s:%u: same prefix, protocol and ports as the rule at line "
				    "%u",
				    name, v[i]->line, v[i - 1]->line);
			else
				kc_errf(err, errlen,
					"'%s': a rule for the same prefix, protocol "
					"and ports exists",
					t);
			rc = -EINVAL;
			break;
		}
	free(v);
	return rc;
}

void kc_pol_rule_text(const struct kc_pol_rule_spec *r, char *buf, size_t len)
{
	char p[64], ports[16] = "", rate[48] = "";

	kc_prefix_text(&r->pfx, p, sizeof(p));
	if (r->lo != 0 || r->hi != 65535) {
		if (r->lo == r->hi)
			snprintf(ports, sizeof(ports), " %u", r->lo);
		else
			snprintf(ports, sizeof(ports), " %u-%u", r->lo, r->hi);
	}
	if (r->action == KC_POL_LIMIT)
		snprintf(rate, sizeof(rate), " --rate %u --burst %u", r->rate, r->burst);
	snprintf(buf, len, "%s %s%s%s%s%s", kc_pol_action_name(r->action), p,
		 r->proto != KC_POL_PROTO_ANY || ports[0] ? " " : "",
		 r->proto != KC_POL_PROTO_ANY || ports[0] ? kc_pol_proto_name(r->proto) : "", ports,
		 rate);
}
