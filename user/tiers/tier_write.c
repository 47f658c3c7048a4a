/* tier_write.c: the write path below the memory tier (see tier.h): write-through and
 * write-behind, the flusher thread, flush_all, and applying other nodes' invalidations. One write
 * to Redis and the store is tier_apply.c; the shared state (write versions, flush_all's
 * version) is tier_state.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hlc.h"
#include "core/log.h"
#include "tiers/tier_blob.h"
#include "tiers/tier_flushfile.h"
#include "tiers/tier_int.h"

/* flush_all: KEYS[1] the flush key; ARGV: version (20 digits), at, channel, message. */
static const char flush_script[] =
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "if (not v) or v < ARGV[1] then redis.call('HSET', KEYS[1], 'v', ARGV[1], 'at', ARGV[2]) end\n"
    "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "return 1\n";

/* --- the write modes ------------------------------------------------------------------- */

struct wop {
	struct kc_tctx *x;
	kc_tier_write_fn fn;
	void *ctx;
	int status;
	char err[200];
	uint64_t ver; /* a write: its version, undone from the memory tier if refused */
	size_t nkey;
	char key[KC_KEY_MAX + 1];
};

/* A refused write leaves no trace: the memory tier's copy goes (unless a newer write replaced
 * it), and so does the note that would keep the older value below from filling back in; the
 * next read finds what the lower tiers hold. */
static void wop_undo(struct wop *w)
{
	struct kc_tiers *t = w->x->t;

	if (!w->nkey)
		return;
	kc_tier_unnote_write(t, w->key, w->nkey, w->ver);
	if (kc_mem_delete_older(t->mem, w->key, w->nkey, w->ver + 1) == KC_DELETED)
		atomic_fetch_add(&t->writes_undone, 1);
}

static void wop_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct wop *w = arg;

	(void)fd, (void)what;
	if (w->err[0])
		wop_undo(w);
	w->fn(w->ctx, w->err[0] ? w->err : NULL);
	free(w);
}

/* A write waiting to answer fn(ctx, err) on x's loop; NULL when out of memory. */
static struct wop *wop_new(struct kc_tctx *x, kc_tier_write_fn fn, void *ctx)
{
	struct wop *w = calloc(1, sizeof(*w));

	if (w) {
		w->x = x;
		w->fn = fn;
		w->ctx = ctx;
	}
	return w;
}

static void wop_finish(struct wop *w, const char *err)
{
	if (err)
		snprintf(w->err, sizeof(w->err), "%s", err);
	if (event_base_once(w->x->base, -1, EV_TIMEOUT, wop_deliver, w, NULL))
		wop_deliver(-1, 0, w);
}

static void through_done(void *ctx, const char *err)
{
	struct wop *w = ctx;

	if (err)
		snprintf(w->err, sizeof(w->err), "%s", err);
	wop_deliver(-1, 0, w);
}

/* On the journal's sync thread: hop back to the worker's loop. */
static void journal_done(void *ctx, int status)
{
	struct wop *w = ctx;

	if (status)
		snprintf(w->err, sizeof(w->err), "write-behind journal: %s", strerror(-status));
	else
		kc_tier_flusher_kick(w->x->t);
	if (event_base_once(w->x->base, -1, EV_TIMEOUT, wop_deliver, w, NULL))
		wop_deliver(-1, 0, w); /* shutting down: the worker's loop is gone */
}

struct capture {
	struct kc_item *it;
};

static void capture_item(void *ctx, struct kc_item *it, int64_t deadline)
{
	struct capture *c = ctx;

	(void)deadline;
	if (it)
		kc_item_get(it);
	c->it = it;
}

void kc_tiers_write(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_write_fn fn, void *ctx)
{
	struct kc_tctx *x = &t->workers[worker];
	struct wop *w = wop_new(x, fn, ctx);
	struct capture c = {0};
	struct kc_buf blob = {0};
	uint64_t ver;
	int64_t exptime = 0;
	bool tomb;

	if (!w) {
		fn(ctx, "out of memory");
		return;
	}
	kc_mem_with_item(t->mem, key, nkey, capture_item, &c);
	tomb = !c.it;
	if (c.it) {
		exptime = atomic_load(&c.it->exptime);
		ver = atomic_load(&c.it->ver);
		if (kc_blob_encode(c.it, t->compress_min, &blob))
			goto nomem;
		kc_item_put(c.it);
	} else {
		ver = kc_hlc_next();
		if (kc_blob_tomb(ver, &blob))
			goto nomem;
	}
	kc_tier_note_write(t, key, nkey, ver);
	if (nkey <= KC_KEY_MAX) {
		memcpy(w->key, key, nkey);
		w->nkey = nkey;
		w->ver = ver;
	}
	if (t->mode == KC_WRITE_THROUGH) {
		kc_tier_apply(x, key, nkey, ver, blob.data, blob.len, tomb, exptime, false,
			      through_done, w);
	} else if (kc_journal_append(t->journal, tomb ? KC_JDEL : KC_JSET, ver, key, nkey,
				     blob.data, blob.len, journal_done, w)) {
		if (errno == EAGAIN) {
			atomic_fetch_add(&t->wb_full, 1);
			wop_finish(w, "write-behind queue full");
		} else {
			char e[120];

			snprintf(e, sizeof(e), "write-behind journal: %s", strerror(errno));
			wop_finish(w, e);
		}
	}
	kc_buf_free(&blob);
	return;
nomem:
	kc_item_put(c.it);
	kc_buf_free(&blob);
	wop_finish(w, "out of memory");
}

/* --- flush_all ------------------------------------------------------------------------- */

/* Adopts a flush (from this node or another); false if an equal or newer one was known. */
static bool flush_adopt(struct kc_tiers *t, uint64_t ver, int64_t at)
{
	uint64_t old = atomic_load(&t->flush_ver);

	do {
		if (old >= ver)
			return false;
	} while (!atomic_compare_exchange_weak(&t->flush_ver, &old, ver));
	atomic_store(&t->flush_at, at);
	return true;
}

/* Keeps the latest flush in data-dir/flush so that a restart does not resurrect the store. */
static void flush_save(struct kc_tiers *t)
{
	char err[256];

	if (!t->data_dir[0])
		return;
	if (kc_flushfile_write(t->data_dir, atomic_load(&t->flush_ver), atomic_load(&t->flush_at),
			       err, sizeof(err)))
		log_error("flush_all: not kept across restarts: %s", err);
}

/* A damaged data-dir/flush is set aside and ignored, loudly: every object stays. Refusing to
 * start would lose nothing either but turn one bad byte into an outage, and guessing a flush
 * from bad bytes is what hid every later write before. Ignoring it can at worst bring back
 * objects an operator flushed (with Redis, its flush key gives the flush back at connect). */
void kc_tier_flush_load(struct kc_tiers *t)
{
	char err[256], path[4200], bad[4210];
	uint64_t ver;
	int64_t at;
	int e = kc_flushfile_read(t->data_dir, kc_wall_ns() / 1000000, &ver, &at, err, sizeof(err));

	if (e == -ENOENT)
		return;
	if (e) {
		snprintf(path, sizeof(path), "%s/flush", t->data_dir);
		snprintf(bad, sizeof(bad), "%s.bad", path);
		log_error("flush_all: ignoring %s, every stored object is kept: %s (moved to %s)",
			  path, err, e == -EBADMSG && !rename(path, bad) ? bad : "nowhere");
		return;
	}
	if (!at) /* writes from now on must be newer than the flush, whatever the clock did */
		kc_hlc_observe(ver);
	flush_adopt(t, ver, at);
}

static void on_redis_flush(void *ctx, const redisReply *r, const char *err)
{
	struct wop *w = ctx;

	if (!r || r->type == REDIS_REPLY_ERROR)
		snprintf(w->err, sizeof(w->err), "redis: %s", r ? r->str : err ? err : "bad reply");
	wop_deliver(-1, 0, w);
}

void kc_tiers_flush(struct kc_tiers *t, unsigned worker, int64_t when, enum kc_flush_scope scope,
		    kc_tier_write_fn fn, void *ctx)
{
	struct kc_tctx *x = worker == KC_TIERS_MAIN ? &t->main : &t->workers[worker];
	struct wop *w = wop_new(x, fn, ctx);
	int64_t now = kc_mem_now();
	uint64_t ver = when <= now ? kc_hlc_next() : ((uint64_t)(when + 1) * 1000) << 20;

	if (!w) {
		fn(ctx, "out of memory");
		return;
	}
	flush_adopt(t, ver, when <= now ? 0 : when);
	if (scope != KC_FLUSH_LOCAL)
		flush_save(t);
	for (unsigned i = 0; i < KC_NEG_SLOTS; i++)
		atomic_store(&t->neg[i].hash, 0);
	if (!x->redis || scope != KC_FLUSH_ALL_NODES) {
		wop_finish(w, NULL);
		return;
	}
	char v[24], at[24], msg[64];

	snprintf(v, sizeof(v), "%020" PRIu64, ver);
	snprintf(at, sizeof(at), "%" PRId64, when <= now ? (int64_t)0 : when);
	snprintf(msg, sizeof(msg), "F %s %s %u", v, at, kc_hlc_node());
	const char *argv[] = {"EVAL", flush_script, "1", t->flush_key, v, at, t->chan, msg};
	size_t lens[] = {
	    4,		sizeof(flush_script) - 1, 1,	      strlen(t->flush_key), strlen(v),
	    strlen(at), strlen(t->chan),	  strlen(msg)};

	kc_redis_cmd(x->redis, on_redis_flush, w, 8, argv, lens);
}

/* --- invalidations from other nodes ---------------------------------------------------- */

void kc_tier_on_inval(void *ctx, const char *chan, size_t nchan, const char *msg, size_t n)
{
	struct kc_tiers *t = ctx;
	char head[64];
	const char *p;
	unsigned long long ver;
	unsigned node;
	long long at = 0;
	int used = 0;

	(void)chan, (void)nchan;
	if (n < 4 || n - 2 >= 64 + KC_JKEY_MAX)
		goto bad;
	memcpy(head, msg, n < sizeof(head) - 1 ? n : sizeof(head) - 1);
	head[n < sizeof(head) - 1 ? n : sizeof(head) - 1] = 0;
	if (msg[0] == 'F') {
		if (sscanf(head, "F %20llu %lld %u", &ver, &at, &node) != 3)
			goto bad;
		kc_hlc_observe(ver);
		if (node != kc_hlc_node() && flush_adopt(t, ver, at)) {
			flush_save(t);
			kc_mem_flush(t->mem, at ? at : kc_mem_now());
			for (unsigned i = 0; i < KC_NEG_SLOTS; i++)
				atomic_store(&t->neg[i].hash, 0);
		}
		return;
	}
	if (sscanf(head, "V %20llu %u %n", &ver, &node, &used) != 2 || used <= 0 ||
	    (size_t)used >= n || n - (size_t)used > KC_KEY_MAX + 0u)
		goto bad;
	p = msg + used;
	kc_hlc_observe(ver);
	if (node == kc_hlc_node()) {
		atomic_fetch_add(&t->inval_ignored, 1);
		return;
	}
	kc_tier_note_write(t, p, n - (size_t)used, ver);
	if (kc_mem_delete_older(t->mem, p, n - (size_t)used, ver) == KC_DELETED)
		atomic_fetch_add(&t->inval_applied, 1);
	else
		atomic_fetch_add(&t->inval_ignored, 1);
	return;
bad:
	log_warn("redis tier: ignoring a malformed invalidation of %zu bytes", n);
}

/* --- the write-behind flusher ---------------------------------------------------------- */

#define FLUSH_BATCH    64
#define FLUSH_INFLIGHT 512

static void flusher_pump(struct kc_tiers *t);

struct flushing {
	struct kc_tiers *t;
	struct kc_jrec *r;
};

static void on_flushed(void *ctx, const char *err)
{
	struct flushing *fl = ctx;
	struct kc_tiers *t = fl->t;

	if (err) {
		atomic_fetch_add(&t->wb_retries, 1);
		kc_journal_fail(t->journal, fl->r, kc_mono_ms(), err);
	} else {
		atomic_fetch_add(&t->wb_flushed, 1);
		kc_journal_ack(t->journal, fl->r);
	}
	free(fl);
	atomic_fetch_sub(&t->flusher_inflight, 1);
	if (!atomic_load(&t->stopping))
		flusher_pump(t);
}

/* What the flusher may do now: -1 nothing (a tier it writes to is down: its connection is, its
 * breaker is open and not due for a probe, or a probe is out), 1 one entry (a breaker is due
 * for its probe), 0 a full batch. Entries wait in the journal while a tier is down instead of
 * spending their attempts, which count failures of a reachable tier. */
static int flusher_room(struct kc_tiers *t)
{
	int room = 0;

	if (t->flusher.redis && !kc_redis_up(t->flusher.redis))
		return -1;
	for (int i = KC_TIER_REDIS; i < KC_TIER__COUNT; i++) {
		struct kc_breaker *b = &t->br[i];
		int st = atomic_load(&b->state);

		if (!kc_tier_on(t, i) || st == KC_BREAKER_CLOSED)
			continue;
		if (st == KC_BREAKER_HALF_OPEN || kc_mono_ms() < atomic_load(&b->open_until_ms))
			return -1;
		room = 1;
	}
	return room;
}

static void flusher_pump(struct kc_tiers *t)
{
	struct kc_jrec *recs[FLUSH_BATCH];
	uint64_t next_due;

	while (atomic_load(&t->flusher_inflight) + FLUSH_BATCH <= FLUSH_INFLIGHT) {
		int room = flusher_room(t);

		if (room < 0 || (room > 0 && atomic_load(&t->flusher_inflight)))
			return; /* the tick tries again */
		size_t n = kc_journal_take(t->journal, kc_mono_ms(), recs, room ? 1 : FLUSH_BATCH,
					   &next_due);

		if (!n)
			return;
		for (size_t i = 0; i < n; i++) {
			struct kc_jrec *r = recs[i];
			struct flushing *fl = malloc(sizeof(*fl));
			struct kc_blob_meta m = {0};
			char err[120];

			if (!fl) {
				kc_journal_fail(t->journal, r, kc_mono_ms(), "out of memory");
				continue;
			}
			fl->t = t;
			fl->r = r;
			if (kc_blob_meta(r->blob, r->nblob, &m, err, sizeof(err))) {
				log_error("write-behind: entry %" PRIu64 ": %s", r->id, err);
				kc_journal_fail(t->journal, r, kc_mono_ms(), err);
				free(fl);
				continue;
			}
			atomic_fetch_add(&t->flusher_inflight, 1);
			kc_tier_apply(&t->flusher, r->key, r->nkey, r->ver, r->blob, r->nblob,
				      m.kind == KC_BLOB_TOMB, m.exptime, false, on_flushed, fl);
		}
	}
}

void kc_tier_flusher_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	if (!atomic_load(&((struct kc_tiers *)arg)->stopping))
		flusher_pump(arg);
}

void kc_tier_flusher_kick(struct kc_tiers *t)
{
	if (t->flusher_wake)
		event_active(t->flusher_wake, EV_READ, 0);
}

void *kc_tier_flusher_main(void *arg)
{
	struct kc_tiers *t = arg;

	flusher_pump(t); /* what the journal replayed */
	event_base_loop(t->flusher.base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}
