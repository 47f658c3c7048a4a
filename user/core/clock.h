/* clock.h: the one monotonic and the one wall clock. Every job reads time here and divides for
 * the unit it keeps (ms deadlines in the tiers, Redis and the journal; ns latencies; Unix ns in
 * audit records and store file times). Lock-free, callable from any thread.
 *
 * Not here: pthread_cond_timedwait deadlines (they need a struct timespec in the condition's
 * own clock), CPU-time clocks (the load generator), and the memory tier's coarse seconds
 * (kc_mem_now, a hook tests replace). */
#ifndef KC_CLOCK_H
#define KC_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns: never steps; the same clock as bpf_ktime_get_ns(). */
uint64_t kc_mono_ns(void);

/* CLOCK_REALTIME in ns since the Unix epoch: steps when the wall clock is set. */
uint64_t kc_wall_ns(void);

/* kc_mono_ns() in ms, for the ms deadlines three jobs keep (tiers, Redis, journal). */
static inline uint64_t kc_mono_ms(void)
{
	return kc_mono_ns() / 1000000;
}

#endif
