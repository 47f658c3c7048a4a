/* tier_flushfile.h: data-dir/flush, the last flush_all kept across restarts so that a restart
 * does not bring back what it erased from the store. One line of text with a checksum:
 *   KCF1 <version, 20 digits> <at, Unix seconds> <XXH3-64 of what precedes, 16 hex>\n
 * Written to a fresh temporary (O_EXCL, O_NOFOLLOW), fsynced, renamed over the file, and the
 * folder fsynced. No state and no lock here: the caller serialises writes of one file.
 */
#ifndef KC_TIER_FLUSHFILE_H
#define KC_TIER_FLUSHFILE_H

#include <stddef.h>
#include <stdint.h>

/* How far (ms) a flush version may be ahead of this node's wall clock and still be taken: the
 * clock skew allowed between the nodes that share a flush. */
#define KC_FLUSHFILE_SKEW_MS 60000

/* Writes ver and at (0, or the Unix second a delayed flush takes effect) to DIR/flush through
 * DIR/flush.tmp. Refuses a symlink or anything but a regular file in the way, and a DIR that is
 * not a directory owned by us (or root) and not writable by group or others (unless sticky).
 * Returns 0, or -errno with what failed in err. */
int kc_flushfile_write(const char *dir, uint64_t ver, int64_t at, char *err, size_t errlen);

/* Reads DIR/flush. Returns 0 with *ver and *at set; -ENOENT when there is none; -EBADMSG when
 * it is not what kc_flushfile_write() writes (bad format or checksum), or says a flush that
 * cannot be true: a version more than KC_FLUSHFILE_SKEW_MS ahead of now_ms (wall clock), or a
 * delayed one whose version is not the one its time makes; another -errno when it cannot be
 * read (a symlink: -ELOOP). err says which file and what is wrong. */
int kc_flushfile_read(const char *dir, uint64_t now_ms, uint64_t *ver, int64_t *at, char *err,
		      size_t errlen);

/* The version of a flush delayed to Unix second at (every write before then is older). */
static inline uint64_t kc_flushfile_delayed_ver(int64_t at)
{
	return ((uint64_t)(at + 1) * 1000) << 20;
}

#endif
