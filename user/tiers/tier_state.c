/* tier_state.c: the state every part of the tiers reads and writes, and nothing that calls
 * another part: tier names, the clock, the latency histogram, which tiers are on, flush_all's
 * version, the negative cache and the recent writes' versions (see tier_int.h). A leaf of the
 * tiers: tier.c, tier_read.c, tier_write.c, tier_apply.c and tier_flight.c call it.
 *
 * The negative cache and the recent writes are direct-mapped slots of (key hash, value), written
 * without a lock: the value is stored before the hash (release), and read after it (acquire), so
 * a reader that sees its hash sees that entry's value or a newer one. Two keys sharing a slot
 * only cost a lower-tier read (the slot no longer remembers the other key's miss). */
#include <time.h>
#include <xxhash.h>

#include "tiers/tier_int.h"

static const char *const tier_names[KC_TIER__COUNT] = {"memory", "redis", "store"};

const char *kc_tier_name(enum kc_tier_id id)
{
	return id < KC_TIER__COUNT ? tier_names[id] : "unknown";
}

void kc_tier_observe(struct kc_tier_stats *s, uint64_t ns)
{
	kc_hist_observe(&s->lat, ns);
}

bool kc_tier_on(const struct kc_tiers *t, int i)
{
	return i == KC_TIER_REDIS ? t->has_redis : i == KC_TIER_STORE ? t->store != NULL : false;
}

uint64_t kc_tier_key_hash(const char *key, size_t nkey)
{
	return XXH3_64bits(key, nkey) | 1; /* never 0, the empty slot */
}

bool kc_tier_flushed(struct kc_tiers *t, uint64_t ver)
{
	uint64_t f = atomic_load(&t->flush_ver);

	return f && ver < f && kc_mem_now() >= atomic_load(&t->flush_at);
}

/* --- negative cache and recent writes -------------------------------------------------- */

bool kc_tiers_shared(const struct kc_tiers *t)
{
	return t && t->has_redis;
}

bool kc_tiers_may_have(struct kc_tiers *t, const char *key, size_t nkey)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	if (atomic_load_explicit(&t->neg[i].hash, memory_order_acquire) == h &&
	    atomic_load_explicit(&t->neg[i].until_ms, memory_order_relaxed) > kc_mono_ms()) {
		atomic_fetch_add_explicit(&t->neg_hits, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

void kc_tier_neg_insert(struct kc_tiers *t, uint64_t h)
{
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	if (!t->neg_ttl_ms)
		return;
	atomic_store_explicit(&t->neg[i].until_ms, kc_mono_ms() + t->neg_ttl_ms,
			      memory_order_relaxed);
	atomic_store_explicit(&t->neg[i].hash, h, memory_order_release);
}

void kc_tier_neg_clear(struct kc_tiers *t, const char *key, size_t nkey)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	if (atomic_load_explicit(&t->neg[i].hash, memory_order_relaxed) == h)
		atomic_store_explicit(&t->neg[i].hash, 0, memory_order_release);
}

void kc_tier_note_write(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	kc_tier_neg_clear(t, key, nkey);
	atomic_store_explicit(&t->wver[i].ver, ver, memory_order_relaxed);
	atomic_store_explicit(&t->wver[i].hash, h, memory_order_release);
}

bool kc_tier_overtaken(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	return atomic_load_explicit(&t->wver[i].hash, memory_order_acquire) == h &&
	       atomic_load_explicit(&t->wver[i].ver, memory_order_relaxed) > ver;
}

void kc_tier_unnote_write(struct kc_tiers *t, const char *key, size_t nkey, uint64_t ver)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	unsigned i = (unsigned)(h & (KC_NEG_SLOTS - 1));

	if (atomic_load_explicit(&t->wver[i].hash, memory_order_acquire) == h &&
	    atomic_load_explicit(&t->wver[i].ver, memory_order_relaxed) == ver)
		atomic_store_explicit(&t->wver[i].hash, 0, memory_order_release);
}
