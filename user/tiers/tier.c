/* tier.c: the lower tiers' lifecycle, statistics and admin commands (see tier.h): the top of
 * the tiers. The read path is in tier_read.c, the write path in tier_write.c; below both, the
 * shared state (tier_state.c), the circuit breakers (tier_breaker.c), single-flight
 * (tier_flight.c) and one write to Redis and the store (tier_apply.c). Calls go down only. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/hlc.h"
#include "core/log.h"
#include "core/num.h"
#include "tiers/tier_int.h"

/* --- lifecycle -------------------------------------------------------------------------- */

static int mkdir_p(const char *path, char *err, size_t errlen)
{
	char tmp[512];
	size_t n = strlen(path);

	if (n >= sizeof(tmp)) {
		kc_errf(err, errlen, "data-dir: path too long");
		return -ENAMETOOLONG;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST) {
			kc_errf(err, errlen, "data-dir: %s: %s", tmp, strerror(errno));
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST) {
		kc_errf(err, errlen, "data-dir: %s: %s", tmp, strerror(errno));
		return -errno;
	}
	return 0;
}

struct kc_tiers *kc_tiers_new(const struct kc_config *cfg, struct kc_mem *mem, char *err,
			      size_t errlen)
{
	struct kc_tiers *t;
	char path[600];

	if (err && errlen)
		err[0] = 0;
	if (!cfg->redis[0] && !cfg->store[0] && !cfg->data_dir[0])
		return NULL; /* no lower tier */
	t = calloc(1, sizeof(*t));
	if (!t) {
		kc_errf(err, errlen, "lower tiers: out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->flights_lock, NULL);
	t->mem = mem;
	t->mode = strcmp(cfg->write_mode, "through") ? KC_WRITE_BEHIND : KC_WRITE_THROUGH;
	t->item_max = cfg->item_max;
	t->compress_min = cfg->compress_min;
	t->neg_ttl_ms = cfg->negative_ttl_ms;
	t->tomb_ttl_s = 60;
	t->redis_timeout_ms = cfg->redis_timeout_ms;
	t->redis_busy_poll_us = cfg->redis_busy_poll_us;
	snprintf(t->prefix, sizeof(t->prefix), "%s", cfg->redis_prefix);
	snprintf(t->chan, sizeof(t->chan), "%sinval", cfg->redis_prefix);
	snprintf(t->flush_key, sizeof(t->flush_key), "%sflush", cfg->redis_prefix);
	snprintf(t->data_dir, sizeof(t->data_dir), "%s", cfg->data_dir);
	for (int i = 0; i < KC_TIER__COUNT; i++) {
		t->br[i].threshold = cfg->breaker_failures;
		t->br[i].reset_ms = cfg->breaker_reset_ms;
	}
	if (cfg->node_id <= 255)
		kc_hlc_set_node(cfg->node_id);
	if (cfg->redis[0]) {
		if (kc_redis_url_parse(cfg->redis, &t->url, err, errlen))
			goto fail;
		t->has_redis = true;
	}
	if (t->data_dir[0] && mkdir_p(t->data_dir, err, errlen))
		goto fail;
	if (cfg->store[0] || t->data_dir[0]) {
		struct kc_store_opts so = {.spec = cfg->store[0] ? cfg->store : path,
					   .max_bytes = cfg->store_max,
					   .timeout_ms = cfg->store_timeout_ms};

		snprintf(path, sizeof(path), "%s/store", t->data_dir);
		t->store = kc_store_open(&so, err, errlen);
		if (!t->store)
			goto fail;
	}
	if (t->mode == KC_WRITE_BEHIND) {
		struct kc_journal_opts jo = {.dir = path,
					     .max_entries = cfg->wb_queue,
					     .max_bytes = cfg->wb_queue_bytes,
					     .max_attempts = cfg->wb_attempts,
					     .backoff_min_ms = 100,
					     .backoff_max_ms = 30000};

		snprintf(path, sizeof(path), "%s/journal", t->data_dir);
		t->journal = kc_journal_open(&jo, &t->replayed, err, errlen);
		if (!t->journal)
			goto fail;
		if (t->replayed)
			log_info("write-behind: %" PRIu64 " writes replayed from the journal",
				 t->replayed);
	}
	if (t->data_dir[0])
		kc_tier_flush_load(t);
	return t;
fail:
	kc_tiers_free(t);
	return NULL;
}

static struct kc_redis *redis_client(struct kc_tiers *t, struct event_base *base, const char *name,
				     void (*on_state)(void *, bool), uint32_t busy_poll_us,
				     char *err, size_t errlen)
{
	struct kc_redis_opts o = {.url = &t->url,
				  .busy_poll_us = busy_poll_us,
				  .timeout_ms = t->redis_timeout_ms,
				  .backoff_min_ms = 50,
				  .backoff_max_ms = 5000,
				  .name = name,
				  .on_state = on_state,
				  .state_ctx = t};

	return kc_redis_new(base, &o, err, errlen);
}

/* Reads the newest flush_all from Redis (another node may have flushed while we were away). */
static void on_flush_key(void *ctx, const redisReply *r, const char *err)
{
	struct kc_tiers *t = ctx;

	(void)err;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
		return;
	uint64_t ver, at;
	char msg[80];

	/* Written by a node as two decimals; anything else in the key is not a flush. */
	if (kc_parse_u64(r->element[0]->str, UINT64_MAX, &ver) ||
	    kc_parse_u64(r->element[1]->str, INT64_MAX, &at)) {
		log_warn("redis: the flush key holds no flush ('%.24s' '%.24s'): ignored",
			 r->element[0]->str, r->element[1]->str);
		return;
	}
	/* Same path as a live flush message from an unknown node. */
	snprintf(msg, sizeof(msg), "F %020" PRIu64 " %" PRIu64 " 256", ver, at);
	kc_tier_on_inval(t, NULL, 0, msg, strlen(msg));
}

/* The subscriber's connection came up or went down. Invalidations published while it was down
 * are lost, so after an outage the memory tier is emptied: it refills from below. */
static void on_sub_state(void *ctx, bool up)
{
	struct kc_tiers *t = ctx;

	if (!up)
		return;
	if (t->sub_was_up) {
		atomic_fetch_add(&t->resyncs, 1);
		log_warn("redis tier: invalidation channel back after an outage; emptying the "
			 "memory tier, which may have missed invalidations");
		kc_mem_flush(t->mem, kc_mem_now());
	}
	t->sub_was_up = true;
	if (t->main.redis) {
		const char *argv[] = {"HMGET", t->flush_key, "v", "at"};
		size_t lens[] = {5, strlen(t->flush_key), 1, 2};

		kc_redis_cmd(t->main.redis, on_flush_key, t, 4, argv, lens);
	}
}

static void tiers_collect(void *ctx, struct kc_buf *out);
static int admin_dead(void *ctx, int argc, char **argv, struct kc_buf *out);

int kc_tiers_start(struct kc_tiers *t, struct event_base *main, struct event_base **bases,
		   unsigned nworkers, struct kc_admin *admin, char *err, size_t errlen)
{
	char name[32];

	t->workers = calloc(nworkers, sizeof(*t->workers));
	if (!t->workers) {
		kc_errf(err, errlen, "lower tiers: out of memory");
		return -ENOMEM;
	}
	t->nworkers = nworkers;
	if (t->store) {
		t->io = kc_tio_start(t->store, 2, err, errlen);
		if (!t->io)
			return -EINVAL;
	}
	for (unsigned i = 0; i < nworkers; i++) {
		struct kc_tctx *x = &t->workers[i];

		*x = (struct kc_tctx){.t = t, .base = bases[i], .id = i};
		snprintf(name, sizeof(name), "kcached-w%u", i);
		if (t->has_redis && !(x->redis = redis_client(t, x->base, name, NULL,
							      t->redis_busy_poll_us, err, errlen)))
			return -EINVAL;
	}
	t->main = (struct kc_tctx){.t = t, .base = main, .id = nworkers};
	if (t->has_redis) {
		t->main.redis = redis_client(t, main, "kcached-main", NULL, 0, err, errlen);
		t->sub = redis_client(t, main, "kcached-sub", on_sub_state, 0, err, errlen);
		if (!t->main.redis || !t->sub ||
		    kc_redis_subscribe(t->sub, t->chan, kc_tier_on_inval, t)) {
			if (!err[0])
				kc_errf(err, errlen, "redis tier: cannot subscribe to %s", t->chan);
			return -EINVAL;
		}
	}
	if (t->journal) {
		struct timeval tick = {0, 50 * 1000};

		t->flusher = (struct kc_tctx){.t = t, .base = event_base_new(), .id = nworkers + 1};
		if (!t->flusher.base) {
			kc_errf(err, errlen, "write-behind flusher: out of memory");
			return -ENOMEM;
		}
		if (t->has_redis &&
		    !(t->flusher.redis = redis_client(t, t->flusher.base, "kcached-flusher", NULL,
						      0, err, errlen)))
			return -EINVAL;
		t->flusher_wake =
		    event_new(t->flusher.base, -1, EV_PERSIST, kc_tier_flusher_event, t);
		t->flusher_tick =
		    event_new(t->flusher.base, -1, EV_PERSIST, kc_tier_flusher_event, t);
		if (!t->flusher_wake || !t->flusher_tick || event_add(t->flusher_tick, &tick)) {
			kc_errf(err, errlen, "write-behind flusher: out of memory");
			return -ENOMEM;
		}
		int rc = pthread_create(&t->flusher_tid, NULL, kc_tier_flusher_main, t);

		if (rc) {
			kc_errf(err, errlen, "write-behind flusher: %s", strerror(rc));
			return -rc;
		}
		t->flusher_started = true;
	}
	kc_metrics_add_collector(tiers_collect, t);
	if (admin)
		kc_admin_register(admin, "deadletters",
				  "write-behind dead letters: deadletters [replay ID|all]",
				  admin_dead, NULL, t);
	if (t->has_redis) {
		char u[600];

		kc_redis_url_print(&t->url, u, sizeof(u));
		log_info("redis tier: %s, prefix '%s'", u, t->prefix);
	}
	if (t->store)
		log_info("store tier: %s", kc_store_kind(t->store));
	log_info("lower tiers: write-%s", t->mode == KC_WRITE_THROUGH ? "through" : "behind");
	return 0;
}

void kc_tiers_stop(struct kc_tiers *t)
{
	if (!t)
		return;
	/* Give the flusher a moment to drain what is queued: less to replay at the next start. */
	if (t->flusher_started)
		kc_journal_wait_drained(t->journal, 1000);
	atomic_store(&t->stopping, true);
	if (t->flusher_started) {
		event_base_loopbreak(t->flusher.base);
		pthread_join(t->flusher_tid, NULL);
		t->flusher_started = false;
	}
	kc_tio_stop(t->io); /* finishes queued jobs; their results wait on their loops */
	t->io = NULL;
	if (t->flusher.base) {
		for (int i = 0; i < 4; i++)
			event_base_loop(t->flusher.base, EVLOOP_NONBLOCK);
		kc_redis_free(t->flusher.redis);
		t->flusher.redis = NULL;
		if (t->flusher_wake)
			event_free(t->flusher_wake);
		if (t->flusher_tick)
			event_free(t->flusher_tick);
		t->flusher_wake = t->flusher_tick = NULL;
		event_base_free(t->flusher.base);
		t->flusher.base = NULL;
	}
	for (unsigned i = 0; i < t->nworkers; i++) {
		kc_redis_free(t->workers[i].redis);
		t->workers[i].redis = NULL;
	}
	kc_redis_free(t->sub);
	kc_redis_free(t->main.redis);
	t->sub = t->main.redis = NULL;
}

void kc_tiers_free(struct kc_tiers *t)
{
	if (!t)
		return;
	kc_tiers_stop(t);
	kc_metrics_remove_collector(tiers_collect, t);
	kc_journal_close(t->journal);
	kc_store_close(t->store);
	if (t->has_redis)
		kc_redis_url_free(&t->url);
	for (unsigned b = 0; b < KC_FLIGHT_BUCKETS; b++)
		if (t->flights[b])
			log_warn("lower tiers: a fetch was still in flight at exit");
	pthread_mutex_destroy(&t->flights_lock);
	free(t->workers);
	free(t);
}

/* --- statistics --------------------------------------------------------------------------- */

typedef uint64_t (*tier_get_fn)(struct kc_tiers *t, int i, size_t off);

static uint64_t get_stat(struct kc_tiers *t, int i, size_t off)
{
	return atomic_load((_Atomic uint64_t *)((char *)&t->st[i] + off));
}

static uint64_t get_breaker_state(struct kc_tiers *t, int i, size_t off)
{
	(void)off;
	return (uint64_t)atomic_load(&t->br[i].state);
}

static uint64_t get_breaker_opens(struct kc_tiers *t, int i, size_t off)
{
	(void)off;
	return atomic_load(&t->br[i].opened);
}

/* One family with a sample per configured lower tier. */
static void tier_family(struct kc_buf *out, const char *name, const char *type, const char *help,
			struct kc_tiers *t, tier_get_fn get, size_t off)
{
	char labels[32];

	kc_metric_header(out, name, type, help);
	for (int i = KC_TIER_REDIS; i < KC_TIER__COUNT; i++) {
		if (!kc_tier_on(t, i))
			continue;
		snprintf(labels, sizeof(labels), "tier=\"%s\"", kc_tier_name((enum kc_tier_id)i));
		if (get)
			kc_metric_u64(out, name, labels, get(t, i, off));
		else
			kc_metric_hist(out, name, labels, &t->st[i].lat);
	}
}

#define TIER_U64(name, type, help, field)                                                          \
	tier_family(out, name, type, help, t, get_stat, offsetof(struct kc_tier_stats, field))

/* Families that the memory tier also has a sample in are rendered by kc_tiers_collect_hits(). */
void kc_tiers_collect_hits(struct kc_tiers *t, const struct kc_mem_stats *ms, struct kc_buf *out)
{
	static const char *const names[2] = {"kcache_tier_hits_total", "kcache_tier_misses_total"};
	static const char *const helps[2] = {"Lookups answered by a tier.",
					     "Lookups a tier missed."};

	for (int k = 0; k < 2; k++) {
		kc_metric_header(out, names[k], "counter", helps[k]);
		kc_metric_u64(out, names[k], "tier=\"memory\"", k ? ms->misses : ms->hits);
		for (int i = KC_TIER_REDIS; t && i < KC_TIER__COUNT; i++) {
			char labels[32];

			if (!kc_tier_on(t, i))
				continue;
			snprintf(labels, sizeof(labels), "tier=\"%s\"",
				 kc_tier_name((enum kc_tier_id)i));
			kc_metric_u64(out, names[k], labels,
				      atomic_load(k ? &t->st[i].misses : &t->st[i].hits));
		}
	}
}

static void tiers_collect(void *ctx, struct kc_buf *out)
{
	struct kc_tiers *t = ctx;
	struct kc_store_stats ss = {0};

	if (t->store)
		kc_store_get_stats(t->store, &ss);
	TIER_U64("kcache_tier_errors_total", "counter", "Lookups a tier failed to answer.", errors);
	TIER_U64("kcache_tier_promotions_total", "counter",
		 "Values a tier's hit copied into the tiers above it.", promotions);
	TIER_U64("kcache_tier_corrupt_total", "counter",
		 "Values a tier returned that failed their checks (treated as misses).", corrupt);
	TIER_U64("kcache_tier_writes_total", "counter", "Writes a tier acknowledged.", writes);
	TIER_U64("kcache_tier_write_errors_total", "counter", "Writes a tier failed.",
		 write_errors);
	tier_family(out, "kcache_tier_latency_seconds", "histogram",
		    "Read latency of a lower tier, in seconds.", t, NULL, 0);
	tier_family(out, "kcache_tier_breaker_state", "gauge",
		    "Circuit breaker of a tier: 0 closed, 1 open, 2 half-open (probing).", t,
		    get_breaker_state, 0);
	tier_family(out, "kcache_tier_breaker_opens_total", "counter",
		    "Times a tier's circuit breaker opened.", t, get_breaker_opens, 0);
	if (t->store) {
		kc_metric_one(out, "kcache_store_bytes", "gauge",
			      "Bytes of the objects in the object store.", ss.bytes);
		kc_metric_one(out, "kcache_store_objects", "gauge", "Objects in the object store.",
			      ss.objects);
		kc_metric_one(out, "kcache_store_evictions_total", "counter",
			      "Objects the store's LRU removed to stay under its size limit.",
			      ss.evictions);
		kc_metric_one(out, "kcache_store_full_total", "counter",
			      "Writes the store refused for lack of space.", ss.full);
	}
	if (t->has_redis) {
		kc_metric_header(out, "kcache_tier_invalidations_total", "counter",
				 "Cross-node invalidations, by what became of them.");
		kc_metric_u64(out, "kcache_tier_invalidations_total", "result=\"sent\"",
			      atomic_load(&t->inval_sent));
		kc_metric_u64(out, "kcache_tier_invalidations_total", "result=\"applied\"",
			      atomic_load(&t->inval_applied));
		kc_metric_u64(out, "kcache_tier_invalidations_total", "result=\"ignored\"",
			      atomic_load(&t->inval_ignored));
		kc_metric_one(out, "kcache_tier_resyncs_total", "counter",
			      "Times the memory tier was emptied after the invalidation channel "
			      "was down.",
			      atomic_load(&t->resyncs));
		kc_metric_one(out, "kcache_redis_up", "gauge", "1 while workers reach Redis.",
			      t->workers && t->workers[0].redis &&
				  kc_redis_up(t->workers[0].redis));
	}
	kc_metric_one(out, "kcache_tier_singleflight_coalesced_total", "counter",
		      "Lower-tier lookups that joined a fetch already in flight.",
		      atomic_load(&t->coalesced));
	kc_metric_one(out, "kcache_tier_writes_undone_total", "counter",
		      "Refused writes (SERVER_ERROR) taken back out of the memory tier.",
		      atomic_load(&t->writes_undone));
	kc_metric_one(out, "kcache_tier_negative_hits_total", "counter",
		      "Lookups answered by the negative cache (found nowhere lately).",
		      atomic_load(&t->neg_hits));
	if (t->journal) {
		struct kc_journal_stats js;

		kc_journal_get_stats(t->journal, &js);
		kc_metric_one(out, "kcache_writebehind_queue_depth", "gauge",
			      "Writes waiting for the flusher.", js.pending);
		kc_metric_one(out, "kcache_writebehind_queue_bytes", "gauge",
			      "Bytes waiting for the flusher.", js.pending_bytes);
		kc_metric_one(out, "kcache_writebehind_flushed_total", "counter",
			      "Writes the flusher delivered to every lower tier.",
			      atomic_load(&t->wb_flushed));
		kc_metric_one(out, "kcache_writebehind_retries_total", "counter",
			      "Flush attempts that failed and will be retried.",
			      atomic_load(&t->wb_retries));
		kc_metric_one(out, "kcache_writebehind_dead_letters", "gauge",
			      "Writes that failed every attempt (kcachectl deadletters).", js.dead);
		kc_metric_one(out, "kcache_writebehind_rejected_total", "counter",
			      "Writes refused because the queue was full (backpressure).",
			      atomic_load(&t->wb_full));
		kc_metric_one(out, "kcache_writebehind_replayed_total", "counter",
			      "Writes replayed from the journal at start.", t->replayed);
		kc_metric_one(
		    out, "kcache_journal_damaged_total", "counter",
		    "Damaged journal records skipped at start (kept in journal/damaged/).",
		    js.damaged);
		kc_metric_one(out, "kcache_journal_damaged_bytes_total", "counter",
			      "Bytes of those damaged records.", js.damaged_bytes);
	}
}

void kc_tiers_stats_text(struct kc_tiers *t, struct kc_buf *out)
{
	static const char *const states[] = {"closed", "open", "half-open"};

	if (!t)
		return;
	for (int i = KC_TIER_REDIS; i < KC_TIER__COUNT; i++) {
		struct kc_tier_stats *s = &t->st[i];

		if (!kc_tier_on(t, i))
			continue;
		kc_buf_printf(out,
			      "tier %s: hits %" PRIu64 ", misses %" PRIu64 ", errors %" PRIu64
			      ", promotions %" PRIu64 ", corrupt %" PRIu64 ", writes %" PRIu64
			      ", write errors %" PRIu64 ", breaker %s, latency p50 %" PRIu64
			      " us, p95 %" PRIu64 " us, p99 %" PRIu64 " us\n",
			      kc_tier_name((enum kc_tier_id)i), atomic_load(&s->hits),
			      atomic_load(&s->misses), atomic_load(&s->errors),
			      atomic_load(&s->promotions), atomic_load(&s->corrupt),
			      atomic_load(&s->writes), atomic_load(&s->write_errors),
			      states[atomic_load(&t->br[i].state)],
			      kc_hist_quantile_ns(&s->lat, 0.50) / 1000,
			      kc_hist_quantile_ns(&s->lat, 0.95) / 1000,
			      kc_hist_quantile_ns(&s->lat, 0.99) / 1000);
	}
	if (t->store) {
		struct kc_store_stats ss;

		kc_store_get_stats(t->store, &ss);
		kc_buf_printf(out,
			      "store %s: objects %" PRIu64 ", bytes %" PRIu64 " of %" PRIu64
			      ", evictions %" PRIu64 ", full %" PRIu64 "\n",
			      kc_store_kind(t->store), ss.objects, ss.bytes, ss.max_bytes,
			      ss.evictions, ss.full);
	}
	if (t->journal) {
		struct kc_journal_stats js;

		kc_journal_get_stats(t->journal, &js);
		kc_buf_printf(
		    out,
		    "write-behind: queue %" PRIu64 " (%" PRIu64 " bytes), flushed %" PRIu64
		    ", retries %" PRIu64 ", dead letters %" PRIu64 ", rejected %" PRIu64
		    ", replayed %" PRIu64 "\n",
		    js.pending, js.pending_bytes, atomic_load(&t->wb_flushed),
		    atomic_load(&t->wb_retries), js.dead, atomic_load(&t->wb_full), t->replayed);
	}
	if (t->has_redis)
		kc_buf_printf(out,
			      "invalidations: sent %" PRIu64 ", applied %" PRIu64
			      ", ignored %" PRIu64 ", resyncs %" PRIu64 "\n",
			      atomic_load(&t->inval_sent), atomic_load(&t->inval_applied),
			      atomic_load(&t->inval_ignored), atomic_load(&t->resyncs));
}

/* admin: deadletters [replay ID|all] */
static int admin_dead(void *ctx, int argc, char **argv, struct kc_buf *out)
{
	struct kc_tiers *t = ctx;
	struct kc_jdead *d;
	size_t n, total;

	if (!t->journal) {
		kc_buf_puts(out, "no write-behind journal (write-mode through)");
		return -1;
	}
	if (argc >= 2 && !strcmp(argv[1], "replay")) {
		uint64_t id = 0, count = 0;

		if (argc != 3 || (strcmp(argv[2], "all") &&
				  (kc_parse_u64(argv[2], UINT64_MAX, &id) || id == 0))) {
			kc_buf_puts(out, "usage: deadletters replay ID|all");
			return -1;
		}
		if (kc_journal_dead_replay(t->journal, id, &count)) {
			kc_buf_printf(out, "no dead letter %s", argv[2]);
			return -1;
		}
		kc_tier_flusher_kick(t);
		kc_buf_printf(out, "replayed %" PRIu64 "\n", count);
		return 0;
	}
	if (argc != 1) {
		kc_buf_puts(out, "usage: deadletters [replay ID|all]");
		return -1;
	}
	d = calloc(1000, sizeof(*d));
	if (!d) {
		kc_buf_puts(out, "out of memory");
		return -1;
	}
	total = kc_journal_dead_list(t->journal, d, 1000);
	n = total < 1000 ? total : 1000;
	kc_buf_printf(out, "%zu dead letters%s\n", total, total > n ? " (first 1000)" : "");
	for (size_t i = 0; i < n; i++)
		kc_buf_printf(out, "%" PRIu64 " %s %.*s attempts %u: %s\n", d[i].id,
			      d[i].op == KC_JDEL ? "delete" : "set", (int)d[i].nkey, d[i].key,
			      d[i].attempts, d[i].why);
	free(d);
	return 0;
}
