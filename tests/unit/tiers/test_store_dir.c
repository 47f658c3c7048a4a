/* test_store_dir.c: the object store's directory backend (user/tiers/store/store_dir*.c,
 * store_idx.c) and the object format (user/tiers/store/store.c): round trips with binary keys and
 * values, collision safety, corruption detection, LRU eviction under max_bytes, FULL, the index
 * rebuilt at reopen, stale temp files, and 4 threads hammering shared keys with self-checking
 * values (no torn reads).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "tiers/store/store.h"
#include "../../lib/selfval.h"

/* ---- helpers ------------------------------------------------------------------------------- */

struct fix {
	char dir[64];
	struct kc_store *s;
	char err[512];
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	kc_log_set_level(KC_LOG_ERROR);
	strcpy(f->dir, "/tmp/kc-store-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	kc_store_close(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct kc_store *reopen(struct fix *f, uint64_t max)
{
	struct kc_store_opts o = {.spec = f->dir, .max_bytes = max};

	kc_store_close(f->s);
	f->s = kc_store_open(&o, f->err, sizeof(f->err));
	if (!f->s)
		fail_msg("open %s: %s", f->dir, f->err);
	assert_string_equal(kc_store_kind(f->s), "dir");
	return f->s;
}

static enum kc_store_res put(struct fix *f, const char *key, const char *val)
{
	return kc_store_put(f->s, key, strlen(key), val, strlen(val), f->err, sizeof(f->err));
}

/* get as a string; "" with the result in *r otherwise */
static char *get(struct fix *f, const char *key, enum kc_store_res *r)
{
	void *v = NULL;
	size_t n = 0;
	char *s;

	*r = kc_store_get(f->s, key, strlen(key), &v, &n, f->err, sizeof(f->err));
	s = calloc(1, n + 1);
	if (*r == KC_STORE_OK) {
		assert_non_null(v);
		memcpy(s, v, n);
	} else {
		assert_null(v);
	}
	free(v);
	return s;
}

static void expect_get(struct fix *f, const char *key, const char *want)
{
	enum kc_store_res r;
	char *got = get(f, key, &r);

	if (!want) {
		assert_int_equal(r, KC_STORE_MISS);
	} else {
		if (r != KC_STORE_OK)
			fail_msg("get %s: %s: %s", key, kc_store_res_name(r), f->err);
		assert_string_equal(got, want);
	}
	free(got);
}

static void expect_hit(struct fix *f, const char *key)
{
	enum kc_store_res r;

	free(get(f, key, &r));
	if (r != KC_STORE_OK)
		fail_msg("get %s: %s: %s", key, kc_store_res_name(r), f->err);
}

static void obj_path(struct fix *f, const char *key, size_t nkey, char *out, size_t outlen)
{
	char a[65];

	kc_store_addr(key, nkey, a);
	snprintf(out, outlen, "%s/objects/%.2s/%.2s/%s", f->dir, a, a + 2, a);
}

static int count_files(const char *dir)
{
	char cmd[256];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find %s -type f | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static struct kc_store_stats stats(struct fix *f)
{
	struct kc_store_stats st;

	kc_store_get_stats(f->s, &st);
	return st;
}

#define OBJ(nkey, nval) ((uint64_t)KC_STORE_OBJ_HDR + (nkey) + (nval))

/* ---- tests --------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct fix *f = *state;
	struct kc_store_stats st;

	reopen(f, 0);
	expect_get(f, "k1", NULL);
	assert_int_equal(put(f, "k1", "hello"), KC_STORE_OK);
	expect_get(f, "k1", "hello");
	st = stats(f);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.bytes, OBJ(2, 5));
	assert_int_equal(kc_store_del(f->s, "k1", 2, f->err, sizeof(f->err)), KC_STORE_OK);
	assert_int_equal(kc_store_del(f->s, "k1", 2, f->err, sizeof(f->err)), KC_STORE_MISS);
	expect_get(f, "k1", NULL);
	st = stats(f);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.gets, 3);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.puts, 1);
	assert_int_equal(st.dels, 2);
	assert_int_equal(st.errors, 0);
}

static void test_binary_and_overwrite(void **state)
{
	struct fix *f = *state;
	char key[300], *val = malloc(200000);
	void *v;
	size_t n;

	reopen(f, 0);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (char)(i * 7); /* NULs, 0xff, '/', newlines */
	for (size_t i = 0; i < 200000; i++)
		val[i] = (char)(i % 251 == 0 ? 0 : i * 13);
	assert_int_equal(kc_store_put(f->s, key, sizeof(key), val, 200000, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(kc_store_get(f->s, key, sizeof(key), &v, &n, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(n, 200000);
	assert_memory_equal(v, val, n);
	free(v);
	/* a key that differs in its last byte only is another object */
	key[299] ^= 1;
	assert_int_equal(kc_store_get(f->s, key, sizeof(key), &v, &n, f->err, sizeof(f->err)),
			 KC_STORE_MISS);
	key[299] ^= 1;
	/* overwrite with a shorter value: one object, the new size */
	assert_int_equal(kc_store_put(f->s, key, sizeof(key), "xy", 2, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(kc_store_get(f->s, key, sizeof(key), &v, &n, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(v, "xy", 2);
	free(v);
	assert_int_equal(stats(f).objects, 1);
	assert_int_equal(stats(f).bytes, OBJ(300, 2));
	free(val);
}

static void test_empty_value_and_key_limits(void **state)
{
	struct fix *f = *state;
	char big[KC_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t n = 99;

	reopen(f, 0);
	assert_int_equal(kc_store_put(f->s, "empty", 5, NULL, 0, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(kc_store_get(f->s, "empty", 5, &v, &n, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_non_null(v);
	assert_int_equal(n, 0);
	free(v);
	memset(big, 'k', sizeof(big));
	assert_int_equal(kc_store_put(f->s, big, KC_STORE_KEY_MAX, "v", 1, f->err, sizeof(f->err)),
			 KC_STORE_OK);
	assert_int_equal(kc_store_put(f->s, big, sizeof(big), "v", 1, f->err, sizeof(f->err)),
			 KC_STORE_ERR);
	assert_non_null(strstr(f->err, "1..1024"));
	assert_int_equal(kc_store_get(f->s, big, 0, &v, &n, f->err, sizeof(f->err)), KC_STORE_ERR);
	assert_int_equal(stats(f).errors, 2);
}

/* An object of key "alpha" planted at the address of key "beta" (what a SHA-256 collision
 * would look like) is never returned for beta, nor deleted by a del of beta. */
static void test_collision_safety(void **state)
{
	struct fix *f = *state;
	char pa[256], pb[256], cmd[1024];

	reopen(f, 0);
	assert_int_equal(put(f, "alpha", "alpha-value"), KC_STORE_OK);
	obj_path(f, "alpha", 5, pa, sizeof(pa));
	obj_path(f, "beta", 4, pb, sizeof(pb));
	snprintf(cmd, sizeof(cmd), "mkdir -p $(dirname %s) && cp %s %s", pb, pa, pb);
	assert_int_equal(system(cmd), 0);
	expect_get(f, "beta", NULL);
	assert_int_equal(kc_store_del(f->s, "beta", 4, f->err, sizeof(f->err)), KC_STORE_MISS);
	assert_int_equal(access(pb, F_OK), 0);
	expect_get(f, "alpha", "alpha-value");
	assert_int_equal(stats(f).corrupt, 0);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corruption(void **state)
{
	struct fix *f = *state;
	char p[256];
	enum kc_store_res r;
	struct kc_store_stats st;
	/* a byte in the value, in the key, in the value length, and a truncation */
	off_t where[] = {KC_STORE_OBJ_HDR + 3 + 5, KC_STORE_OBJ_HDR + 1, 9, -1};

	reopen(f, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(put(f, "key", "some value bytes"), KC_STORE_OK);
		obj_path(f, "key", 3, p, sizeof(p));
		if (where[i] >= 0)
			flip_byte(p, where[i]);
		else
			assert_int_equal(truncate(p, KC_STORE_OBJ_HDR + 6), 0);
		free(get(f, "key", &r));
		assert_int_equal(r, KC_STORE_CORRUPT);
		assert_non_null(strstr(f->err, p + strlen(f->dir))); /* names the object */
		assert_int_equal(access(p, F_OK), -1);		     /* removed */
		expect_get(f, "key", NULL);
	}
	st = stats(f);
	assert_int_equal(st.corrupt, 4);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.errors, 0);
}

static void test_lru_eviction(void **state)
{
	struct fix *f = *state;
	const uint64_t one = OBJ(1, 100);
	char v[101];

	memset(v, 'v', 100);
	v[100] = 0;
	reopen(f, 3 * one + 10);
	assert_int_equal(put(f, "a", v), KC_STORE_OK);
	assert_int_equal(put(f, "b", v), KC_STORE_OK);
	assert_int_equal(put(f, "c", v), KC_STORE_OK);
	expect_get(f, "a", v); /* order now b, c, a */
	assert_int_equal(put(f, "d", v), KC_STORE_OK);
	expect_get(f, "b", NULL);
	assert_int_equal(stats(f).evictions, 1);
	assert_int_equal(put(f, "e", v), KC_STORE_OK); /* evicts c */
	expect_get(f, "c", NULL);
	expect_get(f, "a", v);
	expect_get(f, "d", v);
	expect_get(f, "e", v);
	assert_int_equal(stats(f).evictions, 2);
	assert_int_equal(stats(f).objects, 3);
	assert_int_equal(stats(f).bytes, 3 * one);
	assert_int_equal(count_files(f->dir), 3 + 1); /* + the lock file */
}

static void test_full(void **state)
{
	struct fix *f = *state;
	char tmp[128], *big = calloc(1, 3000);
	struct kc_store_stats st;

	reopen(f, 2000);
	assert_int_equal(put(f, "small", "kept"), KC_STORE_OK);
	memset(big, 'x', 2500);
	assert_int_equal(put(f, "big", big), KC_STORE_FULL);
	assert_non_null(strstr(f->err, "exceeds the limit of 2000 bytes"));
	expect_get(f, "small", "kept");
	expect_get(f, "big", NULL);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
	assert_int_equal(count_files(tmp), 0);
	st = stats(f);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.evictions, 0); /* nothing was evicted for a put that cannot fit */
	assert_int_equal(st.max_bytes, 2000);
	free(big);
}

static void test_reopen_rebuilds_index(void **state)
{
	struct fix *f = *state;
	struct kc_store_stats a, b;
	char key[32], path[256], val[600];
	struct timespec ts[2];

	reopen(f, 0);
	memset(val, 'q', sizeof(val));
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(kc_store_put(f->s, key, strlen(key), val, (size_t)(i * 7) % 600,
					      f->err, sizeof(f->err)),
				 KC_STORE_OK);
	}
	a = stats(f);
	/* Recency across a restart comes from the files' times: make key-7 the oldest and
	 * key-9 the next oldest, everything else recent. */
	for (int i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "key-%d", i ? 9 : 7);
		obj_path(f, key, strlen(key), path, sizeof(path));
		ts[0] = ts[1] = (struct timespec){1000000 + i, 0};
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	reopen(f, 0);
	b = stats(f);
	assert_int_equal(a.objects, 300);
	assert_int_equal(b.objects, a.objects);
	assert_int_equal(b.bytes, a.bytes);
	expect_hit(f, "key-299");
	/* a limit just below the total less key-7 evicts the two oldest at open */
	reopen(f, a.bytes - OBJ(5, 7 * 7) - 1);
	expect_get(f, "key-7", NULL);
	expect_hit(f, "key-8");
	expect_get(f, "key-9", NULL);
	assert_int_equal(stats(f).objects, 298);
}

static void test_stale_tmp_and_lock(void **state)
{
	struct fix *f = *state;
	struct kc_store_opts o = {.spec = f->dir};
	char p[128], err[256];
	int fd;

	reopen(f, 0);
	kc_store_close(f->s);
	f->s = NULL;
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/tmp/abc.%d.%d", f->dir, 1234, i);
		fd = open(p, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "half", 4), 4);
		close(fd);
	}
	reopen(f, 0);
	snprintf(p, sizeof(p), "%s/tmp", f->dir);
	assert_int_equal(count_files(p), 0);
	assert_int_equal(stats(f).objects, 0);
	/* a second store on the same directory is refused while the first is open */
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
}

static void test_open_errors(void **state)
{
	struct fix *f = *state;
	char spec[128], err[256];
	struct kc_store_opts o = {.spec = spec};
	int fd;

	snprintf(spec, sizeof(spec), "%s/file", f->dir);
	fd = open(spec, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_true(strncmp(err, "store: ", 7) == 0 && strstr(err, "/file: Not a directory"));
	snprintf(spec, sizeof(spec), "%s/file/sub", f->dir);
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/file/sub: Not a directory"));
	strcpy(spec, "");
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "empty spec"));
	strcpy(spec, "ftp://host/x");
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown scheme"));
	strcpy(spec, "s3:///prefix");
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_string_equal(err, "store: s3 URL: missing bucket (s3://bucket/prefix)");
}

/* ---- threads ------------------------------------------------------------------------------- */

#define VAL_SPAN 3000 /* values of 8 to 8 + VAL_SPAN - 1 bytes */

struct worker {
	struct kc_store *s;
	int id;
	int bad, hits, errors;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[3100];
	char key[32], err[256];
	uint32_t rnd = (uint32_t)w->id * 2654435761u + 1;

	for (int i = 0; i < 1500; i++) {
		void *v;
		size_t n;
		enum kc_store_res r;

		rnd = rnd * 1103515245 + 12345;
		if (rnd % 2) /* shared keys: everybody writes and reads them */
			snprintf(key, sizeof(key), "shared-%u", (rnd >> 8) % 6);
		else
			snprintf(key, sizeof(key), "own-%d-%u", w->id, (rnd >> 8) % 40);
		switch ((rnd >> 16) % 5) {
		case 0:
		case 1:
			r = kc_store_put(w->s, key, strlen(key), buf,
					 selfval_make(buf, rnd, VAL_SPAN), err, sizeof(err));
			w->errors += r != KC_STORE_OK;
			break;
		case 4:
			r = kc_store_del(w->s, key, strlen(key), err, sizeof(err));
			w->errors += r < 0;
			break;
		default:
			r = kc_store_get(w->s, key, strlen(key), &v, &n, err, sizeof(err));
			if (r == KC_STORE_OK) {
				w->hits++;
				w->bad += !selfval_ok(v, n, VAL_SPAN);
				free(v);
			}
			w->errors += r < 0;
		}
		if (r < 0 && w->errors < 3)
			print_message("thread %d: %s: %s\n", w->id, kc_store_res_name(r), err);
	}
	return NULL;
}

static void run_threads(struct fix *f, uint64_t max)
{
	pthread_t t[4];
	struct worker w[4];
	struct kc_store_stats a, b;
	char tmp[128];

	reopen(f, max);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = f->s, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
		assert_int_equal(w[i].errors, 0);
		assert_true(w[i].hits > 0);
	}
	a = stats(f);
	assert_int_equal(a.corrupt, 0);
	if (max)
		assert_true(a.bytes <= max && a.evictions > 0);
	/* what the index counted is what is on disk */
	assert_int_equal(count_files(f->dir), (int)a.objects + 1);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
	assert_int_equal(count_files(tmp), 0);
	reopen(f, max);
	b = stats(f);
	assert_int_equal(b.objects, a.objects);
	assert_int_equal(b.bytes, a.bytes);
}

static void test_threads(void **state)
{
	run_threads(*state, 0);
}

static void test_threads_evicting(void **state)
{
	run_threads(*state, 40000); /* room for ~25 of the ~190 keys */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_and_overwrite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_value_and_key_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_collision_safety, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lru_eviction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_rebuilds_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_tmp_and_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads_evicting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
