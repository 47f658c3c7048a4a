/* hlc.c: the hybrid logical clock behind write versions (see hlc.h). */
#include "core/hlc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "core/clock.h"

static _Atomic uint64_t last;	     /* highest version minted or observed, node bits cleared */
static _Atomic uint32_t node_id = 0; /* 0: not chosen yet */

void kc_hlc_set_node(uint32_t node)
{
	atomic_store(&node_id, (node & 0xff) | 0x100); /* bit 8 marks "chosen" */
}

uint32_t kc_hlc_node(void)
{
	uint32_t n = atomic_load(&node_id), r = 0;

	if (n)
		return n & 0xff;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&r;
	n = (r & 0xff) | 0x100;
	uint32_t zero = 0;

	if (!atomic_compare_exchange_strong(&node_id, &zero, n))
		n = zero; /* another thread chose first */
	return n & 0xff;
}

uint64_t kc_hlc_next(void)
{
	uint64_t phys = (kc_wall_ns() / 1000000) << 20, old = atomic_load(&last), next;

	do {
		next = old + 0x100 > phys ? old + 0x100 : phys;
	} while (!atomic_compare_exchange_weak(&last, &old, next));
	return next | kc_hlc_node();
}

void kc_hlc_observe(uint64_t v)
{
	uint64_t old = atomic_load(&last);

	v &= ~(uint64_t)0xff;
	while (old < v && !atomic_compare_exchange_weak(&last, &old, v))
		;
}
