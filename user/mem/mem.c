/* mem.c: the memory tier (L1). Sharded hash tables of refcounted, immutable items, bounded in
 * bytes and evicting with W-TinyLFU. Only items, keys and memcached's store semantics live here;
 * parsing the protocol and talking to the other tiers do not.
 *
 * Each shard has its own lock, a chained hash table that doubles as it fills, three LRU lists and
 * a count-min sketch:
 *   window     ~1% of the shard's bytes; every new item enters here (so it is readable at once)
 *   probation  main's entrance; items that outgrow the window are admitted here only if the
 *              sketch says they are asked for more often than probation's LRU victim
 *   protected  80% of main; a hit in probation promotes, overflow demotes back to probation
 * The sketch counts every lookup (hits and misses, incr/decr included) in 4-bit counters, 4 per
 * key, and halves them all after 10 increments per sketch word so that old popularity fades.
 * Stores are not counted: the fill after a miss would count the same request twice, and on
 * bench/hitratio.sh counting them lost 0.3-0.5 points of hit ratio.
 *
 * Functions named do_* expect the shard lock held. The tier owns one reference to every linked
 * item; the last kc_item_put() frees it.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "core/buf.h"
#include "core/hlc.h"
#include "core/num.h"
#include "mem/mem.h"

#define SHARDS_MAX	   64
#define SHARD_BITS	   6	      /* low cas bits that name the shard: log2(SHARDS_MAX) */
#define SHARD_MIN_BYTES	   (64 << 10) /* smaller shards make W-TinyLFU too coarse */
#define WINDOW_PERMILLE	   10	      /* window share of a shard's bytes */
#define PROTECTED_PERCENT  80	      /* protected share of main's bytes */
#define TABLE_INIT_BUCKETS 256
#define SKETCH_MIN_WORDS   64
#define SKETCH_BYTES_WORD  512 /* initial sketch: one word (16 counters) per 512 B of budget */
#define SKETCH_WORDS_ITEM  2   /* then grown to keep 2 words per resident item */
#define SKETCH_SAMPLE	   10  /* increments per word before every counter is halved */

/* Where an item is: its list, or its life stage outside the lists. */
enum seg { SEG_NEW, SEG_WINDOW, SEG_PROBATION, SEG_PROTECTED, SEG_DETACHED, SEG_GONE };

/* Why an item leaves the table (for the counters). */
enum gone { GONE_REMOVED, GONE_EVICTED, GONE_EXPIRED, GONE_REJECTED };

struct seg_list {
	struct kc_item *head, *tail; /* head = most recently used */
	size_t bytes;
};

/* Count-min sketch: each 64-bit word holds 16 counters of 4 bits; a key owns one counter in
 * each of 4 words, all at the same quarter of the word (Caffeine's layout). */
struct sketch {
	uint64_t *table;
	uint64_t mask;	    /* words - 1 */
	uint64_t max_words; /* the table grows with the item count up to this */
	uint64_t additions; /* increments since the last halving */
	uint64_t sample;    /* halve every counter when additions reaches this */
};

struct kc_shard {
	pthread_mutex_t lock;
	struct kc_item **buckets;
	size_t hmask; /* buckets - 1 */
	struct seg_list seg[SEG_PROTECTED + 1];
	size_t bytes;	  /* sum of kc_item_size() over linked items, <= cap */
	size_t cap;	  /* this shard's share of the capacity */
	size_t win_max;	  /* window budget */
	size_t prot_max;  /* protected budget */
	uint64_t items;	  /* linked items */
	uint64_t cas_seq; /* cas = cas_seq << SHARD_BITS | idx */
	int64_t flush_at; /* pending delayed flush_all, 0 = none */
	uint32_t idx;
	struct sketch sk;
	uint64_t hits, misses, evictions, expired, rejected;
} __attribute__((aligned(64)));

struct kc_mem {
	struct kc_shard *shards;
	uint32_t nshards;
	uint32_t shard_shift; /* shard = hash >> shard_shift; unused with one shard */
	size_t capacity;
	size_t item_max;
	kc_mem_evict_fn hook;
	void *hook_ctx;
	kc_mem_evict_fn change_hook;
	void *change_ctx;
};

static int64_t (*_Atomic kc_clock)(void);

/* ---- items --------------------------------------------------------------------------------- */

struct kc_item *kc_item_new(const char *key, size_t nkey, uint32_t flags, int64_t exptime,
			    size_t nval)
{
	struct kc_item *it;

	if (nkey == 0 || nkey > KC_KEY_MAX || nval > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	it = malloc(sizeof(*it) + nkey + nval);
	if (!it) {
		errno = ENOMEM;
		return NULL;
	}
	memset(it, 0, sizeof(*it));
	it->flags = flags;
	it->nkey = nkey;
	it->nval = nval;
	atomic_init(&it->exptime, exptime);
	atomic_init(&it->refs, 1);
	it->seg = SEG_NEW;
	memcpy(it->data, key, nkey);
	return it;
}

void kc_item_get(struct kc_item *it)
{
	atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
}

void kc_item_put(struct kc_item *it)
{
	if (!it)
		return;
	if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1)
		free(it);
}

size_t kc_item_size(size_t nkey, size_t nval)
{
	size_t n = sizeof(struct kc_item);

	/* What glibc's malloc really takes: 8 bytes of chunk header, rounded up to 16. */
	if (nkey > SIZE_MAX / 4 || nval > SIZE_MAX / 4)
		return SIZE_MAX;
	n += nkey + nval + 8;
	return (n + 15) & ~(size_t)15;
}

static inline size_t item_bytes(const struct kc_item *it)
{
	return kc_item_size(it->nkey, it->nval);
}

static inline bool item_expired(struct kc_item *it, int64_t now)
{
	int64_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);

	return exp != 0 && exp <= now;
}

/* ---- clock --------------------------------------------------------------------------------- */

static int64_t real_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

int64_t kc_mem_now(void)
{
	int64_t (*fn)(void) = atomic_load_explicit(&kc_clock, memory_order_relaxed);

	return fn ? fn() : real_clock();
}

void kc_mem_set_clock(int64_t (*now)(void))
{
	atomic_store(&kc_clock, now);
}

/* ---- sketch -------------------------------------------------------------------------------- */

static const uint64_t sketch_seeds[4] = {0xc3a5c85c97cb3127ULL, 0xb492b66fbe98f273ULL,
					 0x9ae16a3b2f90404fULL, 0xcbf29ce484222325ULL};

static inline uint64_t sketch_word(const struct sketch *sk, uint64_t hash, int i)
{
	uint64_t h = (hash + sketch_seeds[i]) * sketch_seeds[i];

	h += h >> 32;
	return h & sk->mask;
}

static inline unsigned sketch_shift(uint64_t hash, int i)
{
	return (unsigned)(((hash & 3) << 2) + i) << 2;
}

static int sketch_init(struct sketch *sk, uint64_t words)
{
	uint64_t *t = calloc(words, sizeof(*t));

	if (!t)
		return -ENOMEM;
	free(sk->table);
	sk->table = t;
	sk->mask = words - 1;
	sk->additions = 0;
	sk->sample = SKETCH_SAMPLE * words;
	return 0;
}

/* Raises hash's counters to at least f. */
static void sketch_raise(struct sketch *sk, uint64_t hash, unsigned f)
{
	for (int i = 0; i < 4; i++) {
		uint64_t *w = &sk->table[sketch_word(sk, hash, i)];
		unsigned sh = sketch_shift(hash, i);

		if (((*w >> sh) & 15) < f)
			*w = (*w & ~(15ULL << sh)) | (uint64_t)f << sh;
	}
}

static unsigned sketch_freq(const struct sketch *sk, uint64_t hash)
{
	unsigned f = 15;

	for (int i = 0; i < 4; i++) {
		unsigned c = (sk->table[sketch_word(sk, hash, i)] >> sketch_shift(hash, i)) & 15;

		if (c < f)
			f = c;
	}
	return f;
}

static void sketch_age(struct sketch *sk)
{
	for (uint64_t w = 0; w <= sk->mask; w++)
		sk->table[w] = (sk->table[w] >> 1) & 0x7777777777777777ULL;
	sk->additions /= 2;
}

/* Conservative update: only the counters at the key's minimum grow, which keeps the other keys
 * sharing the larger ones from being overestimated. */
static void sketch_inc(struct sketch *sk, uint64_t hash)
{
	unsigned f = sketch_freq(sk, hash);
	bool added = false;

	if (f == 15)
		return;
	for (int i = 0; i < 4; i++) {
		uint64_t *w = &sk->table[sketch_word(sk, hash, i)];
		unsigned sh = sketch_shift(hash, i);

		if (((*w >> sh) & 15) == f) {
			*w += 1ULL << sh;
			added = true;
		}
	}
	if (added && ++sk->additions >= sk->sample)
		sketch_age(sk);
}

/* ---- lists and table ----------------------------------------------------------------------- */

static void seg_push(struct kc_shard *s, enum seg seg, struct kc_item *it)
{
	struct seg_list *l = &s->seg[seg];

	it->prev = NULL;
	it->next = l->head;
	if (l->head)
		l->head->prev = it;
	else
		l->tail = it;
	l->head = it;
	l->bytes += item_bytes(it);
	it->seg = seg;
}

static void seg_del(struct kc_shard *s, struct kc_item *it)
{
	struct seg_list *l = &s->seg[it->seg];

	assert(it->seg >= SEG_WINDOW && it->seg <= SEG_PROTECTED);
	if (it->prev)
		it->prev->next = it->next;
	else
		l->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		l->tail = it->prev;
	it->prev = it->next = NULL;
	l->bytes -= item_bytes(it);
	it->seg = SEG_DETACHED;
}

static void do_table_grow(struct kc_shard *s)
{
	size_t n = (s->hmask + 1) * 2;
	struct kc_item **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* chains just get longer */
	for (size_t b = 0; b <= s->hmask; b++) {
		struct kc_item *it = s->buckets[b], *next;

		for (; it; it = next) {
			next = it->hnext;
			it->hnext = nb[it->hash & (n - 1)];
			nb[it->hash & (n - 1)] = it;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->hmask = n - 1;
}

/* Like Caffeine, the sketch is sized to the population. Growing it keeps what it knew about
 * the resident items (forgetting would let new one-hit keys beat the established ones), and
 * forgets the rest. */
static void do_sketch_grow(struct kc_shard *s)
{
	struct sketch old = s->sk, sk = s->sk;

	sk.table = NULL;
	if (sketch_init(&sk, (old.mask + 1) * 2))
		return;
	for (int seg = SEG_WINDOW; seg <= SEG_PROTECTED; seg++)
		for (struct kc_item *it = s->seg[seg].head; it; it = it->next)
			sketch_raise(&sk, it->hash, sketch_freq(&old, it->hash));
	free(old.table);
	s->sk = sk;
}

/* Takes the tier's reference and puts it into the table and the window. */
static void do_link(struct kc_shard *s, struct kc_item *it)
{
	struct kc_item **b = &s->buckets[it->hash & s->hmask];

	kc_item_get(it);
	it->hnext = *b;
	*b = it;
	seg_push(s, SEG_WINDOW, it);
	s->bytes += item_bytes(it);
	s->items++;
	if (s->items > s->hmask + 1)
		do_table_grow(s);
	if (s->items * SKETCH_WORDS_ITEM > s->sk.mask + 1 && s->sk.mask + 1 < s->sk.max_words)
		do_sketch_grow(s);
}

static void do_unlink(struct kc_mem *m, struct kc_shard *s, struct kc_item *it, enum gone why)
{
	struct kc_item **pp = &s->buckets[it->hash & s->hmask];

	while (*pp != it)
		pp = &(*pp)->hnext;
	*pp = it->hnext;
	it->hnext = NULL;
	if (it->seg != SEG_DETACHED)
		seg_del(s, it);
	it->seg = SEG_GONE;
	s->bytes -= item_bytes(it);
	s->items--;
	switch (why) {
	case GONE_REJECTED:
		s->rejected++;
		/* fall through */
	case GONE_EVICTED:
		s->evictions++;
		break;
	case GONE_EXPIRED:
		s->expired++;
		break;
	case GONE_REMOVED:
		break;
	}
	if (m->hook)
		m->hook(m->hook_ctx, kc_item_key(it), it->nkey);
	kc_item_put(it);
}

/* Returns the live item for key (no reference taken), unlinking it if it expired. */
static struct kc_item *do_find(struct kc_mem *m, struct kc_shard *s, const char *key, size_t nkey,
			       uint64_t hash, int64_t now)
{
	struct kc_item *it = s->buckets[hash & s->hmask];

	for (; it; it = it->hnext) {
		if (it->hash != hash || it->nkey != nkey || memcmp(it->data, key, nkey) != 0)
			continue;
		if (item_expired(it, now)) {
			do_unlink(m, s, it, GONE_EXPIRED);
			return NULL;
		}
		return it;
	}
	return NULL;
}

/* Removes every item stored at or before `before`. */
static void do_flush(struct kc_mem *m, struct kc_shard *s, int64_t before)
{
	for (int seg = SEG_WINDOW; seg <= SEG_PROTECTED; seg++) {
		struct kc_item *it = s->seg[seg].head, *next;

		for (; it; it = next) {
			next = it->next;
			if (it->time <= before)
				do_unlink(m, s, it, GONE_REMOVED);
		}
	}
}

static struct kc_shard *shard_of(struct kc_mem *m, uint64_t hash)
{
	return &m->shards[m->nshards > 1 ? hash >> m->shard_shift : 0];
}

/* Locks s and returns the time; a delayed flush_all that came due is applied first, so that no
 * lookup ever needs to compare store times against it. */
static int64_t shard_lock(struct kc_mem *m, struct kc_shard *s)
{
	int64_t now;

	pthread_mutex_lock(&s->lock);
	now = kc_mem_now();
	if (s->flush_at && now >= s->flush_at) {
		do_flush(m, s, s->flush_at);
		s->flush_at = 0;
	}
	return now;
}

static void shard_unlock(struct kc_shard *s)
{
	assert(s->bytes <= s->cap);
	pthread_mutex_unlock(&s->lock);
}

/* ---- W-TinyLFU ----------------------------------------------------------------------------- */

/* A hit: window and protected items move to the front; probation items earn protection. */
static void do_access(struct kc_shard *s, struct kc_item *it)
{
	struct seg_list *prot = &s->seg[SEG_PROTECTED];
	enum seg seg = it->seg;

	seg_del(s, it);
	if (seg == SEG_WINDOW) {
		seg_push(s, SEG_WINDOW, it);
		return;
	}
	seg_push(s, SEG_PROTECTED, it);
	while (prot->bytes > s->prot_max && prot->tail != it) {
		struct kc_item *d = prot->tail;

		seg_del(s, d);
		seg_push(s, SEG_PROBATION, d);
	}
}

static struct kc_item *main_victim(struct kc_shard *s)
{
	return s->seg[SEG_PROBATION].tail ? s->seg[SEG_PROBATION].tail : s->seg[SEG_PROTECTED].tail;
}

/* c left the window; it enters probation if main has room, or if it is more popular than each
 * victim that has to go to make room. Otherwise c itself is evicted. */
static void do_admit(struct kc_mem *m, struct kc_shard *s, struct kc_item *c)
{
	size_t main_max = s->cap - s->win_max, need = item_bytes(c);
	unsigned cf = sketch_freq(&s->sk, c->hash);

	while (s->seg[SEG_PROBATION].bytes + s->seg[SEG_PROTECTED].bytes + need > main_max) {
		struct kc_item *v = main_victim(s);

		if (!v || cf <= sketch_freq(&s->sk, v->hash)) {
			do_unlink(m, s, c, GONE_REJECTED);
			return;
		}
		do_unlink(m, s, v, GONE_EVICTED);
	}
	seg_push(s, SEG_PROBATION, c);
}

/* Restores the budgets after keep was linked: the window drains into main through admission,
 * then, if keep alone overflows the window, main gives way. keep is never evicted. */
static void do_balance(struct kc_mem *m, struct kc_shard *s, struct kc_item *keep)
{
	struct seg_list *win = &s->seg[SEG_WINDOW];

	while (win->bytes > s->win_max && win->tail != keep) {
		struct kc_item *c = win->tail;

		seg_del(s, c);
		do_admit(m, s, c);
	}
	while (s->bytes > s->cap) {
		struct kc_item *v = main_victim(s);

		assert(v); /* keep fits the shard, so something else is there */
		do_unlink(m, s, v, GONE_EVICTED);
	}
}

/* ---- stores -------------------------------------------------------------------------------- */

static bool fits(struct kc_mem *m, size_t nkey, size_t nval)
{
	return nkey + nval <= m->item_max && kc_item_size(nkey, nval) <= m->shards[0].cap;
}

/* Makes it the stored version of its key in place of old (which may be NULL). The caller keeps
 * its own reference. An item that is already expired replaces old but is never linked. */
static void do_store(struct kc_mem *m, struct kc_shard *s, struct kc_item *it, struct kc_item *old,
		     int64_t now, bool keep_ver, uint64_t *cas_out)
{
	it->time = now;
	if (!keep_ver)
		atomic_store_explicit(&it->ver, kc_hlc_next(), memory_order_relaxed);
	it->cas = ++s->cas_seq << SHARD_BITS | s->idx;
	if (cas_out)
		*cas_out = it->cas;
	if (old)
		do_unlink(m, s, old, GONE_REMOVED);
	if (item_expired(it, now)) {
		it->seg = SEG_GONE;
		return;
	}
	do_link(s, it);
	do_balance(m, s, it);
}

/* Builds the appended or prepended item, or returns NULL with *res set. */
static struct kc_item *concat(struct kc_mem *m, struct kc_item *old, struct kc_item *it,
			      bool append, enum kc_mem_result *res)
{
	size_t nval = (size_t)old->nval + it->nval;
	struct kc_item *n, *first, *second;

	if (!fits(m, old->nkey, nval)) {
		*res = KC_TOO_LARGE;
		return NULL;
	}
	n = kc_item_new(kc_item_key(old), old->nkey, old->flags,
			atomic_load_explicit(&old->exptime, memory_order_relaxed), nval);
	if (!n) {
		*res = KC_NO_MEMORY;
		return NULL;
	}
	n->hash = old->hash;
	first = append ? old : it;
	second = append ? it : old;
	memcpy(kc_item_value(n), kc_item_value(first), first->nval);
	memcpy(kc_item_value(n) + first->nval, kc_item_value(second), second->nval);
	return n;
}

enum kc_mem_result kc_mem_store(struct kc_mem *m, enum kc_set_mode mode, struct kc_item *it,
				uint64_t cas_in, uint64_t *cas_out)
{
	uint64_t hash = XXH3_64bits(kc_item_key(it), it->nkey);
	struct kc_shard *s = shard_of(m, hash);
	enum kc_mem_result res = KC_STORED;
	struct kc_item *old, *made = NULL;
	int64_t now;

	assert(it->seg == SEG_NEW && it->nkey >= 1 && it->nkey <= KC_KEY_MAX);
	it->hash = hash;
	now = shard_lock(m, s);
	old = do_find(m, s, kc_item_key(it), it->nkey, hash, now);
	if (!fits(m, it->nkey, it->nval)) {
		/* As memcached does: a failed set must not leave the previous value readable. */
		if (mode == KC_SET && old)
			do_unlink(m, s, old, GONE_REMOVED);
		res = KC_TOO_LARGE;
		goto out;
	}
	switch (mode) {
	case KC_SET:
		break;
	case KC_FILL:
		if (old && atomic_load_explicit(&old->ver, memory_order_relaxed) >=
			       atomic_load_explicit(&it->ver, memory_order_relaxed))
			res = KC_NOT_STORED;
		break;
	case KC_ADD:
		if (old) {
			do_access(s, old);
			res = KC_NOT_STORED;
		}
		break;
	case KC_REPLACE:
		if (!old)
			res = KC_NOT_STORED;
		break;
	case KC_CAS:
	case KC_CAS_STALE:
		if (!old) {
			res = KC_NOT_FOUND;
		} else if (mode == KC_CAS_STALE && cas_in < old->cas) {
			atomic_store_explicit(
			    &it->exptime, atomic_load_explicit(&old->exptime, memory_order_relaxed),
			    memory_order_relaxed);
			atomic_fetch_or_explicit(
			    &it->state, KC_ITEM_STALE | (atomic_load(&old->state) & KC_ITEM_TOKEN),
			    memory_order_relaxed);
		} else if (old->cas != cas_in) {
			res = KC_EXISTS;
		}
		break;
	case KC_APPEND:
	case KC_PREPEND:
		if (!old)
			res = KC_NOT_STORED;
		else if (cas_in && old->cas != cas_in)
			res = KC_EXISTS;
		else
			made = concat(m, old, it, mode == KC_APPEND, &res);
		break;
	default:
		assert(!"unknown store mode");
		res = KC_NOT_STORED;
	}
	if (res != KC_STORED)
		goto out;
	do_store(m, s, made ? made : it, old, now, mode == KC_FILL && !made, cas_out);
out:
	shard_unlock(s);
	kc_item_put(made);
	return res;
}

/* ---- lookups ------------------------------------------------------------------------------- */

/* touch, gat: a new deadline for a live item, which the change hook hears about. */
static void do_set_exptime(struct kc_mem *m, struct kc_item *it, int64_t exptime)
{
	atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
	atomic_store_explicit(&it->ver, kc_hlc_next(), memory_order_relaxed);
	if (m->change_hook)
		m->change_hook(m->change_ctx, kc_item_key(it), it->nkey);
}

static struct kc_item *lookup(struct kc_mem *m, const char *key, size_t nkey, bool touch,
			      int64_t exptime, bool bump, struct kc_mem_seen *seen)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	struct kc_item *it;
	int64_t now = shard_lock(m, s);

	sketch_inc(&s->sk, hash);
	it = do_find(m, s, key, nkey, hash, now);
	if (it) {
		s->hits++;
		if (seen) {
			seen->exptime = atomic_load_explicit(&it->exptime, memory_order_relaxed);
			seen->accessed =
			    it->time + atomic_load_explicit(&it->seen, memory_order_relaxed);
			seen->state = atomic_load_explicit(&it->state, memory_order_relaxed);
		}
		if (touch)
			do_set_exptime(m, it, exptime);
		if (bump) {
			atomic_fetch_or_explicit(&it->state, KC_ITEM_FETCHED, memory_order_relaxed);
			atomic_store_explicit(&it->seen, (uint32_t)(now - it->time),
					      memory_order_relaxed);
			do_access(s, it);
		}
		kc_item_get(it);
	} else {
		s->misses++;
	}
	shard_unlock(s);
	return it;
}

struct kc_item *kc_mem_get(struct kc_mem *m, const char *key, size_t nkey)
{
	return lookup(m, key, nkey, false, 0, true, NULL);
}

struct kc_item *kc_mem_get_touch(struct kc_mem *m, const char *key, size_t nkey, int64_t exptime)
{
	return lookup(m, key, nkey, true, exptime, true, NULL);
}

struct kc_item *kc_mem_get_meta(struct kc_mem *m, const char *key, size_t nkey, bool touch,
				int64_t exptime, bool bump, struct kc_mem_seen *seen)
{
	return lookup(m, key, nkey, touch, exptime, bump, seen);
}

enum kc_mem_result kc_mem_invalidate(struct kc_mem *m, const char *key, size_t nkey,
				     uint64_t cas_in, bool touch, int64_t exptime)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	int64_t now = shard_lock(m, s);
	struct kc_item *old = do_find(m, s, key, nkey, hash, now), *it;
	enum kc_mem_result res = KC_DELETED;

	if (!old) {
		res = KC_NOT_FOUND;
		goto out;
	}
	if (cas_in && old->cas != cas_in) {
		res = KC_EXISTS;
		goto out;
	}
	/* A copy, so that items stay immutable but for their atomics: the stale version is a new
	 * version of the key (new cas), as memcached bumps the cas of the item it marks. */
	it = kc_item_new(
	    key, nkey, old->flags,
	    touch ? exptime : atomic_load_explicit(&old->exptime, memory_order_relaxed), old->nval);
	if (!it) {
		res = KC_NO_MEMORY;
		goto out;
	}
	memcpy(kc_item_value(it), kc_item_value(old), old->nval);
	it->hash = hash;
	atomic_store_explicit(&it->state,
			      KC_ITEM_STALE | (atomic_load(&old->state) & KC_ITEM_BINARY),
			      memory_order_relaxed);
	do_store(m, s, it, old, now, false, NULL);
	kc_item_put(it);
out:
	shard_unlock(s);
	return res;
}

void kc_mem_with_item(struct kc_mem *m, const char *key, size_t nkey, kc_mem_item_fn fn, void *ctx)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	int64_t now = shard_lock(m, s), deadline = 0;
	struct kc_item *it = do_find(m, s, key, nkey, hash, now);

	if (it) {
		deadline = atomic_load_explicit(&it->exptime, memory_order_relaxed);
		/* A pending flush removes every item that exists now (all stored before it). */
		if (s->flush_at && (deadline == 0 || s->flush_at < deadline))
			deadline = s->flush_at;
	}
	fn(ctx, it, deadline);
	shard_unlock(s);
}

void kc_mem_note_access(struct kc_mem *m, const char *key, size_t nkey, uint32_t n)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	int64_t now = shard_lock(m, s);
	struct kc_item *it;

	/* 4-bit counters: more than 15 increments would only saturate them. */
	for (uint32_t i = 0; i < n && i < 15; i++)
		sketch_inc(&s->sk, hash);
	it = do_find(m, s, key, nkey, hash, now);
	if (it)
		do_access(s, it);
	shard_unlock(s);
}

enum kc_mem_result kc_mem_touch(struct kc_mem *m, const char *key, size_t nkey, int64_t exptime)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	struct kc_item *it;
	int64_t now = shard_lock(m, s);

	it = do_find(m, s, key, nkey, hash, now);
	if (it) {
		do_set_exptime(m, it, exptime);
		do_access(s, it);
	}
	shard_unlock(s);
	return it ? KC_TOUCHED : KC_NOT_FOUND;
}

/* Deletes key if cas_in (when not 0) is its cas and ver (when not 0) is newer than its version;
 * KC_EXISTS when a condition keeps it. */
static enum kc_mem_result delete_if(struct kc_mem *m, const char *key, size_t nkey, uint64_t cas_in,
				    uint64_t ver)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	enum kc_mem_result res = KC_DELETED;
	struct kc_item *it;
	int64_t now = shard_lock(m, s);

	it = do_find(m, s, key, nkey, hash, now);
	if (!it)
		res = KC_NOT_FOUND;
	else if ((cas_in && it->cas != cas_in) ||
		 (ver && atomic_load_explicit(&it->ver, memory_order_relaxed) >= ver))
		res = KC_EXISTS;
	else
		do_unlink(m, s, it, GONE_REMOVED);
	shard_unlock(s);
	return res;
}

enum kc_mem_result kc_mem_delete(struct kc_mem *m, const char *key, size_t nkey, uint64_t cas_in)
{
	return delete_if(m, key, nkey, cas_in, 0);
}

enum kc_mem_result kc_mem_delete_older(struct kc_mem *m, const char *key, size_t nkey, uint64_t ver)
{
	return delete_if(m, key, nkey, 0, ver ? ver : 1);
}

bool kc_mem_has(struct kc_mem *m, const char *key, size_t nkey)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	int64_t now = shard_lock(m, s);
	bool found = do_find(m, s, key, nkey, hash, now) != NULL;

	shard_unlock(s);
	return found;
}

/* ---- incr/decr ----------------------------------------------------------------------------- */

enum kc_mem_result kc_mem_arith(struct kc_mem *m, const char *key, size_t nkey, int incr,
				uint64_t delta, uint64_t *result, uint64_t *cas_out)
{
	return kc_mem_arith_cas(m, key, nkey, incr, delta, 0, result, cas_out);
}

enum kc_mem_result kc_mem_arith_cas(struct kc_mem *m, const char *key, size_t nkey, int incr,
				    uint64_t delta, uint64_t cas_in, uint64_t *result,
				    uint64_t *cas_out)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_shard *s = shard_of(m, hash);
	enum kc_mem_result res = KC_STORED;
	struct kc_item *old, *n = NULL;
	char buf[20];
	uint64_t v;
	size_t len;
	int64_t now = shard_lock(m, s);

	old = do_find(m, s, key, nkey, hash, now);
	if (!old) {
		res = KC_NOT_FOUND;
		goto out;
	}
	sketch_inc(&s->sk, hash);
	if (cas_in && old->cas != cas_in) {
		res = KC_EXISTS;
		goto out;
	}
	/* memcached's rule: a number, then only spaces (decr pads its results with spaces when it
	 * rewrites in place). */
	for (len = old->nval; len && kc_item_value(old)[len - 1] == ' ';)
		len--;
	if (kc_parse_u64n(kc_item_value(old), len, UINT64_MAX, &v)) {
		res = KC_NON_NUMERIC;
		goto out;
	}
	if (incr)
		v += delta; /* wraps modulo 2^64, as memcached does */
	else
		v = delta > v ? 0 : v - delta;
	len = (size_t)(kc_u64toa(v, buf) - buf);
	if (!fits(m, nkey, len)) {
		res = KC_TOO_LARGE;
		goto out;
	}
	n = kc_item_new(key, nkey, old->flags,
			atomic_load_explicit(&old->exptime, memory_order_relaxed), len);
	if (!n) {
		res = KC_NO_MEMORY;
		goto out;
	}
	memcpy(kc_item_value(n), buf, len);
	n->hash = hash;
	do_store(m, s, n, old, now, false, cas_out);
	if (result)
		*result = v;
out:
	shard_unlock(s);
	kc_item_put(n);
	return res;
}

/* ---- whole tier ---------------------------------------------------------------------------- */

/* A delayed flush was scheduled: every item linked now will vanish at flush_at. */
static void do_flush_notify(struct kc_mem *m, struct kc_shard *s)
{
	if (!m->change_hook)
		return;
	for (int seg = SEG_WINDOW; seg <= SEG_PROTECTED; seg++)
		for (struct kc_item *it = s->seg[seg].head; it; it = it->next)
			m->change_hook(m->change_ctx, kc_item_key(it), it->nkey);
}

void kc_mem_flush(struct kc_mem *m, int64_t when)
{
	for (uint32_t i = 0; i < m->nshards; i++) {
		struct kc_shard *s = &m->shards[i];
		int64_t now = shard_lock(m, s);

		if (when <= now) {
			do_flush(m, s, INT64_MAX);
			s->flush_at = 0;
		} else {
			s->flush_at = when;
			do_flush_notify(m, s);
		}
		shard_unlock(s);
	}
}

void kc_mem_stats(struct kc_mem *m, struct kc_mem_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->capacity = m->capacity;
	for (uint32_t i = 0; i < m->nshards; i++) {
		struct kc_shard *s = &m->shards[i];

		shard_lock(m, s);
		out->items += s->items;
		out->bytes += s->bytes;
		out->hits += s->hits;
		out->misses += s->misses;
		out->evictions += s->evictions;
		out->expired += s->expired;
		out->admissions_rejected += s->rejected;
		shard_unlock(s);
	}
}

void kc_mem_set_evict_hook(struct kc_mem *m, kc_mem_evict_fn fn, void *ctx)
{
	m->hook = fn;
	m->hook_ctx = ctx;
}

void kc_mem_set_change_hook(struct kc_mem *m, kc_mem_evict_fn fn, void *ctx)
{
	m->change_hook = fn;
	m->change_ctx = ctx;
}

static uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void shard_destroy(struct kc_shard *s)
{
	for (int seg = SEG_WINDOW; seg <= SEG_PROTECTED; seg++) {
		struct kc_item *it = s->seg[seg].head, *next;

		for (; it; it = next) {
			next = it->next;
			it->seg = SEG_GONE;
			kc_item_put(it);
		}
	}
	free(s->buckets);
	free(s->sk.table);
	pthread_mutex_destroy(&s->lock);
}

static int shard_init(struct kc_shard *s, uint32_t idx, size_t cap)
{
	uint64_t max_words = pow2_ceil(SKETCH_WORDS_ITEM * (cap / kc_item_size(1, 0) + 1));
	uint64_t words = pow2_ceil(cap / SKETCH_BYTES_WORD);

	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->cap = cap;
	s->win_max = cap * WINDOW_PERMILLE / 1000;
	s->prot_max = (cap - s->win_max) / 100 * PROTECTED_PERCENT;
	s->hmask = TABLE_INIT_BUCKETS - 1;
	s->buckets = calloc(TABLE_INIT_BUCKETS, sizeof(*s->buckets));
	if (!s->buckets)
		return -ENOMEM;
	if (words < SKETCH_MIN_WORDS)
		words = SKETCH_MIN_WORDS;
	if (max_words < words)
		max_words = words;
	s->sk.max_words = max_words;
	if (sketch_init(&s->sk, words)) {
		free(s->buckets);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

struct kc_mem *kc_mem_new(size_t capacity, size_t item_max)
{
	struct kc_mem *m;
	size_t unit;
	uint32_t n = 1, i;

	if (item_max == 0 || item_max > capacity / 2) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		goto err_nomem;
	/* Every shard holds at least 4 of the largest items and is big enough for W-TinyLFU to
	 * have a meaningful window; past that, more shards mean less lock contention. */
	unit = 4 * kc_item_size(0, item_max);
	if (unit < SHARD_MIN_BYTES)
		unit = SHARD_MIN_BYTES;
	while (n < SHARDS_MAX && capacity / (2 * (size_t)n) >= unit)
		n *= 2;
	m->nshards = n;
	m->shard_shift = 64 - (uint32_t)__builtin_ctz(n);
	m->capacity = capacity;
	m->item_max = item_max;
	m->shards = aligned_alloc(64, n * sizeof(*m->shards));
	if (!m->shards)
		goto err_free_mem;
	for (i = 0; i < n; i++)
		if (shard_init(&m->shards[i], i, capacity / n))
			goto err_free_shards;
	return m;

err_free_shards:
	while (i--)
		shard_destroy(&m->shards[i]);
	free(m->shards);
err_free_mem:
	free(m);
err_nomem:
	errno = ENOMEM;
	return NULL;
}

void kc_mem_free(struct kc_mem *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nshards; i++)
		shard_destroy(&m->shards[i]);
	free(m->shards);
	free(m);
}
