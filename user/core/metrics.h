/* metrics.h: request accounting and the Prometheus text exposition.
 *
 * Hot-path counters live in per-thread blocks (struct kc_stats) written only by their owner
 * thread with relaxed atomics, so a request never takes a lock or bounces a cache line; the
 * renderer sums all blocks. Other modules expose their own gauges and counters through
 * collectors, called at render time.
 */
#ifndef KC_METRICS_H
#define KC_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/clock.h" /* kc_mono_ns, what latencies are measured with */

enum kc_proto { KC_PROTO_TCP, KC_PROTO_UDP, KC_PROTO_HTTP, KC_PROTO__COUNT };

/* Operations, one per protocol verb. Keep kc_op_name() in step. */
enum kc_op {
	KC_OP_GET,
	KC_OP_GETS,
	KC_OP_GAT,
	KC_OP_GATS,
	KC_OP_SET,
	KC_OP_ADD,
	KC_OP_REPLACE,
	KC_OP_APPEND,
	KC_OP_PREPEND,
	KC_OP_CAS,
	KC_OP_DELETE,
	KC_OP_INCR,
	KC_OP_DECR,
	KC_OP_TOUCH,
	KC_OP_FLUSH_ALL,
	KC_OP_STATS,
	KC_OP_VERSION,
	KC_OP_VERBOSITY,
	KC_OP_QUIT,
	KC_OP_MG,
	KC_OP_MS,
	KC_OP_MD,
	KC_OP_MN,
	KC_OP_MA,
	KC_OP_ME,
	KC_OP_OTHER, /* unknown commands and HTTP requests with no verb of their own */
	KC_OP__COUNT
};

/* Outcomes. A multi-key get counts one hit or miss per key. */
enum kc_res {
	KC_RES_HIT,
	KC_RES_MISS,
	KC_RES_STORED,
	KC_RES_NOT_STORED,
	KC_RES_EXISTS,
	KC_RES_NOT_FOUND,
	KC_RES_DELETED,
	KC_RES_TOUCHED,
	KC_RES_OK,
	KC_RES_ERROR,	     /* ERROR: unknown command */
	KC_RES_CLIENT_ERROR, /* CLIENT_ERROR: malformed request */
	KC_RES_SERVER_ERROR, /* SERVER_ERROR: our failure */
	KC_RES__COUNT
};

/* Why kcached answered a UDP datagram with an error (or nothing) instead of what it asked
 * (serve/proto_text.h tells the rules): a mutation without --udp-writes, a command never
 * served over UDP (flush_all, verbosity, stats), a reply over --udp-max-reply, a malformed
 * frame. Keep kc_udp_refusal_name() in step. */
enum kc_udp_refusal {
	KC_UDP_REFUSED_WRITE,
	KC_UDP_REFUSED_COMMAND,
	KC_UDP_REFUSED_SIZE,
	KC_UDP_REFUSED_FRAME,
	KC_UDP_REFUSED__COUNT
};

/* Histogram upper bounds: 1us .. 1ms in 1-2.5-5 steps (memory-tier and kernel-path latencies),
 * then 10ms, 100ms, 500ms, 1s (Redis and object-store round trips), then +Inf. A duration goes
 * into the first bucket whose bound is >= it (Prometheus `le` is inclusive). */
#define KC_HIST_BUCKETS 14
extern const uint64_t kc_hist_bounds_ns[KC_HIST_BUCKETS];

struct kc_hist {
	_Atomic uint64_t bucket[KC_HIST_BUCKETS + 1]; /* not cumulative; last one is +Inf */
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t count;
};

struct kc_stats {
	_Atomic uint64_t requests[KC_PROTO__COUNT][KC_OP__COUNT][KC_RES__COUNT];
	struct kc_hist duration[KC_PROTO__COUNT][KC_OP__COUNT];
	_Atomic uint64_t conns_opened, conns_closed, bytes_read, bytes_written;
	_Atomic uint64_t udp_bad_frames;
	_Atomic uint64_t udp_refused[KC_UDP_REFUSED__COUNT];
	/* memcached's "stats" counters, counted by the protocol as memcached 1.6 counts them: one
	 * get hit or miss per key a get or mg (without T) answered, one touch per key gat, touch or
	 * mg with T found or not (a touch is not a get). */
	_Atomic uint64_t get_cmds, get_hits, get_misses, touch_cmds;
	struct kc_stats *next; /* registry link, private */
};

/* Lower-case label values: "get", "flush_all", "client_error", "tcp", ... "unknown" when out of
 * range. Static strings. */
const char *kc_op_name(enum kc_op op);
const char *kc_res_name(enum kc_res res);
const char *kc_proto_name(enum kc_proto proto);
/* "write", "command", "size", "frame"; "unknown" when out of range. */
const char *kc_udp_refusal_name(enum kc_udp_refusal why);

/* Allocates and registers a per-thread block (zeroed, cache-line aligned so that two threads'
 * blocks never share a line). Never freed: threads live as long as the process. Returns NULL
 * with errno = ENOMEM. Thread-safe (takes the registry lock). */
struct kc_stats *kc_stats_new(void);

/* Counts one outcome (no duration). */
static inline void kc_stats_count(struct kc_stats *s, enum kc_proto p, enum kc_op op, enum kc_res r)
{
	atomic_fetch_add_explicit(&s->requests[p][op][r], 1, memory_order_relaxed);
}

/* Records one request's duration into the histogram for (proto, op). Owner thread only. */
void kc_stats_observe(struct kc_stats *s, enum kc_proto p, enum kc_op op, uint64_t ns);

/* Records ns into a histogram (thread-safe: relaxed atomics). */
void kc_hist_observe(struct kc_hist *h, uint64_t ns);
/* The upper bound of the bucket holding quantile q (0..1) of h, in ns: 0 when empty,
 * UINT64_MAX when it falls in +Inf. Coarse by design: the bucket bounds above. */
uint64_t kc_hist_quantile_ns(struct kc_hist *h, double q);

/* Adds every registered block into out (which the caller zeroed; out itself must not be a
 * registered block). A relaxed snapshot: counters written meanwhile may or may not be in it.
 * Takes the registry lock. */
void kc_stats_sum(struct kc_stats *out);

/* A collector appends complete metric families to out, with the helpers below. Families must
 * be named kcache_*, counters must end in _total, and no family may repeat one rendered by
 * kc_metrics_render() or by another collector. Called from the thread that renders, with the
 * collector lock held: a collector must not call kc_metrics_add_collector(). */
typedef void (*kc_collector_fn)(void *ctx, struct kc_buf *out);

/* Registers a collector, normally once at start-up; collectors run in registration order.
 * Returns 0, -EEXIST if (fn, ctx) is already registered, or -ENOMEM. Thread-safe. */
int kc_metrics_add_collector(kc_collector_fn fn, void *ctx);
/* Unregisters (fn, ctx) if registered; after it returns no render calls fn. Thread-safe. */
void kc_metrics_remove_collector(kc_collector_fn fn, void *ctx);

/* Appends every metric in the Prometheus text format 0.0.4 to out: the request families from
 * the per-thread blocks, then each collector's output. Renders are serialized (the collector
 * lock). Returns 0, or -ENOMEM with out as it was before the call. */
int kc_metrics_render(struct kc_buf *out);

/* Helpers for collectors: one "# HELP/# TYPE" header (help is escaped as the format requires),
 * then samples. labels may be NULL or preformatted `name="value",...` text with values already
 * escaped. f64 prints +Inf, -Inf and NaN as Prometheus spells them. Each returns 0 or -ENOMEM
 * (nothing appended on failure). */
int kc_metric_header(struct kc_buf *out, const char *name, const char *type, const char *help);
int kc_metric_u64(struct kc_buf *out, const char *name, const char *labels, uint64_t v);
/* A whole family with one unlabelled sample: header and value, the name written once.
 * Returns 0 or -ENOMEM. */
int kc_metric_one(struct kc_buf *out, const char *name, const char *type, const char *help,
		  uint64_t v);
int kc_metric_f64(struct kc_buf *out, const char *name, const char *labels, double v);
/* The _bucket, _sum and _count samples of one histogram series (labels not empty); the caller
 * wrote the family's header. */
int kc_metric_hist(struct kc_buf *out, const char *name, const char *labels, struct kc_hist *h);

#endif
