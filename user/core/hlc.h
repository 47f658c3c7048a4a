/* hlc.h: write versions, from a hybrid logical clock shared by every thread of the process.
 *
 * A version orders the writes of one key across nodes: the lower tiers keep the newest, and an
 * invalidation from another node removes a local copy only if that copy is older. A version is
 *   wall-clock milliseconds << 20 | logical counter << 8 | node id (8 bits)
 * so it follows real time across nodes (with their clock skew), never goes backwards on one
 * node, and two nodes never mint the same one (given distinct node ids). Observing a version
 * from another node moves the clock past it, so a write that follows a read is newer. */
#ifndef KC_HLC_H
#define KC_HLC_H

#include <stdint.h>

/* Sets this node's id (low 8 bits used); call once at start. Default: a random id. */
void kc_hlc_set_node(uint32_t node);
uint32_t kc_hlc_node(void);
/* A new version, greater than every version this process minted or observed. Thread-safe. */
uint64_t kc_hlc_next(void);
/* Moves the clock past v (a version seen from elsewhere). Thread-safe. */
void kc_hlc_observe(uint64_t v);
/* The wall-clock milliseconds a version was minted at. */
static inline uint64_t kc_hlc_ms(uint64_t ver)
{
	return ver >> 20;
}

#endif
