/* test_tier_blob.c: the lower tiers' value encoding (user/tiers/tier_blob.c), write versions
 * (user/core/hlc.c) and the memory tier's version rules (KC_FILL, kc_mem_delete_older). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hlc.h"
#include "mem/mem.h"
#include "tiers/tier_blob.h"

static struct kc_item *item(const char *key, const char *val, size_t nval, uint32_t flags,
			    int64_t exptime)
{
	struct kc_item *it = kc_item_new(key, strlen(key), flags, exptime, nval);

	assert_non_null(it);
	memcpy(kc_item_value(it), val, nval);
	atomic_store(&it->ver, 12345);
	return it;
}

static void round_trip(size_t nval, size_t compress_min, bool expect_compressed)
{
	char *val = malloc(nval + 1);
	struct kc_buf b = {0};
	struct kc_item *in, *out;
	struct kc_blob_meta m;
	char err[128];

	for (size_t i = 0; i < nval; i++)
		val[i] = (char)('a' + (i / 7) % 3); /* compressible */
	in = item("key", val, nval, 77, 1900000000);
	assert_int_equal(kc_blob_encode(in, compress_min, &b), 0);
	assert_int_equal(kc_blob_meta(b.data, b.len, &m, err, sizeof(err)), 0);
	assert_int_equal(m.enc, expect_compressed ? 1 : 0);
	assert_int_equal(m.raw_len, nval);
	assert_int_equal(kc_blob_decode(b.data, b.len, "key", 3, 1 << 20, &out, err, sizeof(err)),
			 0);
	assert_int_equal(out->nval, nval);
	assert_int_equal(out->flags, 77);
	assert_int_equal(atomic_load(&out->exptime), 1900000000);
	assert_int_equal(atomic_load(&out->ver), 12345);
	assert_memory_equal(kc_item_value(out), val, nval);
	if (expect_compressed)
		assert_true(b.len < KC_BLOB_HDR + nval);
	kc_item_put(in);
	kc_item_put(out);
	kc_buf_free(&b);
	free(val);
}

static void test_round_trips(void **state)
{
	(void)state;
	round_trip(0, 4096, false);
	round_trip(10, 4096, false);
	round_trip(100000, 4096, true);
	round_trip(100000, 0, false); /* compression off */
}

static void test_tombstone(void **state)
{
	struct kc_buf b = {0};
	struct kc_item *out = (struct kc_item *)1;
	char err[128];

	(void)state;
	assert_int_equal(kc_blob_tomb(99, &b), 0);
	assert_int_equal(kc_blob_decode(b.data, b.len, "k", 1, 1024, &out, err, sizeof(err)), 1);
	assert_null(out);
	kc_buf_free(&b);
}

/* Every truncation, every single-byte corruption of the header, and lies about lengths are
 * refused with a reason, never read past the end. */
static void test_malformed(void **state)
{
	struct kc_item *in = item("key", "0123456789", 10, 0, 0), *out;
	struct kc_buf b = {0};
	char err[128];
	int rc;

	(void)state;
	assert_int_equal(kc_blob_encode(in, 0, &b), 0);
	for (size_t n = 0; n < b.len; n++) {
		char *copy = malloc(n ? n : 1);

		memcpy(copy, b.data, n);
		err[0] = 0;
		rc = kc_blob_decode(copy, n, "key", 3, 1024, &out, err, sizeof(err));
		assert_int_equal(rc, -EINVAL);
		assert_null(out);
		assert_true(err[0]);
		free(copy);
	}
	for (size_t i = 0; i < 8; i++) { /* magic, kind, encoding, reserved */
		b.data[i] ^= 0x40;
		assert_int_equal(
		    kc_blob_decode(b.data, b.len, "key", 3, 1024, &out, err, sizeof(err)), -EINVAL);
		b.data[i] ^= 0x40;
	}
	b.data[12] = 50; /* raw length larger than the payload */
	assert_int_equal(kc_blob_decode(b.data, b.len, "key", 3, 1024, &out, err, sizeof(err)),
			 -EINVAL);
	b.data[12] = 10;
	/* a value over item-size-max */
	assert_int_equal(kc_blob_decode(b.data, b.len, "key", 3, 12, &out, err, sizeof(err)),
			 -EINVAL);
	/* a "compressed" blob whose frame is garbage */
	b.data[5] = 1;
	assert_int_equal(kc_blob_decode(b.data, b.len, "key", 3, 1024, &out, err, sizeof(err)),
			 -EINVAL);
	kc_item_put(in);
	kc_buf_free(&b);
}

static void test_hlc(void **state)
{
	uint64_t a, b, far;

	(void)state;
	kc_hlc_set_node(7);
	a = kc_hlc_next();
	b = kc_hlc_next();
	assert_true(b > a);
	assert_int_equal(a & 0xff, 7);
	far = (kc_hlc_ms(a) + 60000) << 20; /* a node a minute ahead */
	kc_hlc_observe(far);
	assert_true(kc_hlc_next() > far);
}

static void test_mem_versions(void **state)
{
	struct kc_mem *m = kc_mem_new(4 << 20, 1 << 16);
	struct kc_item *old = item("k", "old", 3, 0, 0), *newer, *got;

	(void)state;
	assert_non_null(m);
	/* A fill keeps its version; an older fill does not replace a newer value. */
	atomic_store(&old->ver, 100);
	assert_int_equal(kc_mem_store(m, KC_FILL, old, 0, NULL), KC_STORED);
	got = kc_mem_get(m, "k", 1);
	assert_int_equal(atomic_load(&got->ver), 100);
	kc_item_put(got);
	newer = item("k", "new", 3, 0, 0);
	assert_int_equal(kc_mem_store(m, KC_SET, newer, 0, NULL), KC_STORED);
	assert_true(atomic_load(&newer->ver) > 100); /* a set mints a new version */
	kc_item_put(old);
	old = item("k", "old", 3, 0, 0);
	atomic_store(&old->ver, 100);
	assert_int_equal(kc_mem_store(m, KC_FILL, old, 0, NULL), KC_NOT_STORED);
	/* A late invalidation (an older version) keeps the value; a newer one removes it. */
	assert_int_equal(kc_mem_delete_older(m, "k", 1, 100), KC_EXISTS);
	assert_true(kc_mem_has(m, "k", 1));
	assert_int_equal(kc_mem_delete_older(m, "k", 1, atomic_load(&newer->ver) + 1), KC_DELETED);
	assert_false(kc_mem_has(m, "k", 1));
	assert_int_equal(kc_mem_delete_older(m, "k", 1, 1), KC_NOT_FOUND);
	kc_item_put(old);
	kc_item_put(newer);
	kc_mem_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),	 cmocka_unit_test(test_tombstone),
	    cmocka_unit_test(test_malformed),	 cmocka_unit_test(test_hlc),
	    cmocka_unit_test(test_mem_versions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
