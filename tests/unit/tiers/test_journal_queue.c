/* test_journal_queue.c: the write-behind queue's accounting (journal.c's append,
 * journal_queue.c's take, ack and fail, journal_index.c's resolve): pending entries and bytes go
 * up on append and down on ack, supersede and death, in-flight follows take and ack/fail, dead
 * letters keep counting against the bounds until they go, a refusal changes nothing but its
 * counter, and no counter ever wraps below zero. Files are real, in a temporary directory
 * (journal_test.h). */
#include "journal_test.h"

/* Every counter of s is plausible: one that went below zero would be near 2^64. */
static void sane(const struct kc_journal_stats *s)
{
	const uint64_t huge = 1ull << 40;

	assert_true(s->pending < huge && s->pending_bytes < huge && s->in_flight < huge &&
		    s->dead < huge && s->acked < huge && s->superseded < huge);
	assert_true(s->in_flight <= s->pending);
	assert_true(s->pending_bytes >= s->pending); /* every entry has a key */
}

/* pending, pending_bytes, in_flight, dead: exactly these. */
static void check(struct kc_journal *j, uint64_t pending, uint64_t bytes, uint64_t in_flight,
		  uint64_t dead)
{
	struct kc_journal_stats s = stats(j);

	sane(&s);
	if (s.pending != pending || s.pending_bytes != bytes || s.in_flight != in_flight ||
	    s.dead != dead)
		fail_msg("pending %" PRIu64 " bytes %" PRIu64 " in flight %" PRIu64 " dead %" PRIu64
			 ", expected %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
			 s.pending, s.pending_bytes, s.in_flight, s.dead, pending, bytes, in_flight,
			 dead);
}

/* The oldest takeable entry. */
static struct kc_jrec *take_first(struct kc_journal *j)
{
	struct kc_jrec *r;

	assert_int_equal(kc_journal_take(j, 0, &r, 1, NULL), 1);
	return r;
}

/* Dead on its first failure (max_attempts 1). */
static void kill_one(struct kc_journal *j)
{
	kc_journal_fail(j, take_first(j), 0, "store 503");
}

static void test_counts_follow_entries(void **state)
{
	struct kc_journal_opts o = {0};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *out[8];
	struct done d = {0};

	(void)state;
	check(j, 0, 0, 0, 0);
	append_wait(j, "a", 1, "12345");       /* 6 bytes */
	append_wait(j, "bb", 1, "1234567890"); /* 12 */
	assert_int_equal(kc_journal_append(j, KC_JDEL, 1, "ccc", 3, NULL, 0, on_done, &d), 0);
	wait_calls(&d, 1); /* 3 */
	check(j, 3, 21, 0, 0);
	assert_int_equal(stats(j).appended, 3);
	/* counted when accepted, before it is durable */
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "d", 1, "x", 1, on_done, &d), 0);
	check(j, 4, 23, 0, 0);
	wait_calls(&d, 2);
	assert_int_equal(stats(j).appended, 4);

	assert_int_equal(kc_journal_take(j, 0, out, 2, NULL), 2);
	assert_string_equal(out[0]->key, "a");
	assert_string_equal(out[1]->key, "bb");
	check(j, 4, 23, 2, 0); /* in flight is still pending */
	kc_journal_ack(j, out[0]);
	check(j, 3, 17, 1, 0);
	assert_int_equal(stats(j).acked, 1);
	kc_journal_fail(j, out[1], 0, "redis down");
	check(j, 3, 17, 0, 0); /* due again later, still pending */
	assert_int_equal(stats(j).retries, 1);

	assert_int_equal(kc_journal_take(j, 1000000, out, 8, NULL), 3);
	check(j, 3, 17, 3, 0);
	for (int i = 0; i < 3; i++)
		kc_journal_ack(j, out[i]);
	check(j, 0, 0, 0, 0);
	assert_int_equal(stats(j).acked, 4);
	assert_int_equal(kc_journal_wait_drained(j, 100), 0);
	jclose(j);
}

/* A newer write of a key resolves the older entry: counts drop by the older one's bytes, and an
 * older one in flight leaves when its flush fails (not retried) or is acked. */
static void test_supersede_counts(void **state)
{
	struct kc_journal_opts o = {0};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *r;

	(void)state;
	append_wait(j, "k", 1, "old");	 /* 4 bytes */
	append_wait(j, "k", 2, "newer"); /* 6 */
	check(j, 1, 6, 0, 0);
	assert_int_equal(stats(j).superseded, 1);
	r = take_one(j, 0);
	assert_int_equal(r->ver, 2);
	append_wait(j, "k", 3, "newest!"); /* 8; the one in flight stays */
	check(j, 2, 14, 1, 0);
	kc_journal_fail(j, r, 0, "redis down");
	check(j, 1, 8, 0, 0);
	assert_int_equal(stats(j).retries, 0);
	assert_int_equal(stats(j).superseded, 2);
	r = take_one(j, 0);
	assert_int_equal(r->ver, 3);
	append_wait(j, "k", 4, "x"); /* 2 */
	check(j, 2, 10, 1, 0);
	kc_journal_ack(j, r); /* acked, not superseded: it was flushed */
	check(j, 1, 2, 0, 0);
	assert_int_equal(stats(j).superseded, 2);
	kc_journal_ack(j, take_one(j, 0));
	check(j, 0, 0, 0, 0);
	jclose(j);
}

/* Dead letters leave pending but keep their place in both bounds until a newer write of their
 * key drops them; a full queue refuses with EAGAIN and changes only full_rejects; an entry
 * larger than max_bytes is EMSGSIZE, not "full". */
static void test_bounds_and_dead_letters(void **state)
{
	struct kc_journal_opts o = {.max_entries = 3, .max_bytes = 100, .max_attempts = 1};
	struct kc_journal *j = jopen(&o, NULL);
	char blob[128];

	(void)state;
	memset(blob, 'x', sizeof(blob));
	blob[39] = 0;
	append_wait(j, "d", 1, blob); /* 40 bytes */
	kill_one(j);
	check(j, 0, 0, 0, 1);
	append_wait(j, "e", 1, blob); /* 40 */
	check(j, 1, 40, 0, 1);
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "f", 1, blob, 39, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN); /* 40 dead + 40 + 40 > 100 */
	check(j, 1, 40, 0, 1);
	assert_int_equal(stats(j).full_rejects, 1);
	blob[9] = 0;
	append_wait(j, "f", 1, blob); /* 10 */
	check(j, 2, 50, 0, 1);
	errno = 0; /* two pending and one dead fill max_entries (bytes would fit) */
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "g", 1, "", 0, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stats(j).full_rejects, 2);
	check(j, 2, 50, 0, 1);

	kc_journal_ack(j, take_first(j)); /* e */
	check(j, 1, 10, 0, 1);
	append_wait(j, "d", 2, "y"); /* newer than the dead letter: it goes */
	check(j, 2, 12, 0, 0);
	assert_int_equal(stats(j).superseded, 1);
	memset(blob, 'x', sizeof(blob));
	blob[87] = 0;
	append_wait(j, "g", 1, blob); /* 88, exactly 100: the dead letter's place is free again */
	check(j, 3, 100, 0, 0);
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "h", 1, blob, 100, NULL, NULL), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(stats(j).full_rejects, 2);
	for (int i = 0; i < 3; i++)
		kc_journal_ack(j, take_first(j));
	check(j, 0, 0, 0, 0);
	jclose(j);
}

/* A replayed dead letter is pending again, with its bytes; dead goes to 0. */
static void test_replay_counts(void **state)
{
	struct kc_journal_opts o = {.max_attempts = 1};
	struct kc_journal *j = jopen(&o, NULL);
	uint64_t count;

	(void)state;
	append_wait(j, "k", 1, "payload"); /* 8 bytes */
	kill_one(j);
	check(j, 0, 0, 0, 1);
	assert_int_equal(kc_journal_dead_replay(j, 0, &count), 0);
	assert_int_equal(count, 1);
	check(j, 1, 8, 0, 0);
	kc_journal_ack(j, take_one(j, 0));
	check(j, 0, 0, 0, 0);
	jclose(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counts_follow_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_supersede_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds_and_dead_letters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_counts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
