/* fsafe.c: see fsafe.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsafe.h"
#include "core/log.h"

int kc_fs_check_parent(const char *path, char *err, size_t errlen)
{
	char *copy = strdup(path), *dir;
	struct stat st;
	int e = 0;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (stat(dir, &st)) {
		e = -errno;
		kc_errf(err, errlen, "%s: %s", dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		e = -ENOTDIR;
		kc_errf(err, errlen, "%s: not a directory", dir);
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		e = -EPERM;
		kc_errf(err, errlen, "%s: owned by uid %u, not by us (uid %u) or root", dir,
			(unsigned)st.st_uid, (unsigned)geteuid());
	} else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		e = -EPERM;
		kc_errf(err, errlen,
			"%s: writable by group or others (mode %04o) and not sticky: anyone could "
			"replace files there",
			dir, (unsigned)(st.st_mode & 07777));
	}
	free(copy);
	return e;
}

int kc_fs_open_append(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct stat st;
	int fd =
	    open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);
	int e;

	if (fd < 0) {
		e = -errno;
		kc_errf(err, errlen, "%s: %s", path,
			e == -ELOOP ? "a symlink: refusing to follow it" : strerror(-e));
		return e;
	}
	if (fstat(fd, &st)) {
		e = -errno;
		kc_errf(err, errlen, "%s: %s", path, strerror(-e));
	} else if (!S_ISREG(st.st_mode)) {
		e = -EPERM;
		kc_errf(err, errlen, "%s: not a regular file", path);
	} else if (st.st_uid != geteuid()) {
		e = -EPERM;
		kc_errf(err, errlen, "%s: owned by uid %u, not by us (uid %u)", path,
			(unsigned)st.st_uid, (unsigned)geteuid());
	} else {
		return fd;
	}
	close(fd);
	return e;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int kc_fs_replace(const char *path, const void *p, size_t n, mode_t mode, char *err, size_t errlen)
{
	char tmp[PATH_MAX], *copy = NULL;
	int fd, dfd, e = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		kc_errf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) /* a stale one, or someone's symlink */
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
			  mode);
	if (fd < 0) {
		e = -errno;
		kc_errf(err, errlen, "%s: %s", tmp, strerror(-e));
		return e;
	}
	if ((e = write_all(fd, p, n)) || (fsync(fd) && (e = -errno))) {
		kc_errf(err, errlen, "%s: %s", tmp, strerror(-e));
		goto fail;
	}
	if (rename(tmp, path)) {
		e = -errno;
		kc_errf(err, errlen, "renaming %s to %s: %s", tmp, path, strerror(-e));
		goto fail;
	}
	close(fd);
	if (!(copy = strdup(path)))
		return -ENOMEM;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		e = -errno;
		kc_errf(err, errlen, "fsync of the folder of %s: %s", path, strerror(-e));
	}
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return e;
fail:
	close(fd);
	unlink(tmp);
	return e;
}
