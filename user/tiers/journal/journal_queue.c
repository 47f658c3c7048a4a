/* journal_queue.c: the flusher's side of the journal (take, ack, fail with backoff and dead
 * letters), dead-letter listing and replay, stats, sync and waiting. Every function takes j->mu.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tiers/journal/journal_int.h"
#include "core/log.h"

void kc_journal_on_ready(struct kc_journal *j, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&j->mu);
	j->ready_fn = fn;
	j->ready_ctx = ctx;
	pthread_mutex_unlock(&j->mu);
}

/* The sync thread takes the request; see journal.c for what a round does. */
int kc_journal_sync(struct kc_journal *j)
{
	uint64_t req;
	int e = 0;

	/* Two rounds: segments that the first one's markers and copies free go in the second. */
	pthread_mutex_lock(&j->mu);
	for (int round = 0; round < 2 && !e; round++) {
		req = ++j->sync_req;
		pthread_cond_signal(&j->work);
		while (j->sync_done < req)
			pthread_cond_wait(&j->changed, &j->mu);
		e = j->sync_err;
	}
	pthread_mutex_unlock(&j->mu);
	return e;
}

size_t kc_journal_take(struct kc_journal *j, uint64_t now_ms, struct kc_jrec **out, size_t max,
		       uint64_t *next_due_ms)
{
	struct kc_jrec *r, *blocked = NULL;
	size_t n = 0, nblocked = 0;
	uint64_t next = 0;

	pthread_mutex_lock(&j->mu);
	while ((r = kc_jheap_top(&j->retry)) && r->due_ms <= now_ms) {
		kc_jheap_pop(&j->retry);
		r->state = KC_JS_READY;
		kc_jheap_push(&j->ready, r);
	}
	while (n < max && (r = kc_jheap_top(&j->ready))) {
		kc_jheap_pop(&j->ready);
		if (r->kn->inflight) { /* an older write of this key is in flight: wait for it */
			r->lnext = blocked;
			blocked = r;
			nblocked++;
			continue;
		}
		r->state = KC_JS_INFLIGHT;
		r->kn->inflight = r;
		j->st.in_flight++;
		out[n++] = r;
	}
	if (j->ready.n)
		next = now_ms;
	else if ((r = kc_jheap_top(&j->retry)))
		next = r->due_ms;
	while ((r = blocked)) {
		blocked = r->lnext;
		r->lnext = NULL;
		kc_jheap_push(&j->ready, r);
	}
	pthread_mutex_unlock(&j->mu);
	if (next_due_ms)
		*next_due_ms = next;
	return n;
}

static bool check_inflight(struct kc_journal *j, struct kc_jrec *r, const char *what)
{
	if (r && r->state == KC_JS_INFLIGHT)
		return true;
	log_error("journal %s: %s of entry %" PRIu64 " that is not in flight", j->dir, what,
		  r ? r->id : 0);
	return false;
}

void kc_journal_ack(struct kc_journal *j, struct kc_jrec *r)
{
	pthread_mutex_lock(&j->mu);
	if (check_inflight(j, r, "ack")) {
		j->st.acked++;
		kc_jresolve(j, r, false);
	}
	pthread_mutex_unlock(&j->mu);
}

static uint64_t rnd(struct kc_journal *j)
{
	/* xorshift64*: jitter only, under j->mu */
	j->rng ^= j->rng >> 12;
	j->rng ^= j->rng << 25;
	j->rng ^= j->rng >> 27;
	return j->rng * 2685821657736338717ull;
}

void kc_journal_fail(struct kc_journal *j, struct kc_jrec *r, uint64_t now_ms, const char *why)
{
	struct kc_jkey *kn;
	uint64_t lo, hi;

	pthread_mutex_lock(&j->mu);
	if (!check_inflight(j, r, "fail"))
		goto out;
	kn = r->kn;
	if (kn->newest != r) { /* a newer write of the key came meanwhile: it will be flushed */
		kc_jresolve(j, r, true);
		goto out;
	}
	r->attempts++;
	j->st.in_flight--;
	kn->inflight = NULL;
	if (r->attempts < j->o.max_attempts) {
		lo = j->o.backoff_min_ms;
		hi = r->attempts >= 32 ? UINT64_MAX : lo << r->attempts;
		if (hi > j->o.backoff_max_ms)
			hi = j->o.backoff_max_ms;
		if (hi < lo)
			hi = lo;
		r->due_ms = now_ms + lo + rnd(j) % (hi - lo + 1);
		r->state = KC_JS_RETRY;
		kc_jheap_push(&j->retry, r);
		kc_jmark(j, KC_JR_FAIL, r->id, r->attempts);
		j->st.retries++;
		goto out;
	}
	/* A dead letter: the sync thread writes its LETTER to dead.log, then its DEAD marker. */
	assert(!kn->dead); /* an older one was dropped when r became durable */
	free(r->why);
	r->why = strndup(why ? why : "", KC_JR_WHY_MAX);
	r->when = (int64_t)time(NULL);
	r->state = KC_JS_DEADQ;
	kn->newest = NULL;
	kn->dead = r;
	j->pending--;
	j->pending_bytes -= kc_jrec_bytes(r);
	j->st.dead++;
	j->dead_bytes += kc_jrec_bytes(r);
	kc_jdead_link(j, r);
	*j->let_tail = r;
	j->let_tail = &r->lnext;
	pthread_cond_signal(&j->work);
	pthread_cond_broadcast(&j->changed);
	log_warn("journal %s: entry %" PRIu64 " (key %.*s) is a dead letter after %u attempts: %s",
		 j->dir, r->id, (int)(r->nkey > 200 ? 200 : r->nkey), r->key, r->attempts,
		 why ? why : "");
out:
	pthread_mutex_unlock(&j->mu);
}

size_t kc_journal_dead_list(struct kc_journal *j, struct kc_jdead *out, size_t max)
{
	size_t n = 0, total;

	pthread_mutex_lock(&j->mu);
	total = j->st.dead;
	for (struct kc_jrec *r = j->dead_head; r && n < max; r = r->dnext, n++) {
		struct kc_jdead *d = &out[n];

		memset(d, 0, sizeof(*d));
		d->id = r->id;
		d->op = r->op;
		d->attempts = r->attempts;
		memcpy(d->key, r->key, r->nkey);
		d->nkey = r->nkey;
		d->nblob = r->nblob;
		snprintf(d->why, sizeof(d->why), "%s", r->why ? r->why : "");
		d->when = r->when;
	}
	pthread_mutex_unlock(&j->mu);
	return total;
}

struct replay_wait {
	struct kc_journal *j;
	uint64_t left, ok;
	int err;
};

static void replay_done(void *ctx, int status)
{
	struct replay_wait *w = ctx;

	pthread_mutex_lock(&w->j->mu);
	w->left--;
	if (status)
		w->err = status;
	else
		w->ok++;
	pthread_cond_broadcast(&w->j->changed);
	pthread_mutex_unlock(&w->j->mu);
}

int kc_journal_dead_replay(struct kc_journal *j, uint64_t id, uint64_t *count)
{
	struct replay_wait w = {.j = j};
	uint64_t stale = 0;
	int e = 0;

	pthread_mutex_lock(&j->mu);
	if (j->stop)
		e = -ESHUTDOWN;
	for (struct kc_jrec *d = j->dead_head; d && !e; d = d->dnext) {
		struct kc_jkey *kn = d->kn;
		struct kc_jrec *r;

		if (id && d->id != id)
			continue;
		/* Any other entry of the key is newer (or a replay of this one already): it drops
		 * this letter once durable, and a replay now would be the newest, wrongly. */
		if (kn->newest || kn->inflight || kn->incoming) {
			stale++;
			continue;
		}
		/* A new entry: the old one is dropped once this one is durable (the newer write of
		 * its key), and a crash in between leaves one of the two, never neither. */
		if (kc_jheap_reserve(&j->ready, j->pending + 1) ||
		    kc_jheap_reserve(&j->retry, j->pending + 1) ||
		    !(r = kc_jrec_alloc(d->op, d->ver, d->key, d->nkey, d->blob, d->nblob))) {
			e = -ENOMEM;
			break;
		}
		r->kn = kn;
		kn->refs++;
		kn->incoming++;
		r->id = j->next_id++;
		r->state = KC_JS_INCOMING;
		r->done = replay_done;
		r->done_ctx = &w;
		*j->in_tail = r;
		j->in_tail = &r->lnext;
		j->pending++;
		j->pending_bytes += kc_jrec_bytes(r);
		w.left++;
	}
	if (id && !w.left && !e)
		e = stale ? -ESTALE : -ENOENT;
	pthread_cond_signal(&j->work);
	while (w.left)
		pthread_cond_wait(&j->changed, &j->mu);
	pthread_mutex_unlock(&j->mu);
	if (w.ok)
		log_info("journal %s: %" PRIu64 " dead letters replayed", j->dir, w.ok);
	if (count)
		*count = w.ok;
	return e ? e : w.err;
}

void kc_journal_get_stats(struct kc_journal *j, struct kc_journal_stats *out)
{
	pthread_mutex_lock(&j->mu);
	*out = j->st;
	out->pending = j->pending;
	out->pending_bytes = j->pending_bytes;
	pthread_mutex_unlock(&j->mu);
}

int kc_journal_wait_drained(struct kc_journal *j, uint32_t timeout_ms)
{
	struct timespec ts;
	int e = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->mu);
	while (j->pending && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&j->changed, &j->mu, &ts);
	e = j->pending ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&j->mu);
	return e;
}
