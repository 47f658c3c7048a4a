/* test_journal.c: the write-behind journal (user/tiers/journal/journal*.c) on real files in
 * temporary directories: the record format, append/take/ack, superseding and per-key order,
 * backpressure, backoff and dead letters, segment rotation and compaction, and four appending
 * threads against a flusher thread. Recovery (crashes, torn tails, corruption, replay rules, a
 * model of random operations with reopens) is test_journal_recovery.c.
 */
#include "journal_test.h"

/* ---- round trip -------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct kc_journal_opts o = {0};
	struct kc_journal *j = jopen(&o, NULL);
	struct done d[5] = {0};
	struct kc_jrec *out[10];
	uint64_t next, replayed;
	char key[16], blob[16];

	(void)state;
	for (int i = 0; i < 5; i++) {
		int nb = snprintf(blob, sizeof(blob), "value-%d", i);

		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(kc_journal_append(j, i == 4 ? KC_JDEL : KC_JSET, 100 + i, key,
						   strlen(key), blob, i == 4 ? 0 : (size_t)nb,
						   on_done, &d[i]),
				 0);
	}
	for (int i = 0; i < 5; i++) {
		wait_calls(&d[i], 1);
		assert_int_equal(atomic_load(&d[i].status), 0);
	}
	assert_int_equal(stats(j).appended, 5);
	assert_true(stats(j).fsyncs >= 1);
	assert_int_equal(kc_journal_take(j, 0, out, 10, &next), 5);
	assert_int_equal(next, 0);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(blob, sizeof(blob), "value-%d", i);
		assert_string_equal(out[i]->key, key);
		assert_int_equal(out[i]->ver, 100 + i);
		assert_int_equal(out[i]->op, i == 4 ? KC_JDEL : KC_JSET);
		assert_int_equal(out[i]->attempts, 0);
		if (i < 4)
			assert_memory_equal(out[i]->blob, blob, out[i]->nblob);
		else
			assert_int_equal(out[i]->nblob, 0);
		if (i)
			assert_true(out[i]->id > out[i - 1]->id);
	}
	assert_int_equal(kc_journal_take(j, 0, out, 10, NULL), 0); /* all in flight */
	assert_int_equal(stats(j).in_flight, 5);
	assert_int_equal(kc_journal_wait_drained(j, 10), -ETIMEDOUT);
	for (int i = 0; i < 5; i++)
		kc_journal_ack(j, out[i]);
	assert_int_equal(kc_journal_wait_drained(j, 0), 0);
	assert_int_equal(stats(j).acked, 5);
	assert_int_equal(stats(j).pending, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(atomic_load(&d[i].calls), 1); /* once, never again */
	jclose(j);
	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 0);
	jclose(j);
}

/* Only a key's newest write is flushed, and never an older one after a newer one. */
static void test_supersede(void **state)
{
	struct kc_journal_opts o = {0};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *out[10], *a;
	uint64_t replayed;

	(void)state;
	append_wait(j, "a", 1, "a1");
	append_wait(j, "b", 1, "b1");
	append_wait(j, "a", 2, "a2");
	assert_int_equal(stats(j).superseded, 1);
	assert_int_equal(kc_journal_take(j, 0, out, 10, NULL), 2);
	assert_string_equal(out[0]->key, "b");
	assert_string_equal(out[1]->key, "a");
	assert_int_equal(out[1]->ver, 2);
	kc_journal_ack(j, out[0]);
	a = out[1];
	/* a newer write while the older is in flight waits for it */
	append_wait(j, "a", 3, "a3");
	assert_int_equal(kc_journal_take(j, 0, out, 10, NULL), 0);
	kc_journal_ack(j, a);
	assert_int_equal(kc_journal_take(j, 0, out, 10, NULL), 1);
	assert_int_equal(out[0]->ver, 3);
	/* a failed older write with a newer one waiting is dropped, not retried */
	a = out[0];
	append_wait(j, "a", 4, "a4");
	kc_journal_fail(j, a, 0, "timeout");
	assert_int_equal(stats(j).retries, 0);
	assert_int_equal(stats(j).superseded, 2);
	assert_int_equal(kc_journal_take(j, 1000000, out, 10, NULL), 1);
	assert_int_equal(out[0]->ver, 4);
	assert_int_equal(out[0]->attempts, 0);
	assert_int_equal(stats(j).pending, 1);
	jclose(j); /* a4 still in flight: pending on disk */
	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 1);
	assert_int_equal(kc_journal_take(j, 0, out, 10, NULL), 1);
	assert_int_equal(out[0]->ver, 4);
	assert_memory_equal(out[0]->blob, "a4", 2);
	kc_journal_ack(j, out[0]);
	jclose(j);
}

/* ---- backpressure -------------------------------------------------------------------------- */

static void test_backpressure(void **state)
{
	struct kc_journal_opts o = {.max_entries = 10};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *out[1];
	char key[16], big[64];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		append_wait(j, key, 1, "v");
	}
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "k10", 3, "v", 1, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stats(j).full_rejects, 1);
	assert_int_equal(stats(j).pending, 10);
	assert_int_equal(kc_journal_take(j, 0, out, 1, NULL), 1);
	kc_journal_ack(j, out[0]);
	append_wait(j, "k10", 1, "v");
	/* bad input */
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "", 0, "v", 1, NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(kc_journal_append(j, 3, 1, "k", 1, "v", 1, NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, big, KC_JKEY_MAX + 1, "v", 1, NULL, NULL),
			 -1);
	assert_int_equal(errno, EINVAL);
	while (kc_journal_take(j, 0, out, 1, NULL))
		kc_journal_ack(j, out[0]);
	jclose(j);

	o = (struct kc_journal_opts){.max_bytes = 100};
	j = jopen(&o, NULL);
	memset(big, 'x', sizeof(big));
	/* 2-byte keys and 38-byte blobs: 40 bytes each, two fit in 100 */
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b0", 2, big, 38, NULL, NULL), 0);
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b1", 2, big, 38, NULL, NULL), 0);
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b2", 2, big, 38, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stats(j).pending_bytes, 80);
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b3", 2, big, 0, NULL, NULL), 0);
	assert_int_equal(kc_journal_sync(j), 0);
	assert_int_equal(kc_journal_take(j, 0, out, 1, NULL), 1);
	kc_journal_ack(j, out[0]);
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b2", 2, big, 38, NULL, NULL), 0);
	/* one that could never fit */
	errno = 0;
	assert_int_equal(kc_journal_append(j, KC_JSET, 1, "b4", 2, big, 99, NULL, NULL), -1);
	assert_int_equal(errno, EMSGSIZE);
	jclose(j);
}

/* ---- retries, backoff, dead letters ---------------------------------------------------------- */

static void test_fail_and_dead(void **state)
{
	struct kc_journal_opts o = {
	    .max_attempts = 3, .backoff_min_ms = 100, .backoff_max_ms = 300};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *r, *out[4];
	struct kc_jdead dl[4];
	uint64_t now = 1000, next, id, count, replayed, bounds[] = {200, 300};

	(void)state;
	append_wait(j, "k", 7, "payload");
	r = take_one(j, now);
	id = r->id;
	for (int a = 1; a <= 2; a++) {
		kc_journal_fail(j, r, now, "redis down");
		assert_int_equal(stats(j).retries, a);
		/* not due before, due after: within [min, min(max, min << a)] */
		assert_int_equal(kc_journal_take(j, now + 99, out, 4, &next), 0);
		assert_true(next >= now + 100 && next <= now + bounds[a - 1]);
		assert_int_equal(kc_journal_take(j, next - 1, out, 4, NULL), 0);
		r = take_one(j, next);
		assert_int_equal(r->id, id);
		assert_int_equal(r->attempts, a);
		now = next;
	}
	kc_journal_fail(j, r, now, "redis down: connection refused");
	assert_int_equal(stats(j).dead, 1);
	assert_int_equal(stats(j).pending, 0);
	assert_int_equal(kc_journal_take(j, now + 100000, out, 4, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(kc_journal_dead_list(j, dl, 4), 1);
	assert_int_equal(dl[0].id, id);
	assert_int_equal(dl[0].attempts, 3);
	assert_int_equal(dl[0].nblob, 7);
	assert_string_equal(dl[0].key, "k");
	assert_string_equal(dl[0].why, "redis down: connection refused");
	assert_true(dl[0].when > 0);

	/* persisted: a reopened journal has it as a dead letter, and only so */
	assert_int_equal(kc_journal_sync(j), 0);
	jclose(j);
	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 0);
	assert_int_equal(kc_journal_dead_list(j, dl, 4), 1);
	assert_int_equal(dl[0].id, id);
	assert_string_equal(dl[0].why, "redis down: connection refused");

	/* a second one, on key m */
	append_wait(j, "m", 1, "mm");
	r = take_one(j, 0);
	for (int a = 0; a < 3; a++) {
		kc_journal_fail(j, r, 0, "store 503");
		if (a < 2)
			r = take_one(j, 1000000);
	}
	assert_int_equal(kc_journal_dead_list(j, dl, 1), 2); /* total, one filled */
	assert_int_equal(kc_journal_dead_replay(j, 999999, &count), -ENOENT);
	assert_int_equal(kc_journal_dead_replay(j, id, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(kc_journal_dead_list(j, dl, 4), 1);
	assert_string_equal(dl[0].key, "m");
	r = take_one(j, 0);
	assert_string_equal(r->key, "k");
	assert_true(r->id > id);
	assert_int_equal(r->attempts, 0);
	assert_int_equal(r->ver, 7);
	assert_memory_equal(r->blob, "payload", 7);
	kc_journal_ack(j, r);
	assert_int_equal(kc_journal_dead_replay(j, 0, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(stats(j).dead, 0);
	r = take_one(j, 0);
	assert_string_equal(r->key, "m");
	kc_journal_ack(j, r);

	/* a dead letter superseded by a newer write of its key goes */
	append_wait(j, "z", 1, "old");
	r = take_one(j, 0);
	for (int a = 0; a < 3; a++) {
		kc_journal_fail(j, r, 0, "nope");
		if (a < 2)
			r = take_one(j, 1000000);
	}
	assert_int_equal(stats(j).dead, 1);
	append_wait(j, "z", 2, "new");
	assert_int_equal(stats(j).dead, 0);
	r = take_one(j, 0);
	assert_int_equal(r->ver, 2);
	kc_journal_ack(j, r);
	assert_int_equal(kc_journal_sync(j), 0);
	jclose(j);
	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 0);
	assert_int_equal(kc_journal_dead_list(j, dl, 4), 0);
	jclose(j);
}

/* ---- rotation and compaction ----------------------------------------------------------------- */

static void test_rotation_compaction(void **state)
{
	struct kc_journal_opts o = {.segment_bytes = 4096};
	struct kc_journal *j = jopen(&o, NULL);
	struct kc_jrec *out[128], *first;
	char key[16], blob[101];
	uint64_t replayed;
	int nseg;

	(void)state;
	memset(blob, 'b', 100);
	blob[100] = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		append_wait(j, key, (uint64_t)i, blob);
	}
	nseg = count_segments(NULL, 0);
	assert_true(nseg >= 3);
	assert_int_equal(kc_journal_take(j, 0, out, 128, NULL), 100);
	first = out[0];
	kc_journal_fail(j, first, 0, "slow");
	for (int i = 1; i < 100; i++)
		kc_journal_ack(j, out[i]);
	/* k0 alone keeps the oldest segment: it is copied forward and every old file goes */
	assert_int_equal(kc_journal_sync(j), 0);
	assert_int_equal(count_segments(NULL, 0), 1);
	printf("journal rotation: %d segments of 4096 bytes, 1 after compaction\n", nseg);
	jclose(j);

	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 1);
	first = take_one(j, 0);
	assert_string_equal(first->key, "k0");
	assert_int_equal(first->attempts, 1); /* the FAIL record kept it */
	kc_journal_ack(j, first);
	assert_int_equal(kc_journal_sync(j), 0);
	assert_int_equal(count_segments(NULL, 0), 1); /* the old one went, the new one stays */
	jclose(j);
	j = jopen(&o, &replayed);
	assert_int_equal(replayed, 0);
	jclose(j);
}

/* ---- threads ------------------------------------------------------------------------------- */

#define THREADS 4
#define PER	10000
#define KEYS	500

static struct kc_journal *tj;
static atomic_int t_done, t_stop, t_order_bad;
static uint64_t last_ver[THREADS][KEYS];

static void count_done(void *ctx, int status)
{
	(void)ctx;
	if (status == 0)
		atomic_fetch_add(&t_done, 1);
}

static void *appender(void *arg)
{
	int t = (int)(intptr_t)arg;
	char key[32], blob[64];

	memset(blob, 'v', sizeof(blob));
	for (int i = 0; i < PER; i++) {
		int n = snprintf(key, sizeof(key), "t%d-%d", t, i % KEYS);

		while (kc_journal_append(tj, KC_JSET, (uint64_t)i + 1, key, (size_t)n, blob,
					 sizeof(blob), count_done, NULL))
			sched_yield(); /* EAGAIN: backpressure */
	}
	return NULL;
}

static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER;
static atomic_int t_ready_calls;

static void on_ready(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&t_ready_calls, 1);
	pthread_mutex_lock(&t_mu);
	pthread_cond_signal(&t_cv);
	pthread_mutex_unlock(&t_mu);
}

/* Sleeps until on_ready (or 10 ms, for the stop flag) when nothing is there to take. */
static void *flusher(void *arg)
{
	struct kc_jrec *out[64];

	(void)arg;
	while (!atomic_load(&t_stop)) {
		size_t n = kc_journal_take(tj, 0, out, 64, NULL);

		for (size_t k = 0; k < n; k++) {
			int t, i;

			sscanf(out[k]->key, "t%d-%d", &t, &i);
			if (out[k]->ver <= last_ver[t][i])
				atomic_fetch_add(&t_order_bad, 1);
			last_ver[t][i] = out[k]->ver;
			kc_journal_ack(tj, out[k]);
		}
		if (!n) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_mutex_lock(&t_mu);
			pthread_cond_timedwait(&t_cv, &t_mu, &ts);
			pthread_mutex_unlock(&t_mu);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct kc_journal_opts o = {.max_entries = 20000};
	pthread_t ta[THREADS], tf;
	struct kc_journal_stats s;
	struct timespec a, b;
	double secs;

	(void)state;
	tj = jopen(&o, NULL);
	kc_journal_on_ready(tj, on_ready, NULL);
	assert_int_equal(pthread_create(&tf, NULL, flusher, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&ta[t], NULL, appender, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(ta[t], NULL);
	for (int i = 0; i < 30000 && atomic_load(&t_done) < THREADS * PER; i++)
		usleep(1000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(atomic_load(&t_done), THREADS * PER);
	assert_int_equal(kc_journal_wait_drained(tj, 30000), 0);
	atomic_store(&t_stop, 1);
	pthread_join(tf, NULL);
	kc_journal_get_stats(tj, &s);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("journal: %d appends from %d threads in %.3f s: %.0f appends/s, %" PRIu64
	       " fsyncs (%.1f appends per fsync), %" PRIu64 " superseded, %" PRIu64
	       " full rejects\n",
	       THREADS * PER, THREADS, secs, THREADS * PER / secs, s.fsyncs,
	       (double)(THREADS * PER) / (double)(s.fsyncs ? s.fsyncs : 1), s.superseded,
	       s.full_rejects);
	assert_int_equal(s.appended, THREADS * PER);
	assert_int_equal(s.acked + s.superseded, THREADS * PER);
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.pending_bytes, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.dead, 0);
	assert_int_equal(atomic_load(&t_order_bad), 0);
	assert_true(atomic_load(&t_ready_calls) > 0);
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < KEYS; i++)
			assert_int_equal(last_ver[t][i],
					 PER - KEYS + i + 1); /* the last write won */
	jclose(tj);
}

/* ---- the record format ---------------------------------------------------------------------- */

static void test_format(void **state)
{
	struct kc_buf b = {0};
	struct kc_jview v = {.type = KC_JR_LETTER,
			     .id = 42,
			     .op = KC_JDEL,
			     .attempts = 8,
			     .ver = 9,
			     .when = 1700000000,
			     .key = "key",
			     .nkey = 3,
			     .blob = "",
			     .why = "why not",
			     .nwhy = 7},
			w;
	char e[128];

	(void)state;
	assert_int_equal(kc_journal_put_record(&b, &v), 0);
	assert_int_equal(kc_journal_parse_record(b.data, b.len, &w, e, sizeof(e)), (ssize_t)b.len);
	assert_int_equal(w.type, KC_JR_LETTER);
	assert_int_equal(w.id, 42);
	assert_int_equal(w.attempts, 8);
	assert_int_equal(w.when, 1700000000);
	assert_memory_equal(w.why, "why not", 7);
	for (size_t n = 0; n < b.len; n++) /* every prefix is a torn record */
		assert_int_equal(kc_journal_parse_record(b.data, n, &w, e, sizeof(e)), 0);
	b.data[40] ^= 1;
	assert_int_equal(kc_journal_parse_record(b.data, b.len, &w, e, sizeof(e)), -EBADMSG);
	assert_non_null(strstr(e, "payload checksum"));
	b.data[17] ^= 1; /* the length */
	assert_int_equal(kc_journal_parse_record(b.data, b.len, &w, e, sizeof(e)), -EBADMSG);
	assert_non_null(strstr(e, "header checksum"));
	v.nkey = 0;
	assert_int_equal(kc_journal_put_record(&b, &v), -EINVAL);
	kc_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_supersede, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_and_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_compaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
