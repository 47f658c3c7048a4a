/* policy_maps.c: compile a policy into trie sets and port defaults, keep rule ids stable, and
 * swap the result into the double-buffered maps (see policy_maps.h). */
#include "netpol/policy_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bpf_pin.h"
#include "core/log.h"

/* A rule's identity: what must stay the same for it to keep its id. */
enum idkind { ID_RULE = 0, ID_DEFAULT = 1, ID_LOOPBACK = 2, ID_INHERITED = 255 };

struct kc_pol_idkey {
	uint8_t kind, v6, len, proto, action, pad[3];
	uint16_t lo, hi;
	uint32_t rate, burst;
	uint8_t a[16];
	/* not part of the identity: */
	uint32_t id;
	uint32_t idx; /* rule index, protect index or loopback family */
};
#define IDKEY_CMP_LEN offsetof(struct kc_pol_idkey, id)

struct v4ent {
	struct kc_pol_v4 k;
	struct kc_pol_set v;
};

struct v6ent {
	struct kc_pol_v6 k;
	struct kc_pol_set v;
};

/* One port of kc_policy_prt_* that protects at least one protocol. */
struct prtent {
	uint32_t port;
	struct kc_pol_port v;
};

struct kc_pol_table {
	struct v4ent *v4;
	struct v6ent *v6;
	struct prtent *prt;	 /* sorted by port */
	struct kc_pol_rule *def; /* [n_def + 1]: kc_policy_def_*'s used slots, slot 0 zero */
	uint32_t n_v4, n_v6, n_prt, n_def;
	uint32_t audit;
};

static const char *const verdict_names[KC_POL_V__MAX] = {
    [KC_POL_V_ALLOW] = "allow",
    [KC_POL_V_DENY] = "deny",
    [KC_POL_V_LIMIT] = "limit",
    [KC_POL_V_WOULD_DENY] = "would_deny",
    [KC_POL_V_WOULD_LIMIT] = "would_limit",
    [KC_POL_V_PASS] = "pass",
    [KC_POL_V_INVALID] = "invalid",
    [KC_POL_V_EVENTS_LOST] = "events_lost",
};

const char *kc_pol_verdict_name(unsigned v)
{
	return v < KC_POL_V__MAX ? verdict_names[v] : "unknown";
}

static void table_free(struct kc_pol_table *t)
{
	if (!t)
		return;
	free(t->v4);
	free(t->v6);
	free(t->prt);
	free(t->def);
	free(t);
}

static int cmp_idkey(const void *a, const void *b)
{
	return memcmp(a, b, IDKEY_CMP_LEN);
}

static int cmp_v4(const void *a, const void *b)
{
	return memcmp(&((const struct v4ent *)a)->k, &((const struct v4ent *)b)->k,
		      sizeof(struct kc_pol_v4));
}

static int cmp_v6(const void *a, const void *b)
{
	return memcmp(&((const struct v6ent *)a)->k, &((const struct v6ent *)b)->k,
		      sizeof(struct kc_pol_v6));
}

/* Protected (port, protocol) pairs in the order their defaults take slots. */
static int cmp_protect(const void *a, const void *b)
{
	const struct kc_pol_protect *x = *(const struct kc_pol_protect *const *)a,
				    *y = *(const struct kc_pol_protect *const *)b;

	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->proto < y->proto ? -1 : x->proto > y->proto;
}

/* ---- compile ----------------------------------------------------------------------------- */

/* A rule on its way into sets. */
struct item {
	struct kc_prefix pfx;
	struct kc_pol_rule r;
	uint32_t order; /* position in the spec; loopback allows after everything */
};

static int cmp_pfx(const struct kc_prefix *a, const struct kc_prefix *b)
{
	if (a->v6 != b->v6)
		return a->v6 - b->v6;
	if (a->len != b->len)
		return a->len - b->len;
	return memcmp(a->a, b->a, 16);
}

/* Prefixes first by family, length, address; one group of items per distinct prefix. */
static int cmp_item_pfx(const void *x, const void *y)
{
	const struct item *a = x, *b = y;
	int c = cmp_pfx(&a->pfx, &b->pfx);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Set precedence: longest prefix, narrowest ports, one protocol before both, spec order. */
static int cmp_prec(const void *x, const void *y)
{
	const struct item *a = *(const struct item *const *)x, *b = *(const struct item *const *)y;
	uint32_t wa = (uint32_t)a->r.port_hi - a->r.port_lo,
		 wb = (uint32_t)b->r.port_hi - b->r.port_lo;

	if (a->r.prefixlen != b->r.prefixlen)
		return a->r.prefixlen > b->r.prefixlen ? -1 : 1;
	if (wa != wb)
		return wa < wb ? -1 : 1;
	if ((a->r.proto == KC_POL_PROTO_ANY) != (b->r.proto == KC_POL_PROTO_ANY))
		return a->r.proto == KC_POL_PROTO_ANY ? 1 : -1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static void mask_pfx(struct kc_prefix *p, unsigned len)
{
	unsigned max = p->v6 ? 128 : 32;

	for (unsigned b = len; b < max; b++)
		p->a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
	p->len = (uint8_t)len;
}

struct group {
	uint32_t first, n; /* items[first..first+n) share one prefix */
};

/* Binary search of groups (sorted as their items) for prefix p. */
static const struct group *find_group(const struct item *items, const struct group *g, uint32_t ng,
				      const struct kc_prefix *p)
{
	uint32_t lo = 0, hi = ng;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = cmp_pfx(&items[g[mid].first].pfx, p);

		if (c == 0)
			return &g[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Builds the trie entries of items (sorted by cmp_item_pfx) into t. */
static int build_sets(struct kc_pol_table *t, const struct item *items, uint32_t n,
		      uint32_t max_prefixes, char *err, size_t errlen)
{
	struct group *g = malloc((n ? n : 1) * sizeof(*g));
	const struct item *cand[KC_POL_SET_MAX + 1];
	bool lens[2][129] = {{false}};
	uint32_t ng = 0, fam_n[2] = {0, 0};
	int rc = 0;

	if (!g)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (i == 0 || cmp_pfx(&items[i].pfx, &items[i - 1].pfx)) {
			g[ng++] = (struct group){.first = i, .n = 0};
			fam_n[items[i].pfx.v6]++;
		}
		g[ng - 1].n++;
		lens[items[i].pfx.v6][items[i].pfx.len] = true;
	}
	for (int f = 0; f < 2; f++)
		if (fam_n[f] > max_prefixes) {
			kc_errf(err, errlen,
				"%u IPv%d prefixes: the trie holds at most %u "
				"(net-policy-max-rules)",
				fam_n[f], f ? 6 : 4, max_prefixes);
			free(g);
			return -E2BIG;
		}
	t->v4 = calloc(fam_n[0] ? fam_n[0] : 1, sizeof(*t->v4));
	t->v6 = calloc(fam_n[1] ? fam_n[1] : 1, sizeof(*t->v6));
	if (!t->v4 || !t->v6) {
		free(g);
		return -ENOMEM;
	}
	for (uint32_t gi = 0; gi < ng; gi++) {
		const struct kc_prefix *p = &items[g[gi].first].pfx;
		struct kc_pol_set set;
		uint32_t nc = 0;

		/* Its own rules and those of every prefix that covers it. */
		for (unsigned len = 0; len <= p->len; len++) {
			struct kc_prefix q = *p;
			const struct group *c;

			if (!lens[p->v6][len])
				continue;
			mask_pfx(&q, len);
			c = len == p->len ? &g[gi] : find_group(items, g, ng, &q);
			for (uint32_t k = 0; c && k < c->n; k++) {
				if (nc == KC_POL_SET_MAX) {
					char txt[64];

					kc_prefix_text(p, txt, sizeof(txt));
					kc_errf(
					    err, errlen,
					    "prefix %s: more than %d rules apply to it (its own "
					    "and those of prefixes that cover it)",
					    txt, KC_POL_SET_MAX);
					rc = -E2BIG;
					goto out;
				}
				cand[nc++] = &items[c->first + k];
			}
		}
		qsort(cand, nc, sizeof(cand[0]), cmp_prec);
		memset(&set, 0, sizeof(set));
		set.n = nc;
		for (uint32_t k = 0; k < nc; k++)
			set.r[k] = cand[k]->r;
		if (p->v6) {
			struct v6ent *e = &t->v6[t->n_v6++];

			e->k.prefixlen = p->len;
			memcpy(e->k.addr, p->a, 16);
			e->v = set;
		} else {
			struct v4ent *e = &t->v4[t->n_v4++];

			e->k.prefixlen = p->len;
			memcpy(e->k.addr, p->a, 4);
			e->v = set;
		}
	}
	qsort(t->v4, t->n_v4, sizeof(*t->v4), cmp_v4);
	qsort(t->v6, t->n_v6, sizeof(*t->v6), cmp_v6);
out:
	free(g);
	return rc;
}

static uint32_t interval_of(uint32_t rate)
{
	return rate ? (uint32_t)(1000000000ULL / rate) : 0;
}

static const struct kc_pol_rule_spec loopback[2] = {
    {.pfx = {.v6 = 0, .len = 8, .a = {127}},
     .proto = KC_POL_PROTO_ANY,
     .action = KC_POL_ALLOW,
     .origin = KC_POL_FROM_LOOPBACK,
     .hi = 65535},
    {.pfx = {.v6 = 1, .len = 128, .a = {[15] = 1}},
     .proto = KC_POL_PROTO_ANY,
     .action = KC_POL_ALLOW,
     .origin = KC_POL_FROM_LOOPBACK,
     .hi = 65535},
};

static void idkey_of_rule(struct kc_pol_idkey *k, const struct kc_pol_rule_spec *r, uint8_t kind,
			  uint32_t idx)
{
	memset(k, 0, sizeof(*k));
	k->kind = kind;
	k->v6 = r->pfx.v6;
	k->len = r->pfx.len;
	k->proto = r->proto;
	k->action = r->action;
	k->lo = r->lo;
	k->hi = r->hi;
	k->rate = r->rate;
	k->burst = r->burst;
	memcpy(k->a, r->pfx.a, 16);
	k->idx = idx;
}

struct compiled {
	struct kc_pol_table *t;
	struct kc_pol_ids ids;
	struct kc_pol_idkey *keys; /* sorted, ids set */
	uint32_t n_keys;
	uint32_t n_alloc; /* ids taken from the front of the free ring */
	uint32_t *freed;  /* ids of the previous policy that this one drops */
	uint32_t n_freed;
};

static void compiled_free(struct compiled *c)
{
	table_free(c->t);
	free(c->ids.rule);
	free(c->keys);
	free(c->freed);
	memset(c, 0, sizeof(*c));
}

/* Gives every identity in c->keys an id: the previous policy's for the same identity, else a
 * free one (peeked from the ring, taken only on commit). */
static int assign_ids(struct kc_pol_state *st, struct compiled *c, char *err, size_t errlen)
{
	uint32_t i = 0, j = 0;

	qsort(c->keys, c->n_keys, sizeof(*c->keys), cmp_idkey);
	c->freed = malloc((st->n_keys ? st->n_keys : 1) * sizeof(*c->freed));
	if (!c->freed)
		return -ENOMEM;
	while (i < c->n_keys || j < st->n_keys) {
		int d = i == c->n_keys	  ? 1
			: j == st->n_keys ? -1
					  : cmp_idkey(&c->keys[i], &st->keys[j]);

		if (d == 0) {
			c->keys[i++].id = st->keys[j++].id;
		} else if (d < 0) {
			if (c->n_alloc >= st->free_n) {
				kc_errf(err, errlen,
					"more rules than rule ids (%u; raise "
					"net-policy-max-rules)",
					st->m.max_ids - KC_POL_ID_RESERVED);
				return -E2BIG;
			}
			c->keys[i++].id =
			    st->free_ring[(st->free_head + c->n_alloc++) % (st->m.max_ids - 1)];
		} else {
			c->freed[c->n_freed++] = st->keys[j++].id;
		}
	}
	return 0;
}

static int compile(struct kc_pol_state *st, const struct kc_pol_spec *s, struct compiled *c,
		   char *err, size_t errlen)
{
	uint32_t n_items = 0, n = s->n_rules;
	bool lb_used[2];
	struct item *items;
	int rc;

	memset(c, 0, sizeof(*c));
	for (int f = 0; f < 2; f++)
		lb_used[f] = kc_pol_spec_find(s, &loopback[f]) < 0;
	c->t = calloc(1, sizeof(*c->t));
	c->ids.rule = calloc(n ? n : 1, sizeof(*c->ids.rule));
	c->keys = calloc(n + s->n_protect + 2, sizeof(*c->keys));
	items = calloc(n + 2, sizeof(*items));
	if (!c->t || !c->ids.rule || !c->keys || !items) {
		rc = -ENOMEM;
		kc_errf(err, errlen, "out of memory compiling %u rules", n);
		goto out;
	}
	c->t->audit = s->audit;

	/* Identities, then ids. */
	for (uint32_t i = 0; i < n; i++)
		idkey_of_rule(&c->keys[c->n_keys++], &s->rules[i], ID_RULE, i);
	for (int f = 0; f < 2; f++)
		if (lb_used[f])
			idkey_of_rule(&c->keys[c->n_keys++], &loopback[f], ID_LOOPBACK,
				      (uint32_t)f);
	for (uint32_t i = 0; i < s->n_protect; i++) {
		struct kc_pol_idkey *k = &c->keys[c->n_keys++];

		memset(k, 0, sizeof(*k));
		k->kind = ID_DEFAULT;
		k->proto = s->protect[i].proto;
		k->action = s->protect[i].action;
		k->lo = k->hi = s->protect[i].port;
		k->rate = s->protect[i].rate;
		k->burst = s->protect[i].burst;
		k->idx = i;
	}
	rc = assign_ids(st, c, err, errlen);
	if (rc)
		goto out;
	for (uint32_t i = 0; i < c->n_keys; i++) {
		const struct kc_pol_idkey *k = &c->keys[i];

		if (k->kind == ID_RULE)
			c->ids.rule[k->idx] = k->id;
		else if (k->kind == ID_LOOPBACK)
			c->ids.loopback[k->idx] = k->id;
		else
			c->ids.prot[k->idx] = k->id;
	}

	/* Rules into items, items into sets. */
	for (uint32_t i = 0; i < n + 2; i++) {
		const struct kc_pol_rule_spec *r = i < n ? &s->rules[i] : &loopback[i - n];
		struct item *it = &items[n_items];
		uint32_t id = i < n ? c->ids.rule[i] : c->ids.loopback[i - n];

		if (i >= n && !lb_used[i - n])
			continue;
		it->pfx = r->pfx;
		it->order = i;
		it->r = (struct kc_pol_rule){.id = id,
					     .port_lo = r->lo,
					     .port_hi = r->hi,
					     .proto = r->proto,
					     .action = r->action,
					     .prefixlen = r->pfx.len,
					     .burst = r->burst,
					     .interval_ns = interval_of(r->rate)};
		n_items++;
	}
	qsort(items, n_items, sizeof(*items), cmp_item_pfx);
	rc = build_sets(c->t, items, n_items, st->m.max_prefixes, err, errlen);
	if (rc) {
		if (rc == -ENOMEM)
			kc_errf(err, errlen, "out of memory compiling %u rules", n);
		goto out;
	}

	/* Port defaults take slots 1.. in (port, protocol) order, so that an unchanged list
	 * rewrites nothing; each port's entry points at its protocols' slots. */
	c->t->prt = calloc(s->n_protect ? s->n_protect : 1, sizeof(*c->t->prt));
	c->t->def = calloc(s->n_protect + 1, sizeof(*c->t->def));
	if (!c->t->prt || !c->t->def) {
		rc = -ENOMEM;
		kc_errf(err, errlen, "out of memory");
		goto out;
	}
	{
		const struct kc_pol_protect *order[KC_POL_PORTS_MAX] = {NULL};

		for (uint32_t i = 0; i < s->n_protect; i++)
			order[i] = &s->protect[i];
		qsort(order, s->n_protect, sizeof(order[0]), cmp_protect);
		for (uint32_t i = 0; i < s->n_protect; i++) {
			const struct kc_pol_protect *p = order[i];
			uint32_t slot = ++c->t->n_def;
			struct prtent *e;

			if (!c->t->n_prt || c->t->prt[c->t->n_prt - 1].port != p->port)
				c->t->prt[c->t->n_prt++].port = p->port;
			e = &c->t->prt[c->t->n_prt - 1];
			if (p->proto == KC_POL_PROTO_TCP)
				e->v.tcp = (uint16_t)slot;
			else
				e->v.udp = (uint16_t)slot;
			c->t->def[slot] = (struct kc_pol_rule){.id = c->ids.prot[p - s->protect],
							       .port_lo = p->port,
							       .port_hi = p->port,
							       .proto = p->proto,
							       .action = p->action,
							       .burst = p->burst,
							       .interval_ns = interval_of(p->rate)};
		}
	}
out:
	free(items);
	if (rc)
		compiled_free(c);
	return rc;
}

/* ---- writing a buffer ---------------------------------------------------------------------- */

/* Deletes every entry of a map (its keys read first: deleting while walking skips some). */
static int clear_map(int fd, size_t key_size, uint32_t max)
{
	uint8_t *keys = malloc((size_t)(max ? max : 1) * key_size), *prev = NULL;
	uint32_t n = 0;
	int rc = 0;

	if (!keys)
		return -ENOMEM;
	while (n < max && !bpf_map_get_next_key(fd, prev, keys + (size_t)n * key_size)) {
		prev = keys + (size_t)n * key_size;
		n++;
	}
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + (size_t)i * key_size) && errno != ENOENT)
			rc = -errno;
	free(keys);
	return rc;
}

/* Sets the first n entries of an array map (values of vsize bytes) to zero: one batch update
 * where the kernel has it. */
static int zero_array(int fd, uint32_t n, size_t vsize)
{
	uint32_t *keys = malloc((size_t)n * sizeof(*keys)), count = n;
	void *vals = calloc(n, vsize);
	int rc = 0;

	if (!keys || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		keys[i] = i;
	if (bpf_map_update_batch(fd, keys, vals, &count, NULL) == 0)
		goto out;
	for (uint32_t i = 0; i < n && !rc; i++)
		if (bpf_map_update_elem(fd, &keys[i], vals, BPF_ANY))
			rc = -errno;
out:
	free(keys);
	free(vals);
	return rc;
}

/* Writes the port arrays of buffer b: every default slot and port entry that differs between
 * old and t (a slot or port only one of them has is zero in the other). */
static int write_ports(const struct kc_pol_state *st, int b, const struct kc_pol_table *old,
		       const struct kc_pol_table *t)
{
	static const struct kc_pol_rule no_rule;
	static const struct kc_pol_port no_port;
	uint32_t i, j, n = old->n_def > t->n_def ? old->n_def : t->n_def;

	for (uint32_t slot = 1; slot <= n; slot++) {
		const struct kc_pol_rule *o = slot <= old->n_def ? &old->def[slot] : &no_rule,
					 *v = slot <= t->n_def ? &t->def[slot] : &no_rule;

		if (memcmp(o, v, sizeof(*v)) && bpf_map_update_elem(st->m.def_fd[b], &slot, v, 0))
			return -errno;
	}
	for (i = 0, j = 0; i < old->n_prt || j < t->n_prt;) {
		/* the lower of the two next ports; a list that has run out counts as above all */
		uint32_t po = i < old->n_prt ? old->prt[i].port : UINT32_MAX,
			 pn = j < t->n_prt ? t->prt[j].port : UINT32_MAX, port = po < pn ? po : pn;
		const struct kc_pol_port *ov = po == port ? &old->prt[i].v : &no_port,
					 *nv = pn == port ? &t->prt[j].v : &no_port;

		if (memcmp(ov, nv, sizeof(*nv)) &&
		    bpf_map_update_elem(st->m.prt_fd[b], &port, nv, 0))
			return -errno;
		i += ov != &no_port;
		j += nv != &no_port;
	}
	return 0;
}

/* Writes what differs between old and new (both sorted by key) into fd: deletions first so
 * the map never holds more than the larger of the two. */
static int write_diff(int fd, const void *old, uint32_t n_old, const void *nw, uint32_t n_new,
		      size_t esz, size_t ksz, int (*cmp)(const void *, const void *))
{
	uint32_t i, j;

	for (i = 0, j = 0; i < n_old;) {
		const void *o = (const char *)old + i * esz;
		int d = j < n_new ? cmp(o, (const char *)nw + j * esz) : -1;

		if (d < 0) {
			if (bpf_map_delete_elem(fd, o) && errno != ENOENT)
				return -errno;
			i++;
		} else if (d == 0) {
			i++, j++;
		} else {
			j++;
		}
	}
	for (i = 0, j = 0; j < n_new;) {
		const void *e = (const char *)nw + j * esz;
		int d = i < n_old ? cmp((const char *)old + i * esz, e) : 1;

		if (d < 0) {
			i++;
			continue;
		}
		if (d > 0 ||
		    memcmp((const char *)old + i * esz + ksz, (const char *)e + ksz, esz - ksz)) {
			if (bpf_map_update_elem(fd, e, (const char *)e + ksz, BPF_ANY))
				return -errno;
		}
		if (d == 0)
			i++;
		j++;
	}
	return 0;
}

static int write_buffer(struct kc_pol_state *st, int b, const struct kc_pol_table *old,
			const struct kc_pol_table *t)
{
	static const struct kc_pol_table empty;
	int rc;

	if (!old) {
		rc = clear_map(st->m.v4_fd[b], sizeof(struct kc_pol_v4), st->m.max_prefixes);
		if (!rc)
			rc =
			    clear_map(st->m.v6_fd[b], sizeof(struct kc_pol_v6), st->m.max_prefixes);
		if (!rc)
			rc = zero_array(st->m.prt_fd[b], KC_POL_PORT_SLOTS,
					sizeof(struct kc_pol_port));
		if (!rc)
			rc = zero_array(st->m.def_fd[b], KC_POL_PORTS_MAX + 1,
					sizeof(struct kc_pol_rule));
		if (rc)
			return rc;
		old = &empty;
	}
	rc = write_ports(st, b, old, t);
	if (!rc)
		rc = write_diff(st->m.v4_fd[b], old->v4, old->n_v4, t->v4, t->n_v4,
				sizeof(struct v4ent), offsetof(struct v4ent, v), cmp_v4);
	if (!rc)
		rc = write_diff(st->m.v6_fd[b], old->v6, old->n_v6, t->v6, t->n_v6,
				sizeof(struct v6ent), offsetof(struct v6ent, v), cmp_v6);
	return rc;
}

/* ---- state --------------------------------------------------------------------------------- */

/* Zeroes the per-CPU counters of id. */
static int zero_cnt(const struct kc_pol_state *st, uint32_t id)
{
	int ncpu = libbpf_num_possible_cpus(), rc;
	struct kc_pol_cnt *z;

	if (ncpu <= 0)
		return -EINVAL;
	z = calloc((size_t)ncpu, sizeof(*z));
	if (!z)
		return -ENOMEM;
	rc = bpf_map_update_elem(st->m.cnt_fd, &id, z, BPF_ANY) ? -errno : 0;
	free(z);
	return rc;
}

/* Ids the active buffer of reused maps refers to: kept out of the free ring until the first
 * swap has replaced that buffer (then freed like any id that leaves). */
static int adopt_active_ids(struct kc_pol_state *st, uint8_t *used)
{
	int b = (int)__atomic_load_n(&st->m.cfg->active, __ATOMIC_ACQUIRE) & 1;
	struct kc_pol_set set;
	struct kc_pol_rule r;
	uint8_t key[sizeof(struct kc_pol_v6)], *prev = NULL;
	int fds[3] = {st->m.v4_fd[b], st->m.v6_fd[b], st->m.def_fd[b]};

	for (int m = 0; m < 3; m++) {
		prev = NULL;
		while (!bpf_map_get_next_key(fds[m], prev, key)) {
			prev = key;
			if (m < 2) {
				if (bpf_map_lookup_elem(fds[m], key, &set))
					continue;
				for (uint32_t i = 0; i < set.n && i < KC_POL_SET_MAX; i++)
					if (set.r[i].id < st->m.max_ids)
						used[set.r[i].id] = 1;
			} else if (!bpf_map_lookup_elem(fds[m], key, &r) && r.id < st->m.max_ids) {
				used[r.id] = 1;
			}
		}
	}
	return 0;
}

int kc_pol_state_init(struct kc_pol_state *st, const struct kc_pol_maps *m, bool known_empty)
{
	uint32_t cap = m->max_ids - 1, n_used = 0;
	uint8_t *used = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	st->m = *m;
	st->rcu.outer_fd = st->rcu.inner_fd = -1;
	kc_pol_spec_init(&st->spec);
	if (m->max_ids < 2)
		return -EINVAL;
	rc = kc_rcu_init(&st->rcu);
	if (rc)
		return rc;
	st->free_ring = malloc(cap * sizeof(*st->free_ring));
	used = calloc(m->max_ids, 1);
	if (!st->free_ring || !used) {
		free(used);
		return -ENOMEM;
	}
	if (known_empty) {
		st->held[0] = calloc(1, sizeof(*st->held[0]));
		st->held[1] = calloc(1, sizeof(*st->held[1]));
		if (!st->held[0] || !st->held[1]) {
			free(used);
			return -ENOMEM;
		}
	} else {
		adopt_active_ids(st, used);
	}
	for (uint32_t id = KC_POL_ID_RESERVED; id < m->max_ids; id++)
		if (used[id])
			n_used++;
		else
			st->free_ring[st->free_n++] = id;
	if (n_used) {
		/* Identities that match nothing, so the first swap frees them. */
		st->keys = calloc(n_used, sizeof(*st->keys));
		if (!st->keys) {
			free(used);
			return -ENOMEM;
		}
		for (uint32_t id = KC_POL_ID_RESERVED; id < m->max_ids; id++)
			if (used[id]) {
				struct kc_pol_idkey *k = &st->keys[st->n_keys++];

				k->kind = ID_INHERITED;
				memcpy(k->a, &id, sizeof(id)); /* unique, sorted */
				k->id = id;
			}
		qsort(st->keys, st->n_keys, sizeof(*st->keys), cmp_idkey);
	}
	free(used);
	return 0;
}

void kc_pol_state_free(struct kc_pol_state *st)
{
	table_free(st->held[0]);
	table_free(st->held[1]);
	free(st->free_ring);
	free(st->keys);
	free(st->ids.rule);
	kc_pol_spec_free(&st->spec);
	kc_rcu_close(&st->rcu);
	memset(st, 0, sizeof(*st));
	st->rcu.outer_fd = st->rcu.inner_fd = -1;
}

int kc_pol_apply(struct kc_pol_state *st, const struct kc_pol_spec *spec, char *err, size_t errlen)
{
	struct compiled c;
	struct kc_pol_spec copy;
	uint32_t active, b, cap = st->m.max_ids - 1;
	int rc;

	rc = compile(st, spec, &c, err, errlen);
	if (rc)
		return rc;
	rc = kc_pol_spec_copy(&copy, spec);
	if (rc) {
		kc_errf(err, errlen, "out of memory");
		compiled_free(&c);
		return rc;
	}
	active = __atomic_load_n(&st->m.cfg->active, __ATOMIC_ACQUIRE) & 1;
	b = 1 - active;
	/* No program reads buffer b: the last flip away from it was followed by an RCU barrier
	 * (below), and a fresh or reused map's inactive buffer was never read since load. */
	rc = write_buffer(st, (int)b, st->held[b], c.t);
	if (rc) {
		kc_errf(err, errlen, "write the policy maps: %s%s", strerror(-rc),
			rc == -E2BIG || rc == -ENOSPC ? " (a map is full)" : "");
		table_free(st->held[b]);
		st->held[b] = NULL; /* half written: cleared before its next use */
		kc_pol_spec_free(&copy);
		compiled_free(&c);
		return rc;
	}
	st->m.cfg->audit[b] = c.t->audit;
	__atomic_store_n(&st->m.cfg->active, b, __ATOMIC_RELEASE);
	rc = kc_rcu_sync(&st->rcu);
	if (rc)
		log_warn("network policy: RCU barrier after the swap: %s", strerror(-rc));

	/* Commit the ids: the new ones leave the ring; the dropped ones, now unreferenced by any
	 * running program, are zeroed and queued for reuse, oldest first. */
	st->free_head = (st->free_head + c.n_alloc) % cap;
	st->free_n -= c.n_alloc;
	for (uint32_t i = 0; i < c.n_freed; i++) {
		if (zero_cnt(st, c.freed[i]))
			log_warn("network policy: zero the counters of rule id %u: %s", c.freed[i],
				 strerror(errno));
		st->free_ring[(st->free_head + st->free_n++) % cap] = c.freed[i];
	}
	table_free(st->held[b]);
	st->held[b] = c.t;
	c.t = NULL;
	free(st->keys);
	st->keys = c.keys;
	st->n_keys = c.n_keys;
	c.keys = NULL;
	free(st->ids.rule);
	st->ids = c.ids;
	c.ids.rule = NULL;
	kc_pol_spec_free(&st->spec);
	st->spec = copy;
	st->swaps++;
	compiled_free(&c);
	return 0;
}

static void cnt_add(struct kc_pol_cnt *to, const struct kc_pol_cnt *v)
{
	to->packets += v->packets;
	to->bytes += v->bytes;
	to->drops += v->drops;
}

int kc_pol_read_cnt(const struct kc_pol_state *st, uint32_t id, struct kc_pol_cnt *out)
{
	struct kc_pol_cnt *per;
	int ncpu, rc = 0;

	memset(out, 0, sizeof(*out));
	per = kc_percpu_read(st->m.cnt_fd, &id, sizeof(*per), &ncpu, &rc);
	if (!per)
		return rc;
	for (int i = 0; i < ncpu; i++)
		cnt_add(out, &per[i]);
	free(per);
	return 0;
}

int kc_pol_read_all_cnt(const struct kc_pol_state *st, struct kc_pol_cnt *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int ncpu = libbpf_num_possible_cpus(), rc = 0;
	uint32_t chunk = 4096, max = st->m.max_ids, batch = 0;
	struct kc_pol_cnt *vals;
	__u32 *keys;
	void *in = NULL;

	if (ncpu <= 0)
		return -EINVAL;
	memset(out, 0, max * sizeof(*out));
	keys = malloc(chunk * sizeof(*keys));
	vals = malloc((size_t)chunk * (size_t)ncpu * sizeof(*vals));
	if (!keys || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = chunk;
		int err = bpf_map_lookup_batch(st->m.cnt_fd, in, &batch, keys, vals, &count, &opts);

		if (err && errno != ENOENT) {
			/* No batch operations here: one lookup per id. */
			for (uint32_t id = 0; id < max; id++)
				kc_pol_read_cnt(st, id, &out[id]);
			break;
		}
		for (__u32 i = 0; i < count; i++) {
			if (keys[i] >= max)
				continue;
			for (int c = 0; c < ncpu; c++)
				cnt_add(&out[keys[i]], &vals[(size_t)i * (size_t)ncpu + (size_t)c]);
		}
		if (err)
			break; /* ENOENT: that was the last batch */
		in = &batch;
	}
out:
	free(keys);
	free(vals);
	return rc;
}

int kc_pol_read_totals(const struct kc_pol_state *st, struct kc_pol_totals *out)
{
	struct kc_pol_totals *per;
	__u32 zero = 0;
	int ncpu, rc = 0;

	memset(out, 0, sizeof(*out));
	per = kc_percpu_read(st->m.tot_fd, &zero, sizeof(*per), &ncpu, &rc);
	if (!per)
		return rc;
	for (int i = 0; i < ncpu; i++)
		for (int v = 0; v < KC_POL_V__MAX; v++)
			out->v[v] += per[i].v[v];
	free(per);
	return 0;
}

void kc_pol_sizes(const struct kc_pol_state *st, uint32_t *v4, uint32_t *v6, uint32_t *ports)
{
	const struct kc_pol_table *t =
	    st->held[__atomic_load_n(&st->m.cfg->active, __ATOMIC_ACQUIRE) & 1];

	*v4 = t ? t->n_v4 : 0;
	*v6 = t ? t->n_v6 : 0;
	*ports = t ? t->n_def : 0;
}
