/* tier_int.h: what tier.c (lifecycle, metrics, admin), tier_read.c (fetch, single-flight,
 * negative cache) and tier_write.c (write modes, flusher, invalidation) share. Private. */
#ifndef KC_TIER_INT_H
#define KC_TIER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "tiers/journal/journal.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "tiers/redis/redis.h"
#include "tiers/store/store.h"
#include "tiers/tier.h"
#include "tiers/tier_io.h"

enum kc_tier_id { KC_TIER_MEMORY, KC_TIER_REDIS, KC_TIER_STORE, KC_TIER__COUNT };
enum kc_write_mode { KC_WRITE_THROUGH, KC_WRITE_BEHIND };
enum { KC_BREAKER_CLOSED, KC_BREAKER_OPEN, KC_BREAKER_HALF_OPEN };

/* Per tier: counters and the read latency histogram (kc_hist from metrics.h). */
struct kc_tier_stats {
	_Atomic uint64_t hits, misses, errors, promotions, writes, write_errors, corrupt;
	struct kc_hist lat;
};

/* A circuit breaker: after `threshold` failures in a row the tier is skipped for reset_ms,
 * then one probe request decides whether it closes again. */
struct kc_breaker {
	_Atomic int state;
	_Atomic uint32_t fails;
	_Atomic uint64_t open_until_ms, opened;
	uint32_t threshold, reset_ms;
};

/* One event loop's view of the tiers: a worker, the flusher, or the main thread. */
struct kc_tctx {
	struct kc_tiers *t;
	struct event_base *base;
	struct kc_redis *redis; /* NULL without Redis */
	unsigned id;
};

#define KC_NEG_SLOTS	  65536 /* negative cache: direct-mapped by key hash */
#define KC_FLIGHT_BUCKETS 1024

struct kc_flight;

struct kc_tiers {
	/* configuration */
	enum kc_write_mode mode;
	size_t item_max, compress_min;
	uint32_t neg_ttl_ms, tomb_ttl_s, redis_timeout_ms, redis_busy_poll_us;
	char prefix[64];
	char chan[96]; /* invalidation channel: <prefix>inval */
	char flush_key[96];
	char data_dir[256];
	struct kc_mem *mem;
	bool has_redis;
	struct kc_redis_url url;
	struct kc_store *store; /* NULL without an object store */
	struct kc_tio *io;
	struct kc_journal *journal; /* write-behind only */
	uint64_t replayed;
	/* contexts */
	struct kc_tctx *workers;
	unsigned nworkers;
	struct kc_tctx main;  /* invalidation subscriber */
	struct kc_redis *sub; /* subscriber connection on main */
	bool sub_was_up;
	struct kc_tctx flusher; /* write-behind flusher thread */
	pthread_t flusher_tid;
	bool flusher_started;
	struct event *flusher_wake, *flusher_tick;
	_Atomic bool stopping;
	_Atomic uint32_t flusher_inflight;
	/* single-flight */
	pthread_mutex_t flights_lock;
	struct kc_flight *flights[KC_FLIGHT_BUCKETS];
	/* negative cache: key hash and until (ms) per slot */
	struct {
		_Atomic uint64_t hash, until_ms;
	} neg[KC_NEG_SLOTS];
	/* recent writes: key hash and version per slot, so that a fetch racing a newer write
	 * (a delete, above all) does not fill the memory tier with what it replaced */
	struct {
		_Atomic uint64_t hash, ver;
	} wver[KC_NEG_SLOTS];
	/* latest flush_all: versions below flush_ver are gone once now >= flush_at (Unix s) */
	_Atomic uint64_t flush_ver;
	_Atomic int64_t flush_at;
	struct kc_breaker br[KC_TIER__COUNT];
	struct kc_tier_stats st[KC_TIER__COUNT];
	_Atomic uint64_t inval_sent, inval_applied, inval_ignored, resyncs, neg_hits, coalesced;
	_Atomic uint64_t wb_full, wb_flushed, wb_retries;
};

/* Is lower tier i (KC_TIER_REDIS, KC_TIER_STORE) configured? */
bool kc_tier_on(const struct kc_tiers *t, int i);
const char *kc_tier_name(enum kc_tier_id id);

bool kc_breaker_allow(struct kc_breaker *b);
void kc_breaker_result(struct kc_breaker *b, bool ok);

void kc_tier_observe(struct kc_tier_stats *s, uint64_t ns);

/* True if a blob of version ver is wiped by the latest flush_all. */
bool kc_tier_flushed(struct kc_tiers *t, uint64_t ver);
void kc_tier_neg_clear(struct kc_tiers *t, const char *key, size_t nkey);
/* Records a write of key at ver (clears its negative entry too); and asks whether a version
 * read from below is older than a write recorded since. */
void kc_tier_note_write(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver);
bool kc_tier_overtaken(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver);

/* Redis key for a cache key: <prefix>k:<key>, in buf (at least sizeof prefix + 3 + 1024). */
size_t kc_tier_redis_key(const struct kc_tiers *t, const char *key, size_t nkey, char *buf);

/* One write of a key's state to Redis and the store (whichever are configured and whose
 * breaker lets it through). done(ctx, err) on x's loop; err NULL when every tier has it. */
typedef void (*kc_apply_fn)(void *ctx, const char *err);
void kc_tier_apply(struct kc_tctx *x, const char *key, size_t nkey, uint64_t ver, const void *blob,
		   size_t nblob, bool tomb, int64_t exptime, bool redis_only, kc_apply_fn done,
		   void *ctx);

/* The invalidation subscriber's message handler, and the flusher's thread. */
void kc_tier_on_inval(void *ctx, const char *chan, size_t nchan, const char *msg, size_t n);
void *kc_tier_flusher_main(void *arg);
void kc_tier_flusher_event(evutil_socket_t fd, short what, void *arg);
void kc_tier_flush_load(struct kc_tiers *t);
void kc_tier_flusher_kick(struct kc_tiers *t);

#endif
