/* test_ratelimit: one message per period, and the count of what was left out (core/ratelimit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/ratelimit.h"

static void test_once_per_period(void **state)
{
	struct kc_ratelimit rl = {0};
	uint64_t left_out = 99;
	int allowed = 0;

	(void)state;
	assert_true(kc_ratelimit(&rl, 3600 * KC_NS_PER_S, &left_out));
	assert_int_equal(left_out, 0);
	for (int i = 0; i < 1000; i++)
		allowed += kc_ratelimit(&rl, 3600 * KC_NS_PER_S, &left_out);
	assert_int_equal(allowed, 0); /* an accept loop at EMFILE: one line, not a thousand */
}

static void test_counts_what_it_left_out(void **state)
{
	struct kc_ratelimit rl = {0};
	const uint64_t period = 20 * 1000 * 1000; /* 20 ms */
	struct timespec nap = {0, 40 * 1000 * 1000};
	uint64_t left_out = 0;

	(void)state;
	assert_true(kc_ratelimit(&rl, period, &left_out));
	for (int i = 0; i < 7; i++)
		assert_false(kc_ratelimit(&rl, period, &left_out));
	nanosleep(&nap, NULL); /* the period is over: the next call is allowed */
	assert_true(kc_ratelimit(&rl, period, &left_out));
	assert_int_equal(left_out, 7);
	assert_false(kc_ratelimit(&rl, period, &left_out));
	nanosleep(&nap, NULL);
	assert_true(kc_ratelimit(&rl, period, &left_out));
	assert_int_equal(left_out, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_once_per_period),
	    cmocka_unit_test(test_counts_what_it_left_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
