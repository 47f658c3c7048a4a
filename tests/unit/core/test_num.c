/* test_num: the one decimal parser (core/num.c), as a table of inputs and what each caller's
 * old parser did with them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/num.h"

struct row {
	const char *in;
	uint64_t max;
	int rc;
	uint64_t want; /* when rc == 0 */
};

static const struct row rows[] = {
    {"0", UINT64_MAX, 0, 0},
    {"1", UINT64_MAX, 0, 1},
    {"65535", 65535, 0, 65535},		       /* max itself */
    {"65536", 65535, -ERANGE, 0},	       /* max + 1 */
    {"4294967295", UINT32_MAX, 0, UINT32_MAX}, /* audit policy's u32 */
    {"4294967296", UINT32_MAX, -ERANGE, 0},
    {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
    {"18446744073709551616", UINT64_MAX, -ERANGE, 0}, /* 20 digits, overflows */
    {"99999999999999999999", UINT64_MAX, -ERANGE, 0},
    {"100000000000000000000", UINT64_MAX, -ERANGE, 0}, /* 21 digits */
    {"", UINT64_MAX, -EINVAL, 0},
    {"-1", UINT64_MAX, -EINVAL, 0}, /* strtoull would give UINT64_MAX */
    {"-0", UINT64_MAX, -EINVAL, 0},
    {"+1", UINT64_MAX, -EINVAL, 0},
    {" 1", UINT64_MAX, -EINVAL, 0},
    {"1 ", UINT64_MAX, -EINVAL, 0},
    {"1x", UINT64_MAX, -EINVAL, 0},
    {"x1", UINT64_MAX, -EINVAL, 0},
    {"0x10", UINT64_MAX, -EINVAL, 0},
    {"1.5", UINT64_MAX, -EINVAL, 0},
    {"1\n", UINT64_MAX, -EINVAL, 0},
    /* Leading zeros are digits, as in config, memcached's incr and the policy files: up to the
     * 20 a u64 can have (the memory tier's test refuses a 21-digit "000...1"). */
    {"007", UINT64_MAX, 0, 7},
    {"00000000000000000001", UINT64_MAX, 0, 1},
    {"000000000000000000001", UINT64_MAX, -ERANGE, 0},
    {"0065535", 65535, 0, 65535},
    {"0065536", 65535, -ERANGE, 0},
    /* A non-digit anywhere is -EINVAL even in a string that is also too long. */
    {"99999999999999999999x", UINT64_MAX, -EINVAL, 0},
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v = 12345;
		int rc = kc_parse_u64(rows[i].in, rows[i].max, &v);

		print_message("'%s' max %llu -> %d\n", rows[i].in, (unsigned long long)rows[i].max,
			      rc);
		assert_int_equal(rc, rows[i].rc);
		if (rc == 0)
			assert_true(v == rows[i].want);
		else
			assert_true(v == 12345); /* untouched on error */
	}
}

/* The bounded form reads exactly n bytes: protocol tokens are not NUL-terminated. */
static void test_bounded(void **state)
{
	const char *line = "set k 42 0 5\r\n";
	uint64_t v = 0;

	assert_int_equal(kc_parse_u64n(line + 6, 2, UINT64_MAX, &v), 0);
	assert_true(v == 42);
	assert_int_equal(kc_parse_u64n(line + 6, 3, UINT64_MAX, &v), -EINVAL); /* "42 " */
	assert_int_equal(kc_parse_u64n(line + 6, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(kc_parse_u64n("123", 1, UINT64_MAX, &v), 0);
	assert_true(v == 1);
	/* A NUL inside the n bytes is not a digit. */
	assert_int_equal(kc_parse_u64n("1\0002", 3, UINT64_MAX, &v), -EINVAL);
	/* max of 0 admits only zero. */
	assert_int_equal(kc_parse_u64n("0", 1, 0, &v), 0);
	assert_int_equal(kc_parse_u64n("1", 1, 0, &v), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
