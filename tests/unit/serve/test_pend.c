/* test_pend: a connection's waits on the lower tiers (serve/pend.c) against pend.h's contract,
 * over fake tiers (fake_tiers.h) that the test completes in the order it chooses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_tiers.h"
#include "serve/pend.h"

static struct kc_tiers *const T = (struct kc_tiers *)&fake; /* any non-NULL handle */

struct fixture {
	struct kc_mem *mem;
	struct kc_pend *p;
	struct kc_buf out;
	int done;
};

static void on_done(void *ctx)
{
	((struct fixture *)ctx)->done++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_reset(T);
	f->mem = kc_mem_new(4 << 20, 64 << 10);
	f->p = kc_pend_new(T, 3);
	assert_non_null(f->mem);
	assert_non_null(f->p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kc_pend_free(f->p);
	kc_buf_free(&f->out);
	kc_mem_free(f->mem);
	free(f);
	return 0;
}

#define K(s) s, strlen(s)

static void mem_put(struct kc_mem *m, const char *key, const char *val)
{
	struct kc_item *it = fake_item(key, strlen(key), val);

	assert_int_equal(kc_mem_store(m, KC_SET, it, 0, NULL), KC_STORED);
	kc_item_put(it);
}

/* need: true (and recorded once) for a key not in memory that may be below; false for a key in
 * memory or known absent, which are never fetched. */
static void test_need_records(void **state)
{
	struct fixture *f = *state;

	mem_put(f->mem, "here", "v");
	assert_true(kc_pend_need(f->p, f->mem, K("a")));
	assert_true(kc_pend_need(f->p, f->mem, K("a"))); /* repeated in one command */
	assert_false(kc_pend_need(f->p, f->mem, K("here")));
	assert_false(kc_pend_need(f->p, f->mem, K("none:x")));
	assert_true(kc_pend_need(f->p, f->mem, K("b")));
	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	assert_int_equal(fake.n, 2);
	assert_int_equal(fake_count(FAKE_FETCH), 2);
	assert_memory_equal(fake.calls[0].key, "a", 1);
	assert_memory_equal(fake.calls[1].key, "b", 1);
	assert_int_equal(fake.calls[0].worker, 3);
	assert_int_equal(f->done, 0);
	fake_fetched(1, NULL);
	fake_fetched(0, NULL);
	assert_int_equal(f->done, 1);
	/* resolved for this command: no second fetch */
	assert_false(kc_pend_need(f->p, f->mem, K("a")));
}

/* lookup: suspends on the first miss; after the run, the same command finds what was fetched (a
 * new reference each time) or NULL without suspending; once the command is done, it is
 * forgotten and the next command suspends again. */
static void test_lookup_cycle(void **state)
{
	struct fixture *f = *state;
	bool suspend = false;
	struct kc_item *it;

	assert_null(kc_pend_lookup(f->p, K("a"), &suspend));
	assert_true(suspend);
	suspend = false;
	assert_null(kc_pend_lookup(f->p, K("gone"), &suspend));
	assert_true(suspend);
	suspend = false;
	assert_null(kc_pend_lookup(f->p, K("none:x"), &suspend));
	assert_false(suspend); /* known absent: not worth a wait */

	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	assert_int_equal(fake_count(FAKE_FETCH), 2);
	fake_fetched(0, "value-a");
	assert_int_equal(f->done, 0); /* one still outstanding */
	fake_fetched(1, NULL);
	assert_int_equal(f->done, 1);

	it = kc_pend_lookup(f->p, K("a"), &suspend);
	assert_non_null(it);
	assert_false(suspend);
	assert_int_equal(it->nval, 7);
	assert_memory_equal(kc_item_value(it), "value-a", 7);
	assert_int_equal(it->refs, 2); /* pend's and ours */
	kc_item_put(it);
	assert_null(kc_pend_lookup(f->p, K("gone"), &suspend));
	assert_false(suspend); /* resolved as absent */

	kc_pend_command_done(f->p);
	assert_null(kc_pend_lookup(f->p, K("a"), &suspend));
	assert_true(suspend);
}

/* A run with nothing outstanding finishes inside kc_pend_run (conn's WAIT_EARLY). */
static void test_run_nothing_finishes_at_once(void **state)
{
	struct fixture *f = *state;

	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	assert_int_equal(f->done, 1);
	assert_int_equal(fake.n, 0);
	fake.immediate = true; /* callbacks inside the call: done still comes once, at the end */
	assert_true(kc_pend_need(f->p, f->mem, K("a")));
	assert_true(kc_pend_need(f->p, f->mem, K("b")));
	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	assert_int_equal(f->done, 2);
	assert_int_equal(fake.n, 2);
}

/* Writes: one durable write per distinct key, done once all are durable; the reply after
 * reply_mark is left alone on success. */
static void test_write_ok(void **state)
{
	struct fixture *f = *state;

	assert_false(kc_pend_has_writes(f->p));
	kc_pend_wrote(f->p, K("k1"));
	kc_pend_wrote(f->p, K("k1"));
	kc_pend_wrote(f->p, K("k2"));
	assert_true(kc_pend_has_writes(f->p));
	kc_buf_puts(&f->out, "VALUE x 0 1\r\nx\r\nEND\r\nSTORED\r\n");
	kc_pend_run(f->p, KC_WAIT_WRITE, &f->out, 21, on_done, f);
	assert_false(kc_pend_has_writes(f->p)); /* handed over */
	assert_int_equal(fake_count(FAKE_WRITE), 2);
	assert_memory_equal(fake.calls[0].key, "k1", 2);
	assert_memory_equal(fake.calls[1].key, "k2", 2);
	fake_written(0, NULL);
	assert_int_equal(f->done, 0);
	fake_written(1, NULL);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->out.len, 29);
	assert_memory_equal(f->out.data, "VALUE x 0 1\r\nx\r\nEND\r\nSTORED\r\n", 29);
}

/* A failed write turns the bytes from reply_mark on into one SERVER_ERROR with the first
 * reason; the replies before the mark stay; the next run starts clean. */
static void test_write_fails(void **state)
{
	struct fixture *f = *state;
	static const char before[] = "END\r\n";

	kc_pend_wrote(f->p, K("k1"));
	kc_pend_wrote(f->p, K("k2"));
	kc_buf_puts(&f->out, "END\r\nSTORED\r\n");
	kc_pend_run(f->p, KC_WAIT_WRITE, &f->out, sizeof(before) - 1, on_done, f);
	fake_written(1, "redis: timeout");
	fake_written(0, "disk full");
	assert_int_equal(f->done, 1);
	kc_buf_append(&f->out, "", 1);
	assert_string_equal(f->out.data, "END\r\nSERVER_ERROR redis: timeout\r\n");

	f->out.len = 0;
	kc_buf_puts(&f->out, "STORED\r\n");
	kc_pend_wrote(f->p, K("k3"));
	kc_pend_run(f->p, KC_WAIT_WRITE, &f->out, 0, on_done, f);
	fake_written(2, NULL);
	assert_int_equal(f->done, 2);
	assert_int_equal(f->out.len, 8); /* no stale failure */
}

/* flush_all: one flush call with its time; a write wait with writes and a flush waits for both. */
static void test_flush(void **state)
{
	struct fixture *f = *state;

	kc_pend_flush(f->p, 1234);
	assert_true(kc_pend_has_writes(f->p));
	kc_pend_wrote(f->p, K("k"));
	kc_buf_puts(&f->out, "OK\r\n");
	kc_pend_run(f->p, KC_WAIT_WRITE, &f->out, 0, on_done, f);
	assert_false(kc_pend_has_writes(f->p));
	assert_int_equal(fake_count(FAKE_FLUSH), 1);
	assert_int_equal(fake_count(FAKE_WRITE), 1);
	assert_int_equal(fake.calls[1].kind, FAKE_FLUSH);
	assert_int_equal(fake.calls[1].when, 1234);
	/* the protocol's flush_all never persists nor reaches other nodes (issue 13) */
	assert_int_equal(fake.calls[1].scope, KC_FLUSH_LOCAL);
	fake_written(1, NULL);
	assert_int_equal(f->done, 0);
	fake_written(0, NULL);
	assert_int_equal(f->done, 1);
}

/* Cancellation: freed while a run is under way (its connection closed), pend waits for the
 * outstanding calls, drops what they bring and never calls done. */
static void test_free_during_run(void **state)
{
	struct fixture *f = *state;
	struct kc_item *it = fake_item(K("a"), "v");
	struct fake_call *c;

	assert_true(kc_pend_need(f->p, f->mem, K("a")));
	assert_true(kc_pend_need(f->p, f->mem, K("b")));
	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	kc_pend_free(f->p);
	f->p = NULL;
	c = &fake.calls[0];
	kc_item_get(it);
	c->completed = true;
	c->fetch(c->ctx, it); /* pend takes this reference and must drop it */
	assert_int_equal(it->refs, 1);
	fake_fetched(1, "late");
	assert_int_equal(f->done, 0);
	kc_item_put(it);
}

/* Freed while a write run is under way: the failure is not written into the gone connection's
 * buffer, done is not called. */
static void test_free_during_write(void **state)
{
	struct fixture *f = *state;
	struct kc_buf *out = calloc(1, sizeof(*out));

	kc_buf_puts(out, "STORED\r\n");
	kc_pend_wrote(f->p, K("k"));
	kc_pend_run(f->p, KC_WAIT_WRITE, out, 0, on_done, f);
	kc_pend_free(f->p);
	f->p = NULL;
	kc_buf_free(out);
	free(out); /* the connection is gone: pend must not touch it */
	fake_written(0, "disk full");
	assert_int_equal(f->done, 0);
}

/* At most 1024 keys per round: the rest goes on without the lower tiers this time. */
static void test_key_limit(void **state)
{
	struct fixture *f = *state;
	char key[16];
	int wanted = 0;

	for (int i = 0; i < 1100; i++) {
		int n = snprintf(key, sizeof(key), "key%d", i);

		wanted += kc_pend_need(f->p, f->mem, key, (size_t)n);
	}
	assert_int_equal(wanted, 1024);
	kc_pend_run(f->p, KC_WAIT_FETCH, &f->out, 0, on_done, f);
	assert_int_equal(fake_count(FAKE_FETCH), 1024);
	for (int i = 0; i < 1024; i++)
		fake_fetched(i, NULL);
	assert_int_equal(f->done, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_need_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_cycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_nothing_finishes_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_during_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_during_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_limit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
