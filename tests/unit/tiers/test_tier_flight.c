/* test_tier_flight.c: single-flight (user/tiers/tier_flight.c): concurrent misses of one key
 * make one lower-tier read (one leader); the others wait, each on its own loop, and get the
 * leader's result with a reference of their own; a flight that ended is not joined again. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tier_test.h"

struct result {
	int calls;
	struct kc_item *it;
};

static void on_result(void *ctx, struct kc_item *it)
{
	struct result *r = ctx;

	r->calls++;
	r->it = it;
}

static struct kc_item *item(const char *key, const char *val)
{
	struct kc_item *it = kc_item_new(key, strlen(key), 0, 0, strlen(val));

	assert_non_null(it);
	memcpy(kc_item_value(it), val, strlen(val));
	return it;
}

struct racer {
	struct tier_test *tt;
	unsigned id;
	pthread_barrier_t *go;
	struct result res;
	int rc;
	struct kc_flight *f;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = kc_flight_begin(r->tt->t, &r->tt->x[r->id], "key", 3, on_result, &r->res, &r->f);
	return NULL;
}

/* TT_CTX threads miss "key" at once: one leads, the others join its flight. */
static void concurrent_misses_make_one_read(void **state)
{
	struct tier_test *tt = tt_new(1000);
	pthread_barrier_t go;
	pthread_t tid[TT_CTX];
	struct racer r[TT_CTX];
	struct kc_flight *lead = NULL;
	struct kc_item *it;
	int leaders = 0, joined = 0;

	(void)state;
	pthread_barrier_init(&go, NULL, TT_CTX);
	for (unsigned i = 0; i < TT_CTX; i++) {
		r[i] = (struct racer){.tt = tt, .id = i, .go = &go};
		assert_int_equal(pthread_create(&tid[i], NULL, race, &r[i]), 0);
	}
	for (unsigned i = 0; i < TT_CTX; i++) {
		pthread_join(tid[i], NULL);
		if (r[i].rc == 1) {
			leaders++;
			lead = r[i].f;
		} else {
			assert_int_equal(r[i].rc, 0);
			assert_null(r[i].f);
			joined++;
		}
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(leaders, 1); /* one lower-tier read */
	assert_int_equal(joined, TT_CTX - 1);
	assert_int_equal(atomic_load(&tt->t->coalesced), TT_CTX - 1);
	/* Nobody is answered before the read is done. */
	for (unsigned i = 0; i < TT_CTX; i++)
		assert_int_equal(r[i].res.calls, 0);

	it = item("key", "value");
	kc_flight_finish(lead, it); /* the read found it: everyone gets that item */
	tt_run(tt);
	for (unsigned i = 0; i < TT_CTX; i++) {
		assert_int_equal(r[i].res.calls, 1);
		assert_ptr_equal(r[i].res.it, it);
	}
	/* One reference per waiter (the leader's own was dropped by finish). */
	assert_int_equal(atomic_load(&it->refs), TT_CTX);
	for (unsigned i = 0; i < TT_CTX; i++)
		kc_item_put(r[i].res.it);
	tt_free(tt);
}

/* Waiters are answered on their own loop; the leader's own waiter at once, unless the leader is
 * still inside kc_tiers_fetch (in_call): then from its loop too. */
static void waiters_answered_on_their_loop(void **state)
{
	struct tier_test *tt = tt_new(1000);
	struct result a = {0}, b = {0};
	struct kc_flight *f, *none;

	(void)state;
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], "k", 1, on_result, &a, &f), 1);
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[1], "k", 1, on_result, &b, &none), 0);
	f->in_call = true;
	kc_flight_finish(f, NULL);
	assert_int_equal(a.calls, 0); /* never inside the call that asked */
	assert_int_equal(b.calls, 0); /* another loop's waiter waits for its loop */
	event_base_loop(tt->x[1].base, EVLOOP_NONBLOCK);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.calls, 0);
	event_base_loop(tt->x[0].base, EVLOOP_NONBLOCK);
	assert_int_equal(a.calls, 1);
	assert_null(a.it);
	assert_null(b.it);

	/* Out of the call, the leader's own waiter is answered at once. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], "k", 1, on_result, &a, &f), 1);
	kc_flight_finish(f, NULL);
	assert_int_equal(a.calls, 1);
	tt_free(tt);
}

/* A flight that ended is gone: the next miss reads again; other keys fly on their own. */
static void ended_flight_is_not_joined(void **state)
{
	struct tier_test *tt = tt_new(0);
	struct result a = {0}, b = {0}, c = {0};
	struct kc_flight *f1, *f2, *f3;

	(void)state;
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], "k1", 2, on_result, &a, &f1), 1);
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], "k2", 2, on_result, &b, &f2), 1);
	kc_flight_finish(f1, NULL);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0); /* k2's flight is still out */
	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], "k1", 2, on_result, &c, &f3), 1);
	assert_int_equal(atomic_load(&tt->t->coalesced), 0);
	kc_flight_finish(f3, NULL);
	kc_flight_finish(f2, NULL);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls, 1);
	tt_free(tt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(concurrent_misses_make_one_read),
	    cmocka_unit_test(waiters_answered_on_their_loop),
	    cmocka_unit_test(ended_flight_is_not_joined),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
