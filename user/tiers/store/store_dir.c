/* store_dir.c: the object store in a local directory (the default backend, --data-dir): get,
 * put, del and eviction. Opening, the scan that rebuilds the index, closing and the backend's
 * ops table are in store_dir_open.c, which calls into this file (never the other way).
 *
 *   DIR/lock                 flock()ed while open: one process per directory
 *   DIR/tmp/                 objects being written; emptied at open
 *   DIR/objects/ab/cd/abcd…  one file per key, named by the hex SHA-256 of the key
 *
 * A put writes a temp file, fsyncs it, renames it into place and fsyncs the directory. An
 * in-memory index (store_idx.c, under mu) rebuilt by a scan at open holds sizes and LRU order
 * for eviction under max_bytes. File I/O runs outside mu; renames and unlinks of one address
 * are serialised by a lock stripe so that an eviction never removes a newer file. Lock order:
 * stripe, then mu. See docs/store.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/store_dir.h"

static struct dir_store *D(struct kc_store *s)
{
	return (struct dir_store *)s;
}

static bool is_full_errno(int e)
{
	return e == ENOSPC || e == EDQUOT;
}

void kc_store_dir_unlink_unindexed(struct dir_store *d, const char *addr, const uint8_t *bin)
{
	char rel[72];
	bool has;

	kc_dir_rel(rel, addr);
	pthread_mutex_lock(kc_dir_stripe(d, bin));
	pthread_mutex_lock(&d->mu);
	has = kc_sidx_has(d->idx, bin);
	pthread_mutex_unlock(&d->mu);
	if (!has && unlinkat(d->objfd, rel, 0) && errno != ENOENT)
		log_warn("store: unlink %s/objects/%s: %s", d->path, rel, strerror(errno));
	pthread_mutex_unlock(kc_dir_stripe(d, bin));
}

bool kc_store_dir_reserve(struct dir_store *d, uint64_t need)
{
	uint64_t max = d->base.max_bytes, size;
	uint8_t victims[16][KC_ADDR_LEN];
	int nv;
	bool fits;

	for (;;) {
		nv = 0;
		pthread_mutex_lock(&d->mu);
		while (!(fits = !max || kc_sidx_bytes(d->idx) + d->reserved + need <= max) &&
		       nv < 16 && kc_sidx_pop_lru(d->idx, victims[nv], &size))
			nv++;
		if (fits)
			d->reserved += need;
		pthread_mutex_unlock(&d->mu);
		for (int i = 0; i < nv; i++) {
			char addr[65];

			kc_hex_encode(victims[i], KC_ADDR_LEN, addr);
			kc_store_dir_unlink_unindexed(d, addr, victims[i]);
			atomic_fetch_add_explicit(&d->base.evictions, 1, memory_order_relaxed);
		}
		if (fits)
			return true;
		if (nv == 0) /* empty, or only puts in flight hold the room */
			return false;
	}
}

static void unreserve(struct dir_store *d, uint64_t need)
{
	pthread_mutex_lock(&d->mu);
	d->reserved -= need;
	pthread_mutex_unlock(&d->mu);
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* mkdir "ab" and "ab/cd" under objects/ and opens "ab/cd"; fsyncs the parents of what it made. */
static int shard_dir(struct dir_store *d, const char *addr)
{
	char rel[8];
	int fd;

	snprintf(rel, sizeof(rel), "%.2s", addr);
	if (mkdirat(d->objfd, rel, 0700) == 0)
		fsync(d->objfd);
	else if (errno != EEXIST)
		return -errno;
	snprintf(rel, sizeof(rel), "%.2s/%.2s", addr, addr + 2);
	if (mkdirat(d->objfd, rel, 0700) == 0) {
		char top[3] = {addr[0], addr[1], 0};
		int pfd = openat(d->objfd, top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (pfd >= 0) {
			fsync(pfd);
			close(pfd);
		}
	} else if (errno != EEXIST) {
		return -errno;
	}
	fd = openat(d->objfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static enum kc_store_res fail_errno(struct dir_store *d, const char *what, const char *name, int e,
				    char *err, size_t errlen)
{
	kc_errf(err, errlen, "store: %s %s/%s: %s", what, d->path, name, strerror(e));
	return is_full_errno(e) ? KC_STORE_FULL : KC_STORE_ERR;
}

enum kc_store_res kc_store_dir_put(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, const void *val, size_t n, char *err,
				   size_t errlen)
{
	struct dir_store *d = D(s);
	unsigned char hdr[KC_STORE_OBJ_HDR];
	uint64_t size = KC_STORE_OBJ_HDR + nkey + (uint64_t)n;
	uint8_t bin[KC_ADDR_LEN] = {0};
	char tmp[128], tmprel[136], rel[72];
	struct iovec iov[3];
	enum kc_store_res r;
	int fd, sfd, e;

	kc_hex_decode(addr, KC_ADDR_LEN, bin);
	if (s->max_bytes && size > s->max_bytes) {
		kc_errf(err, errlen, "store: object of %llu bytes exceeds the limit of %llu bytes",
			(unsigned long long)size, (unsigned long long)s->max_bytes);
		return KC_STORE_FULL;
	}
	if (!kc_store_dir_reserve(d, size)) {
		kc_errf(
		    err, errlen,
		    "store: no room for %llu bytes under the limit of %llu bytes (puts in flight)",
		    (unsigned long long)size, (unsigned long long)s->max_bytes);
		return KC_STORE_FULL;
	}
	kc_store_obj_header(hdr, key, nkey, val, n);
	snprintf(tmp, sizeof(tmp), "%s.%d.%llu", addr, (int)getpid(),
		 (unsigned long long)atomic_fetch_add(&d->tmpseq, 1));
	snprintf(tmprel, sizeof(tmprel), "tmp/%s", tmp);
	fd = openat(d->tmpfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = fail_errno(d, "create", tmprel, errno, err, errlen);
		goto unreserve;
	}
	iov[0] = (struct iovec){hdr, sizeof(hdr)};
	iov[1] = (struct iovec){(void *)key, nkey};
	iov[2] = (struct iovec){(void *)val, n};
	e = write_all(fd, iov, 3);
	if (!e && fsync(fd))
		e = -errno;
	if (close(fd) && !e)
		e = -errno;
	if (e) {
		r = fail_errno(d, "write", tmprel, -e, err, errlen);
		goto unlink_tmp;
	}
	sfd = shard_dir(d, addr);
	if (sfd < 0) {
		r = fail_errno(d, "mkdir", "objects", -sfd, err, errlen);
		goto unlink_tmp;
	}
	pthread_mutex_lock(kc_dir_stripe(d, bin));
	if (renameat(d->tmpfd, tmp, sfd, addr)) {
		e = errno;
		pthread_mutex_unlock(kc_dir_stripe(d, bin));
		close(sfd);
		kc_dir_rel(rel, addr);
		r = fail_errno(d, "rename into", rel, e, err, errlen);
		goto unlink_tmp;
	}
	pthread_mutex_lock(&d->mu);
	d->reserved -= size;
	if (kc_sidx_set(d->idx, bin, size, (int64_t)kc_wall_ns()))
		log_warn("store: out of memory indexing %s: it is not counted until restart", addr);
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_unlock(kc_dir_stripe(d, bin));
	e = fsync(sfd) ? errno : 0;
	close(sfd);
	if (e) {
		/* The new object is in place and readable, only its durability is in doubt: an
		 * error, never FULL (which promises that nothing changed). */
		kc_dir_rel(rel, addr);
		fail_errno(d, "fsync directory of", rel, e, err, errlen);
		return KC_STORE_ERR;
	}
	return KC_STORE_OK;

unlink_tmp:
	unlinkat(d->tmpfd, tmp, 0);
unreserve:
	unreserve(d, size);
	return r;
}

/* Removes a bad object if the file at its address is still the one that was read (fd). */
static void remove_corrupt(struct dir_store *d, const char *addr, const uint8_t *bin, int fd,
			   const char *why)
{
	struct stat a, b;
	char rel[72];

	kc_dir_rel(rel, addr);
	log_warn("store: %s/objects/%s: corrupt object removed: %s", d->path, rel, why);
	pthread_mutex_lock(kc_dir_stripe(d, bin));
	if (fstat(fd, &a) == 0 && fstatat(d->objfd, rel, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		if (unlinkat(d->objfd, rel, 0))
			log_warn("store: unlink %s/objects/%s: %s", d->path, rel, strerror(errno));
		pthread_mutex_lock(&d->mu);
		kc_sidx_remove(d->idx, bin, NULL);
		pthread_mutex_unlock(&d->mu);
	}
	pthread_mutex_unlock(kc_dir_stripe(d, bin));
	atomic_fetch_add_explicit(&d->base.corrupt, 1, memory_order_relaxed);
}

/* The file is gone (deleted behind our back): forget it unless a put has just put it back. */
static void forget_missing(struct dir_store *d, const char *addr, const uint8_t *bin)
{
	char rel[72];
	struct stat st;

	kc_dir_rel(rel, addr);
	pthread_mutex_lock(kc_dir_stripe(d, bin));
	if (fstatat(d->objfd, rel, &st, AT_SYMLINK_NOFOLLOW) && errno == ENOENT) {
		pthread_mutex_lock(&d->mu);
		kc_sidx_remove(d->idx, bin, NULL);
		pthread_mutex_unlock(&d->mu);
	}
	pthread_mutex_unlock(kc_dir_stripe(d, bin));
}

static int read_all(int fd, void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = pread(fd, (char *)buf + off, n - off, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* shrank under us: cannot happen to a renamed-in file */
		off += (size_t)r;
	}
	return 0;
}

enum kc_store_res kc_store_dir_get(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, void **val, size_t *n, char *err,
				   size_t errlen)
{
	struct dir_store *d = D(s);
	uint8_t bin[KC_ADDR_LEN] = {0};
	char rel[72], why[160];
	const void *v;
	enum kc_store_obj_res pr;
	struct stat st;
	unsigned char *buf;
	size_t vlen;
	bool persist;
	int fd, e;

	kc_hex_decode(addr, KC_ADDR_LEN, bin);
	kc_dir_rel(rel, addr);
	fd = openat(d->objfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			forget_missing(d, addr, bin);
			return KC_STORE_MISS;
		}
		return fail_errno(d, "open", rel, errno, err, errlen);
	}
	if (fstat(fd, &st)) {
		e = errno;
		close(fd);
		return fail_errno(d, "stat", rel, e, err, errlen);
	}
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		kc_errf(err, errlen, "store: out of memory reading %lld bytes",
			(long long)st.st_size);
		return KC_STORE_ERR;
	}
	e = read_all(fd, buf, (size_t)st.st_size);
	if (e) {
		free(buf);
		close(fd);
		return fail_errno(d, "read", rel, -e, err, errlen);
	}
	pr = kc_store_obj_parse(buf, (size_t)st.st_size, key, nkey, &v, &vlen, why, sizeof(why));
	if (pr == KC_STORE_OBJ_BAD) {
		remove_corrupt(d, addr, bin, fd, why);
		close(fd);
		free(buf);
		kc_errf(err, errlen, "store: %s/objects/%s: %s", d->path, rel, why);
		return KC_STORE_CORRUPT;
	}
	if (pr == KC_STORE_OBJ_OTHER_KEY) {
		close(fd);
		free(buf);
		return KC_STORE_MISS;
	}
	pthread_mutex_lock(&d->mu);
	persist = kc_sidx_touch(d->idx, bin, (int64_t)kc_wall_ns(), KC_DIR_PERSIST_NS);
	pthread_mutex_unlock(&d->mu);
	if (persist) /* the atime is the recency a restart sorts by */
		futimens(fd, (struct timespec[2]){{0, UTIME_NOW}, {0, UTIME_OMIT}});
	close(fd);
	memmove(buf, v, vlen);
	*val = buf;
	*n = vlen;
	return KC_STORE_OK;
}

enum kc_store_res kc_store_dir_del(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, char *err, size_t errlen)
{
	struct dir_store *d = D(s);
	unsigned char head[KC_STORE_OBJ_HDR + KC_STORE_KEY_MAX];
	uint8_t bin[KC_ADDR_LEN] = {0};
	char rel[72], sub[8];
	struct stat a, b;
	ssize_t got;
	int fd, sfd, e = 0;
	bool gone = false, replaced = false;

	kc_hex_decode(addr, KC_ADDR_LEN, bin);
	kc_dir_rel(rel, addr);
	fd = openat(d->objfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			forget_missing(d, addr, bin);
			return KC_STORE_MISS;
		}
		return fail_errno(d, "open", rel, errno, err, errlen);
	}
	/* Another key's valid header at this address (a collision) is not ours to delete; a
	 * damaged one is removed like ours. */
	got = pread(fd, head, sizeof(head), 0);
	if (got >= KC_STORE_OBJ_HDR && memcmp(head, KC_STORE_OBJ_MAGIC, 4) == 0) {
		size_t klen = (size_t)(head[6] | head[7] << 8);

		if (klen >= 1 && klen <= KC_STORE_KEY_MAX &&
		    (size_t)got >= KC_STORE_OBJ_HDR + klen &&
		    (klen != nkey || memcmp(head + KC_STORE_OBJ_HDR, key, nkey) != 0)) {
			close(fd);
			return KC_STORE_MISS;
		}
	}
	snprintf(sub, sizeof(sub), "%.2s/%.2s", addr, addr + 2);
	sfd = openat(d->objfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_lock(kc_dir_stripe(d, bin));
	if (fstatat(d->objfd, rel, &b, AT_SYMLINK_NOFOLLOW)) {
		gone = false; /* a concurrent del won */
	} else if (fstat(fd, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		if (unlinkat(d->objfd, rel, 0))
			e = errno;
		pthread_mutex_lock(&d->mu);
		kc_sidx_remove(d->idx, bin, NULL);
		pthread_mutex_unlock(&d->mu);
		gone = true;
	} else {
		/* A put replaced the object we opened: the delete is ordered before that put, and
		 * the newer value stays. */
		replaced = true;
	}
	pthread_mutex_unlock(kc_dir_stripe(d, bin));
	close(fd);
	/* A delete that a crash undid would bring a stale value back: make it durable. */
	if (gone && !e && sfd >= 0 && fsync(sfd))
		e = errno;
	if (sfd >= 0)
		close(sfd);
	if (e)
		return fail_errno(d, "unlink", rel, e, err, errlen);
	return gone || replaced ? KC_STORE_OK : KC_STORE_MISS;
}
