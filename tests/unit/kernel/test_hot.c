/* test_hot.c: what the kernel tier relies on outside the kernel: the popularity sketch
 * and the admission rule it decides with (user/kernel/hot.c), and the memory tier's calls for it
 * (kc_mem_with_item, the change hook and kc_mem_note_access in user/mem/mem.c). The kernel side is
 * tests/bpf/test_cache.c; the whole thing in network namespaces is the scripts in
 * tests/integration/kernel/.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/hot.h"
#include "mem/mem.h"

/* ---- the sketch ------------------------------------------------------------------------------ */

static uint64_t key_hash(unsigned i)
{
	char k[32];
	int n = snprintf(k, sizeof(k), "key:%u", i);

	return kc_hot_hash(k, (size_t)n);
}

/* Never under-counts, and with the population it was sized for, rarely over-counts by much. */
static void test_sketch_bounds(void **state)
{
	enum { KEYS = 2000 };
	struct kc_hot *h = kc_hot_new(KEYS);
	uint64_t over = 0;

	(void)state;
	assert_non_null(h);
	for (unsigned i = 0; i < KEYS; i++)
		kc_hot_add(h, key_hash(i), i % 50 + 1);
	for (unsigned i = 0; i < KEYS; i++) {
		uint32_t est = kc_hot_estimate(h, key_hash(i));

		assert_true(est >= i % 50 + 1);
		over += est - (i % 50 + 1);
	}
	/* 4 rows of 8192 counters for 2000 keys: collisions in all four rows are rare. */
	assert_true(over < KEYS / 10);
	assert_int_equal(kc_hot_estimate(h, key_hash(KEYS + 1)), 0);
	kc_hot_free(h);
}

/* Once the sample is full, every count halves: old popularity fades. */
static void test_sketch_aging(void **state)
{
	struct kc_hot *h = kc_hot_new(256); /* 1024 wide: ages after 10240 additions */
	uint64_t a = key_hash(1), b = key_hash(2);

	(void)state;
	assert_non_null(h);
	assert_int_equal(kc_hot_add(h, a, 100), 100);
	assert_false(kc_hot_age(h));
	kc_hot_add(h, b, 10140);
	assert_true(kc_hot_age(h));
	assert_int_equal(kc_hot_estimate(h, a), 50);
	assert_int_equal(kc_hot_estimate(h, b), 5070);
	assert_false(kc_hot_age(h)); /* the sample starts again */
	/* Saturates instead of wrapping. */
	kc_hot_add(h, a, UINT32_MAX);
	kc_hot_add(h, a, UINT32_MAX);
	assert_true(kc_hot_estimate(h, a) >= UINT32_MAX / 2);
	kc_hot_free(h);
}

/* ---- admission (kc_hot_note, kc_hot_admits: what kernel/cache.c decides with) ------------ */

/* Strictly more frequent than the victim, or not admitted. */
static void test_admits_rule(void **state)
{
	static const struct {
		uint32_t cand, victim;
		bool admit;
	} rows[] = {
	    {5, 3, true}, {4, 3, true},	 {3, 3, false},		{2, 3, false},
	    {1, 0, true}, {0, 0, false}, {UINT32_MAX, 0, true}, {0, UINT32_MAX, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (kc_hot_admits(rows[i].cand, rows[i].victim) != rows[i].admit)
			fail_msg("candidate %u victim %u: expected %d", rows[i].cand,
				 rows[i].victim, rows[i].admit);
}

/* A key requested once is never offered; from its KC_HOT_MIN-th request on it is. A scan of a
 * thousand distinct keys offers none of them. */
static void test_one_hit_wonder(void **state)
{
	struct kc_hot *h = kc_hot_new(5000);
	int offered = 0;

	(void)state;
	assert_non_null(h);
	assert_int_equal(KC_HOT_MIN, 2);
	assert_false(kc_hot_note(h, key_hash(1)));
	assert_true(kc_hot_note(h, key_hash(1)));
	assert_true(kc_hot_note(h, key_hash(1)));
	for (unsigned i = 100; i < 1100; i++)
		offered += kc_hot_note(h, key_hash(i));
	assert_int_equal(offered, 0);
	kc_hot_free(h);
}

/* With estimates from the sketch: a key seen more often than the resident gets in; as often,
 * or a one-hit wonder against a warm resident, does not. */
static void test_frequent_beats_victim(void **state)
{
	struct kc_hot *h = kc_hot_new(1024);
	uint64_t resident = key_hash(1), hot = key_hash(2), tie = key_hash(3), once = key_hash(4);

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < 3; i++)
		kc_hot_note(h, resident);
	for (int i = 0; i < 5; i++)
		kc_hot_note(h, hot);
	for (int i = 0; i < 3; i++)
		kc_hot_note(h, tie);
	kc_hot_note(h, once);
	assert_true(kc_hot_admits(kc_hot_estimate(h, hot), kc_hot_estimate(h, resident)));
	assert_false(kc_hot_admits(kc_hot_estimate(h, tie), kc_hot_estimate(h, resident)));
	assert_false(kc_hot_admits(kc_hot_estimate(h, once), kc_hot_estimate(h, resident)));
	kc_hot_free(h);
}

/* Ageing: a resident that was hot long ago loses its place to a key hot now, which it would
 * keep out without the halvings. */
static void test_ageing_lets_new_keys_in(void **state)
{
	struct kc_hot *h = kc_hot_new(256); /* 1024 wide: ages after 10240 additions */
	uint64_t old = key_hash(1), now = key_hash(2), filler = key_hash(3);

	(void)state;
	assert_non_null(h);
	kc_hot_add(h, old, 40);
	for (int round = 0; round < 2; round++) {
		kc_hot_add(h, filler, 10240);
		assert_true(kc_hot_age(h));
	}
	assert_int_equal(kc_hot_estimate(h, old), 10); /* 40 halved twice */
	for (int i = 0; i < 15; i++)
		kc_hot_note(h, now);
	assert_int_equal(kc_hot_estimate(h, now), 15);
	assert_true(kc_hot_admits(kc_hot_estimate(h, now), kc_hot_estimate(h, old)));
	assert_false(kc_hot_admits(15, 40)); /* what it would have been without ageing */
	kc_hot_free(h);
}

static struct kc_hot *shared;

static void *adder(void *arg)
{
	for (int i = 0; i < 100000; i++)
		kc_hot_add(shared, key_hash(7), 1);
	return arg;
}

/* Workers count concurrently without a lock and lose nothing (no aging in between). */
static void test_sketch_threads(void **state)
{
	pthread_t t[4];

	(void)state;
	shared = kc_hot_new(1 << 16); /* a sample far beyond 400000 additions */
	assert_non_null(shared);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(kc_hot_estimate(shared, key_hash(7)), 400000);
	kc_hot_free(shared);
}

/* ---- the memory tier's calls for the kernel tier ----------------------------------------- */

static _Atomic int64_t fake_now;
static int evicted, changed;
static char last_key[KC_KEY_MAX + 1];

static int64_t fake_clock(void)
{
	return atomic_load(&fake_now);
}

static void on_evict(void *ctx, const char *key, size_t nkey)
{
	(void)ctx;
	evicted++;
	snprintf(last_key, sizeof(last_key), "%.*s", (int)nkey, key);
}

static void on_change(void *ctx, const char *key, size_t nkey)
{
	(void)ctx;
	changed++;
	snprintf(last_key, sizeof(last_key), "%.*s", (int)nkey, key);
}

static int mem_setup(void **state)
{
	struct kc_mem *m = kc_mem_new(1 << 20, 4096);

	assert_non_null(m);
	atomic_store(&fake_now, 1000000);
	kc_mem_set_clock(fake_clock);
	kc_mem_set_evict_hook(m, on_evict, NULL);
	kc_mem_set_change_hook(m, on_change, NULL);
	evicted = changed = 0;
	*state = m;
	return 0;
}

static int mem_teardown(void **state)
{
	kc_mem_free(*state);
	kc_mem_set_clock(NULL);
	return 0;
}

static void set(struct kc_mem *m, const char *key, const char *val, int64_t exptime)
{
	struct kc_item *it = kc_item_new(key, strlen(key), 0, exptime, strlen(val));

	assert_non_null(it);
	memcpy(kc_item_value(it), val, strlen(val));
	assert_int_equal(kc_mem_store(m, KC_SET, it, 0, NULL), KC_STORED);
	kc_item_put(it);
}

struct seen {
	int calls;
	char val[64];
	int64_t deadline;
};

static void look(void *ctx, struct kc_item *it, int64_t deadline)
{
	struct seen *s = ctx;

	s->calls++;
	s->deadline = deadline;
	snprintf(s->val, sizeof(s->val), "%.*s", it ? (int)it->nval : 4,
		 it ? kc_item_value(it) : "NULL");
}

static struct seen with_item(struct kc_mem *m, const char *key)
{
	struct seen s = {0};

	kc_mem_with_item(m, key, strlen(key), look, &s);
	assert_int_equal(s.calls, 1);
	return s;
}

/* The installer sees the live item and its real deadline, and moves no counter. */
static void test_with_item(void **state)
{
	struct kc_mem *m = *state;
	struct kc_mem_stats before, after;
	struct seen s;

	set(m, "a", "one", 0);
	set(m, "e", "soon", 1000010);
	kc_mem_stats(m, &before);
	s = with_item(m, "a");
	assert_string_equal(s.val, "one");
	assert_int_equal(s.deadline, 0);
	s = with_item(m, "e");
	assert_string_equal(s.val, "soon");
	assert_int_equal(s.deadline, 1000010);
	s = with_item(m, "none");
	assert_string_equal(s.val, "NULL");
	kc_mem_stats(m, &after);
	assert_int_equal(after.hits, before.hits);
	assert_int_equal(after.misses, before.misses);

	/* A pending flush_all is a deadline for every item stored before it. */
	kc_mem_flush(m, 1000005);
	assert_int_equal(with_item(m, "a").deadline, 1000005);
	assert_int_equal(with_item(m, "e").deadline, 1000005);
	/* Expired: NULL, and the evict hook hears it leave. */
	atomic_store(&fake_now, 1000005);
	evicted = 0;
	assert_string_equal(with_item(m, "a").val, "NULL");
	assert_true(evicted >= 1);
}

/* touch, gat and a scheduled flush_all change lifetimes: the change hook hears each. */
static void test_change_hook(void **state)
{
	struct kc_mem *m = *state;
	struct kc_item *it;

	set(m, "t", "v", 0);
	set(m, "u", "w", 0);
	assert_int_equal(kc_mem_touch(m, "t", 1, 1000100), KC_TOUCHED);
	assert_int_equal(changed, 1);
	assert_string_equal(last_key, "t");
	assert_int_equal(kc_mem_touch(m, "nope", 4, 1000100), KC_NOT_FOUND);
	assert_int_equal(changed, 1);
	it = kc_mem_get_touch(m, "u", 1, 1000200);
	assert_non_null(it);
	kc_item_put(it);
	assert_int_equal(changed, 2);
	assert_string_equal(last_key, "u");
	it = kc_mem_get(m, "u", 1); /* a plain get changes nothing */
	kc_item_put(it);
	assert_int_equal(changed, 2);
	kc_mem_flush(m, 1000050); /* delayed: both items will vanish then */
	assert_int_equal(changed, 4);
	assert_int_equal(evicted, 0);
	kc_mem_flush(m, 0); /* now: they leave, through the evict hook */
	assert_int_equal(changed, 4);
	assert_int_equal(evicted, 2);
}

/* Accesses answered elsewhere count for eviction only. */
static void test_note_access(void **state)
{
	struct kc_mem *m = *state;
	struct kc_mem_stats before, after;

	set(m, "k", "v", 0);
	kc_mem_stats(m, &before);
	kc_mem_note_access(m, "k", 1, 1000);
	kc_mem_note_access(m, "absent", 6, 3);
	kc_mem_stats(m, &after);
	assert_int_equal(after.hits, before.hits);
	assert_int_equal(after.misses, before.misses);
	assert_int_equal(after.items, 1);
	assert_string_equal(with_item(m, "k").val, "v");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sketch_bounds),
	    cmocka_unit_test(test_sketch_aging),
	    cmocka_unit_test(test_sketch_threads),
	    cmocka_unit_test(test_admits_rule),
	    cmocka_unit_test(test_one_hit_wonder),
	    cmocka_unit_test(test_frequent_beats_victim),
	    cmocka_unit_test(test_ageing_lets_new_keys_in),
	    cmocka_unit_test_setup_teardown(test_with_item, mem_setup, mem_teardown),
	    cmocka_unit_test_setup_teardown(test_change_hook, mem_setup, mem_teardown),
	    cmocka_unit_test_setup_teardown(test_note_access, mem_setup, mem_teardown),
	};

	return cmocka_run_group_tests_name("hot", tests, NULL, NULL);
}
