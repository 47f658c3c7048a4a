/* metrics.c: per-thread request counters, the collector registry and the Prometheus text
 * exposition (see metrics.h). Nothing here knows about HTTP: the listener calls
 * kc_metrics_render() and serves the bytes. */
#include "core/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CACHE_LINE    64

/* Tables by hand: clang-format would pack them into a grid. */
/* clang-format off */
const uint64_t kc_hist_bounds_ns[KC_HIST_BUCKETS] = {
	1000, 2500, 5000,		/* 1us */
	10000, 25000, 50000,
	100000, 250000, 500000,
	1000000,			/* 1ms */
	10000000, 100000000,
	500000000, 1000000000,		/* 1s */
};

static const char *const op_names[] = {
	[KC_OP_GET] = "get",
	[KC_OP_GETS] = "gets",
	[KC_OP_GAT] = "gat",
	[KC_OP_GATS] = "gats",
	[KC_OP_SET] = "set",
	[KC_OP_ADD] = "add",
	[KC_OP_REPLACE] = "replace",
	[KC_OP_APPEND] = "append",
	[KC_OP_PREPEND] = "prepend",
	[KC_OP_CAS] = "cas",
	[KC_OP_DELETE] = "delete",
	[KC_OP_INCR] = "incr",
	[KC_OP_DECR] = "decr",
	[KC_OP_TOUCH] = "touch",
	[KC_OP_FLUSH_ALL] = "flush_all",
	[KC_OP_STATS] = "stats",
	[KC_OP_VERSION] = "version",
	[KC_OP_VERBOSITY] = "verbosity",
	[KC_OP_QUIT] = "quit",
	[KC_OP_MG] = "mg",
	[KC_OP_MS] = "ms",
	[KC_OP_MD] = "md",
	[KC_OP_MN] = "mn",
	[KC_OP_MA] = "ma",
	[KC_OP_ME] = "me",
	[KC_OP_OTHER] = "other",
};

static const char *const res_names[] = {
	[KC_RES_HIT] = "hit",
	[KC_RES_MISS] = "miss",
	[KC_RES_STORED] = "stored",
	[KC_RES_NOT_STORED] = "not_stored",
	[KC_RES_EXISTS] = "exists",
	[KC_RES_NOT_FOUND] = "not_found",
	[KC_RES_DELETED] = "deleted",
	[KC_RES_TOUCHED] = "touched",
	[KC_RES_OK] = "ok",
	[KC_RES_ERROR] = "error",
	[KC_RES_CLIENT_ERROR] = "client_error",
	[KC_RES_SERVER_ERROR] = "server_error",
};

static const char *const proto_names[] = {
	[KC_PROTO_TCP] = "tcp",
	[KC_PROTO_UDP] = "udp",
	[KC_PROTO_HTTP] = "http",
};
/* clang-format on */

_Static_assert(ARRAY_SIZE(op_names) == KC_OP__COUNT, "op_names out of step with enum kc_op");
_Static_assert(ARRAY_SIZE(res_names) == KC_RES__COUNT, "res_names out of step with enum kc_res");
_Static_assert(ARRAY_SIZE(proto_names) == KC_PROTO__COUNT, "proto_names out of step");

const char *kc_op_name(enum kc_op op)
{
	return (unsigned)op < KC_OP__COUNT ? op_names[op] : "unknown";
}

const char *kc_res_name(enum kc_res res)
{
	return (unsigned)res < KC_RES__COUNT ? res_names[res] : "unknown";
}

static const char *const refusal_names[KC_UDP_REFUSED__COUNT] = {
    [KC_UDP_REFUSED_WRITE] = "write",
    [KC_UDP_REFUSED_COMMAND] = "command",
    [KC_UDP_REFUSED_SIZE] = "size",
    [KC_UDP_REFUSED_FRAME] = "frame",
};

const char *kc_udp_refusal_name(enum kc_udp_refusal why)
{
	return (unsigned)why < KC_UDP_REFUSED__COUNT ? refusal_names[why] : "unknown";
}

const char *kc_proto_name(enum kc_proto proto)
{
	return (unsigned)proto < KC_PROTO__COUNT ? proto_names[proto] : "unknown";
}

/* --- per-thread blocks ----------------------------------------------------------------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_stats *registry; /* guarded by registry_lock */

struct kc_stats *kc_stats_new(void)
{
	size_t size = (sizeof(struct kc_stats) + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	struct kc_stats *s = aligned_alloc(CACHE_LINE, size);

	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	memset(s, 0, size);
	pthread_mutex_lock(&registry_lock);
	s->next = registry;
	registry = s;
	pthread_mutex_unlock(&registry_lock);
	return s;
}

void kc_stats_observe(struct kc_stats *s, enum kc_proto p, enum kc_op op, uint64_t ns)
{
	kc_hist_observe(&s->duration[p][op], ns);
}

void kc_hist_observe(struct kc_hist *h, uint64_t ns)
{
	unsigned i = 0;

	/* Most requests land in the first few buckets, so a linear scan beats a search. */
	while (i < KC_HIST_BUCKETS && ns > kc_hist_bounds_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* out is private to the caller: a plain read-modify-write of it is enough. */
static void add_into(_Atomic uint64_t *out, _Atomic uint64_t *in)
{
	uint64_t v = atomic_load_explicit(in, memory_order_relaxed);

	atomic_store_explicit(out, atomic_load_explicit(out, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static void stats_add(struct kc_stats *out, struct kc_stats *in)
{
	for (int p = 0; p < KC_PROTO__COUNT; p++) {
		for (int op = 0; op < KC_OP__COUNT; op++) {
			struct kc_hist *ho = &out->duration[p][op], *hi = &in->duration[p][op];

			for (int r = 0; r < KC_RES__COUNT; r++)
				add_into(&out->requests[p][op][r], &in->requests[p][op][r]);
			for (int b = 0; b <= KC_HIST_BUCKETS; b++)
				add_into(&ho->bucket[b], &hi->bucket[b]);
			add_into(&ho->sum_ns, &hi->sum_ns);
			add_into(&ho->count, &hi->count);
		}
	}
	add_into(&out->conns_opened, &in->conns_opened);
	add_into(&out->conns_closed, &in->conns_closed);
	add_into(&out->bytes_read, &in->bytes_read);
	add_into(&out->bytes_written, &in->bytes_written);
	add_into(&out->udp_bad_frames, &in->udp_bad_frames);
	for (int r = 0; r < KC_UDP_REFUSED__COUNT; r++)
		add_into(&out->udp_refused[r], &in->udp_refused[r]);
	add_into(&out->get_cmds, &in->get_cmds);
	add_into(&out->get_hits, &in->get_hits);
	add_into(&out->get_misses, &in->get_misses);
	add_into(&out->touch_cmds, &in->touch_cmds);
}

void kc_stats_sum(struct kc_stats *out)
{
	pthread_mutex_lock(&registry_lock);
	for (struct kc_stats *s = registry; s; s = s->next)
		stats_add(out, s);
	pthread_mutex_unlock(&registry_lock);
}

/* --- collectors ------------------------------------------------------------------------- */

struct collector {
	kc_collector_fn fn;
	void *ctx;
	struct collector *next;
};

/* Also serializes renders, so that collectors need not be reentrant. */
static pthread_mutex_t collector_lock = PTHREAD_MUTEX_INITIALIZER;
static struct collector *collectors, **collectors_tail = &collectors;

int kc_metrics_add_collector(kc_collector_fn fn, void *ctx)
{
	struct collector *c;
	int err = 0;

	pthread_mutex_lock(&collector_lock);
	for (c = collectors; c; c = c->next) {
		if (c->fn == fn && c->ctx == ctx) {
			err = -EEXIST;
			goto out_unlock;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		err = -ENOMEM;
		goto out_unlock;
	}
	c->fn = fn;
	c->ctx = ctx;
	*collectors_tail = c;
	collectors_tail = &c->next;
out_unlock:
	pthread_mutex_unlock(&collector_lock);
	return err;
}

void kc_metrics_remove_collector(kc_collector_fn fn, void *ctx)
{
	pthread_mutex_lock(&collector_lock);
	for (struct collector **pp = &collectors; *pp; pp = &(*pp)->next) {
		struct collector *c = *pp;

		if (c->fn != fn || c->ctx != ctx)
			continue;
		*pp = c->next;
		if (collectors_tail == &c->next)
			collectors_tail = pp;
		free(c);
		break;
	}
	pthread_mutex_unlock(&collector_lock);
}

/* --- exposition helpers ----------------------------------------------------------------- */

/* HELP text escapes only backslash and newline (text format 0.0.4). */
static int put_help(struct kc_buf *out, const char *help)
{
	for (const char *p = help; *p; p++) {
		int err;

		if (*p == '\\')
			err = kc_buf_puts(out, "\\\\");
		else if (*p == '\n')
			err = kc_buf_puts(out, "\\n");
		else
			err = kc_buf_append(out, p, 1);
		if (err)
			return err;
	}
	return 0;
}

int kc_metric_header(struct kc_buf *out, const char *name, const char *type, const char *help)
{
	size_t len = out->len;

	if (kc_buf_printf(out, "# HELP %s ", name) || put_help(out, help) ||
	    kc_buf_printf(out, "\n# TYPE %s %s\n", name, type)) {
		out->len = len;
		return -ENOMEM;
	}
	return 0;
}

/* Shortest of %.15g and %.17g that reads back as v; Prometheus spellings for the rest. */
static void format_f64(char *s, size_t n, double v)
{
	if (isnan(v)) {
		snprintf(s, n, "NaN");
	} else if (isinf(v)) {
		snprintf(s, n, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(s, n, "%.15g", v);
		if (strtod(s, NULL) != v)
			snprintf(s, n, "%.17g", v);
	}
}

static int put_sample(struct kc_buf *out, const char *name, const char *labels, const char *v)
{
	if (labels && *labels)
		return kc_buf_printf(out, "%s{%s} %s\n", name, labels, v);
	return kc_buf_printf(out, "%s %s\n", name, v);
}

int kc_metric_one(struct kc_buf *out, const char *name, const char *type, const char *help,
		  uint64_t v)
{
	int rc = kc_metric_header(out, name, type, help);

	return rc ? rc : kc_metric_u64(out, name, NULL, v);
}

int kc_metric_u64(struct kc_buf *out, const char *name, const char *labels, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return put_sample(out, name, labels, s);
}

int kc_metric_f64(struct kc_buf *out, const char *name, const char *labels, double v)
{
	char s[32];

	format_f64(s, sizeof(s), v);
	return put_sample(out, name, labels, s);
}

/* --- the request families --------------------------------------------------------------- */

static int render_requests(struct kc_buf *out, struct kc_stats *s)
{
	const char *name = "kcache_requests_total";
	char labels[96];
	int err;

	err = kc_metric_header(out, name, "counter",
			       "Requests handled, by protocol, operation and result "
			       "(a multi-key get counts one result per key).");
	for (int p = 0; p < KC_PROTO__COUNT && !err; p++) {
		for (int op = 0; op < KC_OP__COUNT && !err; op++) {
			for (int r = 0; r < KC_RES__COUNT && !err; r++) {
				uint64_t v = atomic_load_explicit(&s->requests[p][op][r],
								  memory_order_relaxed);
				if (!v)
					continue;
				snprintf(labels, sizeof(labels),
					 "proto=\"%s\",op=\"%s\",result=\"%s\"", proto_names[p],
					 op_names[op], res_names[r]);
				err = kc_metric_u64(out, name, labels, v);
			}
		}
	}
	return err;
}

static int render_hist(struct kc_buf *out, const char *name, const char *labels, struct kc_hist *h)
{
	uint64_t cum = 0, sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
	char le[32];
	int err = 0;

	for (int b = 0; b <= KC_HIST_BUCKETS && !err; b++) {
		cum += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		if (b < KC_HIST_BUCKETS)
			format_f64(le, sizeof(le), (double)kc_hist_bounds_ns[b] / 1e9);
		else
			snprintf(le, sizeof(le), "+Inf");
		err = kc_buf_printf(out, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels, le,
				    cum);
	}
	/* _count is the +Inf bucket, not h->count: a snapshot taken while a request is being
	 * recorded must still satisfy count == +Inf bucket. The sum in exact decimal seconds. */
	if (!err)
		err = kc_buf_printf(out, "%s_sum{%s} %" PRIu64 ".%09" PRIu64 "\n", name, labels,
				    sum_ns / 1000000000u, sum_ns % 1000000000u);
	if (!err)
		err = kc_buf_printf(out, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
	return err;
}

int kc_metric_hist(struct kc_buf *out, const char *name, const char *labels, struct kc_hist *h)
{
	return render_hist(out, name, labels, h);
}

uint64_t kc_hist_quantile_ns(struct kc_hist *h, double q)
{
	uint64_t n = 0, cum = 0, rank;

	for (int b = 0; b <= KC_HIST_BUCKETS; b++)
		n += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
	if (!n)
		return 0;
	rank = (uint64_t)(q * (double)n);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < KC_HIST_BUCKETS; b++) {
		cum += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		if (cum >= rank)
			return kc_hist_bounds_ns[b];
	}
	return UINT64_MAX;
}

static int render_durations(struct kc_buf *out, struct kc_stats *s)
{
	const char *name = "kcache_request_duration_seconds";
	char labels[64];
	int err;

	err = kc_metric_header(out, name, "histogram",
			       "Request handling time in seconds, by protocol and operation.");
	for (int p = 0; p < KC_PROTO__COUNT && !err; p++) {
		for (int op = 0; op < KC_OP__COUNT && !err; op++) {
			struct kc_hist *h = &s->duration[p][op];
			uint64_t n = 0;

			for (int b = 0; b <= KC_HIST_BUCKETS; b++)
				n += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
			if (!n)
				continue;
			snprintf(labels, sizeof(labels), "proto=\"%s\",op=\"%s\"", proto_names[p],
				 op_names[op]);
			err = render_hist(out, name, labels, h);
		}
	}
	return err;
}

static int render_counter(struct kc_buf *out, const char *name, const char *help,
			  _Atomic uint64_t *v)
{
	int err = kc_metric_header(out, name, "counter", help);

	return err ? err : kc_metric_u64(out, name, NULL, atomic_load(v));
}

static int render_totals(struct kc_buf *out, struct kc_stats *s)
{
	int err;

	err = render_counter(out, "kcache_connections_opened_total", "Client connections accepted.",
			     &s->conns_opened);
	if (!err)
		err = render_counter(out, "kcache_connections_closed_total",
				     "Client connections closed.", &s->conns_closed);
	if (!err)
		err = render_counter(out, "kcache_bytes_read_total", "Bytes read from clients.",
				     &s->bytes_read);
	if (!err)
		err = render_counter(out, "kcache_bytes_written_total", "Bytes written to clients.",
				     &s->bytes_written);
	if (!err)
		err =
		    render_counter(out, "kcache_udp_bad_frames_total",
				   "UDP datagrams dropped for a malformed memcached frame header.",
				   &s->udp_bad_frames);
	if (!err)
		err = kc_metric_header(out, "kcache_udp_refused_total", "counter",
				       "UDP datagrams answered with an error or nothing instead of "
				       "what they asked, by reason (serve/proto_text.h).");
	for (int r = 0; r < KC_UDP_REFUSED__COUNT && !err; r++) {
		char labels[32];

		snprintf(labels, sizeof(labels), "reason=\"%s\"", refusal_names[r]);
		err = kc_metric_u64(out, "kcache_udp_refused_total", labels,
				    atomic_load(&s->udp_refused[r]));
	}
	return err;
}

int kc_metrics_render(struct kc_buf *out)
{
	size_t len = out->len;
	struct kc_stats *sum;
	int err;

	/* ~17 KiB: too much for the stack of a small thread. */
	sum = calloc(1, sizeof(*sum));
	if (!sum)
		return -ENOMEM;
	kc_stats_sum(sum);
	err = render_requests(out, sum);
	if (!err)
		err = render_durations(out, sum);
	if (!err)
		err = render_totals(out, sum);
	free(sum);
	if (!err) {
		pthread_mutex_lock(&collector_lock);
		for (struct collector *c = collectors; c; c = c->next)
			c->fn(c->ctx, out);
		pthread_mutex_unlock(&collector_lock);
	}
	if (err)
		out->len = len;
	return err;
}
