/* tier_flushfile.c: data-dir/flush (see tier_flushfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/fsafe.h"
#include "core/log.h"
#include "core/num.h"
#include "tiers/tier_flushfile.h"

#define MAGIC "KCF1 "

int kc_flushfile_write(const char *dir, uint64_t ver, int64_t at, char *err, size_t errlen)
{
	char path[4200], line[128];
	int n, e;

	snprintf(path, sizeof(path), "%s/flush", dir);
	n = snprintf(line, sizeof(line), MAGIC "%020" PRIu64 " %" PRId64 " ", ver, at);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%016" PRIx64 "\n",
		      (uint64_t)XXH3_64bits(line, (size_t)n));
	if ((e = kc_fs_check_parent(path, err, errlen)))
		return e;
	return kc_fs_replace(path, line, (size_t)n, 0600, err, errlen);
}

int kc_flushfile_read(const char *dir, uint64_t now_ms, uint64_t *ver, int64_t *at, char *err,
		      size_t errlen)
{
	char path[4200], buf[129], *sp1, *sp2, *sp3;
	char sum[17];
	uint64_t v, a;
	ssize_t n;
	int fd, e;

	snprintf(path, sizeof(path), "%s/flush", dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		if (e != -ENOENT)
			kc_errf(err, errlen, "%s: %s", path,
				e == -ELOOP ? "a symlink: refusing to follow it" : strerror(-e));
		return e;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	e = n < 0 ? -errno : 0;
	close(fd);
	if (e) {
		kc_errf(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	if (n < 8 || (size_t)n >= sizeof(buf) - 1)
		n = 0;
	buf[n] = 0;
	if (!n || buf[n - 1] != '\n' || strncmp(buf, MAGIC, strlen(MAGIC)) ||
	    strlen(buf) != (size_t)n) {
		kc_errf(err, errlen, "%s: not a flush file (no \"KCF1 ...\" line)", path);
		return -EBADMSG;
	}
	buf[--n] = 0;
	sp1 = strchr(buf + strlen(MAGIC), ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	sp3 = sp2 ? strchr(sp2 + 1, ' ') : NULL;
	if (!sp2 || sp3) {
		kc_errf(err, errlen, "%s: malformed line", path);
		return -EBADMSG;
	}
	snprintf(sum, sizeof(sum), "%016" PRIx64,
		 (uint64_t)XXH3_64bits(buf, (size_t)(sp2 + 1 - buf)));
	if (strcmp(sum, sp2 + 1)) {
		kc_errf(err, errlen, "%s: checksum mismatch: the file is damaged", path);
		return -EBADMSG;
	}
	*sp1 = *sp2 = 0;
	if (kc_parse_u64(buf + strlen(MAGIC), UINT64_MAX, &v) ||
	    kc_parse_u64(sp1 + 1, INT64_MAX, &a)) {
		kc_errf(err, errlen, "%s: malformed numbers", path);
		return -EBADMSG;
	}
	if (a ? v != kc_flushfile_delayed_ver((int64_t)a)
	      : v >> 20 > now_ms + KC_FLUSHFILE_SKEW_MS) {
		kc_errf(err, errlen,
			a ? "%s: a delayed flush whose version is not its time's"
			  : "%s: a flush version ahead of the clock (its time is %" PRIu64
			    " ms past now)",
			path, (v >> 20) - now_ms);
		return -EBADMSG;
	}
	*ver = v;
	*at = (int64_t)a;
	return 0;
}
