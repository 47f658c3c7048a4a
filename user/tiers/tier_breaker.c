/* tier_breaker.c: the circuit breaker in front of each lower tier (struct kc_breaker, see
 * tier_int.h). A leaf of the tiers: the read path, the write path and tier_apply.c call it.
 *
 * States: CLOSED (every request goes through; fails counts failures in a row), OPEN (requests are
 * skipped until open_until_ms), HALF_OPEN (one probe is out; the others are still skipped). Any
 * thread may call either function; the state is atomics only:
 *  1. CLOSED -> OPEN: the result that makes fails reach threshold stores open_until_ms, then
 *     the state; a caller that sees OPEN therefore sees a deadline at least as late.
 *  2. OPEN -> HALF_OPEN: after the deadline, one compare-and-swap: exactly one caller wins and
 *     is the probe.
 *  3. HALF_OPEN -> CLOSED on the probe's success (any success closes and clears fails);
 *     HALF_OPEN -> OPEN on its failure, with a new deadline. */
#include "core/log.h"
#include "tiers/tier_int.h"

bool kc_breaker_allow(struct kc_breaker *b)
{
	int st = atomic_load(&b->state), open = KC_BREAKER_OPEN;

	if (st == KC_BREAKER_CLOSED)
		return true;
	if (st == KC_BREAKER_HALF_OPEN)
		return false; /* one probe is out */
	if (kc_mono_ms() < atomic_load(&b->open_until_ms))
		return false;
	/* The first caller after the wait becomes the probe. */
	return atomic_compare_exchange_strong(&b->state, &open, KC_BREAKER_HALF_OPEN);
}

void kc_breaker_result(struct kc_breaker *b, bool ok)
{
	if (ok) {
		atomic_store(&b->fails, 0);
		if (atomic_exchange(&b->state, KC_BREAKER_CLOSED) != KC_BREAKER_CLOSED)
			log_info("circuit breaker closed again");
		return;
	}
	uint32_t fails = atomic_fetch_add(&b->fails, 1) + 1;
	int st = atomic_load(&b->state);

	if (st == KC_BREAKER_HALF_OPEN || (st == KC_BREAKER_CLOSED && fails >= b->threshold)) {
		atomic_store(&b->open_until_ms, kc_mono_ms() + b->reset_ms);
		atomic_store(&b->state, KC_BREAKER_OPEN);
		if (st == KC_BREAKER_CLOSED) {
			atomic_fetch_add(&b->opened, 1);
			log_warn("circuit breaker open after %u failures in a row; probing again "
				 "every %u ms",
				 fails, b->reset_ms);
		}
	}
}
