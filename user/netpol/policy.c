/* policy.c: the in-kernel network policy's manager (see policy.h): sources of the policy,
 * start and stop, reload, kcachectl's "policy" command, deny events, metrics. */
#include "netpol/policy.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "netpol/policy_load.h"
#include "netpol/policy_maps.h"

#define KC_ALLOW_MAX	   64	/* --allow prefixes */
#define LOG_EVENTS_PER_SEC 20	/* deny events logged per second without a report callback */
#define METRIC_RULES_MAX   1000 /* per-rule series in /metrics (the busiest rules) */

/* Who owns a rule id, for events and metrics: kind in the top 2 bits, index below. */
#define OWN_NONE     0u
#define OWN_RULE     (1u << 30)
#define OWN_DEFAULT  (2u << 30)
#define OWN_LOOPBACK (3u << 30)
#define OWN_KIND(x)  ((x) & (3u << 30))
#define OWN_IDX(x)   ((x) & ~(3u << 30))

struct kc_pol {
	char file[256], iface[IF_NAMESIZE], pin_path[128];
	uint16_t port;
	uint32_t max_rules;
	struct kc_prefix allow[KC_ALLOW_MAX];
	uint32_t n_allow;
	struct kc_pol_obj obj;
	struct kc_pol_state st;
	bool st_ready;
	uint32_t *owner; /* [max_ids]: OWN_* | index */
	struct ring_buffer *rb;
	struct event *rb_ev;
	kc_pol_report_fn report; /* NULL: deny events go to the log */
	void *report_ctx;
	uint64_t reloads, reload_errors, events;
	time_t log_sec;
	uint32_t log_n;
	uint64_t log_suppressed;
};

/* ---- the policy's sources ------------------------------------------------------------------ */

static int parse_allow(const char *list, struct kc_prefix *out, uint32_t *n, char *err,
		       size_t errlen)
{
	char buf[4096], *save = NULL;

	*n = 0;
	if (!list || !*list)
		return 0;
	if (strlen(list) >= sizeof(buf)) {
		kc_errf(err, errlen, "allow: longer than %zu bytes", sizeof(buf) - 1);
		return -EINVAL;
	}
	strcpy(buf, list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char msg[200];

		if (*n >= KC_ALLOW_MAX) {
			kc_errf(err, errlen,
				"allow: more than %d prefixes (use a --net-policy file)",
				KC_ALLOW_MAX);
			return -E2BIG;
		}
		if (kc_prefix_parse(t, &out[*n], msg, sizeof(msg))) {
			kc_errf(err, errlen, "allow: %s", msg);
			return -EINVAL;
		}
		(*n)++;
	}
	return 0;
}

/* The policy of file ("" or NULL: the default protection) with --allow, finished. */
static int read_spec(struct kc_pol_spec *s, const char *file, uint16_t port,
		     const struct kc_prefix *allow, uint32_t n_allow, uint32_t max_rules, char *err,
		     size_t errlen)
{
	int rc;

	kc_pol_spec_init(s);
	if (file && *file) {
		rc = kc_pol_parse_file(s, file, max_rules, err, errlen);
		if (rc)
			return rc;
	}
	rc = kc_pol_spec_finish(s, file && *file ? file : "--allow", port, allow, n_allow,
				max_rules, err, errlen);
	if (rc)
		kc_pol_spec_free(s);
	return rc;
}

int kc_pol_check(const struct kc_pol_opts *o, char *err, size_t errlen)
{
	struct kc_prefix allow[KC_ALLOW_MAX];
	struct kc_pol_spec s;
	uint32_t n;
	int rc;

	rc = parse_allow(o->allow, allow, &n, err, errlen);
	if (rc)
		return rc;
	rc = read_spec(&s, o->file, o->port, allow, n, o->max_rules, err, errlen);
	if (!rc)
		kc_pol_spec_free(&s);
	return rc;
}

/* ---- rule names ---------------------------------------------------------------------------- */

static void rebuild_owners(struct kc_pol *p)
{
	const struct kc_pol_state *st = &p->st;

	memset(p->owner, 0, st->m.max_ids * sizeof(*p->owner));
	for (uint32_t i = 0; i < st->spec.n_rules; i++)
		if (st->ids.rule[i] < st->m.max_ids)
			p->owner[st->ids.rule[i]] = OWN_RULE | i;
	for (uint32_t i = 0; i < st->spec.n_protect; i++)
		if (st->ids.prot[i] < st->m.max_ids)
			p->owner[st->ids.prot[i]] = OWN_DEFAULT | i;
	for (uint32_t f = 0; f < 2; f++)
		if (st->ids.loopback[f] && st->ids.loopback[f] < st->m.max_ids)
			p->owner[st->ids.loopback[f]] = OWN_LOOPBACK | f;
}

/* The rule that id names in the active policy, in kcachectl's words. */
static void id_text(const struct kc_pol *p, uint32_t id, char *buf, size_t len)
{
	uint32_t own = id < p->st.m.max_ids ? p->owner[id] : OWN_NONE, i = OWN_IDX(own);
	const struct kc_pol_spec *s = &p->st.spec;

	switch (OWN_KIND(own)) {
	case OWN_RULE:
		kc_pol_rule_text(&s->rules[i], buf, len);
		return;
	case OWN_DEFAULT:
		if (s->protect[i].action == KC_POL_LIMIT)
			snprintf(buf, len, "default %s %u limit --rate %u --burst %u",
				 kc_pol_proto_name(s->protect[i].proto), s->protect[i].port,
				 s->protect[i].rate, s->protect[i].burst);
		else
			snprintf(buf, len, "default %s %u %s",
				 kc_pol_proto_name(s->protect[i].proto), s->protect[i].port,
				 kc_pol_action_name(s->protect[i].action));
		return;
	case OWN_LOOPBACK:
		snprintf(buf, len, "allow %s (loopback)", i ? "::1/128" : "127.0.0.0/8");
		return;
	}
	snprintf(buf, len, "rule id %u (replaced)", id);
}

static int apply(struct kc_pol *p, const struct kc_pol_spec *s, char *err, size_t errlen)
{
	int rc = kc_pol_apply(&p->st, s, err, errlen);

	if (!rc)
		rebuild_owners(p);
	return rc;
}

/* ---- deny events --------------------------------------------------------------------------- */

static int on_event(void *ctx, void *data, size_t size)
{
	struct kc_pol *p = ctx;
	const struct kc_pol_event *ev = data;
	char rule[KC_POL_TEXT_MAX], src[INET6_ADDRSTRLEN];
	struct kc_buf b = {0};
	const char *verdict;

	if (size < sizeof(*ev))
		return 0;
	p->events++;
	id_text(p, ev->rule, rule, sizeof(rule));
	inet_ntop(ev->v6 ? AF_INET6 : AF_INET, ev->addr, src, sizeof(src));
	verdict = kc_pol_verdict_name(ev->verdict);
	if (p->report) {
		kc_buf_printf(&b, "\"action\":\"%s\",\"rule\":", verdict);
		kc_json_str(&b, rule, sizeof(rule));
		kc_buf_printf(&b,
			      ",\"rule_id\":%u,\"source\":\"%s\",\"proto\":\"%s\",\"port\":%u,"
			      "\"count\":%u,\"iface\":",
			      ev->rule, src, kc_pol_proto_name(ev->proto), ev->dport, ev->count);
		kc_json_str(&b, p->iface, sizeof(p->iface));
		if (b.data)
			p->report(p->report_ctx, "net_policy_deny", b.data, b.len);
		kc_buf_free(&b);
		return 0;
	}
	/* No report callback: the log, at most LOG_EVENTS_PER_SEC lines a second. */
	if (time(NULL) != p->log_sec) {
		if (p->log_suppressed)
			log_info("network policy: %" PRIu64 " more deny events not logged",
				 p->log_suppressed);
		p->log_sec = time(NULL);
		p->log_n = 0;
		p->log_suppressed = 0;
	}
	if (p->log_n++ >= LOG_EVENTS_PER_SEC) {
		p->log_suppressed++;
		return 0;
	}
	log_info("network policy: %s %s %s port %u: %u packets by '%s'", verdict, src,
		 kc_pol_proto_name(ev->proto), ev->dport, ev->count, rule);
	return 0;
}

static void on_ring(evutil_socket_t fd, short what, void *arg)
{
	struct kc_pol *p = arg;

	(void)fd;
	(void)what;
	ring_buffer__consume(p->rb);
}

void kc_pol_set_report(struct kc_pol *p, kc_pol_report_fn fn, void *ctx)
{
	if (!p)
		return;
	p->report = fn;
	p->report_ctx = ctx;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int kc_pol_next_fd(const struct kc_pol *p)
{
	return p->obj.next_fd;
}

struct kc_pol *kc_pol_start(const struct kc_pol_opts *o, char *err, size_t errlen)
{
	struct kc_pol_load_opts lo = {.iface = o->iface,
				      .mode = o->mode,
				      .pin_path = o->pin_path,
				      .persist = o->persist,
				      .max_rules = o->max_rules};
	struct kc_pol *p = calloc(1, sizeof(*p));
	struct kc_pol_spec s;
	uint32_t v4, v6, ports;
	int rc;

	kc_pol_spec_init(&s);
	if (!p) {
		kc_errf(err, errlen, "out of memory");
		return NULL;
	}
	kc_pol_obj_init(&p->obj);
	snprintf(p->file, sizeof(p->file), "%s", o->file ? o->file : "");
	snprintf(p->iface, sizeof(p->iface), "%s", o->iface);
	snprintf(p->pin_path, sizeof(p->pin_path), "%s", o->pin_path);
	p->port = o->port;
	p->max_rules = o->max_rules;
	if (parse_allow(o->allow, p->allow, &p->n_allow, err, errlen) ||
	    read_spec(&s, p->file, p->port, p->allow, p->n_allow, p->max_rules, err, errlen))
		goto fail;
	/* The cheapest test of BPF rights, before anything is looked at or changed. */
	rc = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kc_probe", 4, 4, 1, NULL);
	if (rc < 0) {
		rc = -errno;
		kc_errf(err, errlen, "network policy: create BPF maps: %s%s", strerror(-rc),
			rc == -EPERM ? " (xdp-mode skb and native need root, or CAP_BPF and "
				       "CAP_NET_ADMIN; --xdp-mode off needs neither)"
				     : "");
		goto fail;
	}
	close(rc);
	if (kc_pol_obj_open(&p->obj, &lo, err, errlen))
		goto fail;
	rc = kc_pol_state_init(&p->st, &p->obj.maps, !p->obj.reused);
	if (rc) {
		kc_errf(err, errlen, "network policy: %s", strerror(-rc));
		goto fail;
	}
	p->st_ready = true;
	p->owner = calloc(p->st.m.max_ids, sizeof(*p->owner));
	if (!p->owner) {
		kc_errf(err, errlen, "out of memory");
		goto fail;
	}
	/* The maps hold the whole policy before the program can run (or, for a taken-over
	 * link, the old program sees the new policy with the same flip). */
	if (apply(p, &s, err, errlen))
		goto fail;
	if (kc_pol_obj_attach(&p->obj, err, errlen))
		goto fail;
	p->rb = ring_buffer__new(p->obj.evt_fd, on_event, p, NULL);
	if (!p->rb) {
		kc_errf(err, errlen, "network policy: event ring: %s", strerror(errno));
		goto fail;
	}
	p->rb_ev =
	    event_new(o->base, ring_buffer__epoll_fd(p->rb), EV_READ | EV_PERSIST, on_ring, p);
	if (!p->rb_ev || event_add(p->rb_ev, NULL)) {
		kc_errf(err, errlen, "network policy: cannot poll the event ring");
		goto fail;
	}
	kc_pol_sizes(&p->st, &v4, &v6, &ports);
	log_info("network policy: XDP %s on %s, %s: %u rules (%u IPv4 and %u IPv6 prefixes), "
		 "%u protected ports%s, maps %" PRIu64 " bytes under %s%s",
		 kc_xdp_mode_name(o->mode), p->iface, p->file[0] ? p->file : "default protection",
		 s.n_rules, v4, v6, ports, s.audit ? ", AUDIT MODE (nothing dropped)" : "",
		 p->obj.map_bytes, p->pin_path, o->persist ? ", persists after exit" : "");
	kc_pol_spec_free(&s);
	return p;
fail:
	kc_pol_spec_free(&s);
	kc_pol_stop(p);
	return NULL;
}

void kc_pol_stop(struct kc_pol *p)
{
	if (!p)
		return;
	if (p->rb_ev)
		event_free(p->rb_ev);
	if (p->rb) {
		ring_buffer__consume(p->rb); /* the last events */
		ring_buffer__free(p->rb);
	}
	kc_pol_obj_close(&p->obj);
	if (p->st_ready)
		kc_pol_state_free(&p->st);
	free(p->owner);
	free(p);
}

int kc_pol_reload(struct kc_pol *p, const char *file, char *err, size_t errlen)
{
	struct kc_pol_spec s;
	const char *f = file ? file : p->file;
	int rc;

	p->reloads++;
	rc = read_spec(&s, f, p->port, p->allow, p->n_allow, p->max_rules, err, errlen);
	if (!rc) {
		rc = apply(p, &s, err, errlen);
		kc_pol_spec_free(&s);
	}
	if (rc) {
		p->reload_errors++;
		return rc;
	}
	log_info("network policy: %s loaded: %u rules%s", f && *f ? f : "default protection",
		 p->st.spec.n_rules, p->st.spec.audit ? " (audit mode)" : "");
	return 0;
}

/* ---- kcachectl policy ------------------------------------------------------------------------ */

static int admin_list(struct kc_pol *p, struct kc_buf *out)
{
	const struct kc_pol_spec *s = &p->st.spec;
	struct kc_pol_cnt *all = calloc(p->st.m.max_ids, sizeof(*all));
	char t[KC_POL_TEXT_MAX];
	uint32_t v4, v6, ports;

	if (!all || kc_pol_read_all_cnt(&p->st, all)) {
		free(all);
		kc_buf_puts(out, "cannot read the rule counters");
		return -1;
	}
	kc_pol_sizes(&p->st, &v4, &v6, &ports);
	kc_buf_printf(out,
		      "network policy on %s (%s)%s: %u rules, %u IPv4 and %u IPv6 prefixes, %u "
		      "protected ports, %" PRIu64 " swaps\n%6s %12s %14s %12s  %s\n",
		      p->iface, p->file[0] ? p->file : "default protection",
		      s->audit ? ", AUDIT MODE" : "", s->n_rules, v4, v6, ports, p->st.swaps, "ID",
		      "PACKETS", "BYTES", "DROPS", "RULE");
	/* Port defaults, then the rules in file order, then the loopback allows. */
	for (uint32_t i = 0; i < s->n_protect + s->n_rules + 2; i++) {
		uint32_t id = i < s->n_protect ? p->st.ids.prot[i]
			      : i < s->n_protect + s->n_rules
				  ? p->st.ids.rule[i - s->n_protect]
				  : p->st.ids.loopback[i - s->n_protect - s->n_rules];

		if (!id || id >= p->st.m.max_ids)
			continue;
		id_text(p, id, t, sizeof(t));
		kc_buf_printf(
		    out, "%6u %12llu %14llu %12llu  %s\n", id, (unsigned long long)all[id].packets,
		    (unsigned long long)all[id].bytes, (unsigned long long)all[id].drops, t);
	}
	free(all);
	return 0;
}

static int admin_change(struct kc_pol *p, bool add, int argc, char **argv, struct kc_buf *out)
{
	struct kc_pol_rule_spec r;
	struct kc_pol_spec s;
	char err[400], t[KC_POL_TEXT_MAX];
	int i;

	if (kc_pol_parse_words(&r, argc, argv, err, sizeof(err))) {
		kc_buf_printf(out, "policy %s: %s", add ? "add" : "del", err);
		return -1;
	}
	r.origin = KC_POL_FROM_RUNTIME;
	kc_pol_rule_text(&r, t, sizeof(t));
	i = kc_pol_spec_find(&p->st.spec, &r);
	if (add && i >= 0) {
		char have[KC_POL_TEXT_MAX];

		kc_pol_rule_text(&p->st.spec.rules[i], have, sizeof(have));
		kc_buf_printf(out,
			      "policy add: '%s' has the prefix, protocol and ports of '%s'; "
			      "del that first",
			      t, have);
		return -1;
	}
	if (!add && (i < 0 || p->st.spec.rules[i].action != r.action ||
		     p->st.spec.rules[i].rate != r.rate || p->st.spec.rules[i].burst != r.burst)) {
		kc_buf_printf(out, "policy del: no rule '%s' (kcachectl policy list shows them)",
			      t);
		return -1;
	}
	if (kc_pol_spec_copy(&s, &p->st.spec)) {
		kc_buf_puts(out, "out of memory");
		return -1;
	}
	if (add) {
		if (kc_pol_spec_add(&s, &r, p->max_rules)) {
			kc_buf_printf(out, "policy add: more than %u rules (net-policy-max-rules)",
				      p->max_rules);
			kc_pol_spec_free(&s);
			return -1;
		}
	} else {
		memmove(&s.rules[i], &s.rules[i + 1], (s.n_rules - (uint32_t)i - 1) * sizeof(r));
		s.n_rules--;
	}
	if (apply(p, &s, err, sizeof(err))) {
		kc_buf_printf(out, "policy %s: refused, the policy in force is unchanged: %s",
			      add ? "add" : "del", err);
		kc_pol_spec_free(&s);
		return -1;
	}
	kc_pol_spec_free(&s);
	if (add) {
		i = kc_pol_spec_find(&p->st.spec, &r);
		kc_buf_printf(out, "added: %s (rule id %u)\n", t, i >= 0 ? p->st.ids.rule[i] : 0);
	} else {
		kc_buf_printf(out, "removed: %s\n", t);
	}
	log_info("network policy: kcachectl %s %s", add ? "added" : "removed", t);
	return 0;
}

int kc_pol_admin(void *ctx, int argc, char **argv, struct kc_buf *out)
{
	struct kc_pol *p = ctx;
	char err[512];

	if (!p) {
		kc_buf_puts(out, "the network policy is off (--xdp-mode off)");
		return -1;
	}
	if (argc >= 2 && !strcmp(argv[1], "list") && argc == 2)
		return admin_list(p, out);
	if (argc >= 3 && (!strcmp(argv[1], "add") || !strcmp(argv[1], "del")))
		return admin_change(p, !strcmp(argv[1], "add"), argc - 2, argv + 2, out);
	if (argc >= 2 && !strcmp(argv[1], "reload") && argc <= 3) {
		if (kc_pol_reload(p, argc == 3 ? argv[2] : NULL, err, sizeof(err))) {
			kc_buf_printf(out,
				      "policy reload: refused, the policy in force is "
				      "unchanged: %s",
				      err);
			log_error("network policy: reload refused, the previous policy stays: %s",
				  err);
			return -1;
		}
		kc_buf_printf(out, "loaded %s: %u rules\n",
			      argc == 3	   ? argv[2]
			      : p->file[0] ? p->file
					   : "default protection",
			      p->st.spec.n_rules);
		return 0;
	}
	kc_buf_puts(out, "usage: policy list | policy add|del allow|deny|limit PREFIX "
			 "[udp|tcp|any [PORT[-PORT]]] [--rate PPS] [--burst N] | policy reload "
			 "[FILE]");
	return -1;
}

/* ---- metrics ----------------------------------------------------------------------------- */

struct rule_row {
	uint32_t id;
	struct kc_pol_cnt c;
};

static int cmp_row(const void *a, const void *b)
{
	const struct rule_row *x = a, *y = b;

	if (x->c.packets != y->c.packets)
		return x->c.packets < y->c.packets ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void collect_rules(struct kc_pol *p, struct kc_buf *out)
{
	static const char *const fam[3][3] = {
	    {"kcache_policy_rule_packets_total", "counter",
	     "Packets that matched a rule, by rule (the busiest rules with any)."},
	    {"kcache_policy_rule_bytes_total", "counter", "Frame bytes of those packets."},
	    {"kcache_policy_rule_drops_total", "counter",
	     "Of those packets, the ones the rule dropped (in audit mode: would have)."},
	};
	uint32_t max = p->st.m.max_ids, n = 0;
	struct kc_pol_cnt *all = calloc(max, sizeof(*all));
	struct rule_row *rows = calloc(max, sizeof(*rows));
	char t[KC_POL_TEXT_MAX], label[KC_POL_TEXT_MAX + 40];

	if (!all || !rows || kc_pol_read_all_cnt(&p->st, all))
		goto out;
	for (uint32_t id = KC_POL_ID_RESERVED; id < max; id++)
		if (p->owner[id] != OWN_NONE && all[id].packets)
			rows[n++] = (struct rule_row){id, all[id]};
	qsort(rows, n, sizeof(*rows), cmp_row);
	if (n > METRIC_RULES_MAX)
		n = METRIC_RULES_MAX;
	for (int f = 0; f < 3 && n; f++) {
		kc_metric_header(out, fam[f][0], fam[f][1], fam[f][2]);
		for (uint32_t i = 0; i < n; i++) {
			id_text(p, rows[i].id, t, sizeof(t));
			snprintf(label, sizeof(label), "rule=\"%s\",id=\"%u\"", t, rows[i].id);
			kc_metric_u64(out, fam[f][0], label,
				      f == 0   ? rows[i].c.packets
				      : f == 1 ? rows[i].c.bytes
					       : rows[i].c.drops);
		}
	}
out:
	free(all);
	free(rows);
}

void kc_pol_collect(void *ctx, struct kc_buf *out)
{
	struct kc_pol *p = ctx;
	struct kc_pol_totals tot;
	uint32_t v4 = 0, v6 = 0, ports = 0;
	char label[48];

	memset(&tot, 0, sizeof(tot));
	if (p) {
		kc_pol_read_totals(&p->st, &tot);
		kc_pol_sizes(&p->st, &v4, &v6, &ports);
	}
	kc_metric_header(out, "kcache_policy_packets_total", "counter",
			 "Packets the network policy saw, by what it did with them.");
	for (unsigned v = 0; v < KC_POL_V_EVENTS_LOST; v++) {
		snprintf(label, sizeof(label), "action=\"%s\"", kc_pol_verdict_name(v));
		kc_metric_u64(out, "kcache_policy_packets_total", label, tot.v[v]);
	}
	kc_metric_one(out, "kcache_policy_up", "gauge",
		      "1 while the network policy's XDP program is attached.",
		      p && p->obj.link_fd >= 0);
	kc_metric_one(out, "kcache_policy_audit_mode", "gauge",
		      "1 when the policy in force only counts what it would drop.",
		      p && p->st.spec.audit);
	kc_metric_one(out, "kcache_policy_rules", "gauge", "Rules in the policy in force.",
		      p ? p->st.spec.n_rules : 0);
	kc_metric_one(out, "kcache_policy_prefixes", "gauge",
		      "Source prefixes in the policy in force (IPv4 and IPv6 tries).",
		      (uint64_t)v4 + v6);
	kc_metric_one(out, "kcache_policy_swaps_total", "counter",
		      "Policies swapped in (start, reloads, kcachectl policy add/del).",
		      p ? p->st.swaps : 0);
	kc_metric_one(out, "kcache_policy_reload_errors_total", "counter",
		      "Reloads refused (the previous policy stayed).", p ? p->reload_errors : 0);
	kc_metric_one(out, "kcache_policy_events_total", "counter",
		      "Deny events read from the kernel (one per source and rule per 5 s).",
		      p ? p->events : 0);
	kc_metric_one(out, "kcache_policy_events_lost_total", "counter",
		      "Deny events the kernel's ring had no room for (their counts go into the "
		      "next event).",
		      tot.v[KC_POL_V_EVENTS_LOST]);
	kc_metric_one(out, "kcache_policy_map_bytes", "gauge",
		      "Kernel memory of the policy's BPF maps.", p ? p->obj.map_bytes : 0);
	if (p)
		collect_rules(p, out);
}
