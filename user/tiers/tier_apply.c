/* tier_apply.c: one write of a key's state to Redis and the store (kc_tier_apply, see
 * tier_int.h), whichever are configured and whose breaker lets it through, and the Redis key of a
 * cache key. Below the read path (background fills of Redis) and the write path (write-through,
 * the write-behind flusher); it calls only tier_breaker.c and the tiers' clients. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hlc.h"
#include "core/log.h"
#include "tiers/tier_int.h"

/* Keeps the newest version of a key and tells every node. KEYS[1] the data key; ARGV: version
 * (20 digits, so that string order is numeric order), blob, ttl in ms (0 = none), channel,
 * invalidation message. Returns 1 if written, 0 if Redis already had a newer version. */
static const char set_script[] =
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "if v and v >= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])\n"
    "local ttl = tonumber(ARGV[3])\n"
    "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end\n"
    "redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
    "return 1\n";

size_t kc_tier_redis_key(const struct kc_tiers *t, const char *key, size_t nkey, char *buf)
{
	size_t np = strlen(t->prefix);

	memcpy(buf, t->prefix, np);
	memcpy(buf + np, "k:", 2);
	memcpy(buf + np + 2, key, nkey);
	return np + 2 + nkey;
}

/* --- one write to Redis and the store -------------------------------------------------- */

struct apply {
	struct kc_tctx *x;
	int pending;
	bool failed;
	char err[200];
	kc_apply_fn done;
	void *ctx;
	/* Redis's part, when it waits for the store's answer (a copy of the write) */
	char *rkey, *rblob;
	size_t nrkey, nrblob;
	uint64_t rver;
	bool rtomb;
	int64_t rexptime;
};

/* Keeps the first failure: "<tier>: <why>". */
static void apply_fail(struct apply *a, const char *tier, const char *why)
{
	if (!a->failed)
		snprintf(a->err, sizeof(a->err), "%s: %s", tier, why);
	a->failed = true;
}

static void apply_free(struct apply *a)
{
	free(a->rkey);
	free(a);
}

static void apply_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct apply *a = arg;

	(void)fd, (void)what;
	a->done(a->ctx, a->failed ? a->err : NULL);
	apply_free(a);
}

static void apply_step(struct apply *a)
{
	if (--a->pending > 0)
		return;
	a->done(a->ctx, a->failed ? a->err : NULL);
	apply_free(a);
}

static void apply_redis(struct apply *a, const char *key, size_t nkey, uint64_t ver,
			const void *blob, size_t nblob, bool tomb, int64_t exptime);

static void on_redis_set(void *ctx, const redisReply *r, const char *err)
{
	struct apply *a = ctx;
	struct kc_tiers *t = a->x->t;
	bool ok = r && r->type == REDIS_REPLY_INTEGER;

	kc_breaker_result(&t->br[KC_TIER_REDIS], ok);
	if (ok) {
		atomic_fetch_add(&t->st[KC_TIER_REDIS].writes, 1);
		atomic_fetch_add(&t->inval_sent, (uint64_t)r->integer);
	} else {
		atomic_fetch_add(&t->st[KC_TIER_REDIS].write_errors, 1);
		apply_fail(a, "redis",
			   r && r->type == REDIS_REPLY_ERROR ? r->str
			   : err			     ? err
							     : "bad reply");
	}
	apply_step(a);
}

static void on_store_put(struct kc_tio_job *j)
{
	struct apply *a = j->ctx;
	struct kc_tiers *t = a->x->t;
	bool ok = j->res == KC_STORE_OK || (j->op == KC_TIO_DEL && j->res == KC_STORE_MISS);

	/* A full store is the store's answer, not a failing store: the breaker stays closed. */
	kc_breaker_result(&t->br[KC_TIER_STORE], ok || j->res == KC_STORE_FULL);
	if (ok) {
		atomic_fetch_add(&t->st[KC_TIER_STORE].writes, 1);
	} else {
		atomic_fetch_add(&t->st[KC_TIER_STORE].write_errors, 1);
		const char *e = j->err[0] ? j->err : "write failed";

		apply_fail(a, "store", strncmp(e, "store: ", 7) ? e : e + 7);
	}
	kc_tio_job_free(j);
	/* Redis (and so every node) hears of the write only once the store took it: a write the
	 * store refused (a full disk) leaves no trace there. */
	if (a->rkey && !a->failed)
		apply_redis(a, a->rkey, a->nrkey, a->rver, a->rblob, a->nrblob, a->rtomb,
			    a->rexptime);
	apply_step(a);
}

static void apply_redis(struct apply *a, const char *key, size_t nkey, uint64_t ver,
			const void *blob, size_t nblob, bool tomb, int64_t exptime)
{
	struct kc_tctx *x = a->x;
	struct kc_tiers *t = x->t;

	if (!kc_breaker_allow(&t->br[KC_TIER_REDIS])) {
		apply_fail(a, "redis", "unavailable (circuit open)");
		return;
	}
	char rkey[sizeof(t->prefix) + 8 + KC_JKEY_MAX], v[24], ttl[24];
	char msg[48 + KC_JKEY_MAX];
	size_t nr = kc_tier_redis_key(t, key, nkey, rkey);
	int64_t ttl_ms = 0;

	if (tomb)
		ttl_ms = (int64_t)t->tomb_ttl_s * 1000;
	else if (exptime)
		ttl_ms = (exptime - kc_mem_now()) * 1000 > 0 ? (exptime - kc_mem_now()) * 1000 : 1;
	snprintf(v, sizeof(v), "%020" PRIu64, ver);
	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	int nm = snprintf(msg, sizeof(msg), "V %s %u ", v, kc_hlc_node());

	memcpy(msg + nm, key, nkey);
	const char *argv[] = {"EVAL", set_script, "1", rkey, v, blob, ttl, t->chan, msg};
	size_t lens[] = {4,
			 sizeof(set_script) - 1,
			 1,
			 nr,
			 strlen(v),
			 nblob,
			 strlen(ttl),
			 strlen(t->chan),
			 (size_t)nm + nkey};

	a->pending++;
	kc_redis_cmd(x->redis, on_redis_set, a, 9, argv, lens);
}

void kc_tier_apply(struct kc_tctx *x, const char *key, size_t nkey, uint64_t ver, const void *blob,
		   size_t nblob, bool tomb, int64_t exptime, bool redis_only, kc_apply_fn done,
		   void *ctx)
{
	struct kc_tiers *t = x->t;
	struct apply *a = calloc(1, sizeof(*a));
	bool store = t->store && !redis_only;

	if (!a) {
		done(ctx, "out of memory");
		return;
	}
	a->x = x;
	a->done = done;
	a->ctx = ctx;
	a->pending = 1; /* ours, dropped at the end: no callback before every request is out */
	if (store) {
		struct kc_tio_job *j = NULL;

		if (!kc_breaker_allow(&t->br[KC_TIER_STORE]))
			apply_fail(a, "store", "unavailable (circuit open)");
		else if (!(j = kc_tio_job_new(tomb ? KC_TIO_DEL : KC_TIO_PUT, key, nkey, blob,
					      nblob)))
			apply_fail(a, "store", "out of memory");
		/* Both tiers: Redis waits for the store (a copy of the write waits with it). */
		if (j && x->redis) {
			a->rkey = malloc(nkey + nblob + 1);
			if (!a->rkey) {
				apply_fail(a, "store", "out of memory");
				kc_tio_job_free(j);
				j = NULL;
			} else {
				memcpy(a->rkey, key, nkey);
				if (nblob)
					memcpy(a->rkey + nkey, blob, nblob);
				a->rblob = a->rkey + nkey;
				a->nrkey = nkey;
				a->nrblob = nblob;
				a->rver = ver;
				a->rtomb = tomb;
				a->rexptime = exptime;
			}
		}
		if (j) {
			j->base = x->base;
			j->done = on_store_put;
			j->ctx = a;
			a->pending++;
			kc_tio_submit(t->io, j);
		}
	} else if (x->redis) {
		apply_redis(a, key, nkey, ver, blob, nblob, tomb, exptime);
	}
	if (--a->pending > 0)
		return;
	/* Nothing went out (every tier skipped): still answer later, never inside the call. */
	if (event_base_once(x->base, -1, EV_TIMEOUT, apply_deliver, a, NULL))
		apply_deliver(-1, 0, a);
}
