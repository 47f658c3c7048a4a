/* test_mem.c: the memory tier (user/mem/mem.c): memcached store semantics, expiry and flush with a
 * fake clock, the capacity bound under churn (checked against a model kept by the evict hook),
 * W-TinyLFU scan resistance, and a multi-threaded stress with self-checking values.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mem/mem.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static _Atomic int64_t fake_now;

static int64_t fake_clock(void)
{
	return atomic_load(&fake_now);
}

static _Atomic uint64_t hook_calls;

static void count_hook(void *ctx, const char *key, size_t nkey)
{
	(void)ctx;
	assert_true(nkey >= 1 && nkey <= KC_KEY_MAX && key[0] != '\0');
	atomic_fetch_add(&hook_calls, 1);
}

static int setup(void **state)
{
	atomic_store(&fake_now, 1000000);
	atomic_store(&hook_calls, 0);
	kc_mem_set_clock(fake_clock);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	kc_mem_free(*state);
	kc_mem_set_clock(NULL);
	return 0;
}

static struct kc_mem *new_mem(void **state, size_t capacity, size_t item_max)
{
	struct kc_mem *m = kc_mem_new(capacity, item_max);

	assert_non_null(m);
	kc_mem_set_evict_hook(m, count_hook, NULL);
	*state = m;
	return m;
}

static struct kc_item *mk(const char *key, const void *val, size_t nval, uint32_t flags,
			  int64_t exptime)
{
	struct kc_item *it = kc_item_new(key, strlen(key), flags, exptime, nval);

	assert_non_null(it);
	memcpy(kc_item_value(it), val, nval);
	return it;
}

static enum kc_mem_result store(struct kc_mem *m, enum kc_set_mode mode, const char *key,
				const char *val, uint32_t flags, int64_t exptime, uint64_t cas_in,
				uint64_t *cas_out)
{
	struct kc_item *it = mk(key, val, strlen(val), flags, exptime);
	enum kc_mem_result r = kc_mem_store(m, mode, it, cas_in, cas_out);

	kc_item_put(it);
	return r;
}

static enum kc_mem_result store_n(struct kc_mem *m, enum kc_set_mode mode, const char *key,
				  const char *val, size_t nval, uint64_t cas_in)
{
	struct kc_item *it = mk(key, val, nval, 0, 0);
	enum kc_mem_result r = kc_mem_store(m, mode, it, cas_in, NULL);

	kc_item_put(it);
	return r;
}

/* The value length of a live key, or -1. */
static long get_len(struct kc_mem *m, const char *key)
{
	struct kc_item *it = kc_mem_get(m, key, strlen(key));
	long n = it ? (long)it->nval : -1;

	kc_item_put(it);
	return n;
}

static enum kc_mem_result set(struct kc_mem *m, const char *key, const char *val)
{
	return store(m, KC_SET, key, val, 0, 0, 0, NULL);
}

/* Asserts that key reads back as val; returns its cas. */
static uint64_t want_mem(struct kc_mem *m, const char *key, const char *val, size_t nval)
{
	struct kc_item *it = kc_mem_get(m, key, strlen(key));
	uint64_t cas;

	assert_non_null(it);
	assert_int_equal(it->nval, nval);
	assert_memory_equal(kc_item_value(it), val, nval);
	cas = it->cas;
	kc_item_put(it);
	return cas;
}

static uint64_t want_value(struct kc_mem *m, const char *key, const char *val)
{
	return want_mem(m, key, val, strlen(val));
}

static void want_missing(struct kc_mem *m, const char *key)
{
	struct kc_item *it = kc_mem_get(m, key, strlen(key));

	assert_null(it);
}

static struct kc_mem_stats stats(struct kc_mem *m)
{
	struct kc_mem_stats st;

	kc_mem_stats(m, &st);
	return st;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- construction -------------------------------------------------------------------------- */

static void test_new_validates(void **state)
{
	struct kc_item *it;

	(void)state;
	errno = 0;
	assert_null(kc_mem_new(1999, 1000));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(kc_mem_new(1 << 20, 0));
	assert_int_equal(errno, EINVAL);
	kc_mem_free(kc_mem_new(2000, 1000));

	errno = 0;
	assert_null(kc_item_new("", 0, 0, 0, 1));
	assert_int_equal(errno, EINVAL);
	char key[KC_KEY_MAX + 1];
	memset(key, 'k', sizeof(key));
	assert_null(kc_item_new(key, KC_KEY_MAX + 1, 0, 0, 1));
	it = kc_item_new(key, KC_KEY_MAX, 0, 0, 1);
	assert_non_null(it);
	assert_int_equal(it->nkey, KC_KEY_MAX);
	assert_int_equal(atomic_load(&it->refs), 1);
	kc_item_put(it);
	kc_item_put(NULL);

	/* The size covers header, key and value, and rounds like malloc. */
	assert_true(kc_item_size(3, 5) >= sizeof(struct kc_item) + 8);
	assert_int_equal(kc_item_size(3, 5) % 16, 0);
	assert_true(kc_item_size(3, 100) > kc_item_size(3, 5));
}

/* ---- basic semantics ----------------------------------------------------------------------- */

static void test_set_get(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	struct kc_item *it;
	struct kc_mem_stats st;
	uint64_t cas = 0;

	assert_int_equal(store(m, KC_SET, "foo", "bar", 42, 0, 0, &cas), KC_STORED);
	assert_int_not_equal(cas, 0);
	it = kc_mem_get(m, "foo", 3);
	assert_non_null(it);
	assert_int_equal(it->flags, 42);
	assert_int_equal(it->cas, cas);
	assert_int_equal(it->time, 1000000);
	assert_int_equal(atomic_load(&it->exptime), 0);
	assert_memory_equal(kc_item_key(it), "foo", 3);
	assert_memory_equal(kc_item_value(it), "bar", 3);
	kc_item_put(it);
	want_missing(m, "fo");
	want_missing(m, "fooo");

	/* An empty value is a value. */
	assert_int_equal(set(m, "empty", ""), KC_STORED);
	want_value(m, "empty", "");

	st = stats(m);
	assert_int_equal(st.items, 2);
	assert_int_equal(st.bytes, kc_item_size(3, 3) + kc_item_size(5, 0));
	assert_int_equal(st.capacity, 1 << 20);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(atomic_load(&hook_calls), 0);
}

static void test_overwrite_keeps_held_reference(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	struct kc_item *old;
	uint64_t c1, c2;

	assert_int_equal(store(m, KC_SET, "k", "one", 1, 0, 0, &c1), KC_STORED);
	old = kc_mem_get(m, "k", 1);
	assert_non_null(old);
	assert_int_equal(store(m, KC_SET, "k", "two-longer", 2, 0, 0, &c2), KC_STORED);
	assert_true(c2 > c1);
	/* The overwrite told the hook the old version left. */
	assert_int_equal(atomic_load(&hook_calls), 1);
	/* The held reference is the old, unchanged version. */
	assert_int_equal(old->nval, 3);
	assert_memory_equal(kc_item_value(old), "one", 3);
	assert_int_equal(old->flags, 1);
	assert_int_equal(old->cas, c1);
	want_value(m, "k", "two-longer");
	assert_int_equal(kc_mem_delete(m, "k", 1, 0), KC_DELETED);
	assert_memory_equal(kc_item_value(old), "one", 3);
	kc_item_put(old);
	assert_int_equal(stats(m).items, 0);
	assert_int_equal(stats(m).bytes, 0);
}

static void test_add_replace(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);

	assert_int_equal(store(m, KC_REPLACE, "k", "r", 0, 0, 0, NULL), KC_NOT_STORED);
	want_missing(m, "k");
	assert_int_equal(store(m, KC_ADD, "k", "a", 0, 0, 0, NULL), KC_STORED);
	want_value(m, "k", "a");
	assert_int_equal(store(m, KC_ADD, "k", "b", 0, 0, 0, NULL), KC_NOT_STORED);
	want_value(m, "k", "a");
	assert_int_equal(store(m, KC_REPLACE, "k", "c", 0, 0, 0, NULL), KC_STORED);
	want_value(m, "k", "c");

	/* An expired key counts as missing for add and replace. */
	assert_int_equal(store(m, KC_SET, "e", "x", 0, 1000005, 0, NULL), KC_STORED);
	atomic_store(&fake_now, 1000005);
	assert_int_equal(store(m, KC_REPLACE, "e", "y", 0, 0, 0, NULL), KC_NOT_STORED);
	assert_int_equal(store(m, KC_ADD, "e", "z", 0, 0, 0, NULL), KC_STORED);
	want_value(m, "e", "z");
}

static void test_append_prepend(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 64);
	struct kc_item *it, *held;
	uint64_t cas, c2;
	char big[64];

	assert_int_equal(store(m, KC_APPEND, "k", "x", 0, 0, 0, NULL), KC_NOT_STORED);
	assert_int_equal(store(m, KC_PREPEND, "k", "x", 0, 0, 0, NULL), KC_NOT_STORED);
	want_missing(m, "k");

	assert_int_equal(store(m, KC_SET, "k", "mid", 7, 2000000, 0, &cas), KC_STORED);
	held = kc_mem_get(m, "k", 1);
	/* The appended piece's own flags and exptime are ignored. */
	assert_int_equal(store(m, KC_APPEND, "k", "-end", 9, 5, 0, &c2), KC_STORED);
	assert_true(c2 > cas);
	assert_int_equal(store(m, KC_PREPEND, "k", "start-", 9, 5, 0, NULL), KC_STORED);
	it = kc_mem_get(m, "k", 1);
	assert_non_null(it);
	assert_int_equal(it->nval, 13);
	assert_memory_equal(kc_item_value(it), "start-mid-end", 13);
	assert_int_equal(it->flags, 7);
	assert_int_equal(atomic_load(&it->exptime), 2000000);
	kc_item_put(it);
	assert_memory_equal(kc_item_value(held), "mid", 3);
	kc_item_put(held);

	/* cas, when given, must match. */
	cas = want_value(m, "k", "start-mid-end");
	assert_int_equal(store(m, KC_APPEND, "k", "!", 0, 0, cas + 1, NULL), KC_EXISTS);
	assert_int_equal(store(m, KC_APPEND, "k", "!", 0, 0, cas, NULL), KC_STORED);
	want_value(m, "k", "start-mid-end!");

	/* Growing past item_max (key + value = 64) fails and leaves the value. */
	memset(big, 'b', sizeof(big));
	big[63 - 1 - 14] = '\0'; /* 1 + 14 + 48 = 63: fits */
	assert_int_equal(store(m, KC_APPEND, "k", big, 0, 0, 0, NULL), KC_STORED);
	assert_int_equal(store(m, KC_APPEND, "k", "bb", 0, 0, 0, NULL), KC_TOO_LARGE);
	assert_int_equal(get_len(m, "k"), 62);
	assert_int_equal(store(m, KC_APPEND, "k", "b", 0, 0, 0, NULL), KC_STORED);
}

static void test_cas(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	uint64_t c1, c2;

	assert_int_equal(store(m, KC_CAS, "k", "v", 0, 0, 1, NULL), KC_NOT_FOUND);
	want_missing(m, "k");
	assert_int_equal(store(m, KC_SET, "k", "v1", 0, 0, 0, &c1), KC_STORED);
	assert_int_equal(want_value(m, "k", "v1"), c1);
	assert_int_equal(store(m, KC_CAS, "k", "v2", 0, 0, c1 + 1, NULL), KC_EXISTS);
	want_value(m, "k", "v1");
	assert_int_equal(store(m, KC_CAS, "k", "v2", 0, 0, c1, &c2), KC_STORED);
	assert_true(c2 > c1);
	want_value(m, "k", "v2");
	/* The old cas is spent. */
	assert_int_equal(store(m, KC_CAS, "k", "v3", 0, 0, c1, NULL), KC_EXISTS);
	want_value(m, "k", "v2");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_cas_unique(void **state)
{
	struct kc_mem *m = new_mem(state, 16 << 20, 4096);
	enum { N = 2000 };
	uint64_t *cas = calloc(N + 100, sizeof(*cas)), prev = 0;
	char key[32];

	assert_non_null(cas);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(store(m, KC_SET, key, "v", 0, 0, 0, &cas[i]), KC_STORED);
	}
	for (int i = 0; i < 100; i++) {
		assert_int_equal(store(m, KC_SET, "same", "v", 0, 0, 0, &cas[N + i]), KC_STORED);
		assert_true(cas[N + i] > prev);
		prev = cas[N + i];
	}
	qsort(cas, N + 100, sizeof(*cas), cmp_u64);
	for (int i = 1; i < N + 100; i++)
		assert_true(cas[i] != cas[i - 1]);
	assert_int_not_equal(cas[0], 0);
	free(cas);
}

static void test_delete(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	uint64_t cas;

	assert_int_equal(kc_mem_delete(m, "k", 1, 0), KC_NOT_FOUND);
	assert_int_equal(store(m, KC_SET, "k", "v", 0, 0, 0, &cas), KC_STORED);
	assert_int_equal(kc_mem_delete(m, "k", 1, cas + 1), KC_EXISTS);
	want_value(m, "k", "v");
	assert_int_equal(kc_mem_delete(m, "k", 1, cas), KC_DELETED);
	want_missing(m, "k");
	assert_int_equal(kc_mem_delete(m, "k", 1, 0), KC_NOT_FOUND);
	assert_int_equal(set(m, "k", "v"), KC_STORED);
	assert_int_equal(kc_mem_delete(m, "k", 1, 0), KC_DELETED);
	want_missing(m, "k");
	assert_int_equal(atomic_load(&hook_calls), 2);
	assert_int_equal(stats(m).items, 0);
}

/* ---- incr/decr ----------------------------------------------------------------------------- */

static uint64_t arith_ok(struct kc_mem *m, const char *key, int incr, uint64_t delta)
{
	uint64_t res = 12345, cas = 0;

	assert_int_equal(kc_mem_arith(m, key, strlen(key), incr, delta, &res, &cas), KC_STORED);
	assert_int_not_equal(cas, 0);
	return res;
}

static void test_arith(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	static const char *const bad[] = {"abc",
					  "12a",
					  " 12",
					  "",
					  "-1",
					  "1 2",
					  "+1",
					  "000000000000000000001",
					  "18446744073709551616",
					  "99999999999999999999"};
	struct kc_item *it, *held;
	uint64_t res, c1, c2;

	assert_int_equal(kc_mem_arith(m, "n", 1, 1, 1, &res, NULL), KC_NOT_FOUND);

	assert_int_equal(store(m, KC_SET, "n", "10", 5, 3000000, 0, &c1), KC_STORED);
	held = kc_mem_get(m, "n", 1);
	assert_int_equal(arith_ok(m, "n", 1, 5), 15);
	want_value(m, "n", "15");
	assert_memory_equal(kc_item_value(held), "10", 2); /* not rewritten in place */
	kc_item_put(held);
	assert_int_equal(arith_ok(m, "n", 0, 6), 9);
	/* The length shrinks to the exact decimal: "9", not "9 ". */
	it = kc_mem_get(m, "n", 1);
	assert_non_null(it);
	assert_int_equal(it->nval, 1);
	assert_int_equal(it->flags, 5);
	assert_int_equal(atomic_load(&it->exptime), 3000000);
	c2 = it->cas;
	assert_true(c2 > c1);
	kc_item_put(it);
	/* Floor at 0. */
	assert_int_equal(arith_ok(m, "n", 0, 100), 0);
	want_value(m, "n", "0");
	assert_int_equal(arith_ok(m, "n", 0, 1), 0);

	/* 64-bit wrap. */
	assert_int_equal(set(m, "w", "18446744073709551615"), KC_STORED);
	assert_int_equal(arith_ok(m, "w", 1, 1), 0);
	want_value(m, "w", "0");
	assert_int_equal(set(m, "w", "18446744073709551610"), KC_STORED);
	assert_int_equal(arith_ok(m, "w", 1, 10), 4);
	assert_int_equal(arith_ok(m, "w", 1, UINT64_MAX), 3);
	assert_int_equal(set(m, "w", "1"), KC_STORED);
	assert_int_equal(arith_ok(m, "w", 1, UINT64_MAX - 1), UINT64_MAX);
	want_value(m, "w", "18446744073709551615");

	/* Leading zeros and trailing spaces (decr pads in memcached) are numbers. */
	assert_int_equal(set(m, "z", "0007"), KC_STORED);
	assert_int_equal(arith_ok(m, "z", 1, 1), 8);
	want_value(m, "z", "8");
	assert_int_equal(set(m, "z", "99  "), KC_STORED);
	assert_int_equal(arith_ok(m, "z", 1, 1), 100);
	want_value(m, "z", "100");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(set(m, "bad", bad[i]), KC_STORED);
		res = 777;
		assert_int_equal(kc_mem_arith(m, "bad", 3, 1, 1, &res, NULL), KC_NON_NUMERIC);
		assert_int_equal(res, 777);
		want_value(m, "bad", bad[i]);
	}
}

/* ---- time ---------------------------------------------------------------------------------- */

static void test_expiry(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	struct kc_item *it;
	uint64_t hooks;

	assert_int_equal(store(m, KC_SET, "e", "v", 0, 1000010, 0, NULL), KC_STORED);
	atomic_store(&fake_now, 1000009);
	want_value(m, "e", "v");
	atomic_store(&fake_now, 1000010);
	want_missing(m, "e");
	assert_int_equal(stats(m).expired, 1);
	assert_int_equal(stats(m).items, 0);
	assert_int_equal(atomic_load(&hook_calls), 1);
	atomic_store(&fake_now, 1000000); /* even if the clock steps back: it is gone */
	want_missing(m, "e");
	atomic_store(&fake_now, 1000010);

	/* Already expired (past or negative): STORED, replaces the old value, never readable. */
	assert_int_equal(set(m, "p", "old"), KC_STORED);
	hooks = atomic_load(&hook_calls);
	assert_int_equal(store(m, KC_SET, "p", "v", 0, 1000010, 0, NULL), KC_STORED);
	assert_int_equal(atomic_load(&hook_calls), hooks + 1);
	want_missing(m, "p");
	assert_int_equal(store(m, KC_SET, "n", "v", 0, -1, 0, NULL), KC_STORED);
	want_missing(m, "n");
	assert_int_equal(store(m, KC_ADD, "n", "w", 0, 0, 0, NULL), KC_STORED);
	want_value(m, "n", "w");

	/* touch and gat move the deadline; expired keys cannot be touched. */
	assert_int_equal(kc_mem_touch(m, "none", 4, 0), KC_NOT_FOUND);
	assert_int_equal(store(m, KC_SET, "t", "v", 0, 1000020, 0, NULL), KC_STORED);
	assert_int_equal(kc_mem_touch(m, "t", 1, 1000030), KC_TOUCHED);
	atomic_store(&fake_now, 1000025);
	it = kc_mem_get_touch(m, "t", 1, 1000040);
	assert_non_null(it);
	assert_int_equal(atomic_load(&it->exptime), 1000040);
	kc_item_put(it);
	atomic_store(&fake_now, 1000039);
	want_value(m, "t", "v");
	assert_int_equal(kc_mem_touch(m, "t", 1, 0), KC_TOUCHED); /* 0 = never */
	atomic_store(&fake_now, 9000000);
	want_value(m, "t", "v");
	assert_int_equal(kc_mem_touch(m, "t", 1, 1), KC_TOUCHED); /* into the past */
	want_missing(m, "t");
	assert_int_equal(kc_mem_touch(m, "t", 1, 0), KC_NOT_FOUND);
	assert_null(kc_mem_get_touch(m, "t", 1, 0));
}

static void test_flush_now(void **state)
{
	struct kc_mem *m = new_mem(state, 4 << 20, 4096);
	char key[32];

	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(set(m, key, "value"), KC_STORED);
	}
	assert_int_equal(stats(m).items, 500);
	kc_mem_flush(m, kc_mem_now());
	assert_int_equal(atomic_load(&hook_calls), 500);
	assert_int_equal(stats(m).items, 0);
	assert_int_equal(stats(m).bytes, 0);
	for (int i = 0; i < 500; i += 50) {
		snprintf(key, sizeof(key), "k%d", i);
		want_missing(m, key);
	}
	/* Stores in the same second after the flush stay. */
	assert_int_equal(set(m, "k1", "new"), KC_STORED);
	want_value(m, "k1", "new");
	kc_mem_flush(m, 0);
	want_missing(m, "k1");
}

static void test_flush_delayed(void **state)
{
	struct kc_mem *m = new_mem(state, 4 << 20, 4096);
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(set(m, key, "v"), KC_STORED);
	}
	kc_mem_flush(m, 1000005);
	atomic_store(&fake_now, 1000004);
	want_value(m, "k1", "v");
	assert_int_equal(set(m, "late", "v"), KC_STORED);
	want_value(m, "late", "v");
	assert_int_equal(atomic_load(&hook_calls), 0);

	atomic_store(&fake_now, 1000005);
	want_missing(m, "k1");
	want_missing(m, "late");
	assert_int_equal(stats(m).items, 0);
	assert_int_equal(atomic_load(&hook_calls), 101);
	/* Stored once the flush is due: valid, now and later. */
	assert_int_equal(set(m, "after", "v"), KC_STORED);
	want_value(m, "after", "v");
	atomic_store(&fake_now, 1000100);
	want_value(m, "after", "v");

	/* A later flush_all replaces a pending one. */
	kc_mem_flush(m, 1000200);
	kc_mem_flush(m, 1000300);
	atomic_store(&fake_now, 1000250);
	want_value(m, "after", "v");
	atomic_store(&fake_now, 1000300);
	want_missing(m, "after");
}

/* ---- size limits --------------------------------------------------------------------------- */

/* key + value == item_max fits, one more byte does not; a failed set drops the old value (as
 * memcached does), other failed modes leave it. */
static void test_too_large(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 1000);
	char val[1000];

	memset(val, 'x', sizeof(val));
	assert_int_equal(store_n(m, KC_SET, "k", val, 999, 0), KC_STORED);
	assert_int_equal(get_len(m, "k"), 999);
	assert_int_equal(store_n(m, KC_CAS, "k", val, 1000, 1), KC_TOO_LARGE);
	assert_int_equal(store_n(m, KC_REPLACE, "k", val, 1000, 0), KC_TOO_LARGE);
	assert_int_equal(store_n(m, KC_ADD, "k2", val, 999, 0), KC_TOO_LARGE);
	want_missing(m, "k2");
	assert_int_equal(get_len(m, "k"), 999);
	assert_int_equal(atomic_load(&hook_calls), 0);
	assert_int_equal(store_n(m, KC_SET, "k", val, 1000, 0), KC_TOO_LARGE);
	want_missing(m, "k");
	assert_int_equal(atomic_load(&hook_calls), 1);
	assert_int_equal(stats(m).items, 0);
}

/* Whatever the shard count, an item of item_max always fits and is readable at once. */
static void test_item_max_always_fits(void **state)
{
	static const size_t caps[][2] = {
	    {2 << 20, 1 << 20}, {8 << 20, 256 << 10}, {64 << 20, 1 << 20}, {1 << 20, 4096}};
	char key[32];

	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		size_t cap = caps[c][0], imax = caps[c][1];
		struct kc_mem *m = new_mem(state, cap, imax);
		char *val = malloc(imax);

		assert_non_null(val);
		memset(val, 'v', imax);
		for (int i = 0; i < 200; i++) {
			int n = snprintf(key, sizeof(key), "big%d", i);

			assert_int_equal(store_n(m, KC_SET, key, val, imax - (size_t)n, 0),
					 KC_STORED);
			assert_int_equal(get_len(m, key), imax - (size_t)n);
			assert_true(stats(m).bytes <= cap);
		}
		assert_true(stats(m).evictions > 0);
		free(val);
		kc_mem_free(m);
		*state = NULL;
	}
}

/* ---- capacity under churn, against a model kept by the evict hook --------------------------- */

#define MODEL_KEYS 3000

struct model {
	char *val[MODEL_KEYS];
	size_t nval[MODEL_KEYS];
	bool present[MODEL_KEYS];
	size_t bytes, items;
	uint64_t departures;
};

static unsigned key_index(const char *key, size_t nkey)
{
	char buf[16];

	assert_true(nkey > 1 && nkey < sizeof(buf) && key[0] == 'k');
	memcpy(buf, key + 1, nkey - 1);
	buf[nkey - 1] = '\0';
	return (unsigned)strtoul(buf, NULL, 10);
}

static void model_hook(void *ctx, const char *key, size_t nkey)
{
	struct model *md = ctx;
	unsigned i = key_index(key, nkey);

	assert_true(i < MODEL_KEYS);
	assert_true(md->present[i]); /* only keys that were there can leave */
	md->present[i] = false;
	md->bytes -= kc_item_size(nkey, md->nval[i]);
	md->items--;
	md->departures++;
}

static void model_put(struct model *md, unsigned i, const char *key, const char *val, size_t n)
{
	assert_false(md->present[i]);
	free(md->val[i]);
	md->val[i] = malloc(n + 1);
	assert_non_null(md->val[i]);
	memcpy(md->val[i], val, n);
	md->nval[i] = n;
	md->present[i] = true;
	md->bytes += kc_item_size(strlen(key), n);
	md->items++;
}

static void model_verify(struct kc_mem *m, struct model *md)
{
	char key[16];

	for (unsigned i = 0; i < MODEL_KEYS; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		if (md->present[i])
			want_mem(m, key, md->val[i], md->nval[i]);
		else
			want_missing(m, key);
	}
}

static void test_capacity_churn(void **state)
{
	const size_t cap = 256 << 10, imax = 4096;
	struct model *md = calloc(1, sizeof(*md));
	struct kc_mem *m = new_mem(state, cap, imax);
	uint64_t rng = 0x9e3779b97f4a7c15ULL, stored = 0;
	char key[16], val[4096];
	struct kc_mem_stats st;

	assert_non_null(md);
	kc_mem_set_evict_hook(m, model_hook, md);
	for (int op = 0; op < 60000; op++) {
		unsigned i = (unsigned)(xorshift(&rng) % MODEL_KEYS);
		unsigned kind = (unsigned)(xorshift(&rng) % 100);
		size_t nkey = (size_t)snprintf(key, sizeof(key), "k%u", i);
		/* Mostly small values, sometimes large ones. */
		size_t nval = xorshift(&rng) % (kind % 10 == 0 ? imax - nkey + 1 : 300);
		enum kc_set_mode mode = kind < 60   ? KC_SET
					: kind < 70 ? KC_APPEND
					: kind < 75 ? KC_ADD
					: kind < 80 ? KC_REPLACE
						    : KC_PREPEND;
		enum kc_mem_result r, want;
		struct kc_item *it;

		for (size_t b = 0; b < nval; b++)
			val[b] = (char)('a' + (op + b) % 26);
		if (kind >= 90) {
			bool was = md->present[i];

			r = kc_mem_delete(m, key, nkey, 0);
			assert_int_equal(r, was ? KC_DELETED : KC_NOT_FOUND);
			assert_false(md->present[i]);
		} else if (kind >= 85) {
			it = kc_mem_get(m, key, nkey);
			assert_true((it != NULL) == md->present[i]);
			kc_item_put(it);
		} else {
			bool was = md->present[i];
			size_t oldn = md->nval[i];
			char *oldv = NULL;

			if (was && (mode == KC_APPEND || mode == KC_PREPEND)) {
				oldv = malloc(oldn + nval);
				assert_non_null(oldv);
				if (mode == KC_APPEND) {
					memcpy(oldv, md->val[i], oldn);
					memcpy(oldv + oldn, val, nval);
				} else {
					memcpy(oldv, val, nval);
					memcpy(oldv + nval, md->val[i], oldn);
				}
			}
			/* add stores when the key is absent; replace, append, prepend when present
			 */
			want =
			    mode == KC_SET || (mode == KC_ADD) != was ? KC_STORED : KC_NOT_STORED;
			if (want == KC_STORED && oldv && nkey + oldn + nval > imax)
				want = KC_TOO_LARGE;
			assert_int_equal(store_n(m, mode, key, val, nval, 0), want);
			if (want == KC_STORED) {
				stored++;
				if (oldv)
					model_put(md, i, key, oldv, oldn + nval);
				else
					model_put(md, i, key, val, nval);
				/* Fresh items are readable at once, even in a full cache. */
				want_mem(m, key, md->val[i], md->nval[i]);
			}
			free(oldv);
		}
		st = stats(m);
		assert_true(st.bytes <= cap);
		assert_true(md->bytes <= cap);
		assert_int_equal(st.bytes, md->bytes);
		assert_int_equal(st.items, md->items);
		if (op % 5000 == 0)
			model_verify(m, md);
	}
	model_verify(m, md);
	st = stats(m);
	/* The cache filled up and evicted, and every departure reached the hook. */
	assert_true(st.evictions > 1000);
	assert_true(st.admissions_rejected > 0);
	assert_true(st.bytes > cap / 2);
	assert_int_equal(st.items, stored - md->departures);
	kc_mem_free(m);
	*state = NULL;
	for (unsigned i = 0; i < MODEL_KEYS; i++)
		free(md->val[i]);
	free(md);
}

/* ---- W-TinyLFU ----------------------------------------------------------------------------- */

/* A one-pass scan several times the cache must not wash out a frequently used set, which is
 * exactly what LRU would let happen. */
static void test_scan_resistance(void **state)
{
	const size_t cap = 1 << 20;
	struct kc_mem *m = new_mem(state, cap, 4096);
	char key[32], val[200];
	int survivors = 0;

	memset(val, 'h', sizeof(val));
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 300; i++) {
			snprintf(key, sizeof(key), "hot%d", i);
			if (get_len(m, key) < 0)
				assert_int_equal(store_n(m, KC_SET, key, val, sizeof(val), 0),
						 KC_STORED);
		}
	}
	for (int i = 0; i < 30000; i++) { /* ~9 MB of one-time keys */
		snprintf(key, sizeof(key), "cold%d", i);
		assert_int_equal(get_len(m, key), -1);
		assert_int_equal(store_n(m, KC_SET, key, val, sizeof(val), 0), KC_STORED);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "hot%d", i);
		survivors += get_len(m, key) == sizeof(val);
	}
	print_message("hot keys surviving the scan: %d/300\n", survivors);
	assert_true(survivors >= 295);
	assert_true(stats(m).admissions_rejected > 20000);
	assert_true(stats(m).bytes <= cap);
}

/* ---- threads ------------------------------------------------------------------------------- */

#define ST_THREADS  4
#define ST_COUNTERS 32
#define ST_REC	    16 /* value records: "iiii:ssssssssss\n" */

struct stress {
	struct kc_mem *m;
	unsigned data_keys;
	size_t cap;
	_Atomic bool stop;
	_Atomic uint64_t stored, departed, errors, ops;
	uint64_t incrs[ST_THREADS][ST_COUNTERS];
};

struct worker {
	struct stress *st;
	int id;
};

static void stress_hook(void *ctx, const char *key, size_t nkey)
{
	struct stress *st = ctx;

	(void)key;
	(void)nkey;
	atomic_fetch_add_explicit(&st->departed, 1, memory_order_relaxed);
}

/* Every value is whole records naming its key; anything else is torn or freed memory. */
static bool value_ok(struct kc_item *it, unsigned idx)
{
	char want[6];

	if (it->nval == 0 || it->nval % ST_REC)
		return false;
	snprintf(want, sizeof(want), "%04u:", idx);
	for (size_t off = 0; off < it->nval; off += ST_REC) {
		const char *r = kc_item_value(it) + off;

		if (memcmp(r, want, 5) != 0 || r[ST_REC - 1] != '\n')
			return false;
	}
	return true;
}

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint64_t rng = 0x1234567ULL * (uint64_t)(w->id + 1), seq = 0;
	struct kc_item *held = NULL;
	unsigned held_idx = 0;
	char key[32], rec[32];

	while (!atomic_load_explicit(&st->stop, memory_order_relaxed)) {
		unsigned kind = (unsigned)(xorshift(&rng) % 100);
		unsigned idx = (unsigned)(xorshift(&rng) % st->data_keys);
		size_t nkey = (size_t)snprintf(key, sizeof(key), "d%u", idx);
		struct kc_item *it;
		enum kc_mem_result r;
		uint64_t cas = 0;

		atomic_fetch_add_explicit(&st->ops, 1, memory_order_relaxed);
		if (kind < 15) {
			unsigned c = idx % ST_COUNTERS;
			uint64_t res;

			nkey = (size_t)snprintf(key, sizeof(key), "c%u", c);
			r = kc_mem_arith(st->m, key, nkey, 1, 1, &res, NULL);
			if (r == KC_STORED) {
				st->incrs[w->id][c]++;
				atomic_fetch_add(&st->stored, 1);
			} else if (r != KC_NOT_FOUND) {
				atomic_fetch_add(&st->errors, 1);
			}
			continue;
		}
		if (kind < 55) {
			it = kc_mem_get(st->m, key, nkey);
			if (it && !value_ok(it, idx))
				atomic_fetch_add(&st->errors, 1);
			if (it && !held && kind < 20) {
				held = it; /* keep it across later writes */
				held_idx = idx;
				continue;
			}
			kc_item_put(it);
			continue;
		}
		if (kind < 65) {
			r = kc_mem_delete(st->m, key, nkey, 0);
			if (r != KC_DELETED && r != KC_NOT_FOUND)
				atomic_fetch_add(&st->errors, 1);
			continue;
		}
		if (kind < 70) {
			it = kc_mem_get(st->m, key, nkey);
			if (it) {
				cas = it->cas;
				kc_item_put(it);
			}
		}
		{
			size_t nrec = 1 + xorshift(&rng) % (kind < 75 ? 2 : 40);
			enum kc_set_mode mode = kind < 70   ? KC_CAS
						: kind < 80 ? KC_APPEND
						: kind < 85 ? KC_ADD
							    : KC_SET;

			it = kc_item_new(key, nkey, 0, 0, nrec * ST_REC);
			if (!it) {
				atomic_fetch_add(&st->errors, 1);
				continue;
			}
			for (size_t j = 0; j < nrec; j++) {
				snprintf(rec, sizeof(rec), "%04u:%010llu\n", idx % 10000,
					 (unsigned long long)(seq++ % 10000000000ULL));
				memcpy(kc_item_value(it) + j * ST_REC, rec, ST_REC);
			}
			r = kc_mem_store(st->m, mode, it, cas, NULL);
			kc_item_put(it);
			if (r == KC_STORED)
				atomic_fetch_add(&st->stored, 1);
			else if (r == KC_TOO_LARGE && mode != KC_APPEND)
				atomic_fetch_add(&st->errors, 1);
		}
		if (held && kind > 95) {
			if (!value_ok(held, held_idx))
				atomic_fetch_add(&st->errors, 1);
			kc_item_put(held);
			held = NULL;
		}
	}
	if (held) {
		if (!value_ok(held, held_idx))
			atomic_fetch_add(&st->errors, 1);
		kc_item_put(held);
	}
	return NULL;
}

static void run_stress(struct stress *st, double seconds)
{
	pthread_t th[ST_THREADS];
	struct worker w[ST_THREADS];
	struct timespec tenth = {0, (long)(seconds * 1e8)}; /* seconds < 10 */
	struct kc_mem_stats s;
	char key[16];

	kc_mem_set_evict_hook(st->m, stress_hook, st);
	for (unsigned c = 0; c < ST_COUNTERS; c++) {
		snprintf(key, sizeof(key), "c%u", c);
		assert_int_equal(set(st->m, key, "0"), KC_STORED);
		atomic_fetch_add(&st->stored, 1);
	}
	for (int i = 0; i < ST_THREADS; i++) {
		w[i] = (struct worker){st, i};
		assert_int_equal(pthread_create(&th[i], NULL, stress_worker, &w[i]), 0);
	}
	for (int slept = 0; slept < 10; slept++) {
		nanosleep(&tenth, NULL);
		kc_mem_stats(st->m, &s);
		assert_true(s.bytes <= st->cap);
	}
	atomic_store(&st->stop, true);
	for (int i = 0; i < ST_THREADS; i++)
		pthread_join(th[i], NULL);
	kc_mem_stats(st->m, &s);
	print_message("stress: %llu ops, %llu items, %llu evictions\n",
		      (unsigned long long)atomic_load(&st->ops), (unsigned long long)s.items,
		      (unsigned long long)s.evictions);
	assert_int_equal(atomic_load(&st->errors), 0);
	assert_true(atomic_load(&st->ops) > 10000);
	assert_true(s.bytes <= st->cap);
	/* Every item linked either is still there or was reported gone. */
	assert_int_equal(s.items, atomic_load(&st->stored) - atomic_load(&st->departed));
	for (unsigned i = 0; i < st->data_keys; i++) {
		int n = snprintf(key, sizeof(key), "d%u", i);
		struct kc_item *it = kc_mem_get(st->m, key, (size_t)n);

		assert_true(!it || value_ok(it, i));
		kc_item_put(it);
	}
}

/* Room for everything: no eviction, so incr must not lose a single update. */
static void test_threads_exact(void **state)
{
	struct stress *st = calloc(1, sizeof(*st));
	char key[16];

	(void)state;
	kc_mem_set_clock(NULL);
	assert_non_null(st);
	st->cap = 64 << 20;
	st->data_keys = 256;
	st->m = kc_mem_new(st->cap, 16 << 10);
	assert_non_null(st->m);
	run_stress(st, 0.5);
	assert_int_equal(stats(st->m).evictions, 0);
	for (unsigned c = 0; c < ST_COUNTERS; c++) {
		uint64_t want = 0, got;
		struct kc_item *it;
		char num[24];

		for (int t = 0; t < ST_THREADS; t++)
			want += st->incrs[t][c];
		snprintf(key, sizeof(key), "c%u", c);
		it = kc_mem_get(st->m, key, strlen(key));
		assert_non_null(it);
		assert_true(it->nval < sizeof(num));
		memcpy(num, kc_item_value(it), it->nval);
		num[it->nval] = '\0';
		got = strtoull(num, NULL, 10);
		kc_item_put(it);
		assert_int_equal(got, want);
		assert_true(want > 0);
	}
	kc_mem_free(st->m);
	free(st);
}

/* A small cache: constant eviction under contention. */
static void test_threads_evicting(void **state)
{
	struct stress *st = calloc(1, sizeof(*st));

	(void)state;
	kc_mem_set_clock(NULL);
	assert_non_null(st);
	st->cap = 512 << 10;
	st->data_keys = 4000;
	st->m = kc_mem_new(st->cap, 4096);
	assert_non_null(st->m);
	run_stress(st, 0.5);
	assert_true(stats(st->m).evictions > 1000);
	kc_mem_free(st->m);
	free(st);
}

/* The meta protocol's state: what mg saw before it read (h, l, t), no bump for u, md I's stale
 * copy, ms I's late write, ma's C. */
static void test_meta_state(void **state)
{
	struct kc_mem *m = new_mem(state, 1 << 20, 4096);
	struct kc_mem_seen seen;
	struct kc_item *it;
	uint64_t cas, cas2, v;

	assert_int_equal(store(m, KC_SET, "k", "1", 0, 1000100, 0, &cas), KC_STORED);
	atomic_store(&fake_now, 1000005);
	it = kc_mem_get_meta(m, "k", 1, true, 1000200, false, &seen); /* u: no bump */
	assert_int_equal(seen.exptime, 1000100);
	assert_int_equal(seen.accessed, 1000000);
	assert_int_equal(seen.state, 0);
	assert_int_equal(atomic_load(&it->exptime), 1000200);
	kc_item_put(it);
	it = kc_mem_get_meta(m, "k", 1, false, 0, true, &seen);
	assert_int_equal(seen.state & KC_ITEM_FETCHED, 0); /* the u read left no trace */
	kc_item_put(it);
	it = kc_mem_get_meta(m, "k", 1, false, 0, true, &seen);
	assert_int_equal(seen.state & KC_ITEM_FETCHED, KC_ITEM_FETCHED);
	assert_int_equal(seen.accessed, 1000005);
	kc_item_put(it);

	assert_int_equal(kc_mem_invalidate(m, "k", 1, cas + 1, false, 0), KC_EXISTS);
	assert_int_equal(kc_mem_invalidate(m, "k", 1, cas, true, 1000300), KC_DELETED);
	assert_int_equal(kc_mem_invalidate(m, "none", 4, 0, false, 0), KC_NOT_FOUND);
	it = kc_mem_get(m, "k", 1);
	assert_int_equal(atomic_load(&it->state) & KC_ITEM_STALE, KC_ITEM_STALE);
	assert_int_equal(atomic_load(&it->exptime), 1000300);
	assert_true(it->cas != cas); /* a new version */
	cas2 = it->cas;
	kc_item_put(it);
	/* ms I: an older cas stores, stale, with the stored exptime; plain cas refuses it. */
	assert_int_equal(store(m, KC_CAS, "k", "2", 0, 0, cas, NULL), KC_EXISTS);
	assert_int_equal(store(m, KC_CAS_STALE, "k", "2", 0, 0, cas, NULL), KC_STORED);
	it = kc_mem_get(m, "k", 1);
	assert_int_equal(atomic_load(&it->state) & KC_ITEM_STALE, KC_ITEM_STALE);
	assert_int_equal(atomic_load(&it->exptime), 1000300);
	assert_true(it->cas > cas2);
	kc_item_put(it);
	/* ma C: only that version changes. */
	assert_int_equal(kc_mem_arith_cas(m, "k", 1, 1, 1, cas2, &v, NULL), KC_EXISTS);
	assert_int_equal(kc_mem_arith_cas(m, "k", 1, 1, 1, 0, &v, NULL), KC_STORED);
	assert_int_equal(v, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_validates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overwrite_keeps_held_reference, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_prepend, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cas_unique, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_arith, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_delayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_item_max_always_fits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capacity_churn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_resistance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads_evicting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
