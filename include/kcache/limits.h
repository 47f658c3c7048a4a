/* limits.h: protocol limits that the BPF programs, the daemon and kcachectl share. Constants
 * only. */
#ifndef KCACHE_LIMITS_H
#define KCACHE_LIMITS_H

/* memcached's key limit (bytes); a longer key is refused by the daemon and never resident in
 * the kernel tier, whose request then passes up. */
#define KC_KEY_MAX 250

#endif
