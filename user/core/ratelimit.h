/* ratelimit.h: at most one log message per period from a call site that can fire in a loop
 * (an accept loop at EMFILE, a disk that stays full), with the count of what was left out so
 * the next message says how many it stands for. Lock-free: one limiter may be shared by
 * threads (every memcached worker's accept loop shares one).
 *
 * Usage:
 *     static struct kc_ratelimit rl;
 *     uint64_t left_out;
 *     if (kc_ratelimit(&rl, 10 * KC_NS_PER_S, &left_out))
 *             log_warn("accept: %s (%llu more like it left out)", strerror(e), left_out);
 */
#ifndef KC_RATELIMIT_H
#define KC_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define KC_NS_PER_S 1000000000ull

/* The two accept loops (memcached, HTTP) out of descriptors: how long they stop accepting,
 * and at most one message per this many seconds. */
#define KC_ACCEPT_PAUSE_MS     500
#define KC_ACCEPT_LOG_PERIOD_S 10

struct kc_ratelimit {
	_Atomic uint64_t next_ns;    /* kc_mono_ns() before which nothing is written */
	_Atomic uint64_t suppressed; /* calls refused since the last one allowed */
};

/* Returns true when the caller may write its message now (the first call, then at most one per
 * period_ns), with *suppressed set to the number of calls refused since the last allowed one;
 * false (and counts the call) otherwise. A zero-initialised limiter is ready. */
bool kc_ratelimit(struct kc_ratelimit *rl, uint64_t period_ns, uint64_t *suppressed);

#endif
