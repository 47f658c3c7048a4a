/* test_tier_breaker.c: the circuit breaker in front of each lower tier (user/tiers/tier_breaker.c):
 * it opens after threshold failures in a row, skips the tier while open, lets exactly one probe
 * through once the wait is over (half-open), closes on the probe's success and opens again on
 * its failure. Real time, with waits of tens of milliseconds. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "core/log.h"
#include "tiers/tier_int.h"

#define RESET_MS 40

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts))
		;
}

static void breaker_init(struct kc_breaker *b, uint32_t threshold)
{
	atomic_store(&b->state, KC_BREAKER_CLOSED);
	atomic_store(&b->fails, 0);
	atomic_store(&b->open_until_ms, 0);
	atomic_store(&b->opened, 0);
	b->threshold = threshold;
	b->reset_ms = RESET_MS;
}

/* Opens it with threshold failures; checks it skips the tier. */
static void open_it(struct kc_breaker *b)
{
	for (uint32_t i = 0; i < b->threshold; i++)
		kc_breaker_result(b, false);
	assert_int_equal(atomic_load(&b->state), KC_BREAKER_OPEN);
	assert_false(kc_breaker_allow(b));
}

static void opens_after_threshold_failures(void **state)
{
	struct kc_breaker b;

	(void)state;
	breaker_init(&b, 3);
	assert_true(kc_breaker_allow(&b));
	kc_breaker_result(&b, false);
	kc_breaker_result(&b, false);
	/* Two failures of three: still closed, requests still go through. */
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_CLOSED);
	assert_true(kc_breaker_allow(&b));
	assert_int_equal(atomic_load(&b.opened), 0);
	kc_breaker_result(&b, false);
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_OPEN);
	assert_int_equal(atomic_load(&b.opened), 1);
	/* Open: skipped until the wait is over, however often it is asked. */
	for (int i = 0; i < 100; i++)
		assert_false(kc_breaker_allow(&b));
	assert_true(atomic_load(&b.open_until_ms) >= kc_mono_ms());
}

static void success_resets_the_count(void **state)
{
	struct kc_breaker b;

	(void)state;
	breaker_init(&b, 3);
	kc_breaker_result(&b, false);
	kc_breaker_result(&b, false);
	kc_breaker_result(&b, true); /* failures must be in a row */
	assert_int_equal(atomic_load(&b.fails), 0);
	kc_breaker_result(&b, false);
	kc_breaker_result(&b, false);
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_CLOSED);
	assert_true(kc_breaker_allow(&b));
	kc_breaker_result(&b, false);
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_OPEN);
}

static void half_open_lets_one_probe_through(void **state)
{
	struct kc_breaker b;

	(void)state;
	breaker_init(&b, 2);
	open_it(&b);
	sleep_ms(RESET_MS + 20);
	assert_true(kc_breaker_allow(&b)); /* the probe */
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_HALF_OPEN);
	/* While the probe is out, everyone else is still skipped. */
	for (int i = 0; i < 10; i++)
		assert_false(kc_breaker_allow(&b));
}

static void probe_success_closes(void **state)
{
	struct kc_breaker b;

	(void)state;
	breaker_init(&b, 2);
	open_it(&b);
	sleep_ms(RESET_MS + 20);
	assert_true(kc_breaker_allow(&b));
	kc_breaker_result(&b, true);
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_CLOSED);
	assert_int_equal(atomic_load(&b.fails), 0);
	for (int i = 0; i < 10; i++)
		assert_true(kc_breaker_allow(&b));
	/* Closed again: it takes threshold new failures to open it. */
	kc_breaker_result(&b, false);
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_CLOSED);
}

static void probe_failure_opens_again(void **state)
{
	struct kc_breaker b;
	uint64_t before;

	(void)state;
	breaker_init(&b, 2);
	open_it(&b);
	sleep_ms(RESET_MS + 20);
	assert_true(kc_breaker_allow(&b));
	before = kc_mono_ms();
	kc_breaker_result(&b, false); /* one failure of the probe is enough */
	assert_int_equal(atomic_load(&b.state), KC_BREAKER_OPEN);
	assert_true(atomic_load(&b.open_until_ms) >= before + RESET_MS);
	assert_false(kc_breaker_allow(&b));
	/* Still the same outage: opened counts outages, not probes. */
	assert_int_equal(atomic_load(&b.opened), 1);
	sleep_ms(RESET_MS + 20);
	assert_true(kc_breaker_allow(&b)); /* and it probes again after the new wait */
}

/* Callers racing for the probe: each round opens the breaker with its wait already over, then
 * lets NRACERS spinning threads ask at once (one per core, so that they do run at the same
 * time); exactly one of them may be let through. */
#define NRACERS 2
#define ROUNDS	20000

struct race {
	struct kc_breaker b;
	_Atomic int round, answered, quit;
	_Atomic int allowed[ROUNDS];
};

static void *racer(void *arg)
{
	struct race *r = arg;
	int seen = 0;

	for (;;) {
		int now;

		while ((now = atomic_load(&r->round)) == seen && !atomic_load(&r->quit))
			sched_yield();
		if (atomic_load(&r->quit))
			return NULL;
		seen = now;
		if (kc_breaker_allow(&r->b))
			atomic_fetch_add(&r->allowed[now - 1], 1);
		atomic_fetch_add(&r->answered, 1);
	}
}

static void concurrent_callers_get_one_probe(void **state)
{
	struct race *r = calloc(1, sizeof(*r));
	pthread_t tid[NRACERS];
	int rounds_with_two = 0;

	(void)state;
	assert_non_null(r);
	breaker_init(&r->b, 1);
	for (int i = 0; i < NRACERS; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, racer, r), 0);
	for (int round = 1; round <= ROUNDS; round++) {
		atomic_store(&r->b.open_until_ms, 0); /* the wait is over */
		atomic_store(&r->b.state, KC_BREAKER_OPEN);
		atomic_store(&r->answered, 0);
		atomic_store(&r->round, round);
		while (atomic_load(&r->answered) < NRACERS)
			sched_yield();
		if (atomic_load(&r->allowed[round - 1]) != 1)
			rounds_with_two++;
	}
	atomic_store(&r->quit, 1);
	for (int i = 0; i < NRACERS; i++)
		pthread_join(tid[i], NULL);
	print_message("%d of %d rounds let more than one probe through\n", rounds_with_two, ROUNDS);
	assert_int_equal(rounds_with_two, 0);
	assert_int_equal(atomic_load(&r->b.state), KC_BREAKER_HALF_OPEN);
	free(r);
}

int main(void)
{
	kc_log_set_level(KC_LOG_ERROR); /* one warning per opening */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(opens_after_threshold_failures),
	    cmocka_unit_test(success_resets_the_count),
	    cmocka_unit_test(half_open_lets_one_probe_through),
	    cmocka_unit_test(probe_success_closes),
	    cmocka_unit_test(probe_failure_opens_again),
	    cmocka_unit_test(concurrent_callers_get_one_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
