/* journal_test.h: helpers shared by the journal's unit tests (test_journal.c,
 * test_journal_recovery.c): a temporary directory per test, removed at teardown, opening with
 * the log captured, waiting for done callbacks. Test code only. */
#ifndef KC_JOURNAL_TEST_H
#define KC_JOURNAL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tiers/journal/journal.h"
#include "tiers/journal/journal_format.h"
#include "core/log.h"

static char dir[64]; /* this test's temporary directory */
static char err[256];

struct done {
	atomic_int calls;
	atomic_int status;
};

static inline void on_done(void *ctx, int status)
{
	struct done *d = ctx;

	atomic_store(&d->status, status);
	atomic_fetch_add(&d->calls, 1);
}

/* Waits (at most 10 s: a hung journal fails the test, a slow one does not) for n calls. */
static inline void wait_calls(struct done *d, int n)
{
	for (int i = 0; i < 10000 && atomic_load(&d->calls) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&d->calls), n);
}

static inline int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kc-journal-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static struct kc_journal *open_j; /* the journal jopen() opened and jclose() did not close */

static inline void jclose(struct kc_journal *j)
{
	if (j == open_j)
		open_j = NULL;
	kc_journal_close(j);
}

/* Also after a failed assertion: the journal left open is closed (its thread stopped) first. */
static inline int teardown(void **state)
{
	(void)state;
	if (open_j)
		jclose(open_j);
	kc_log_set_level(KC_LOG_INFO);
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline struct kc_journal *jopen(struct kc_journal_opts *o, uint64_t *replayed)
{
	struct kc_journal *j;

	o->dir = dir;
	j = kc_journal_open(o, replayed, err, sizeof(err));
	if (!j)
		fprintf(stderr, "open: %s\n", err);
	assert_non_null(j);
	open_j = j;
	return j;
}

/* Opens with stderr sent to a file; returns what was logged (caller frees). */
static inline char *jopen_logged(struct kc_journal_opts *o, struct kc_journal **j,
				 uint64_t *replayed)
{
	char path[] = "/tmp/kc-journal-log-XXXXXX", *out = calloc(1, 65536);
	int fd = mkstemp(path), saved = dup(2);

	assert_true(fd >= 0 && saved >= 0 && out);
	dup2(fd, 2);
	*j = jopen(o, replayed);
	dup2(saved, 2);
	close(saved);
	assert_true(pread(fd, out, 65535, 0) >= 0);
	close(fd);
	unlink(path);
	fputs(out, stderr); /* still shown in the test's log */
	return out;
}

static inline void append_wait(struct kc_journal *j, const char *key, uint64_t ver,
			       const char *blob)
{
	struct done d = {0};

	assert_int_equal(
	    kc_journal_append(j, KC_JSET, ver, key, strlen(key), blob, strlen(blob), on_done, &d),
	    0);
	wait_calls(&d, 1);
	assert_int_equal(atomic_load(&d.status), 0);
}

static inline struct kc_journal_stats stats(struct kc_journal *j)
{
	struct kc_journal_stats s;

	kc_journal_get_stats(j, &s);
	return s;
}

/* Segment files in dir, and the name of the last one. */
static inline int count_segments(char *last, size_t lastlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "journal-", 8) && strlen(de->d_name) == 32) {
			n++;
			if (last && strcmp(de->d_name, last) > 0)
				snprintf(last, lastlen, "%s", de->d_name);
		}
	closedir(d);
	return n;
}

static inline struct kc_jrec *take_one(struct kc_journal *j, uint64_t now)
{
	struct kc_jrec *out[2];

	assert_int_equal(kc_journal_take(j, now, out, 2, NULL), 1);
	return out[0];
}

#endif
