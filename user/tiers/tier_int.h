/* tier_int.h: what the files of the tiers share. Private. Calls go one way:
 *   tier.c (lifecycle, metrics, admin)
 *     -> tier_read.c (fetch) and tier_write.c (write modes, flush_all, flusher, invalidation)
 *       -> tier_flight.c (single-flight), tier_apply.c (one write to Redis and the store)
 *         -> tier_breaker.c (circuit breakers), tier_state.c (names, clock, which tiers are on,
 *            flush_all's version, negative cache, recent writes)
 * and any of them may call a file further down. */
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

struct kc_flight_waiter;

/* A fetch in flight (tier_flight.c): in t->flights while it runs, its waiters get its result. */
struct kc_flight {
	struct kc_flight *next;
	uint64_t hash;
	char *key;
	size_t nkey;
	struct kc_flight_waiter *waiters;
	struct kc_tctx *x;
	bool in_call;	   /* inside kc_tiers_fetch: waiters must be called later, from the loop */
	bool redis_missed; /* Redis answered "no such key" (so a store hit may fill it) */
	bool tier_failed;  /* some tier could not answer: the miss is not cached */
};

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
	_Atomic uint64_t writes_undone; /* refused writes taken back out of the memory tier */
};

/* --- tier_state.c: no lock; any thread ------------------------------------------------ */

/* Is lower tier i (KC_TIER_REDIS, KC_TIER_STORE) configured? */
bool kc_tier_on(const struct kc_tiers *t, int i);
const char *kc_tier_name(enum kc_tier_id id);
void kc_tier_observe(struct kc_tier_stats *s, uint64_t ns);
/* The hash that names key in the flight table, the negative cache and the recent writes
 * (never 0). */
uint64_t kc_tier_key_hash(const char *key, size_t nkey);

/* True if a blob of version ver is wiped by the latest flush_all. */
bool kc_tier_flushed(struct kc_tiers *t, uint64_t ver);
/* Remembers that the key of hash h is in no lower tier, for t->neg_ttl_ms (nothing when 0);
 * kc_tiers_may_have (tier.h) answers false for it until then, or until a write clears it. */
void kc_tier_neg_insert(struct kc_tiers *t, uint64_t h);
void kc_tier_neg_clear(struct kc_tiers *t, const char *key, size_t nkey);
/* Records a write of key at ver (clears its negative entry too); and asks whether a version
 * read from below is older than a write recorded since. */
void kc_tier_note_write(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver);
bool kc_tier_overtaken(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver);
/* Forgets the write of key at ver recorded by kc_tier_note_write (a refused write), unless a
 * newer one was recorded since. */
void kc_tier_unnote_write(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver);

/* --- tier_breaker.c: atomics only; any thread ------------------------------------------ */

/* True if a request may go to the tier: always when closed; when open, false until
 * open_until_ms, then true for exactly one caller (the probe, the breaker is half-open) and
 * false for the others until the probe's result. */
bool kc_breaker_allow(struct kc_breaker *b);
/* Reports a request's outcome: a success closes the breaker and clears the failures; a failure
 * opens it after threshold failures in a row, or at once when it was the half-open probe. */
void kc_breaker_result(struct kc_breaker *b, bool ok);

/* --- tier_flight.c: takes t->flights_lock itself ---------------------------------------- */

/* Starts or joins the fetch of key for fn(ctx, item) on x's loop. Returns 1 when the caller
 * leads a new flight (*out: it fetches, then calls kc_flight_finish), 0 when it joined the
 * flight in progress (fn is called with that flight's result; t->coalesced counted), -ENOMEM
 * (fn will never be called). */
int kc_flight_begin(struct kc_tiers *t, struct kc_tctx *x, const char *key, size_t nkey,
		    kc_tier_fetch_fn fn, void *ctx, struct kc_flight **out);
/* Ends flight f (leader only): hands it (a reference each; NULL for a miss) to every waiter on
 * its own loop, remembers a miss in the negative cache unless f->tier_failed, frees f and drops
 * the caller's reference to it. */
void kc_flight_finish(struct kc_flight *f, struct kc_item *it);

/* --- tier_apply.c ------------------------------------------------------------------------ */

/* Redis key for a cache key: <prefix>k:<key>, in buf (at least sizeof prefix + 3 + 1024). */
size_t kc_tier_redis_key(const struct kc_tiers *t, const char *key, size_t nkey, char *buf);

/* One write of a key's state to Redis and the store (whichever are configured and whose
 * breaker lets it through). With both, Redis is written (and the write published) only once
 * the store took it, so a write the store refuses reaches no node. done(ctx, err) on x's
 * loop; err NULL when every tier has it. */
typedef void (*kc_apply_fn)(void *ctx, const char *err);
void kc_tier_apply(struct kc_tctx *x, const char *key, size_t nkey, uint64_t ver, const void *blob,
		   size_t nblob, bool tomb, int64_t exptime, bool redis_only, kc_apply_fn done,
		   void *ctx);

/* --- tier_write.c ------------------------------------------------------------------------ */

/* The invalidation subscriber's message handler, and the flusher's thread. */
void kc_tier_on_inval(void *ctx, const char *chan, size_t nchan, const char *msg, size_t n);
void *kc_tier_flusher_main(void *arg);
void kc_tier_flusher_event(evutil_socket_t fd, short what, void *arg);
void kc_tier_flush_load(struct kc_tiers *t);
void kc_tier_flusher_kick(struct kc_tiers *t);

#endif
