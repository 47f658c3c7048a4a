/* cache.c: the kernel hot-key tier's manager (see cache.h). Loader, heartbeat, admission and
 * the consistency protocol between the memory tier and the kernel maps.
 *
 * What is hot. Every get the daemon serves (TCP, and UDP the kernel passed up: misses and
 * requests it does not answer) counts one request for each key in a count-min sketch with
 * aging (hot.c); every VALUE block the kernel serves counts too, folded in from kc_hits once a
 * second (KC_FOLD_TICKS), so a resident key does not look cold because the daemon no longer sees
 * its requests. A key asked for at least KC_HOT_MIN times (kc_hot_note), whose value fits
 * --kernel-max-value and whose bytes the XDP parser accepts, is offered once per tick through a
 * small candidate queue. Admission (TinyLFU's rule, kc_hot_admits): while slots are free every
 * candidate is installed, hottest first; once full, a candidate displaces the coldest resident
 * only if its estimate is strictly higher, pairing the hottest candidates with the coldest
 * residents. A worker offering a key while slots are free wakes the main thread at once
 * (kick); everything else waits for the 100 ms tick.
 *
 * Consistency: the daemon is the only writer of kc_index/kc_slots, and the kernel never holds
 * a value that a write has replaced once that write is acknowledged. The argument:
 *   1. Every change to a key in the memory tier (store, append, incr, delete, flush, expiry,
 *      eviction, touch, a scheduled flush_all) happens under the key's shard lock, and calls
 *      the tier's evict or change hook under that lock; the hook deletes the key from kc_index
 *      (on_evicted/on_changed below) before returning. The protocol layer acknowledges a write
 *      only after the tier call has returned, so after the delete has returned, and from then
 *      on no XDP run that starts can find the key (cache_entry.h).
 *   2. An install reads the item and publishes it inside kc_mem_with_item(), i.e. under the
 *      same shard lock: slot written, then kc_index updated, then the lock released. A write
 *      to the key is therefore either entirely before the install (the install publishes the
 *      new item) or entirely after it (its hook removes what the install published). There is
 *      no window in which an installer holds an item that a write already replaced.
 *   3. The resident table below mirrors kc_index exactly (both change only under c->lock, in
 *      the same critical section), so the hook's "not resident, nothing to delete" is exact.
 *   4. A slot is rewritten only after it left kc_index and an RCU barrier (kc_rcu_sync) has
 *      passed, so a program that looked the key up before the delete never reads another
 *      key's bytes (and the program re-checks key and gen in the slot anyway).
 *   5. Expiry: a slot's expire_ns is the item's deadline (its exptime, or a pending delayed
 *      flush_all if sooner) converted from Unix seconds to CLOCK_MONOTONIC with nanosecond
 *      clocks, so the kernel stops serving at or before the moment the memory tier's coarse
 *      second clock reaches it. touch/gat go through the change hook and drop the copy; it is
 *      reinstalled with the new deadline if still hot. A step of the wall clock (seen by the
 *      next tick, so within 100 ms) drops every copy that has a deadline.
 *   6. If a delete ever fails (it should not), the tier stops the kernel from serving anything
 *      (heartbeat 0 and out of the policy's slot) rather than risk a stale copy (fail_safe).
 *   7. If kcached dies, the heartbeat (beaten every tick) lapses within kc_cfg.hb_window_ns
 *      (1 s); without net-policy-persist the XDP link goes away with the process at once.
 * Lock order: shard lock, then c->lock, then c->cand_lock. Nothing here calls into the memory
 * tier with c->lock held; the hooks never call back into the tier.
 */
#include "kernel/cache.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernel/cache_entry.h"
#include "kernel/cache_load.h"
#include "kernel/hot.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/num.h"

#define KC_TICK_MS 100 /* heartbeat, expiry, admission */
/* Kernel hits are folded into the residents' counts and the sketch every KC_FOLD_TICKS ticks
 * (1 s), and into the memory tier's eviction policy every KC_NOTE_FOLDS folds (10 s). Noting a
 * key in the memory tier takes its shard lock and a few cache misses (about 1 us): every 100 ms
 * that was some 20k keys per tick under udp-get.sh, a fifth of a core taken from the host's
 * client. Each fold covers every key served since the previous one, and the hottest keys come
 * back in every interval, so the work falls with the interval: a second's worth of hits is
 * about 90k keys, ten seconds' about 100k. The memory tier only needs to know that a key the
 * kernel serves is in use, so that it does not evict it; ten seconds is far below how long an
 * item lives in it. `kcachectl hot` folds first, so its counts never lag. */
#define KC_FOLD_TICKS	 10
#define KC_NOTE_FOLDS	 10
#define KC_CAND_MAX	 1024 /* keys offered between two ticks */
#define KC_OFFERED_BITS	 (1u << 16)
#define KC_CLOCK_STEP_NS 50000000LL /* a wall-clock jump beyond this re-derives deadlines */
#define KC_HOT_LIST_DEF	 100
#define NIL		 UINT32_MAX
#define NSEC		 1000000000LL

enum slot_state { SLOT_FREE, SLOT_LIVE, SLOT_QUAR };

/* Why a resident key left the kernel (metric label order). */
enum rm_reason { RM_INVALIDATED, RM_TOUCHED, RM_DISPLACED, RM_EXPIRED, RM__COUNT };
static const char *const rm_names[RM__COUNT] = {"invalidated", "touched", "displaced", "expired"};

/* What the daemon knows about a slot; kept by slot number, in step with kc_index. */
struct resident {
	uint64_t hash;	    /* kc_hot_hash(key) */
	uint64_t gen;	    /* the kc_kentry.gen published */
	uint64_t expire_ns; /* CLOCK_MONOTONIC deadline, 0 = never */
	uint64_t hits;	    /* VALUE blocks served since the install, as of the last fold */
	uint64_t hits_seen; /* kc_hits[slot] summed over CPUs at the last fold */
	uint64_t installed; /* c->install_seq when installed */
	uint32_t next;	    /* hash chain, by slot; NIL ends it */
	uint32_t value_len;
	uint8_t unnoted; /* hits not yet noted in the memory tier, at most 15 (as it counts) */
	uint8_t state;	 /* enum slot_state */
	uint8_t nkey;
	char key[KC_KEY_MAX];
};

struct cand {
	uint64_t hash;
	uint32_t est;
	uint8_t nkey;
	char key[KC_KEY_MAX];
};

/* A resident the kernel served since the memory tier was last told. */
struct served {
	uint32_t slot;
	uint64_t gen;
};

/* A slot whose kc_hits sum moved since the last fold. */
struct moved {
	uint32_t slot;
	uint64_t sum;
};

struct kc_cache {
	struct kc_xdp x; /* the program and its maps */
	struct kc_mem *mem;
	struct event *tick, *kick;
	struct kc_rcu rcu;
	struct kc_hot *hot;
	int ncpu;
	uint32_t entries, max_value;

	/* c->lock: everything below up to cand_lock, and every write to the kernel maps. */
	pthread_mutex_t lock;
	struct resident *res; /* [entries] */
	uint32_t *bucket, bmask;
	uint32_t *free_stack, nfree;
	uint32_t *quar, nquar; /* left kc_index, waiting for an RCU barrier */
	uint32_t nlive, slot_hi;
	uint64_t gen, install_seq;
	bool broken;  /* fail_safe ran: nothing is served or installed any more */
	bool stopped; /* kc_cache_stop ran */
	struct kc_kentry render;
	uint64_t next_expire; /* no resident's deadline is earlier; UINT64_MAX: none has one */

	/* main thread only */
	uint64_t *last;	     /* [entries] kc_hits summed over CPUs at the last fold */
	struct moved *moved; /* [entries] */
	struct cand *work;
	int64_t wall_off; /* wall_offset() at the last tick */
	struct served *served;
	uint64_t folded_key_hits; /* kc_stats key_hits when the last fold began */
	uint32_t fold_ticks;	  /* ticks since the last fold */
	uint32_t folds;		  /* folds since the memory tier was last told */
	uint32_t nserved;	  /* c->served[] entries; under c->lock, appended by this thread */

	pthread_mutex_t cand_lock;
	struct cand *cand;
	uint32_t ncand;
	_Atomic uint64_t *offered; /* one bit per hash bucket: offered since the last tick */
	_Atomic bool kick_pending;

	_Atomic uint64_t installs, rejected, install_errors, collisions, removed[RM__COUNT];
};

/* ---- the resident table (c->lock held) -------------------------------------------------- */

static uint32_t do_find(const struct kc_cache *c, uint64_t hash, const char *key, size_t nkey)
{
	for (uint32_t s = c->bucket[hash & c->bmask]; s != NIL; s = c->res[s].next) {
		const struct resident *r = &c->res[s];

		if (r->hash == hash && r->nkey == nkey && !memcmp(r->key, key, nkey))
			return s;
	}
	return NIL;
}

static void do_unchain(struct kc_cache *c, uint32_t slot)
{
	uint32_t *p = &c->bucket[c->res[slot].hash & c->bmask];

	while (*p != slot)
		p = &c->res[*p].next;
	*p = c->res[slot].next;
	c->res[slot].next = NIL;
}

/* The kernel may hold something we cannot take back: stop it serving anything at all. */
static void do_fail_safe(struct kc_cache *c, const char *what, int err)
{
	if (c->broken)
		return;
	c->broken = true;
	log_error("kernel tier: %s: %s; stopping the kernel tier (every request now goes to the "
		  "daemon)",
		  what, strerror(err));
	kc_heartbeat_stop(c->x.hb_fd);
	kc_xdp_detach(&c->x);
}

/* Takes slot out of kc_index; the slot waits in quarantine for the next RCU barrier. */
static void do_remove(struct kc_cache *c, uint32_t slot, enum rm_reason why)
{
	struct resident *r = &c->res[slot];
	int err;

	/* Only residents own their hash in kc_index: a key refused for a collision never did. */
	err = kc_index_del(c->x.index_fd, c->x.index_mask, kc_key_hash(r->key, r->nkey));
	if (err && err != -ENOENT)
		do_fail_safe(c, "delete from kc_index", -err);
	do_unchain(c, slot);
	r->state = SLOT_QUAR;
	c->quar[c->nquar++] = slot;
	c->nlive--;
	atomic_fetch_add_explicit(&c->removed[why], 1, memory_order_relaxed);
}

/* ---- memory tier hooks (shard lock held) --------------------------------------------------- */

/* The bit of c->offered that stands for hash. */
static inline _Atomic uint64_t *offered_word(struct kc_cache *c, uint64_t hash, uint64_t *mask)
{
	uint64_t bit = (hash >> 32) & (KC_OFFERED_BITS - 1);

	*mask = 1ULL << (bit % 64);
	return &c->offered[bit / 64];
}

static void offered_clear(struct kc_cache *c, uint64_t hash)
{
	uint64_t mask = 0;

	atomic_fetch_and_explicit(offered_word(c, hash, &mask), ~mask, memory_order_relaxed);
}

static void forget(struct kc_cache *c, const char *key, size_t nkey, enum rm_reason why)
{
	uint64_t hash;
	uint32_t slot;

	if (nkey == 0 || nkey > KC_KEY_MAX)
		return;
	hash = kc_hot_hash(key, nkey);
	pthread_mutex_lock(&c->lock);
	slot = do_find(c, hash, key, nkey);
	if (slot != NIL) {
		do_remove(c, slot, why);
		/* A hot key that was just written may come back with its next read. */
		offered_clear(c, hash);
	}
	pthread_mutex_unlock(&c->lock);
}

static void on_evicted(void *ctx, const char *key, size_t nkey)
{
	forget(ctx, key, nkey, RM_INVALIDATED);
}

static void on_changed(void *ctx, const char *key, size_t nkey)
{
	forget(ctx, key, nkey, RM_TOUCHED);
}

/* ---- install --------------------------------------------------------------------------- */

enum install_result {
	INS_OK,
	INS_GONE,
	INS_INELIGIBLE,
	INS_RESIDENT,
	INS_NO_ROOM,
	INS_COLLISION,
	INS_ERROR
};

struct install_ctx {
	struct kc_cache *c;
	const struct cand *cand;
	enum install_result res;
};

/* A Unix-second deadline as a CLOCK_MONOTONIC one, 0 if already due. Both clocks are read at
 * nanosecond resolution, so the result is never later than the memory tier's coarse clock
 * reaching the deadline (short of a step of the wall clock). */
static uint64_t mono_deadline(int64_t unix_s)
{
	int64_t rt_ns = (int64_t)kc_wall_ns(), mt_ns = (int64_t)kc_mono_ns(), dl_ns;

	if (unix_s > INT64_MAX / NSEC)
		return 0;
	dl_ns = unix_s * NSEC;
	if (dl_ns <= rt_ns)
		return 0;
	return (uint64_t)mt_ns + (uint64_t)(dl_ns - rt_ns);
}

/* kc_mem_with_item's callback: publishes the live item, under its shard lock. */
static void install_cb(void *ctx, struct kc_item *it, int64_t deadline)
{
	struct install_ctx *ic = ctx;
	struct kc_cache *c = ic->c;
	const struct cand *k = ic->cand;
	uint64_t expire_ns = 0;
	struct kc_key key;
	uint32_t slot;
	int err;

	if (!it) {
		ic->res = INS_GONE;
		return;
	}
	if (it->nval > c->max_value || kc_key_init(&key, k->key, k->nkey)) {
		ic->res = INS_INELIGIBLE;
		return;
	}
	if (deadline) {
		expire_ns = mono_deadline(deadline);
		if (!expire_ns) {
			ic->res = INS_GONE;
			return;
		}
	}
	pthread_mutex_lock(&c->lock);
	if (c->broken || c->stopped) {
		ic->res = INS_ERROR;
		goto out;
	}
	if (do_find(c, k->hash, k->key, k->nkey) != NIL) {
		ic->res = INS_RESIDENT;
		goto out;
	}
	if (!c->nfree) {
		ic->res = INS_NO_ROOM;
		goto out;
	}
	slot = c->free_stack[--c->nfree];
	if (!(__u32)++c->gen) /* kc_index keeps the low 32 bits; 0 there means absent */
		++c->gen;
	err = kc_entry_render(&c->render, k->key, k->nkey, it->flags, kc_item_value(it), it->nval,
			      it->cas, expire_ns, c->gen);
	if (err)
		goto err_slot;
	/* The slot is free: no kc_index entry points at it and no program still reads it. */
	if (bpf_map_update_elem(c->x.slots_fd, &slot, &c->render, BPF_ANY)) {
		err = -errno;
		goto err_slot;
	}
	/* Its counters start at 0; the kc_index update below is a syscall, after these stores. */
	for (uint32_t cpu = 0; cpu < c->x.ncpu; cpu++)
		c->x.hits[(size_t)cpu * c->entries + slot] = 0;
	atomic_thread_fence(memory_order_release);
	err = kc_index_put(c->x.index_fd, c->x.index_mask, kc_key_hash(k->key, k->nkey), slot,
			   c->gen, 0);
	if (err) {
		if (err == -EEXIST || err == -ENOSPC || err == -EINVAL) {
			/* The key is not resident (do_find above), so another resident key has the
			 * same 64-bit hash, or the bucket's ways are all taken (or the hash is 0):
			 * the residents keep theirs, this one stays with the daemon. Nothing
			 * references the slot: it is free again at once. */
			c->free_stack[c->nfree++] = slot;
			atomic_fetch_add_explicit(&c->collisions, 1, memory_order_relaxed);
			log_debug("kernel tier: install %.*s: %s", (int)k->nkey, k->key,
				  err == -EEXIST ? "another resident key has its hash"
						 : "its kc_index bucket is full");
			ic->res = INS_COLLISION;
			goto out;
		}
		goto err_slot;
	}
	c->res[slot] = (struct resident){.hash = k->hash,
					 .gen = c->gen,
					 .expire_ns = expire_ns,
					 .installed = ++c->install_seq,
					 .next = c->bucket[k->hash & c->bmask],
					 .value_len = it->nval,
					 .state = SLOT_LIVE,
					 .nkey = k->nkey};
	memcpy(c->res[slot].key, k->key, k->nkey);
	c->bucket[k->hash & c->bmask] = slot;
	if (expire_ns && expire_ns < c->next_expire)
		c->next_expire = expire_ns;
	c->nlive++;
	if (slot + 1 > c->slot_hi)
		c->slot_hi = slot + 1;
	atomic_fetch_add_explicit(&c->installs, 1, memory_order_relaxed);
	ic->res = INS_OK;
	goto out;
err_slot:
	c->free_stack[c->nfree++] = slot;
	atomic_fetch_add_explicit(&c->install_errors, 1, memory_order_relaxed);
	log_debug("kernel tier: install %.*s: %s", (int)k->nkey, k->key, strerror(-err));
	ic->res = INS_ERROR;
out:
	pthread_mutex_unlock(&c->lock);
}

static enum install_result install(struct kc_cache *c, const struct cand *k)
{
	struct install_ctx ic = {.c = c, .cand = k, .res = INS_ERROR};

	kc_mem_with_item(c->mem, k->key, k->nkey, install_cb, &ic);
	return ic.res;
}

/* ---- upkeep (main thread) ---------------------------------------------------------------- */

/* Frees the slots that were in quarantine when called, after an RCU barrier. */
static void sync_quarantine(struct kc_cache *c)
{
	uint32_t n;
	int err;

	pthread_mutex_lock(&c->lock);
	n = c->nquar;
	pthread_mutex_unlock(&c->lock);
	if (!n)
		return;
	err = kc_rcu_sync(&c->rcu);
	if (err) {
		log_warn("kernel tier: RCU barrier: %s; slots stay in quarantine", strerror(-err));
		return;
	}
	/* Removals only append, and only this thread takes from the front. */
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = c->quar[i];

		c->res[slot].state = SLOT_FREE;
		c->free_stack[c->nfree++] = slot;
	}
	memmove(c->quar, c->quar + n, (c->nquar - n) * sizeof(*c->quar));
	c->nquar -= n;
	pthread_mutex_unlock(&c->lock);
}

/* Tells the memory tier's eviction policy about the residents the kernel served since the last
 * call (it never sees those requests otherwise), every KC_NOTE_FOLDS folds. */
static void note_served(struct kc_cache *c)
{
	uint32_t nserved;

	c->folds = 0;
	pthread_mutex_lock(&c->lock);
	nserved = c->nserved;
	c->nserved = 0;
	pthread_mutex_unlock(&c->lock);
	/* The memory tier takes its shard lock: never with c->lock held. Only this thread
	 * appends to c->served, so the entries up to nserved stay as they are. */
	for (uint32_t i = 0; i < nserved; i++) {
		struct resident *r = &c->res[c->served[i].slot];
		char key[KC_KEY_MAX];
		size_t nkey = 0;
		uint32_t n = 0;

		pthread_mutex_lock(&c->lock);
		if (r->state == SLOT_LIVE && r->gen == c->served[i].gen && r->unnoted) {
			nkey = r->nkey;
			n = r->unnoted;
			r->unnoted = 0;
			memcpy(key, r->key, nkey);
		}
		pthread_mutex_unlock(&c->lock);
		if (nkey)
			kc_mem_note_access(c->mem, key, nkey, n);
	}
}

/* Adds the kernel's per-slot hits since the last fold to each resident and to the sketch, and
 * lists the residents served for note_served().
 *
 * kc_hits is mmapped: the scan reads plain memory, a row per CPU, without c->lock (the
 * workers' write hooks take it) and without a syscall; it compares each slot's sum with the
 * sum it saw last time and looks at the resident only where the two differ (a hit, or a slot
 * reinstalled and zeroed). Sequential reads of 8 bytes per slot and CPU: with 100k slots about
 * 0.1 ms per tick, where a batch lookup of the per-CPU map and a walk of every resident took
 * tens of milliseconds. */
static void fold_hits(struct kc_cache *c)
{
	uint32_t hi, nmoved = 0, ncpu = c->x.ncpu;
	struct kc_kstats st = {0};
	bool have_st;
	uint64_t seq;

	/* Nothing served since the last fold: every kc_hits counter is as it was, skip reading
	 * them all. The program adds to kc_hits before it adds to kc_stats' key_hits, and this
	 * reads key_hits before kc_hits: a hit whose key_hits this read misses is in a later
	 * fold's read of both. */
	have_st = kc_kstats_read(c->x.stats_fd, &st) == 0;
	if (have_st && st.key_hits == c->folded_key_hits) {
		if (++c->folds >= KC_NOTE_FOLDS)
			note_served(c); /* what the last folds found, while the kernel is idle */
		return;
	}
	pthread_mutex_lock(&c->lock);
	hi = c->slot_hi;
	seq = c->install_seq;
	pthread_mutex_unlock(&c->lock);
	atomic_thread_fence(memory_order_acquire);
	for (uint32_t slot = 0; slot < hi; slot++) {
		uint64_t sum = 0;

		for (uint32_t cpu = 0; cpu < ncpu; cpu++)
			sum += c->x.hits[(size_t)cpu * c->entries + slot];
		if (sum != c->last[slot]) {
			c->last[slot] = sum;
			c->moved[nmoved++] = (struct moved){slot, sum};
		}
	}
	if (have_st)
		c->folded_key_hits = st.key_hits; /* read in full, up to slot_hi */
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < nmoved; i++) {
		struct resident *r = &c->res[c->moved[i].slot];
		uint64_t sum = c->moved[i].sum;

		/* Installed after the read began: the counters read may be a previous key's. */
		if (r->state != SLOT_LIVE || r->installed > seq)
			continue;
		if (sum > r->hits_seen) {
			uint64_t d = sum - r->hits_seen;

			r->hits += d;
			r->hits_seen = sum;
			kc_hot_add(c->hot, r->hash, d > UINT32_MAX ? UINT32_MAX : (uint32_t)d);
			/* Listed once until told; a slot reinstalled since is listed again (its
			 * old entry no longer matches the gen), so the list can fill: then these
			 * hits are not noted, and the next fold tries again. */
			if (!r->unnoted) {
				if (c->nserved == c->entries)
					continue;
				c->served[c->nserved++] = (struct served){c->moved[i].slot, r->gen};
			}
			r->unnoted = d >= 15u - r->unnoted ? 15 : (uint8_t)(r->unnoted + d);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (++c->folds >= KC_NOTE_FOLDS)
		note_served(c);
}

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: moves only when the wall clock is stepped. */
static int64_t wall_offset(void)
{
	return (int64_t)kc_wall_ns() - (int64_t)kc_mono_ns();
}

/* Removes residents whose deadline passed. If the wall clock was stepped since the last tick,
 * every deadline (converted from Unix time at install) may now be late: all of them go, and
 * are reinstalled with fresh deadlines if still hot. */
static void expire_residents(struct kc_cache *c)
{
	uint64_t now = kc_mono_ns();
	int64_t off = wall_offset(), d = off - c->wall_off;
	bool stepped = c->wall_off && (d > KC_CLOCK_STEP_NS || d < -KC_CLOCK_STEP_NS);

	if (stepped)
		log_warn(
		    "kernel tier: the wall clock moved by %.3f s; re-deriving expiry deadlines",
		    (double)d / NSEC);
	c->wall_off = off;
	pthread_mutex_lock(&c->lock);
	/* No deadline due: no walk over every resident (300 bytes apart) each tick. */
	if (!stepped && now < c->next_expire) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->next_expire = UINT64_MAX;
	for (uint32_t slot = 0; slot < c->slot_hi; slot++) {
		struct resident *r = &c->res[slot];

		if (r->state != SLOT_LIVE || !r->expire_ns)
			continue;
		if (stepped || r->expire_ns <= now)
			do_remove(c, slot, RM_EXPIRED);
		else if (r->expire_ns < c->next_expire)
			c->next_expire = r->expire_ns;
	}
	pthread_mutex_unlock(&c->lock);
}

struct victim {
	uint32_t slot;
	uint32_t est;
	uint64_t gen;
};

static int cmp_cand_desc(const void *a, const void *b)
{
	uint32_t x = ((const struct cand *)a)->est, y = ((const struct cand *)b)->est;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_cand_key(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->nkey != y->nkey)
		return x->nkey < y->nkey ? -1 : 1;
	return memcmp(x->key, y->key, x->nkey);
}

static int cmp_victim_asc(const void *a, const void *b)
{
	uint32_t x = ((const struct victim *)a)->est, y = ((const struct victim *)b)->est;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Residents, coldest first. Returns the count (0 on allocation failure). */
static uint32_t coldest(struct kc_cache *c, struct victim **out)
{
	struct victim *v = malloc((size_t)c->entries * sizeof(*v));
	uint32_t n = 0;

	*out = v;
	if (!v)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (uint32_t slot = 0; slot < c->slot_hi; slot++)
		if (c->res[slot].state == SLOT_LIVE)
			v[n++] = (struct victim){.slot = slot,
						 .est = kc_hot_estimate(c->hot, c->res[slot].hash),
						 .gen = c->res[slot].gen};
	pthread_mutex_unlock(&c->lock);
	qsort(v, n, sizeof(*v), cmp_victim_asc);
	return n;
}

/* Takes the offered keys and installs the most valuable. With evict, a candidate may displace
 * a colder resident (TinyLFU: strictly more frequent than the victim). */
static void admit(struct kc_cache *c, bool evict)
{
	struct victim *v = NULL;
	uint32_t n, keep = 0, np = 0, nv = 0, vi = 0;
	bool have_victims = false;

	pthread_mutex_lock(&c->cand_lock);
	n = c->ncand;
	memcpy(c->work, c->cand, n * sizeof(*c->cand));
	c->ncand = 0;
	pthread_mutex_unlock(&c->cand_lock);
	if (!n)
		return;
	/* A key can be queued twice (put back by a kick, offered again after a tick): once is
	 * enough, or it would claim a victim per copy. */
	qsort(c->work, n, sizeof(*c->work), cmp_cand_key);
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < n; i++)
		if ((i == 0 || cmp_cand_key(&c->work[i - 1], &c->work[i])) &&
		    do_find(c, c->work[i].hash, c->work[i].key, c->work[i].nkey) == NIL)
			c->work[keep++] = c->work[i];
	pthread_mutex_unlock(&c->lock);
	for (uint32_t i = 0; i < keep; i++)
		c->work[i].est = kc_hot_estimate(c->hot, c->work[i].hash);
	qsort(c->work, keep, sizeof(*c->work), cmp_cand_desc);

	for (uint32_t i = 0; i < keep; i++) {
		enum install_result r = install(c, &c->work[i]);

		if (r != INS_NO_ROOM)
			continue;
		if (!evict) {
			/* The tick will see the rest. */
			pthread_mutex_lock(&c->cand_lock);
			for (; i < keep && c->ncand < KC_CAND_MAX; i++)
				c->cand[c->ncand++] = c->work[i];
			pthread_mutex_unlock(&c->cand_lock);
			break;
		}
		if (!have_victims) {
			nv = coldest(c, &v);
			have_victims = true;
		}
		if (vi >= nv || !kc_hot_admits(c->work[i].est, v[vi].est)) {
			atomic_fetch_add_explicit(&c->rejected, keep - i, memory_order_relaxed);
			break;
		}
		pthread_mutex_lock(&c->lock);
		if (c->res[v[vi].slot].state == SLOT_LIVE && c->res[v[vi].slot].gen == v[vi].gen)
			do_remove(c, v[vi].slot, RM_DISPLACED);
		pthread_mutex_unlock(&c->lock);
		vi++;
		c->work[np++] = c->work[i]; /* np <= i: only installed ones are overwritten */
	}
	free(v);
	if (np) {
		sync_quarantine(c);
		for (uint32_t i = 0; i < np; i++)
			install(c, &c->work[i]);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct kc_cache *c = arg;
	bool broken;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->lock);
	broken = c->broken || c->stopped;
	pthread_mutex_unlock(&c->lock);
	if (broken)
		return;
	if (kc_heartbeat_beat(c->x.hb_fd))
		log_warn("kernel tier: heartbeat: %s", strerror(errno));
	if (++c->fold_ticks >= KC_FOLD_TICKS) {
		c->fold_ticks = 0;
		fold_hits(c);
	}
	expire_residents(c);
	kc_hot_age(c->hot);
	for (uint32_t i = 0; i < KC_OFFERED_BITS / 64; i++)
		atomic_store_explicit(&c->offered[i], 0, memory_order_relaxed);
	sync_quarantine(c);
	admit(c, true);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct kc_cache *c = arg;

	(void)fd;
	(void)what;
	atomic_store(&c->kick_pending, false);
	admit(c, false); /* installs check broken and stopped under c->lock */
}

/* ---- popularity (worker threads) --------------------------------------------------------- */

void kc_cache_note_get(struct kc_cache *c, const char *key, size_t nkey, const struct kc_item *it)
{
	uint64_t hash, mask;
	struct kc_key k;
	bool skip, kick = false;

	if (!c || nkey == 0 || nkey > KC_KEY_MAX)
		return;
	hash = kc_hot_hash(key, nkey);
	if (!kc_hot_note(c->hot, hash) || !it || it->nval > c->max_value)
		return;
	if (atomic_fetch_or_explicit(offered_word(c, hash, &mask), mask, memory_order_relaxed) &
	    mask)
		return; /* offered already this tick (or a key sharing its bit was) */
	if (kc_key_init(&k, key, nkey))
		return; /* the XDP parser would never look it up */
	pthread_mutex_lock(&c->lock);
	skip = c->broken || c->stopped || do_find(c, hash, key, nkey) != NIL;
	kick = c->nfree > 0;
	pthread_mutex_unlock(&c->lock);
	if (skip)
		return;
	pthread_mutex_lock(&c->cand_lock);
	if (c->ncand < KC_CAND_MAX) {
		struct cand *o = &c->cand[c->ncand++];

		o->hash = hash;
		o->nkey = (uint8_t)nkey;
		memcpy(o->key, key, nkey);
	} else {
		kick = false;
	}
	pthread_mutex_unlock(&c->cand_lock);
	if (kick && !atomic_exchange(&c->kick_pending, true))
		event_active(c->kick, EV_TIMEOUT, 0);
}

static int alloc_state(struct kc_cache *c)
{
	uint32_t nb = 1;

	while (nb < c->entries)
		nb <<= 1;
	c->bmask = nb - 1;
	c->res = calloc(c->entries, sizeof(*c->res));
	c->bucket = malloc(nb * sizeof(*c->bucket));
	c->free_stack = malloc(c->entries * sizeof(*c->free_stack));
	c->quar = malloc(c->entries * sizeof(*c->quar));
	c->last = calloc(c->entries, sizeof(*c->last));
	c->moved = malloc(c->entries * sizeof(*c->moved));
	c->next_expire = UINT64_MAX;
	c->cand = malloc(KC_CAND_MAX * sizeof(*c->cand));
	c->work = malloc(KC_CAND_MAX * sizeof(*c->work));
	c->served = malloc(c->entries * sizeof(*c->served));
	c->offered = calloc(KC_OFFERED_BITS / 64, sizeof(*c->offered));
	c->hot = kc_hot_new(c->entries);
	if (!c->res || !c->bucket || !c->free_stack || !c->quar || !c->last || !c->moved ||
	    !c->cand || !c->work || !c->served || !c->offered || !c->hot)
		return -ENOMEM;
	for (uint32_t i = 0; i < nb; i++)
		c->bucket[i] = NIL;
	/* Lowest slots first, so that kc_hits is read only up to the high-water mark. */
	for (uint32_t i = 0; i < c->entries; i++) {
		c->free_stack[i] = c->entries - 1 - i;
		c->res[i].next = NIL;
	}
	c->nfree = c->entries;
	return 0;
}

struct kc_cache *kc_cache_start(const struct kc_cache_opts *o, char *err, size_t errlen)
{
	struct kc_cache *c = calloc(1, sizeof(*c));
	struct timeval tv = {.tv_sec = 0, .tv_usec = KC_TICK_MS * 1000};
	int rc;

	if (!c) {
		kc_errf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->cand_lock, NULL);
	kc_xdp_init(&c->x);
	c->rcu.outer_fd = c->rcu.inner_fd = -1;
	c->mem = o->mem;
	c->entries = o->entries;
	c->max_value = o->max_value;
	c->ncpu = libbpf_num_possible_cpus();
	if (c->ncpu <= 0 || o->entries == 0 || o->max_value > KC_VALUE_MAX) {
		kc_errf(err, errlen,
			"kernel tier: bad settings (cpus %d, entries %u, max value %u)", c->ncpu,
			o->entries, o->max_value);
		goto fail;
	}
	if (alloc_state(c)) {
		kc_errf(err, errlen, "kernel tier: out of memory for %u entries", c->entries);
		goto fail;
	}
	/* The RCU barrier's two maps are also the cheapest test of BPF rights, before anything
	 * else is looked at or changed. */
	rc = kc_rcu_init(&c->rcu);
	if (rc) {
		kc_errf(err, errlen, "kernel tier: create BPF maps: %s%s", strerror(-rc),
			rc == -EPERM ? " (xdp-mode skb and native need root, or CAP_BPF and "
				       "CAP_NET_ADMIN; --xdp-mode off needs neither)"
				     : "");
		goto fail;
	}
	if (kc_xdp_open(&c->x, o, err, errlen))
		goto fail;
	rc = kc_heartbeat_beat(c->x.hb_fd);
	if (rc) {
		kc_errf(err, errlen, "kernel tier: heartbeat: %s", strerror(-rc));
		goto fail;
	}
	if (kc_xdp_attach(&c->x, err, errlen))
		goto fail;
	c->tick = event_new(o->base, -1, EV_PERSIST, on_tick, c);
	c->kick = event_new(o->base, -1, 0, on_kick, c);
	if (!c->tick || !c->kick || event_add(c->tick, &tv)) {
		kc_errf(err, errlen, "kernel tier: cannot start its timer");
		goto fail;
	}
	kc_mem_set_evict_hook(c->mem, on_evicted, c);
	kc_mem_set_change_hook(c->mem, on_changed, c);
	log_info("kernel tier: XDP %s on %s (ifindex %d, mtu %u), %u entries, values up to %u "
		 "bytes, maps %" PRIu64 " bytes pinned under %s",
		 kc_xdp_mode_name(c->x.mode), c->x.iface, c->x.ifindex, c->x.mtu, c->entries,
		 c->max_value, c->x.map_bytes, c->x.pin_path);
	return c;
fail:
	kc_cache_free(c);
	return NULL;
}

void kc_cache_stop(struct kc_cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->stopped) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->stopped = true;
	if (c->tick)
		event_del(c->tick);
	if (c->x.hb_fd >= 0)
		kc_heartbeat_stop(c->x.hb_fd);
	kc_xdp_detach(&c->x);
	pthread_mutex_unlock(&c->lock);
	kc_xdp_unpin(&c->x);
}

void kc_cache_free(struct kc_cache *c)
{
	if (!c)
		return;
	if (c->mem) {
		kc_mem_set_evict_hook(c->mem, NULL, NULL);
		kc_mem_set_change_hook(c->mem, NULL, NULL);
	}
	kc_cache_stop(c);
	if (c->tick)
		event_free(c->tick);
	if (c->kick)
		event_free(c->kick);
	kc_rcu_close(&c->rcu);
	kc_xdp_destroy(&c->x);
	kc_hot_free(c->hot);
	free(c->res);
	free(c->bucket);
	free(c->free_stack);
	free(c->quar);
	free(c->last);
	free(c->moved);
	free(c->cand);
	free(c->work);
	free(c->served);
	free(c->offered);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->cand_lock);
	free(c);
}

/* ---- admin and metrics (main thread) ----------------------------------------------------- */

struct hot_row {
	uint32_t slot;
	uint64_t gen, hits;
};

static int cmp_hot_row(const void *a, const void *b)
{
	const struct hot_row *x = a, *y = b;

	if (x->hits != y->hits)
		return x->hits < y->hits ? 1 : -1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

int kc_cache_admin_hot(void *ctx, int argc, char **argv, struct kc_buf *out)
{
	struct kc_cache *c = ctx;
	uint64_t limit = KC_HOT_LIST_DEF;
	struct hot_row *rows;
	uint32_t n = 0, shown = 0;
	bool broken;

	if (!c) {
		kc_buf_puts(out, "the kernel tier is off (--xdp-mode off)");
		return -1;
	}
	if (argc > 2 || (argc == 2 && kc_parse_u64(argv[1], UINT64_MAX, &limit))) {
		kc_buf_puts(out, "usage: hot [N]  (the N hottest resident keys, 0 = all)");
		return -1;
	}
	rows = malloc((size_t)c->entries * sizeof(*rows));
	if (!rows) {
		kc_buf_puts(out, "out of memory");
		return -1;
	}
	fold_hits(c);
	pthread_mutex_lock(&c->lock);
	for (uint32_t slot = 0; slot < c->slot_hi; slot++)
		if (c->res[slot].state == SLOT_LIVE)
			rows[n++] = (struct hot_row){slot, c->res[slot].gen, c->res[slot].hits};
	broken = c->broken;
	pthread_mutex_unlock(&c->lock);
	qsort(rows, n, sizeof(*rows), cmp_hot_row);
	kc_buf_printf(out, "resident %u of %u (xdp %s on %s%s)\n%12s %6s %10s  %s\n", n, c->entries,
		      kc_xdp_mode_name(c->x.mode), c->x.iface,
		      broken ? ", STOPPED after an error" : "", "HITS", "BYTES", "FREQ", "KEY");
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < n && (limit == 0 || shown < limit); i++) {
		const struct resident *r = &c->res[rows[i].slot];

		if (r->state != SLOT_LIVE || r->gen != rows[i].gen)
			continue; /* left since the snapshot */
		kc_buf_printf(out, "%12" PRIu64 " %6u %10u  %.*s\n", r->hits, r->value_len,
			      kc_hot_estimate(c->hot, r->hash), (int)r->nkey, r->key);
		shown++;
	}
	pthread_mutex_unlock(&c->lock);
	free(rows);
	return 0;
}

void kc_cache_collect(void *ctx, struct kc_buf *out)
{
	struct kc_cache *c = ctx;
	struct kc_kstats st;
	uint32_t live = 0, quar = 0;
	bool up = false;
	char label[64];

	memset(&st, 0, sizeof(st));
	if (c) {
		kc_kstats_read(c->x.stats_fd, &st);
		pthread_mutex_lock(&c->lock);
		live = c->nlive;
		quar = c->nquar;
		up = !c->broken && !c->stopped;
		pthread_mutex_unlock(&c->lock);
	}
	kc_metric_one(out, "kcache_kernel_up", "gauge",
		      "1 while the XDP kernel tier is attached and its heartbeat kept.", up);
	kc_metric_one(out, "kcache_kernel_hits_total", "counter",
		      "UDP get requests answered by the kernel tier (XDP_TX).", st.hits);
	kc_metric_one(out, "kcache_kernel_key_hits_total", "counter",
		      "VALUE blocks in the kernel tier's replies.", st.key_hits);
	kc_metric_one(out, "kcache_kernel_misses_total", "counter",
		      "UDP get requests passed up because a key was not resident or expired.",
		      st.misses);
	kc_metric_one(out, "kcache_kernel_expired_total", "counter",
		      "Kernel misses whose key was resident but expired.", st.expired);
	kc_metric_one(out, "kcache_kernel_tx_bytes_total", "counter",
		      "UDP payload bytes the kernel tier sent.", st.tx_bytes);
	kc_metric_header(out, "kcache_kernel_passes_total", "counter",
			 "Packets the XDP program passed up to the stack, by reason.");
	for (unsigned r = 0; r < KC_PASS__MAX; r++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", kc_pass_reason_name(r));
		kc_metric_u64(out, "kcache_kernel_passes_total", label, st.pass[r]);
	}
	kc_metric_one(out, "kcache_kernel_entries", "gauge", "Keys resident in the kernel tier.",
		      live);
	kc_metric_one(out, "kcache_kernel_entries_max", "gauge",
		      "Most keys the kernel tier holds (--kernel-entries).", c ? c->entries : 0);
	kc_metric_one(out, "kcache_kernel_quarantined_slots", "gauge",
		      "Slots waiting for an RCU grace period before reuse.", quar);
	kc_metric_one(out, "kcache_kernel_map_bytes", "gauge",
		      "Kernel memory of the tier's BPF maps, fixed when they are created.",
		      c ? c->x.map_bytes : 0);
	kc_metric_one(out, "kcache_kernel_installs_total", "counter",
		      "Keys installed into the kernel tier.", c ? atomic_load(&c->installs) : 0);
	kc_metric_header(out, "kcache_kernel_removals_total", "counter",
			 "Keys removed from the kernel tier, by reason.");
	for (int r = 0; r < RM__COUNT; r++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", rm_names[r]);
		kc_metric_u64(out, "kcache_kernel_removals_total", label,
			      c ? atomic_load(&c->removed[r]) : 0);
	}
	kc_metric_one(out, "kcache_kernel_admissions_rejected_total", "counter",
		      "Candidates not installed because no resident was colder.",
		      c ? atomic_load(&c->rejected) : 0);
	kc_metric_one(out, "kcache_kernel_install_errors_total", "counter",
		      "Installs that failed on a map update.",
		      c ? atomic_load(&c->install_errors) : 0);
	kc_metric_header(
	    out, "kcache_kernel_hash_collisions_total", "counter",
	    "Installs refused because a resident key has the same 64-bit kc_index hash, or the "
	    "key's kc_index bucket has no free way.");
	kc_metric_u64(out, "kcache_kernel_hash_collisions_total", NULL,
		      c ? atomic_load(&c->collisions) : 0);
}
