/* tier_test.h: a bare struct kc_tiers for the unit tests of the tiers' leaf files
 * (tier_flight.c, tier_state.c): no Redis, no store, no threads of its own; each context a
 * loop of its own that the test runs. */
#ifndef KC_TIER_TEST_H
#define KC_TIER_TEST_H

#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

#include "tiers/tier_int.h"

#define TT_CTX 8

struct tier_test {
	struct kc_tiers *t;
	struct kc_tctx x[TT_CTX];
};

static inline struct tier_test *tt_new(uint32_t neg_ttl_ms)
{
	struct tier_test *tt = calloc(1, sizeof(*tt));

	assert_non_null(tt);
	tt->t = calloc(1, sizeof(*tt->t));
	assert_non_null(tt->t);
	pthread_mutex_init(&tt->t->flights_lock, NULL);
	tt->t->neg_ttl_ms = neg_ttl_ms;
	for (unsigned i = 0; i < TT_CTX; i++) {
		tt->x[i].t = tt->t;
		tt->x[i].id = i;
		tt->x[i].base = event_base_new();
		assert_non_null(tt->x[i].base);
	}
	return tt;
}

/* Runs every context's loop until nothing is pending. */
static inline void tt_run(struct tier_test *tt)
{
	for (unsigned i = 0; i < TT_CTX; i++)
		event_base_loop(tt->x[i].base, EVLOOP_NONBLOCK);
}

static inline void tt_free(struct tier_test *tt)
{
	for (unsigned i = 0; i < TT_CTX; i++)
		event_base_free(tt->x[i].base);
	for (unsigned i = 0; i < KC_FLIGHT_BUCKETS; i++)
		assert_null(tt->t->flights[i]); /* every flight ended */
	pthread_mutex_destroy(&tt->t->flights_lock);
	free(tt->t);
	free(tt);
}

static inline void tt_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts))
		;
}

#endif
