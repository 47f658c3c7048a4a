/* tier_read.c: the read path below the memory tier (see tier.h): fetches through the journal,
 * Redis and the store, and filling the tiers above. The flight table that makes concurrent misses
 * of one key one fetch is tier_flight.c; the negative cache is tier_state.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hlc.h"
#include "core/log.h"
#include "tiers/tier_blob.h"
#include "tiers/tier_int.h"

/* Decodes a blob read from tier id; returns the item to serve (memory filled) or NULL. */
static struct kc_item *use_blob(struct kc_flight *f, enum kc_tier_id id, const void *b, size_t n)
{
	struct kc_tiers *t = f->x->t;
	struct kc_tier_stats *st = &t->st[id];
	struct kc_item *it = NULL;
	char err[160];
	int rc = kc_blob_decode(b, n, f->key, f->nkey, t->item_max, &it, err, sizeof(err));

	if (rc < 0) {
		atomic_fetch_add(&st->corrupt, 1);
		log_warn("%s tier: key of %zu bytes: %s; treated as a miss", kc_tier_name(id),
			 f->nkey, err);
		return NULL;
	}
	if (rc == 1)
		return NULL; /* a tombstone: deleted */
	int64_t exp = atomic_load(&it->exptime);

	if ((exp && exp <= kc_mem_now()) || kc_tier_flushed(t, atomic_load(&it->ver))) {
		kc_item_put(it);
		return NULL;
	}
	kc_hlc_observe(atomic_load(&it->ver));
	/* A local write newer than what we read (it raced with this fetch) wins. */
	if (!kc_tier_overtaken(t, f->key, f->nkey, atomic_load(&it->ver)) &&
	    kc_mem_store(t->mem, KC_FILL, it, 0, NULL) == KC_STORED) {
		atomic_fetch_add(&st->promotions, 1);
		return it;
	}
	kc_item_put(it);
	return kc_mem_get(t->mem, f->key, f->nkey);
}

/* --- the store ---------------------------------------------------------------------------- */

static void background_done(void *ctx, const char *err)
{
	(void)ctx, (void)err;
}

static void on_store_get(struct kc_tio_job *j)
{
	struct kc_flight *f = j->ctx;
	struct kc_tiers *t = f->x->t;
	struct kc_tier_stats *st = &t->st[KC_TIER_STORE];
	struct kc_item *it = NULL;

	f->in_call = false; /* a callback from the loop */
	kc_tier_observe(st, j->ns);
	switch (j->res) {
	case KC_STORE_OK:
		kc_breaker_result(&t->br[KC_TIER_STORE], true);
		it = use_blob(f, KC_TIER_STORE, j->val, j->n);
		atomic_fetch_add(it ? &st->hits : &st->misses, 1);
		/* Fill Redis in the background, with the blob's own version (the script keeps
		 * whatever is newer there). */
		if (it && f->redis_missed && f->x->redis && !atomic_load(&t->stopping))
			kc_tier_apply(f->x, f->key, f->nkey, atomic_load(&it->ver), j->val, j->n,
				      false, atomic_load(&it->exptime), true, background_done,
				      NULL);
		break;
	case KC_STORE_MISS:
		kc_breaker_result(&t->br[KC_TIER_STORE], true);
		atomic_fetch_add(&st->misses, 1);
		break;
	case KC_STORE_CORRUPT:
		kc_breaker_result(&t->br[KC_TIER_STORE], true);
		atomic_fetch_add(&st->corrupt, 1);
		atomic_fetch_add(&st->misses, 1);
		break;
	default:
		kc_breaker_result(&t->br[KC_TIER_STORE], false);
		atomic_fetch_add(&st->errors, 1);
		f->tier_failed = true;
		log_debug("store tier: get: %s", j->err);
		break;
	}
	kc_tio_job_free(j);
	kc_flight_finish(f, it);
}

static void fetch_store(struct kc_flight *f)
{
	struct kc_tiers *t = f->x->t;
	struct kc_tio_job *j;

	if (!t->store || atomic_load(&t->stopping)) {
		kc_flight_finish(f, NULL);
		return;
	}
	if (!kc_breaker_allow(&t->br[KC_TIER_STORE])) {
		f->tier_failed = true;
		kc_flight_finish(f, NULL);
		return;
	}
	j = kc_tio_job_new(KC_TIO_GET, f->key, f->nkey, NULL, 0);
	if (!j) {
		f->tier_failed = true;
		kc_flight_finish(f, NULL);
		return;
	}
	j->base = f->x->base;
	j->done = on_store_get;
	j->ctx = f;
	kc_tio_submit(t->io, j);
}

/* --- Redis ------------------------------------------------------------------------------- */

struct redis_get {
	struct kc_flight *f;
	uint64_t t0;
};

static void on_hmget(void *ctx, const redisReply *r, const char *err)
{
	struct redis_get *g = ctx;
	struct kc_flight *f = g->f;
	struct kc_tiers *t = f->x->t;
	struct kc_tier_stats *st = &t->st[KC_TIER_REDIS];
	struct kc_item *it;

	f->in_call = false; /* a callback from the loop (or, out of memory, from inside the call) */
	kc_tier_observe(st, kc_mono_ns() - g->t0);
	free(g);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		kc_breaker_result(&t->br[KC_TIER_REDIS], false);
		atomic_fetch_add(&st->errors, 1);
		f->tier_failed = true;
		log_debug("redis tier: get: %s", r && r->type == REDIS_REPLY_ERROR ? r->str
						 : err				   ? err
						       : "unexpected reply");
		fetch_store(f);
		return;
	}
	kc_breaker_result(&t->br[KC_TIER_REDIS], true);
	const redisReply *b = r->element[1];

	if (b->type != REDIS_REPLY_STRING) {
		atomic_fetch_add(&st->misses, 1);
		f->redis_missed = true;
		fetch_store(f);
		return;
	}
	it = use_blob(f, KC_TIER_REDIS, b->str, b->len);
	if (it) {
		atomic_fetch_add(&st->hits, 1);
		kc_flight_finish(f, it);
		return;
	}
	atomic_fetch_add(&st->misses, 1);
	/* A tombstone, an expired or flushed value: authoritative, the store is no newer. */
	kc_flight_finish(f, NULL);
}

static void fetch_redis(struct kc_flight *f)
{
	struct kc_tiers *t = f->x->t;
	char rkey[sizeof(t->prefix) + 8 + KC_JKEY_MAX];
	size_t nr;
	struct redis_get *g;

	if (!f->x->redis || atomic_load(&t->stopping)) {
		fetch_store(f);
		return;
	}
	if (!kc_breaker_allow(&t->br[KC_TIER_REDIS]) || !(g = malloc(sizeof(*g)))) {
		f->tier_failed = true;
		fetch_store(f);
		return;
	}
	nr = kc_tier_redis_key(t, f->key, f->nkey, rkey);
	const char *argv[] = {"HMGET", rkey, "v", "b"};
	size_t lens[] = {5, nr, 1, 1};

	g->f = f;
	g->t0 = kc_mono_ns();
	kc_redis_cmd(f->x->redis, on_hmget, g, 4, argv, lens);
}

/* --- entry ------------------------------------------------------------------------------ */

void kc_tiers_fetch(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_fetch_fn fn, void *ctx)
{
	struct kc_tctx *x = &t->workers[worker];
	struct kc_flight *f;
	int rc = kc_flight_begin(t, x, key, nkey, fn, ctx, &f);

	if (rc == 0)
		return; /* joined the fetch in flight: its result comes to fn */
	if (rc < 0)
		goto fail;
	/* Writes not yet flushed come first: they are newer than anything below. */
	f->in_call = true;
	if (t->journal) {
		struct kc_buf blob = {0};
		int found = kc_journal_lookup(t->journal, key, nkey, &blob);

		if (found > 0) {
			struct kc_item *it = use_blob(f, KC_TIER_MEMORY, blob.data, blob.len);

			kc_buf_free(&blob);
			kc_flight_finish(f, it);
			return;
		}
		kc_buf_free(&blob);
	}
	fetch_redis(f);
	return;
fail:
	/* Out of memory: answer "not found" rather than never. */
	fn(ctx, NULL);
}
