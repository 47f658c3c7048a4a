/* warm.h: `kcachectl warm FILE`: preloads a list of keys into the upper tiers.
 *
 * It asks the daemon (admin `status`) where memcached listens, then sends a pipelined
 * `mg <key>` for each key of FILE (one per line; blank lines and lines starting with # are
 * skipped). Each mg that misses the memory tier goes down the read path, which fills the
 * memory tier from Redis or the store (and the kernel tier follows popularity as usual). */
#ifndef KC_WARM_H
#define KC_WARM_H

#include <stddef.h>
#include <stdio.h>

/* Returns 0 when every listed key was found, 1 when some were not (or some lines were not
 * valid keys), -1 with a message in err (no daemon, unreadable file, connection lost).
 * A progress bar goes to progress (may be NULL), the summary line to out. */
int kc_warm(const char *admin_path, const char *file, FILE *out, FILE *progress, char *err,
	    size_t errlen);

#endif
