/* test_tier_flushfile.c: data-dir/flush (user/tiers/tier_flushfile.c): what is written reads
 * back; a damaged, foreign or impossible file is refused with a reason naming it; a symlink in
 * place of the file or its temporary is never followed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tiers/tier_flushfile.h"

static char dir[64], path[128], err[256];
static const uint64_t now_ms = 1800000000000ull;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kc-flush-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/flush", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	(void)state;
	unlink(path);
	snprintf(p, sizeof(p), "%s.tmp", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/target", dir);
	unlink(p);
	return rmdir(dir);
}

static void put(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_roundtrip(void **state)
{
	uint64_t ver = (now_ms - 5) << 20 | 7, v = 0;
	int64_t at = -1;

	(void)state;
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -ENOENT);
	assert_int_equal(kc_flushfile_write(dir, ver, 0, err, sizeof(err)), 0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), 0);
	assert_int_equal(v, ver);
	assert_int_equal(at, 0);
	/* a delayed flush, a day ahead: its version is its time's */
	ver = kc_flushfile_delayed_ver((int64_t)(now_ms / 1000 + 86400));
	assert_int_equal(
	    kc_flushfile_write(dir, ver, (int64_t)(now_ms / 1000 + 86400), err, sizeof(err)), 0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), 0);
	assert_int_equal(v, ver);
}

/* Every single flipped byte is refused (the old "<ver> <at>" line took most of them). */
static void test_every_flip_refused(void **state)
{
	char good[128], bad[128];
	uint64_t v;
	int64_t at;
	FILE *f;
	size_t n;

	(void)state;
	assert_int_equal(kc_flushfile_write(dir, (now_ms - 1000) << 20, 0, err, sizeof(err)), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(good, 1, sizeof(good) - 1, f);
	fclose(f);
	good[n] = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, good, n + 1);
		bad[i] ^= 0x01;
		put(bad);
		err[0] = 0;
		assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)),
				 -EBADMSG);
		assert_non_null(strstr(err, path));
	}
	put("1799999999000 0\n"); /* the old format: refused, not half-read */
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -EBADMSG);
	put("");
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -EBADMSG);
}

/* A version ahead of the clock would hide every later write: refused, checksum or not. */
static void test_ahead_of_clock(void **state)
{
	uint64_t v;
	int64_t at;

	(void)state;
	assert_int_equal(
	    kc_flushfile_write(dir, (now_ms + KC_FLUSHFILE_SKEW_MS + 1) << 20, 0, err, sizeof(err)),
	    0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "ahead of the clock"));
	/* within the skew between nodes: taken */
	assert_int_equal(kc_flushfile_write(dir, (now_ms + 1000) << 20, 0, err, sizeof(err)), 0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), 0);
	/* a delayed flush whose version is not its time's */
	assert_int_equal(kc_flushfile_write(dir, (now_ms + 86400000ull * 365) << 20,
					    (int64_t)(now_ms / 1000 + 10), err, sizeof(err)),
			 0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -EBADMSG);
}

/* Symlinks at flush.tmp or flush are never followed: the target stays as it was. */
static void test_symlinks(void **state)
{
	char target[160], tmp[160], buf[16] = "";
	uint64_t v;
	int64_t at;
	FILE *f;

	(void)state;
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(target, "w");
	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(kc_flushfile_write(dir, (now_ms - 1) << 20, 0, err, sizeof(err)), 0);
	f = fopen(target, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "precious");
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(kc_flushfile_read(dir, now_ms, &v, &at, err, sizeof(err)), -ELOOP);
	/* a folder anyone may write to is refused */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(kc_flushfile_write(dir, (now_ms - 1) << 20, 0, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(dir, 0700), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_flip_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ahead_of_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
