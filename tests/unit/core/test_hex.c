/* test_hex: the one hex encoder and decoder (core/hex.c), and SHA-256 as hex. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/hex.h"

static void test_encode(void **state)
{
	static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char out[2 * sizeof(in) + 1];

	memset(out, 'x', sizeof(out));
	kc_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abcdefff");
	kc_hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

static void test_decode(void **state)
{
	unsigned char out[4], back[9];

	assert_int_equal(kc_hex_decode("00ff7a10", 4, out), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0x7a);
	assert_int_equal(out[3], 0x10);
	/* Only 2n digits are read: what follows does not matter. */
	assert_int_equal(kc_hex_decode("abZZ", 1, out), 0);
	assert_int_equal(out[0], 0xab);
	/* Round trip. */
	kc_hex_encode(out, 4, (char *)back);
	assert_int_equal(kc_hex_decode((char *)back, 4, out), 0);
	/* Uppercase, non-hex, a NUL inside the digits: refused. */
	static const char *const bad[] = {"AB", "0G", "g0", "0/", ":0", "0", " 0", "0x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kc_hex_decode(bad[i], 1, out), -EINVAL);
}

static void test_sha256(void **state)
{
	char hex[65];

	kc_sha256_hex("", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	kc_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
