/* tier.h: the lower tiers behind the memory tier: a shared Redis (L2) and an object store (L3:
 * a local directory by default, or S3), with the read path, the write modes, cross-node
 * invalidation, circuit breakers and their statistics. docs/tiers.md tells the whole story.
 *
 * Read path: memory -> write-behind journal (writes not yet flushed) -> Redis -> store. A hit
 * below fills the memory tier (KC_FILL: never over a newer version) and a store hit fills Redis
 * in the background. Concurrent misses of one key, from any thread, share one fetch
 * (single-flight); a key found nowhere is remembered as absent for negative-ttl ms.
 *
 * Writes: every command that changes a key ends with kc_tiers_write(), which reads the key's
 * state from the memory tier (its item, or nothing: a tombstone) and makes it durable:
 *   write-through: Redis and the store both have it before the callback says done;
 *   write-behind: the fsynced journal has it; a flusher thread drains it to Redis and the
 *   store, retrying with backoff, and moves an entry that keeps failing to the dead letters.
 * Redis writes go through a Lua script that keeps the newest version and publishes an
 * invalidation (version, node, key) that every other node applies to its memory tier (and so
 * to its kernel tier) only if its copy is older.
 *
 * Threads: kc_tiers_fetch/write/flush are called on a worker thread with that worker's index;
 * their callbacks run later on the same thread, never inside the call. */
#ifndef KC_TIER_H
#define KC_TIER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/admin.h"
#include "core/buf.h"
#include "core/config.h"
#include "mem/mem.h"

struct kc_tiers;

/* Opens what the configuration names (the store and the journal under data-dir, the Redis
 * URL's parse) and replays the journal. Returns NULL with a message in err for a bad URL, an
 * unusable directory or a corrupt journal; NULL with err empty when no lower tier is
 * configured. An unreachable Redis or S3 endpoint is not an error: the tier starts down. */
struct kc_tiers *kc_tiers_new(const struct kc_config *cfg, struct kc_mem *mem, char *err,
			      size_t errlen);
/* Starts the threads and connections: the I/O threads, the flusher, the invalidation
 * subscriber on main (the main thread's loop), and nworkers worker contexts whose loops are
 * bases[i]. Registers the admin commands and the metrics collector. */
int kc_tiers_start(struct kc_tiers *t, struct event_base *main, struct event_base **bases,
		   unsigned nworkers, struct kc_admin *admin, char *err, size_t errlen);
/* Stops the flusher (after it drains the journal for up to a second), the subscriber and the
 * I/O threads; callbacks still owed are queued on their loops, which the caller runs once
 * more (event_base_loop(base, EVLOOP_NONBLOCK)) before freeing them. */
void kc_tiers_stop(struct kc_tiers *t);
void kc_tiers_free(struct kc_tiers *t);

/* True when a Redis tier is configured: the channel that tells other nodes (t may be NULL). */
bool kc_tiers_shared(const struct kc_tiers *t);

/* False when the key was looked up below lately and found nowhere (negative cache). */
bool kc_tiers_may_have(struct kc_tiers *t, const char *key, size_t nkey);

/* Looks key up below the memory tier. fn gets a reference to the item found (which the memory
 * tier was filled with), or NULL: a miss everywhere, or every tier failing. */
typedef void (*kc_tier_fetch_fn)(void *ctx, struct kc_item *it);
void kc_tiers_fetch(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_fetch_fn fn, void *ctx);

/* Makes the memory tier's current state of key durable below (see the write modes above).
 * fn gets NULL once it is, or the reason it is not ("write-behind queue full", "redis:
 * timeout after 200 ms"), which the protocol sends as SERVER_ERROR. */
typedef void (*kc_tier_write_fn)(void *ctx, const char *err);
void kc_tiers_write(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_write_fn fn, void *ctx);

/* How far a flush reaches (issue 13: a flush that lasts and reaches other nodes is the
 * operator's act, never a protocol peer's). */
enum kc_flush_scope {
	KC_FLUSH_LOCAL,	    /* this node's reads, until it restarts: the protocol's flush_all */
	KC_FLUSH_DURABLE,   /* this node, kept in data-dir/flush across restarts */
	KC_FLUSH_ALL_NODES, /* DURABLE, and written to Redis and published to every node */
};

/* Where a call comes from: a worker's index, or KC_TIERS_MAIN for the main thread (admin). */
#define KC_TIERS_MAIN UINT32_MAX

/* flush: everything written at or before `when` (Unix seconds) is hidden below, for the reads
 * of the nodes `scope` names, once now >= when. The caller flushes the memory tier. fn gets
 * NULL once done (ALL_NODES: once Redis has it), or the reason it failed. */
void kc_tiers_flush(struct kc_tiers *t, unsigned worker, int64_t when, enum kc_flush_scope scope,
		    kc_tier_write_fn fn, void *ctx);

/* Renders kcache_tier_hits_total and kcache_tier_misses_total for every tier, the memory
 * tier's from ms (t may be NULL: memory only). */
void kc_tiers_collect_hits(struct kc_tiers *t, const struct kc_mem_stats *ms, struct kc_buf *out);

/* Appends the lower tiers' part of `kcachectl stats`. */
void kc_tiers_stats_text(struct kc_tiers *t, struct kc_buf *out);

#endif
