/* fsafe.h: creating and replacing files in folders other users may reach, without following
 * their symlinks: the audit log and its checkpoint, data-dir/flush. A file is opened with
 * O_NOFOLLOW and must be a regular file of ours; a replacement is written to a fresh temporary
 * (O_CREAT | O_EXCL | O_NOFOLLOW), fsynced, renamed over the file, and the folder fsynced; the
 * folder must be ours (or root's) and not writable by group or others unless sticky.
 * No state; errors are -errno with err (when given) saying which path and what is wrong.
 */
#ifndef KC_FSAFE_H
#define KC_FSAFE_H

#include <stddef.h>
#include <sys/types.h>

/* Checks the folder holding path (its last component stripped): a directory owned by this
 * process's effective uid or by root, not writable by group or others unless its sticky bit is
 * set. Returns 0, -ENOTDIR, -EPERM (owner or mode) or the -errno of stat. */
int kc_fs_check_parent(const char *path, char *err, size_t errlen);

/* Opens path for appending, creating it with mode, never through a symlink (-ELOOP); an
 * existing file must be a regular file owned by this euid (-EPERM). Returns the fd or -errno. */
int kc_fs_open_append(const char *path, mode_t mode, char *err, size_t errlen);

/* Replaces path with p[0..n) atomically through "<path>.tmp" as above. A stale temporary (a
 * symlink included: unlinking removes the link, never its target) is removed first. Returns 0
 * or -errno; on failure path is unchanged and the temporary gone. */
int kc_fs_replace(const char *path, const void *p, size_t n, mode_t mode, char *err, size_t errlen);

#endif
