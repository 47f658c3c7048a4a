/* ratelimit.c: see ratelimit.h. */
#include "core/ratelimit.h"

#include "core/clock.h"

bool kc_ratelimit(struct kc_ratelimit *rl, uint64_t period_ns, uint64_t *suppressed)
{
	uint64_t now = kc_mono_ns(), next = atomic_load(&rl->next_ns);

	/* one winner per period: the thread whose exchange moves next_ns on */
	if (now < next || !atomic_compare_exchange_strong(&rl->next_ns, &next, now + period_ns)) {
		atomic_fetch_add(&rl->suppressed, 1);
		return false;
	}
	*suppressed = atomic_exchange(&rl->suppressed, 0);
	return true;
}
