/* test_clock: the monotonic and the wall clock (core/clock.c) read the clocks they name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"

static uint64_t read_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* |a - b| within 1 s: the clocks differ by boot time (monotonic) or decades (wall). */
static int near(uint64_t a, uint64_t b)
{
	return (a > b ? a - b : b - a) < 1000000000ULL;
}

static void test_clocks(void **state)
{
	uint64_t m0 = kc_mono_ns(), w = kc_wall_ns(), m1 = kc_mono_ns();

	assert_true(m1 >= m0);
	assert_true(near(m0, read_ns(CLOCK_MONOTONIC)));
	assert_true(near(w, read_ns(CLOCK_REALTIME)));
	/* ms of the same clock: within a few ms of a read around it. */
	m0 = read_ns(CLOCK_MONOTONIC) / 1000000;
	m1 = kc_mono_ms();
	assert_true(m1 >= m0 && m1 - m0 < 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_clocks)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
