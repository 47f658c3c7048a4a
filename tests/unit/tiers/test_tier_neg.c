/* test_tier_neg.c: the negative cache and the recent writes (user/tiers/tier_state.c): a miss
 * that every tier answered is remembered for negative-ttl (kc_tiers_may_have says no), one that
 * a failing tier could not answer is not, a write of the key clears it, and a version read from
 * below is "overtaken" by a newer local write. Misses come in the way they do in the daemon:
 * a flight that ends with no item (tier_flight.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tier_test.h"

#define TTL_MS 60

static void ignore(void *ctx, struct kc_item *it)
{
	(void)ctx, (void)it;
}

/* A fetch of key that ends in a miss; tier_failed: some tier could not answer. */
static void miss(struct tier_test *tt, const char *key, bool tier_failed)
{
	struct kc_flight *f;

	assert_int_equal(kc_flight_begin(tt->t, &tt->x[0], key, strlen(key), ignore, NULL, &f), 1);
	f->tier_failed = tier_failed;
	kc_flight_finish(f, NULL);
}

static bool may_have(struct tier_test *tt, const char *key)
{
	return kc_tiers_may_have(tt->t, key, strlen(key));
}

static void miss_remembered_for_ttl(void **state)
{
	struct tier_test *tt = tt_new(TTL_MS);

	(void)state;
	assert_true(may_have(tt, "k"));
	miss(tt, "k", false);
	assert_false(may_have(tt, "k"));
	assert_false(may_have(tt, "k"));
	assert_int_equal(atomic_load(&tt->t->neg_hits), 2);
	assert_true(may_have(tt, "other")); /* only that key */
	tt_sleep_ms(TTL_MS + 30);
	assert_true(may_have(tt, "k")); /* the TTL is over: ask below again */
	tt_free(tt);
}

static void write_clears_it(void **state)
{
	struct tier_test *tt = tt_new(10000);

	(void)state;
	miss(tt, "k", false);
	miss(tt, "j", false);
	assert_false(may_have(tt, "k"));
	/* kc_tiers_write and an invalidation from another node both record the write so. */
	kc_tier_note_write(tt->t, "k", 1, 100);
	assert_true(may_have(tt, "k"));
	assert_false(may_have(tt, "j")); /* another key's miss stays */
	kc_tier_neg_clear(tt->t, "j", 1);
	assert_true(may_have(tt, "j"));
	tt_free(tt);
}

static void failed_tier_is_not_a_miss(void **state)
{
	struct tier_test *tt = tt_new(10000);

	(void)state;
	miss(tt, "k", true);
	assert_true(may_have(tt, "k"));
	tt_free(tt);
}

static void zero_ttl_disables(void **state)
{
	struct tier_test *tt = tt_new(0);

	(void)state;
	miss(tt, "k", false);
	assert_true(may_have(tt, "k"));
	tt_free(tt);
}

static void newer_write_overtakes_a_read(void **state)
{
	struct tier_test *tt = tt_new(0);

	(void)state;
	assert_false(kc_tier_overtaken(tt->t, "k", 1, 5));
	kc_tier_note_write(tt->t, "k", 1, 10);
	assert_true(kc_tier_overtaken(tt->t, "k", 1, 9));   /* read older than the write */
	assert_false(kc_tier_overtaken(tt->t, "k", 1, 10)); /* the write itself */
	assert_false(kc_tier_overtaken(tt->t, "k", 1, 11));
	assert_false(kc_tier_overtaken(tt->t, "other", 5, 1));
	tt_free(tt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(miss_remembered_for_ttl),	    cmocka_unit_test(write_clears_it),
	    cmocka_unit_test(failed_tier_is_not_a_miss),    cmocka_unit_test(zero_ttl_disables),
	    cmocka_unit_test(newer_write_overtakes_a_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
