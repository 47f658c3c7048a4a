/* cache.c: the kernel hot-key tier's manager (see cache.h). Loader, heartbeat, admission and
 * the consistency protocol between the memory tier and the kernel maps.
 *
 * What is hot. Every get the daemon serves (TCP, and UDP the kernel passed up: misses and
 * requests it does not answer) counts one request for each key in a count-min sketch with
 * aging (hot.c); every VALUE block the kernel serves counts too, folded in from kc_hits each
 * tick, so a resident key does not look cold because the daemon no longer sees its requests.
 * A key asked for at least KC_HOT_MIN times, whose value fits --kernel-max-value and whose
 * bytes the XDP parser accepts, is offered once per tick through a small candidate queue.
 * Admission (TinyLFU's rule): while slots are free every candidate is installed, hottest first;
 * once full, a candidate displaces the coldest resident only if its estimate is strictly
 * higher, pairing the hottest candidates with the coldest residents. A worker offering a key
 * while slots are free wakes the main thread at once (kick); everything else waits for the
 * 100 ms tick.
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
 *      reinstalled with the new deadline if still hot.
 *   6. If a delete ever fails (it should not), the tier stops the kernel from serving anything
 *      (heartbeat 0 and XDP detached) rather than risk a stale copy (fail_safe).
 *   7. If kcached dies, the XDP link (never pinned) goes away with its file descriptor, and
 *      the heartbeat (beaten every tick) lapses within kc_cfg.hb_window_ns (1 s) in any case.
 * Lock order: shard lock, then c->lock, then c->cand_lock. Nothing here calls into the memory
 * tier with c->lock held; the hooks never call back into the tier.
 */
#include "cache.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <kcache/cache.h> /* before the skeleton, which uses struct kc_config */
#include "cache.skel.h"
#include "cache_entry.h"
#include "hot.h"
#include "log.h"
#include "metrics.h"

#define KC_TICK_MS	100  /* heartbeat, hit folding, expiry, admission */
#define KC_HOT_MIN	2    /* requests within the sketch's window before a key is offered */
#define KC_CAND_MAX	1024 /* keys offered between two ticks */
#define KC_OFFERED_BITS (1u << 16)
#define KC_MTU_CAP	9000 /* larger replies would not fit an XDP frame anyway */
#define KC_PROG_NAME	"kc_cache"
#define KC_HOT_LIST_DEF 100
#define NIL		UINT32_MAX
#define NSEC		1000000000LL

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
	uint8_t state; /* enum slot_state */
	uint8_t nkey;
	char key[KC_KEY_MAX];
};

struct cand {
	uint64_t hash;
	uint32_t est;
	uint8_t nkey;
	char key[KC_KEY_MAX];
};

/* A resident the kernel served since the last fold. */
struct served {
	uint32_t slot, n;
	uint64_t gen;
};

struct kc_cache {
	struct cache_bpf *skel;
	struct kc_mem *mem;
	struct event *tick, *kick;
	struct kc_rcu rcu;
	struct kc_hot *hot;
	int index_fd, slots_fd, hits_fd, stats_fd, hb_fd, link_fd;
	int ifindex, ncpu;
	char iface[IF_NAMESIZE];
	enum kc_xdp_mode mode;
	char pin_path[128];
	uint32_t entries, max_value, mtu;
	uint64_t map_bytes; /* every map of the object, as the kernel accounts them */

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
	void *zeros; /* ncpu counters, to reset kc_hits[slot] */

	/* main thread only */
	__u64 *hitbuf; /* slot_hi * ncpu counters */
	__u32 *keybuf;
	struct cand *work;
	struct served *served;

	pthread_mutex_t cand_lock;
	struct cand *cand;
	uint32_t ncand;
	_Atomic uint64_t *offered; /* one bit per hash bucket: offered since the last tick */
	_Atomic bool kick_pending;

	_Atomic uint64_t installs, rejected, install_errors, removed[RM__COUNT];
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

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
	kc_heartbeat_stop(c->hb_fd);
	if (c->link_fd >= 0) {
		bpf_link_detach(c->link_fd);
		close(c->link_fd);
		c->link_fd = -1;
	}
}

/* Takes slot out of kc_index; the slot waits in quarantine for the next RCU barrier. */
static void do_remove(struct kc_cache *c, uint32_t slot, enum rm_reason why)
{
	struct resident *r = &c->res[slot];
	struct kc_key k;
	int err = kc_key_init(&k, r->key, r->nkey);

	if (!err && bpf_map_delete_elem(c->index_fd, &k) && errno != ENOENT)
		err = -errno;
	if (err)
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

enum install_result { INS_OK, INS_GONE, INS_INELIGIBLE, INS_RESIDENT, INS_NO_ROOM, INS_ERROR };

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
	struct timespec rt, mt;
	int64_t rt_ns, dl_ns;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	rt_ns = (int64_t)rt.tv_sec * NSEC + rt.tv_nsec;
	if (unix_s > INT64_MAX / NSEC)
		return 0;
	dl_ns = unix_s * NSEC;
	if (dl_ns <= rt_ns)
		return 0;
	return (uint64_t)((int64_t)mt.tv_sec * NSEC + mt.tv_nsec) + (uint64_t)(dl_ns - rt_ns);
}

/* kc_mem_with_item's callback: publishes the live item, under its shard lock. */
static void install_cb(void *ctx, struct kc_item *it, int64_t deadline)
{
	struct install_ctx *ic = ctx;
	struct kc_cache *c = ic->c;
	const struct cand *k = ic->cand;
	uint64_t expire_ns = 0;
	struct kc_kref ref;
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
	err = kc_entry_render(&c->render, k->key, k->nkey, it->flags, kc_item_value(it), it->nval,
			      it->cas, expire_ns, ++c->gen);
	if (err)
		goto err_slot;
	/* The slot is free: no kc_index entry points at it and no program still reads it. */
	if (bpf_map_update_elem(c->slots_fd, &slot, &c->render, BPF_ANY) ||
	    bpf_map_update_elem(c->hits_fd, &slot, c->zeros, BPF_ANY)) {
		err = -errno;
		goto err_slot;
	}
	ref = (struct kc_kref){.slot = slot, .value_len = it->nval, .gen = c->gen};
	if (bpf_map_update_elem(c->index_fd, &key, &ref, BPF_NOEXIST)) {
		err = -errno;
		/* EEXIST would mean kc_index and our table disagree: trust neither. */
		if (err == -EEXIST)
			do_fail_safe(c, "kc_index holds a key the daemon did not install", EEXIST);
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

/* Adds the kernel's per-slot hits since the last fold to each resident, to the sketch, and to
 * the memory tier's eviction policy (which never sees those requests otherwise). */
static void fold_hits(struct kc_cache *c)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t hi, done = 0, n, out, nserved = 0;
	uint64_t seq;
	void *in = NULL;

	pthread_mutex_lock(&c->lock);
	hi = c->slot_hi;
	seq = c->install_seq;
	pthread_mutex_unlock(&c->lock);
	while (done < hi) {
		n = hi - done;
		if (bpf_map_lookup_batch(c->hits_fd, in, &out, c->keybuf + done,
					 c->hitbuf + (size_t)done * (size_t)c->ncpu, &n, &opts)) {
			done += n;
			if (errno != ENOENT) {
				log_warn("kernel tier: read kc_hits: %s", strerror(errno));
				return;
			}
			break;
		}
		done += n;
		in = &out;
	}
	pthread_mutex_lock(&c->lock);
	for (uint32_t slot = 0; slot < done; slot++) {
		struct resident *r = &c->res[slot];
		uint64_t sum = 0;

		/* Installed after the read began: the counters read may be a previous key's. */
		if (r->state != SLOT_LIVE || r->installed > seq)
			continue;
		for (int cpu = 0; cpu < c->ncpu; cpu++)
			sum += c->hitbuf[(size_t)slot * (size_t)c->ncpu + (size_t)cpu];
		if (sum > r->hits_seen) {
			uint64_t d = sum - r->hits_seen;

			r->hits += d;
			r->hits_seen = sum;
			kc_hot_add(c->hot, r->hash, d > UINT32_MAX ? UINT32_MAX : (uint32_t)d);
			c->served[nserved++] =
			    (struct served){slot, d > 15 ? 15 : (uint32_t)d, r->gen};
		}
	}
	pthread_mutex_unlock(&c->lock);
	/* The memory tier takes its shard lock: never with c->lock held. */
	for (uint32_t i = 0; i < nserved; i++) {
		const struct resident *r = &c->res[c->served[i].slot];
		char key[KC_KEY_MAX];
		size_t nkey = 0;

		pthread_mutex_lock(&c->lock);
		if (r->state == SLOT_LIVE && r->gen == c->served[i].gen) {
			nkey = r->nkey;
			memcpy(key, r->key, nkey);
		}
		pthread_mutex_unlock(&c->lock);
		if (nkey)
			kc_mem_note_access(c->mem, key, nkey, c->served[i].n);
	}
}

static void expire_residents(struct kc_cache *c)
{
	uint64_t now = kc_mono_ns();

	pthread_mutex_lock(&c->lock);
	for (uint32_t slot = 0; slot < c->slot_hi; slot++) {
		struct resident *r = &c->res[slot];

		if (r->state == SLOT_LIVE && r->expire_ns && r->expire_ns <= now)
			do_remove(c, slot, RM_EXPIRED);
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
		if (vi >= nv || c->work[i].est <= v[vi].est) {
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
	if (kc_heartbeat_beat(c->hb_fd))
		log_warn("kernel tier: heartbeat: %s", strerror(errno));
	fold_hits(c);
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
	if (!c->broken && !c->stopped)
		admit(c, false);
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
	if (kc_hot_add(c->hot, hash, 1) < KC_HOT_MIN || !it || it->nval > c->max_value)
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

/* ---- load, pin, attach ------------------------------------------------------------------- */

static int prog_name(__u32 id, char *name, size_t len)
{
	struct bpf_prog_info info;
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = 0;

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		err = -errno;
	else
		snprintf(name, len, "%s", info.name);
	close(fd);
	return err;
}

/* Makes sure the interface has no XDP program, or only a kernel tier that a dead kcached left
 * attached through netlink (a live one holds it through a link, which netlink cannot detach):
 * that one is replaced. Anything else is refused before anything is pinned or attached. */
static int claim_iface(struct kc_cache *c, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[BPF_OBJ_NAME_LEN] = "";
	__u32 id, flags;
	int rc, fd;

	rc = bpf_xdp_query(c->ifindex, 0, &q);
	if (rc) {
		errf(err, errlen, "xdp on %s: query: %s", c->iface, strerror(-rc));
		return rc;
	}
	if (q.attach_mode == XDP_ATTACHED_NONE)
		return 0;
	id = q.prog_id;
	if (q.attach_mode == XDP_ATTACHED_MULTI || prog_name(id, name, sizeof(name)) ||
	    strcmp(name, KC_PROG_NAME)) {
		id = id		     ? id
		     : q.drv_prog_id ? q.drv_prog_id
		     : q.skb_prog_id ? q.skb_prog_id
				     : q.hw_prog_id;
		errf(err, errlen,
		     "xdp on %s: another XDP program (id %u) is attached; detach it or use "
		     "--xdp-mode off",
		     c->iface, id);
		return -EBUSY;
	}
	flags = q.attach_mode == XDP_ATTACHED_SKB   ? XDP_FLAGS_SKB_MODE
		: q.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE
						    : XDP_FLAGS_HW_MODE;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0) {
		errf(err, errlen, "xdp on %s: program %u: %s", c->iface, id, strerror(errno));
		return -errno;
	}
	{
		LIBBPF_OPTS(bpf_xdp_attach_opts, dopts, .old_prog_fd = fd);

		rc = bpf_xdp_detach(c->ifindex, flags, &dopts);
	}
	close(fd);
	if (rc == -EBUSY) {
		errf(err, errlen,
		     "xdp on %s: a running kcached holds the kernel tier (program id %u); stop it "
		     "or use --xdp-mode off",
		     c->iface, id);
		return rc;
	}
	if (rc) {
		errf(err, errlen,
		     "xdp on %s: detach the kernel tier a previous kcached left (id %u): %s",
		     c->iface, id, strerror(-rc));
		return rc;
	}
	log_warn("xdp on %s: replaced the kernel tier a previous kcached left attached (id %u)",
		 c->iface, id);
	return 0;
}

static int attach(struct kc_cache *c, char *err, size_t errlen)
{
	__u32 flags = c->mode == KC_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = flags);
	int fd = -EBUSY;

	/* A link, never pinned: it goes away with the process, and netlink cannot replace it. */
	for (int tries = 0; tries < 2; tries++) {
		fd = bpf_link_create(bpf_program__fd(c->skel->progs.kc_cache), c->ifindex, BPF_XDP,
				     &lopts);
		if (fd >= 0) {
			c->link_fd = fd;
			return 0;
		}
		fd = -errno;
		if (fd != -EBUSY && fd != -EEXIST)
			break;
		/* Someone attached since claim_iface. */
		if (claim_iface(c, err, errlen))
			return -EBUSY;
	}
	errf(err, errlen, "xdp on %s: attach in %s mode: %s", c->iface, kc_xdp_mode_name(c->mode),
	     strerror(-fd));
	return fd;
}

static const char *const pinned_maps[] = {"kc_index", "kc_slots", "kc_hits", "kc_stats",
					  "kc_heartbeat"};
#define N_PINNED (sizeof(pinned_maps) / sizeof(pinned_maps[0]))

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* Creates the pin folder on a bpf filesystem (mounting /sys/fs/bpf if nothing is there) and
 * removes the maps a previous run of this family left, so the load pins fresh ones (libbpf
 * would reuse compatible pinned maps, stale contents included). */
static int prepare_pins(struct kc_cache *c, char *err, size_t errlen)
{
	char path[256];

	if (!strncmp(c->pin_path, "/sys/fs/bpf/", 12) && !is_bpffs("/sys/fs/bpf") &&
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		errf(err, errlen, "pin-path %s: mount bpffs on /sys/fs/bpf: %s", c->pin_path,
		     strerror(errno));
		return -errno;
	}
	if (mkdir(c->pin_path, 0700) && errno != EEXIST) {
		errf(err, errlen, "pin-path %s: %s", c->pin_path, strerror(errno));
		return -errno;
	}
	if (!is_bpffs(c->pin_path)) {
		errf(err, errlen, "pin-path %s: not on a bpf filesystem (mount -t bpf bpf DIR)",
		     c->pin_path);
		return -EINVAL;
	}
	for (size_t i = 0; i < N_PINNED; i++) {
		snprintf(path, sizeof(path), "%s/%s", c->pin_path, pinned_maps[i]);
		if (unlink(path) == 0)
			log_info("kernel tier: removed %s left by a previous run", path);
		else if (errno != ENOENT)
			log_warn("kernel tier: remove %s: %s", path, strerror(errno));
		bpf_map__set_pin_path(bpf_object__find_map_by_name(c->skel->obj, pinned_maps[i]),
				      path);
	}
	return 0;
}

/* Removes our pins, and only ours (another daemon may have pinned its own since). */
static void unpin(struct kc_cache *c)
{
	for (size_t i = 0; i < N_PINNED; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(c->skel->obj, pinned_maps[i]);
		struct bpf_map_info a, b;
		__u32 la = sizeof(a), lb = sizeof(b);
		const char *path = bpf_map__pin_path(m);
		int fd;

		if (!path || !bpf_map__is_pinned(m))
			continue;
		fd = bpf_obj_get(path);
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &a, &la) &&
		    !bpf_obj_get_info_by_fd(bpf_map__fd(m), &b, &lb) && a.id == b.id)
			unlink(path);
		if (fd >= 0)
			close(fd);
	}
	rmdir(c->pin_path); /* only if empty: other families may pin there */
}

/* Kernel memory of one map, as the kernel accounts it (fdinfo "memlock"). */
static uint64_t map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static uint32_t iface_mtu(const char *iface)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint32_t mtu = KC_MTU_DEFAULT;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		mtu = (uint32_t)ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	return mtu > KC_MTU_CAP ? KC_MTU_CAP : mtu;
}

/* XDP answers only packets addressed where the daemon listens (0.0.0.0 and :: are any). */
static int set_listen(struct kc_kconfig *cfg, const char *listen, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, listen, &a4) == 1) {
		cfg->addr_mode = a4.s_addr == htonl(INADDR_ANY) ? KC_ADDR_ANY : KC_ADDR_V4;
		cfg->addr4 = a4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, listen, &a6) == 1) {
		cfg->addr_mode = IN6_IS_ADDR_UNSPECIFIED(&a6) ? KC_ADDR_ANY : KC_ADDR_V6;
		memcpy(cfg->addr6, &a6, sizeof(cfg->addr6));
		return 0;
	}
	errf(err, errlen, "kernel tier: listen address '%s' is not numeric", listen);
	return -EINVAL;
}

static int load(struct kc_cache *c, const struct kc_cache_opts *o, char *err, size_t errlen)
{
	struct bpf_map *m;
	int rc;

	c->skel = cache_bpf__open();
	if (!c->skel) {
		errf(err, errlen, "open the kernel tier: %s", strerror(errno));
		return -errno;
	}
	c->skel->rodata->kc_cfg.port = o->port;
	c->skel->rodata->kc_cfg.mtu = c->mtu;
	c->skel->rodata->kc_cfg.max_value = o->max_value;
	c->skel->rodata->kc_cfg.hb_window_ns = KC_HB_WINDOW_NS_DEFAULT;
	rc = set_listen((struct kc_kconfig *)&c->skel->rodata->kc_cfg, o->listen, err, errlen);
	if (rc)
		return rc;
	if (bpf_map__set_max_entries(c->skel->maps.kc_index, o->entries) ||
	    bpf_map__set_max_entries(c->skel->maps.kc_slots, o->entries) ||
	    bpf_map__set_max_entries(c->skel->maps.kc_hits, o->entries)) {
		errf(err, errlen, "kernel-entries %u: cannot size the maps", o->entries);
		return -EINVAL;
	}
	rc = prepare_pins(c, err, errlen);
	if (rc)
		return rc;
	rc = cache_bpf__load(c->skel);
	if (rc) {
		errf(err, errlen, "load the kernel tier: %s%s", strerror(-rc),
		     rc == -EPERM ? " (needs root, or CAP_BPF and CAP_NET_ADMIN; or --xdp-mode off)"
				  : "");
		return rc;
	}
	c->index_fd = bpf_map__fd(c->skel->maps.kc_index);
	c->slots_fd = bpf_map__fd(c->skel->maps.kc_slots);
	c->hits_fd = bpf_map__fd(c->skel->maps.kc_hits);
	c->stats_fd = bpf_map__fd(c->skel->maps.kc_stats);
	c->hb_fd = bpf_map__fd(c->skel->maps.kc_heartbeat);
	bpf_object__for_each_map(m, c->skel->obj) c->map_bytes += map_memlock(bpf_map__fd(m));
	return 0;
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
	c->zeros = calloc((size_t)c->ncpu, sizeof(__u64));
	c->hitbuf = malloc((size_t)c->entries * (size_t)c->ncpu * sizeof(__u64));
	c->keybuf = malloc(c->entries * sizeof(*c->keybuf));
	c->cand = malloc(KC_CAND_MAX * sizeof(*c->cand));
	c->work = malloc(KC_CAND_MAX * sizeof(*c->work));
	c->served = malloc(c->entries * sizeof(*c->served));
	c->offered = calloc(KC_OFFERED_BITS / 64, sizeof(*c->offered));
	c->hot = kc_hot_new(c->entries);
	if (!c->res || !c->bucket || !c->free_stack || !c->quar || !c->zeros || !c->hitbuf ||
	    !c->keybuf || !c->cand || !c->work || !c->served || !c->offered || !c->hot)
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
		errf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->cand_lock, NULL);
	c->index_fd = c->slots_fd = c->hits_fd = c->stats_fd = c->hb_fd = c->link_fd = -1;
	c->rcu.outer_fd = c->rcu.inner_fd = -1;
	c->mem = o->mem;
	c->mode = o->mode;
	c->entries = o->entries;
	c->max_value = o->max_value;
	snprintf(c->iface, sizeof(c->iface), "%s", o->iface);
	snprintf(c->pin_path, sizeof(c->pin_path), "%s", o->pin_path);
	c->ncpu = libbpf_num_possible_cpus();
	if (c->ncpu <= 0 || o->entries == 0 || o->max_value > KC_VALUE_MAX) {
		errf(err, errlen, "kernel tier: bad settings (cpus %d, entries %u, max value %u)",
		     c->ncpu, o->entries, o->max_value);
		goto fail;
	}
	if (alloc_state(c)) {
		errf(err, errlen, "kernel tier: out of memory for %u entries", c->entries);
		goto fail;
	}
	c->ifindex = (int)if_nametoindex(c->iface);
	if (!c->ifindex) {
		errf(err, errlen, "iface %s: %s", c->iface, strerror(errno));
		goto fail;
	}
	c->mtu = iface_mtu(c->iface);
	/* The RCU barrier's two maps are also the cheapest test of BPF rights, before anything
	 * else is looked at or changed. */
	rc = kc_rcu_init(&c->rcu);
	if (rc) {
		errf(err, errlen, "kernel tier: create BPF maps: %s%s", strerror(-rc),
		     rc == -EPERM ? " (xdp-mode skb and native need root, or CAP_BPF and "
				    "CAP_NET_ADMIN; --xdp-mode off needs neither)"
				  : "");
		goto fail;
	}
	if (claim_iface(c, err, errlen) || load(c, o, err, errlen))
		goto fail;
	rc = kc_heartbeat_beat(c->hb_fd);
	if (rc) {
		errf(err, errlen, "kernel tier: heartbeat: %s", strerror(-rc));
		goto fail;
	}
	if (attach(c, err, errlen))
		goto fail;
	c->tick = event_new(o->base, -1, EV_PERSIST, on_tick, c);
	c->kick = event_new(o->base, -1, 0, on_kick, c);
	if (!c->tick || !c->kick || event_add(c->tick, &tv)) {
		errf(err, errlen, "kernel tier: cannot start its timer");
		goto fail;
	}
	kc_mem_set_evict_hook(c->mem, on_evicted, c);
	kc_mem_set_change_hook(c->mem, on_changed, c);
	log_info("kernel tier: XDP %s on %s (ifindex %d, mtu %u), %u entries, values up to %u "
		 "bytes, maps %" PRIu64 " bytes pinned under %s",
		 kc_xdp_mode_name(c->mode), c->iface, c->ifindex, c->mtu, c->entries, c->max_value,
		 c->map_bytes, c->pin_path);
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
	if (c->hb_fd >= 0)
		kc_heartbeat_stop(c->hb_fd);
	if (c->link_fd >= 0) {
		bpf_link_detach(c->link_fd);
		close(c->link_fd);
		c->link_fd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->skel)
		unpin(c);
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
	cache_bpf__destroy(c->skel);
	kc_hot_free(c->hot);
	free(c->res);
	free(c->bucket);
	free(c->free_stack);
	free(c->quar);
	free(c->zeros);
	free(c->hitbuf);
	free(c->keybuf);
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

	if (!c) {
		kc_buf_puts(out, "the kernel tier is off (--xdp-mode off)");
		return -1;
	}
	if (argc > 2 || (argc == 2 && kc_parse_u64(argv[1], &limit))) {
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
	pthread_mutex_unlock(&c->lock);
	qsort(rows, n, sizeof(*rows), cmp_hot_row);
	kc_buf_printf(out, "resident %u of %u (xdp %s on %s%s)\n%12s %6s %10s  %s\n", n, c->entries,
		      kc_xdp_mode_name(c->mode), c->iface,
		      c->broken ? ", STOPPED after an error" : "", "HITS", "BYTES", "FREQ", "KEY");
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
		kc_kstats_read(c->stats_fd, &st);
		pthread_mutex_lock(&c->lock);
		live = c->nlive;
		quar = c->nquar;
		up = !c->broken && !c->stopped;
		pthread_mutex_unlock(&c->lock);
	}
	kc_metric_header(out, "kcache_kernel_up", "gauge",
			 "1 while the XDP kernel tier is attached and its heartbeat kept.");
	kc_metric_u64(out, "kcache_kernel_up", NULL, up);
	kc_metric_header(out, "kcache_kernel_hits_total", "counter",
			 "UDP get requests answered by the kernel tier (XDP_TX).");
	kc_metric_u64(out, "kcache_kernel_hits_total", NULL, st.hits);
	kc_metric_header(out, "kcache_kernel_key_hits_total", "counter",
			 "VALUE blocks in the kernel tier's replies.");
	kc_metric_u64(out, "kcache_kernel_key_hits_total", NULL, st.key_hits);
	kc_metric_header(out, "kcache_kernel_misses_total", "counter",
			 "UDP get requests passed up because a key was not resident or expired.");
	kc_metric_u64(out, "kcache_kernel_misses_total", NULL, st.misses);
	kc_metric_header(out, "kcache_kernel_expired_total", "counter",
			 "Kernel misses whose key was resident but expired.");
	kc_metric_u64(out, "kcache_kernel_expired_total", NULL, st.expired);
	kc_metric_header(out, "kcache_kernel_tx_bytes_total", "counter",
			 "UDP payload bytes the kernel tier sent.");
	kc_metric_u64(out, "kcache_kernel_tx_bytes_total", NULL, st.tx_bytes);
	kc_metric_header(out, "kcache_kernel_passes_total", "counter",
			 "Packets the XDP program passed up to the stack, by reason.");
	for (unsigned r = 0; r < KC_PASS__MAX; r++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", kc_pass_reason_name(r));
		kc_metric_u64(out, "kcache_kernel_passes_total", label, st.pass[r]);
	}
	kc_metric_header(out, "kcache_kernel_entries", "gauge",
			 "Keys resident in the kernel tier.");
	kc_metric_u64(out, "kcache_kernel_entries", NULL, live);
	kc_metric_header(out, "kcache_kernel_entries_max", "gauge",
			 "Most keys the kernel tier holds (--kernel-entries).");
	kc_metric_u64(out, "kcache_kernel_entries_max", NULL, c ? c->entries : 0);
	kc_metric_header(out, "kcache_kernel_quarantined_slots", "gauge",
			 "Slots waiting for an RCU grace period before reuse.");
	kc_metric_u64(out, "kcache_kernel_quarantined_slots", NULL, quar);
	kc_metric_header(out, "kcache_kernel_map_bytes", "gauge",
			 "Kernel memory of the tier's BPF maps, fixed when they are created.");
	kc_metric_u64(out, "kcache_kernel_map_bytes", NULL, c ? c->map_bytes : 0);
	kc_metric_header(out, "kcache_kernel_installs_total", "counter",
			 "Keys installed into the kernel tier.");
	kc_metric_u64(out, "kcache_kernel_installs_total", NULL, c ? atomic_load(&c->installs) : 0);
	kc_metric_header(out, "kcache_kernel_removals_total", "counter",
			 "Keys removed from the kernel tier, by reason.");
	for (int r = 0; r < RM__COUNT; r++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", rm_names[r]);
		kc_metric_u64(out, "kcache_kernel_removals_total", label,
			      c ? atomic_load(&c->removed[r]) : 0);
	}
	kc_metric_header(out, "kcache_kernel_admissions_rejected_total", "counter",
			 "Candidates not installed because no resident was colder.");
	kc_metric_u64(out, "kcache_kernel_admissions_rejected_total", NULL,
		      c ? atomic_load(&c->rejected) : 0);
	kc_metric_header(out, "kcache_kernel_install_errors_total", "counter",
			 "Installs that failed on a map update.");
	kc_metric_u64(out, "kcache_kernel_install_errors_total", NULL,
		      c ? atomic_load(&c->install_errors) : 0);
}
