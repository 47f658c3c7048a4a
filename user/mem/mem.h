/* mem.h: the memory tier (L1). A sharded, byte-bounded key/value store with W-TinyLFU eviction.
 *
 * Items are immutable once stored, and reference counted: a lookup hands out a reference that
 * stays valid (and unchanged) until kc_item_put(), even if the key is overwritten, deleted or
 * evicted meanwhile. Every function here is thread-safe; each takes one shard's lock inside.
 *
 * Memory bound: the sum of kc_item_size() over stored items never exceeds the capacity given
 * to kc_mem_new(). Items still referenced after they left the table are not counted (they are
 * bounded by in-flight requests), nor is the index: hash buckets and the frequency sketch cost
 * about 24-32 bytes per stored item on top.
 *
 * Time: expiry times are absolute Unix seconds (0 = never). The tier reads the clock through
 * kc_mem_now(), which tests can replace with kc_mem_set_clock(). An item whose exptime is
 * <= now is never returned.
 */
#ifndef KC_MEM_H
#define KC_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kcache/limits.h> /* KC_KEY_MAX */

struct kc_item {
	/* public, read-only after the item is stored */
	uint32_t flags;		 /* client flags */
	uint32_t nkey;		 /* key length, 1..KC_KEY_MAX */
	uint32_t nval;		 /* value length */
	_Atomic uint32_t seen;	 /* last read, in seconds after `time` (mg's l); set by reads */
	_Atomic int64_t exptime; /* absolute Unix seconds, 0 = never; changed by touch */
	uint64_t cas;		 /* unique per stored version, assigned by the tier */
	_Atomic uint64_t ver;	 /* write version (hlc.h): minted when stored, kept by KC_FILL;
				  * a touch mints a new one */
	int64_t time;		 /* when stored (Unix seconds) */
	/* private to mem.c */
	_Atomic uint32_t refs;
	uint8_t seg;
	_Atomic uint8_t state; /* KC_ITEM_* below (public, changed with atomics) */
	uint8_t pad[2];
	uint64_t hash;
	struct kc_item *hnext;
	struct kc_item *prev, *next;
	char data[]; /* key bytes, then value bytes (no trailing CRLF) */
};

/* An item's meta-protocol state (memcached's it_flags of the same names). */
#define KC_ITEM_FETCHED 1u /* read by a get or an mg (without u) since it was stored */
#define KC_ITEM_TOKEN	2u /* an mg handed out the right to recache it (its W flag) */
#define KC_ITEM_STALE	4u /* invalidated by md I (or stored by ms I over a newer cas) */
#define KC_ITEM_BINARY	8u /* stored by an ms with b: replies show its key in base64 */

static inline const char *kc_item_key(const struct kc_item *it)
{
	return it->data;
}

static inline char *kc_item_value(struct kc_item *it)
{
	return it->data + it->nkey;
}

/* Allocates an item with refs = 1, key copied in, value left for the caller to fill.
 * Returns NULL with errno = EINVAL (nkey not in 1..KC_KEY_MAX, nval > UINT32_MAX) or ENOMEM. */
struct kc_item *kc_item_new(const char *key, size_t nkey, uint32_t flags, int64_t exptime,
			    size_t nval);
/* Takes one more reference. */
void kc_item_get(struct kc_item *it);
/* Drops a reference; the last one frees the item. NULL is allowed. */
void kc_item_put(struct kc_item *it);
/* Bytes the item counts against the capacity: header + key + value, plus glibc malloc's 8-byte
 * chunk header, rounded up to 16 (what the allocation really costs). */
size_t kc_item_size(size_t nkey, size_t nval);

/* The storage commands' modes (memcached's "set" family; "store" is the object store,
 * tiers/store/). KC_FILL stores a copy read from a lower tier: only if the key is absent or holds
 * an older version (it->ver, which the caller set and the tier keeps); KC_NOT_STORED otherwise.
 * Every other mode mints a new version for what it stores. */
enum kc_set_mode {
	KC_SET,
	KC_ADD,
	KC_REPLACE,
	KC_APPEND,
	KC_PREPEND,
	KC_CAS,
	KC_FILL,
	KC_CAS_STALE
};

/* Protocol outcomes (memcached's words). */
enum kc_mem_result {
	KC_STORED,
	KC_NOT_STORED,
	KC_EXISTS,
	KC_NOT_FOUND,
	KC_DELETED,
	KC_TOUCHED,
	KC_TOO_LARGE,	/* bigger than the capacity allows for one item */
	KC_NO_MEMORY,	/* allocation failed */
	KC_NON_NUMERIC, /* incr/decr on a value that is not a decimal uint64 */
};

struct kc_mem_stats {
	uint64_t items, bytes, capacity;
	uint64_t hits, misses, evictions, expired, admissions_rejected;
};

struct kc_mem;

/* Creates a tier holding at most capacity bytes; item_max is the largest item (key + value)
 * a store may hold. The capacity is split into 1..64 shards (a power of two), each holding at
 * least max(4 * kc_item_size(0, item_max), 64 KiB). Returns NULL with errno = EINVAL if
 * item_max is 0 or capacity < 2 * item_max, ENOMEM if allocation fails. */
struct kc_mem *kc_mem_new(size_t capacity, size_t item_max);
/* Drops the tier's references (items callers still hold stay valid until their last put).
 * NULL is allowed. No other call may be running. */
void kc_mem_free(struct kc_mem *m);

/* Returns a reference to the live item for key, or NULL (miss or expired). Counts a hit or a
 * miss and records the access for eviction. */
struct kc_item *kc_mem_get(struct kc_mem *m, const char *key, size_t nkey);

/* Like kc_mem_get, and sets a new exptime on a hit (gat, touch). */
struct kc_item *kc_mem_get_touch(struct kc_mem *m, const char *key, size_t nkey, int64_t exptime);

/* What an item looked like before kc_mem_get_meta changed it (mg's h, l and t report this). */
struct kc_mem_seen {
	int64_t exptime;  /* 0 = never */
	int64_t accessed; /* Unix seconds of the last read (or of the store) */
	uint8_t state;	  /* KC_ITEM_* */
};

/* mg's lookup: like kc_mem_get_touch when touch, like kc_mem_get otherwise, except that without
 * bump (mg's u) the item is neither marked fetched nor read now, and keeps its recency. On a hit
 * *seen gets the item as it was before this call. kc_mem_get and kc_mem_get_touch bump. */
struct kc_item *kc_mem_get_meta(struct kc_mem *m, const char *key, size_t nkey, bool touch,
				int64_t exptime, bool bump, struct kc_mem_seen *seen);

/* md I: replaces key's live item by a stale copy (KC_ITEM_STALE, no token) with a new cas and,
 * when touch, a new exptime; cas_in != 0 must match the stored cas. KC_DELETED (marked),
 * KC_NOT_FOUND, KC_EXISTS or KC_NO_MEMORY. */
enum kc_mem_result kc_mem_invalidate(struct kc_mem *m, const char *key, size_t nkey,
				     uint64_t cas_in, bool touch, int64_t exptime);

/* Calls fn(ctx, it, deadline) with key's shard lock held: it is the live item (NULL on a miss,
 * or if it expired), deadline the Unix second from which it can no longer be returned (its
 * exptime or a pending delayed flush_all, whichever is sooner; 0 = never). Counts no hit or
 * miss and changes no recency. For the kernel tier's installer: every change to the key takes
 * the same lock and tells the hooks below, so what fn publishes cannot be older than a write
 * that has returned. fn must not call into the tier; `it` is valid only during the call. */
typedef void (*kc_mem_item_fn)(void *ctx, struct kc_item *it, int64_t deadline);
void kc_mem_with_item(struct kc_mem *m, const char *key, size_t nkey, kc_mem_item_fn fn, void *ctx);

/* Records n requests for key that another tier answered (the kernel tier's XDP hits), for
 * eviction only: the key gains frequency and recency as if read, no hit or miss is counted.
 * Without it the keys the kernel serves most would look coldest here and be evicted first. */
void kc_mem_note_access(struct kc_mem *m, const char *key, size_t nkey, uint32_t n);

/* Stores it (which the caller allocated with kc_item_new and filled, and never stored before)
 * by mode. KC_ADD on a live key bumps that key (as memcached does) and returns KC_NOT_STORED.
 * KC_CAS compares cas_in against the stored item's cas. KC_CAS_STALE (ms I) is KC_CAS, but a
 * cas_in older than the stored cas stores too, marked stale, with the stored item's exptime
 * and token (memcached's late write after an invalidation). KC_APPEND/KC_PREPEND build a new item
 * from the stored one (keeping its flags and exptime) and its value; a non-zero cas_in must
 * match there too.
 * Returns KC_STORED (the tier took its own reference; the caller keeps theirs), KC_NOT_STORED,
 * KC_EXISTS, KC_NOT_FOUND, KC_TOO_LARGE (key + value > item_max, or the result of an append
 * would be) or KC_NO_MEMORY. On KC_STORED, *cas_out (if not NULL) gets the new cas: unique in
 * the tier and increasing for each key. A KC_SET that fails with KC_TOO_LARGE still removes
 * the key's old value, as memcached does. An item whose exptime has already passed is
 * KC_STORED (replacing the old value) but never readable. */
enum kc_mem_result kc_mem_store(struct kc_mem *m, enum kc_set_mode mode, struct kc_item *it,
				uint64_t cas_in, uint64_t *cas_out);

/* Deletes key; cas_in != 0 deletes only that version. KC_DELETED, KC_NOT_FOUND or KC_EXISTS. */
enum kc_mem_result kc_mem_delete(struct kc_mem *m, const char *key, size_t nkey, uint64_t cas_in);

/* Deletes key only if its stored version is older than ver (a late invalidation from another
 * node must never remove a newer value). KC_DELETED, KC_NOT_FOUND, or KC_EXISTS (kept). */
enum kc_mem_result kc_mem_delete_older(struct kc_mem *m, const char *key, size_t nkey,
				       uint64_t ver);

/* True if key has a live item; counts no hit or miss and changes no recency. */
bool kc_mem_has(struct kc_mem *m, const char *key, size_t nkey);

/* Sets a new exptime. KC_TOUCHED or KC_NOT_FOUND. */
enum kc_mem_result kc_mem_touch(struct kc_mem *m, const char *key, size_t nkey, int64_t exptime);

/* incr (incr = 1) or decr: memcached's rules, 64-bit wrap on incr, floor at 0 on decr. The
 * value must be 1..20 decimal digits (<= UINT64_MAX), optionally followed by spaces. The result
 * is stored as a new item with the exact decimal length, keeping flags and exptime.
 * KC_STORED with *result set, KC_NOT_FOUND, KC_NON_NUMERIC, KC_NO_MEMORY, or KC_TOO_LARGE if the
 * longer number would exceed item_max. *cas_out (if not NULL) gets the new cas. */
enum kc_mem_result kc_mem_arith(struct kc_mem *m, const char *key, size_t nkey, int incr,
				uint64_t delta, uint64_t *result, uint64_t *cas_out);
/* kc_mem_arith that changes the number only if cas_in (when not 0) is the stored cas, and
 * returns KC_EXISTS otherwise (ma's C). */
enum kc_mem_result kc_mem_arith_cas(struct kc_mem *m, const char *key, size_t nkey, int incr,
				    uint64_t delta, uint64_t cas_in, uint64_t *result,
				    uint64_t *cas_out);

/* Invalidates every item stored at or before `when` (Unix seconds) once now >= when;
 * when <= now empties the tier at once (flush_all). A later call replaces a pending one.
 * Takes each shard's lock in turn; the evict hook sees every key removed. */
void kc_mem_flush(struct kc_mem *m, int64_t when);

/* Sums the shard counters (taking each shard's lock in turn). evictions counts every key the
 * policy removed, admissions_rejected included; expired counts expired items found and removed;
 * flushed, deleted and overwritten items count in neither. */
void kc_mem_stats(struct kc_mem *m, struct kc_mem_stats *out);

/* The tier's clock (Unix seconds, coarse). */
int64_t kc_mem_now(void);
/* Replaces the clock, for tests; NULL restores the real one. */
void kc_mem_set_clock(int64_t (*now)(void));

/* Callback invoked (under the shard lock, so it must not call back into the tier) for every key
 * that leaves the tier by eviction, expiry, delete, flush or overwrite (store, append, incr);
 * the kernel tier uses it to stay consistent. Not called by kc_mem_free(). Set once before
 * serving; NULL disables. */
typedef void (*kc_mem_evict_fn)(void *ctx, const char *key, size_t nkey);
void kc_mem_set_evict_hook(struct kc_mem *m, kc_mem_evict_fn fn, void *ctx);

/* Like the evict hook (same lock, same rules), for a key that stays but whose lifetime
 * changes: touch, gat and mg with T set a new exptime, or a delayed flush_all was scheduled
 * (called then for every item stored, as each will vanish when it comes due). */
void kc_mem_set_change_hook(struct kc_mem *m, kc_mem_evict_fn fn, void *ctx);

#endif
