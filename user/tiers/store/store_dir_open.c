/* store_dir_open.c: the directory backend's life cycle: create or open DIR, lock it, empty
 * DIR/tmp, scan DIR/objects to rebuild the index (sizes, and LRU order from the files' times),
 * evict down to max_bytes, and close; and the backend's ops table. The data path (get, put, del,
 * eviction) is in store_dir.c, which this file calls and which never calls back. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/store_dir.h"

/* mkdir -p: each missing component is created 0700. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path), *c;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (c = p + 1;; c++) {
		if (*c != '/' && *c != 0)
			continue;
		char save = *c;

		*c = 0;
		if (mkdir(p, 0700) && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*c = save;
		if (!save)
			break;
	}
	free(p);
	return rc;
}

static int open_subdir(struct dir_store *d, const char *name, char *err, size_t errlen)
{
	int fd;

	if (mkdirat(d->dfd, name, 0700) && errno != EEXIST) {
		kc_errf(err, errlen, "store: %s/%s: %s", d->path, name, strerror(errno));
		return -1;
	}
	fd = openat(d->dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || faccessat(d->dfd, name, W_OK | X_OK, AT_EACCESS)) {
		kc_errf(err, errlen, "store: %s/%s: %s", d->path, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Temp files are puts that never finished: a crash, or a kill in the middle of a write. */
static int clean_tmp(struct dir_store *d, char *err, size_t errlen)
{
	int fd = dup(d->tmpfd), n = 0;
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		kc_errf(err, errlen, "store: %s/tmp: %s", d->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(d->tmpfd, de->d_name, 0) == 0)
			n++;
		else
			log_warn("store: remove stale %s/tmp/%s: %s", d->path, de->d_name,
				 strerror(errno));
	}
	closedir(dir);
	if (n)
		log_info("store: %s: removed %d stale temp file%s", d->path, n, n == 1 ? "" : "s");
	return 0;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Indexes the objects of one objects/ab/cd directory. */
static int scan_leaf(struct dir_store *d, int fd, const char *ab, const char *cd, char *err,
		     size_t errlen)
{
	DIR *dir = fdopendir(fd);
	struct dirent *de;
	struct stat st;
	uint8_t bin[KC_ADDR_LEN] = {0};

	if (!dir) {
		kc_errf(err, errlen, "store: %s/objects/%s/%s: %s", d->path, ab, cd,
			strerror(errno));
		close(fd);
		return -1;
	}
	while ((de = readdir(dir))) {
		const char *n = de->d_name;

		if (n[0] == '.')
			continue;
		if (strlen(n) != 2 * KC_ADDR_LEN || kc_hex_decode(n, KC_ADDR_LEN, bin) ||
		    memcmp(n, ab, 2) != 0 || memcmp(n + 2, cd, 2) != 0 ||
		    fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) {
			log_debug("store: ignoring %s/objects/%s/%s/%s", d->path, ab, cd, n);
			continue;
		}
		int64_t a = ts_ns(&st.st_atim), m = ts_ns(&st.st_mtim);

		if (kc_sidx_set(d->idx, bin, (uint64_t)st.st_size, a > m ? a : m)) {
			kc_errf(err, errlen, "store: out of memory indexing %s", d->path);
			closedir(dir);
			return -1;
		}
	}
	closedir(dir);
	return 0;
}

/* Walks objects/ab/cd/: two levels of two hex digits each; anything else is left alone. */
static int scan(struct dir_store *d, int parent, const char *ab, char *err, size_t errlen)
{
	int fd = openat(parent, ab ? ab : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!dir) {
		kc_errf(err, errlen, "store: %s/objects/%s: %s", d->path, ab ? ab : "",
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (!rc && (de = readdir(dir))) {
		const char *n = de->d_name;
		uint8_t byte;

		if (n[0] == '.')
			continue;
		if (strlen(n) != 2 || kc_hex_decode(n, 1, &byte)) {
			log_debug("store: ignoring %s/objects/%s%s%s", d->path, ab ? ab : "",
				  ab ? "/" : "", n);
			continue;
		}
		if (!ab) {
			rc = scan(d, fd, n, err, errlen);
		} else {
			int cfd = openat(fd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (cfd < 0) {
				log_debug("store: ignoring %s/objects/%s/%s: %s", d->path, ab, n,
					  strerror(errno));
				continue;
			}
			rc = scan_leaf(d, cfd, ab, n, err, errlen);
		}
	}
	closedir(dir);
	return rc;
}

static const struct kc_store_ops dir_ops = {
    .kind = "dir",
    .get = kc_store_dir_get,
    .put = kc_store_dir_put,
    .del = kc_store_dir_del,
    .totals = kc_store_dir_totals,
    .close = kc_store_dir_close,
};

struct kc_store *kc_store_dir_open(const struct kc_store_opts *o, char *err, size_t errlen)
{
	struct dir_store *d = calloc(1, sizeof(*d));
	size_t len = strlen(o->spec);
	uint64_t t0;
	int e;

	if (!d || !(d->path = strdup(o->spec)) || !(d->idx = kc_sidx_new())) {
		kc_errf(err, errlen, "store: out of memory");
		goto fail_early;
	}
	while (len > 1 && d->path[len - 1] == '/')
		d->path[--len] = 0;
	d->base.ops = &dir_ops;
	d->base.max_bytes = o->max_bytes;
	d->dfd = d->objfd = d->tmpfd = d->lockfd = -1;
	pthread_mutex_init(&d->mu, NULL);
	for (int i = 0; i < KC_DIR_STRIPES; i++)
		pthread_mutex_init(&d->stripe[i], NULL);
	t0 = kc_mono_ns();

	e = mkdir_p(d->path);
	if (!e) {
		d->dfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		e = d->dfd < 0 ? -errno : 0;
	}
	if (e) {
		kc_errf(err, errlen, "store: %s: %s", d->path, strerror(-e));
		goto fail;
	}
	d->lockfd = openat(d->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lockfd < 0) {
		kc_errf(err, errlen, "store: %s/lock: %s", d->path, strerror(errno));
		goto fail;
	}
	if (flock(d->lockfd, LOCK_EX | LOCK_NB)) {
		if (errno == EWOULDBLOCK)
			kc_errf(err, errlen,
				"store: %s: in use by another store (%s/lock is locked)", d->path,
				d->path);
		else
			kc_errf(err, errlen, "store: lock %s/lock: %s", d->path, strerror(errno));
		goto fail;
	}
	d->objfd = open_subdir(d, "objects", err, errlen);
	if (d->objfd < 0)
		goto fail;
	d->tmpfd = open_subdir(d, "tmp", err, errlen);
	if (d->tmpfd < 0 || clean_tmp(d, err, errlen) || scan(d, d->objfd, NULL, err, errlen))
		goto fail;
	if (kc_sidx_sort(d->idx)) {
		kc_errf(err, errlen, "store: out of memory sorting the index of %s", d->path);
		goto fail;
	}
	if (d->base.max_bytes && kc_sidx_bytes(d->idx) > d->base.max_bytes) {
		uint64_t before = kc_sidx_objects(d->idx);

		kc_store_dir_reserve(d, 0);
		log_info("store: %s: evicted %llu objects to fit the limit of %llu bytes", d->path,
			 (unsigned long long)(before - kc_sidx_objects(d->idx)),
			 (unsigned long long)d->base.max_bytes);
	}
	log_info("store: %s: %llu objects, %llu bytes (scanned in %lld ms)", d->path,
		 (unsigned long long)kc_sidx_objects(d->idx),
		 (unsigned long long)kc_sidx_bytes(d->idx),
		 (long long)((kc_mono_ns() - t0) / 1000000));
	return &d->base;

fail:
	kc_store_dir_close(&d->base);
	errno = EINVAL;
	return NULL;
fail_early:
	if (d) {
		kc_sidx_free(d->idx);
		free(d->path);
		free(d);
	}
	errno = ENOMEM;
	return NULL;
}

void kc_store_dir_totals(struct kc_store *s, uint64_t *objects, uint64_t *bytes)
{
	struct dir_store *d = (struct dir_store *)s;

	pthread_mutex_lock(&d->mu);
	*objects = kc_sidx_objects(d->idx);
	*bytes = kc_sidx_bytes(d->idx);
	pthread_mutex_unlock(&d->mu);
}

void kc_store_dir_close(struct kc_store *s)
{
	struct dir_store *d = (struct dir_store *)s;

	for (int i = 0; i < KC_DIR_STRIPES; i++)
		pthread_mutex_destroy(&d->stripe[i]);
	pthread_mutex_destroy(&d->mu);
	if (d->tmpfd >= 0)
		close(d->tmpfd);
	if (d->objfd >= 0)
		close(d->objfd);
	if (d->lockfd >= 0)
		close(d->lockfd); /* releases the flock */
	if (d->dfd >= 0)
		close(d->dfd);
	kc_sidx_free(d->idx);
	free(d->path);
	free(d);
}
