/* tier_flight.c: single-flight, so that concurrent misses of one key make one lower-tier read:
 * the table of fetches in flight (t->flights, hashed by key), the waiters of each, and handing
 * the one result to every waiter on its own event loop. A leaf of the tiers: tier_read.c starts
 * and ends flights; this file calls only tier_state.c (the key hash, the negative cache).
 *
 * Why it is correct:
 *  1. A flight is found, joined, added and removed only under t->flights_lock, so a key has at
 *     most one flight, and a waiter joins a flight that has not ended yet.
 *  2. Only the flight's leader (the caller that got 1 from kc_flight_begin) reads the flight's
 *     fields outside the lock, and only kc_flight_finish ends it: it unlinks the flight and takes
 *     its waiter list under the lock, so no waiter joins after the result was handed out.
 *  3. Every waiter is called exactly once, on its own loop (event_base_once), with its own
 *     reference to the item; a waiter on the leader's loop is called at once unless the leader
 *     is still inside kc_tiers_fetch (in_call), so no callback runs inside the call that asked.
 *  4. A miss that every tier answered is remembered in the negative cache; a miss from a tier
 *     that could not answer (tier_failed) is not, so an outage is not remembered as absence.
 * Lock order: flights_lock is a leaf (nothing is called while it is held). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tiers/tier_int.h"

struct kc_flight_waiter {
	struct event_base *base;
	kc_tier_fetch_fn fn;
	void *ctx;
	struct kc_item *it;
	struct kc_flight_waiter *next;
};

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct kc_flight_waiter *w = arg;

	(void)fd, (void)what;
	w->fn(w->ctx, w->it);
	free(w);
}

void kc_flight_finish(struct kc_flight *f, struct kc_item *it)
{
	struct kc_tiers *t = f->x->t;
	struct kc_flight **pp;
	struct kc_flight_waiter *w, *next;

	if (!it && !f->tier_failed)
		kc_tier_neg_insert(t, f->hash);
	pthread_mutex_lock(&t->flights_lock);
	for (pp = &t->flights[f->hash % KC_FLIGHT_BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	w = f->waiters;
	pthread_mutex_unlock(&t->flights_lock);
	for (; w; w = next) {
		next = w->next;
		if (it)
			kc_item_get(it);
		w->it = it;
		/* A waiter on this loop is called now (one loop turn less on the hit path); the
		 * others, and every one while kc_tiers_fetch has not returned, from their loop. */
		if (w->base == f->x->base && !f->in_call) {
			deliver(-1, 0, w);
			continue;
		}
		if (event_base_once(w->base, -1, EV_TIMEOUT, deliver, w, NULL)) {
			kc_item_put(it);
			free(w); /* the loop is gone (shutdown): nobody is waiting any more */
		}
	}
	kc_item_put(it);
	free(f->key);
	free(f);
}

int kc_flight_begin(struct kc_tiers *t, struct kc_tctx *x, const char *key, size_t nkey,
		    kc_tier_fetch_fn fn, void *ctx, struct kc_flight **out)
{
	uint64_t h = kc_tier_key_hash(key, nkey);
	struct kc_flight_waiter *w = calloc(1, sizeof(*w));
	struct kc_flight *f;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->base = x->base;
	w->fn = fn;
	w->ctx = ctx;
	pthread_mutex_lock(&t->flights_lock);
	for (f = t->flights[h % KC_FLIGHT_BUCKETS]; f; f = f->next)
		if (f->hash == h && f->nkey == nkey && !memcmp(f->key, key, nkey))
			break;
	if (f) {
		w->next = f->waiters;
		f->waiters = w;
		pthread_mutex_unlock(&t->flights_lock);
		atomic_fetch_add(&t->coalesced, 1);
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->key = malloc(nkey))) {
		pthread_mutex_unlock(&t->flights_lock);
		free(f);
		free(w);
		return -ENOMEM;
	}
	memcpy(f->key, key, nkey);
	f->nkey = nkey;
	f->hash = h;
	f->x = x;
	f->waiters = w;
	f->next = t->flights[h % KC_FLIGHT_BUCKETS];
	t->flights[h % KC_FLIGHT_BUCKETS] = f;
	pthread_mutex_unlock(&t->flights_lock);
	*out = f;
	return 1;
}
