/* bpf_rcu.h: waiting, from userspace, until every BPF program run that started before the call
 * has finished. The kernel tier frees quarantined slots after it; the network policy swaps its
 * double-buffered maps behind it. */
#ifndef KC_CORE_BPF_RCU_H
#define KC_CORE_BPF_RCU_H

/* An RCU barrier for BPF programs from userspace: updating an array-of-maps waits, inside the
 * kernel, for every running non-sleepable BPF program to finish (maybe_wait_bpf_programs()).
 * kc_rcu_init() creates the two small maps; returns 0 or a negative errno. */
struct kc_rcu {
	int outer_fd;
	int inner_fd;
};
int kc_rcu_init(struct kc_rcu *r);
/* Returns once every XDP run that started before the call has finished: 0 or a negative errno.
 * Blocks for an RCU grace period (microseconds to milliseconds): not for the request path. */
int kc_rcu_sync(struct kc_rcu *r);
void kc_rcu_close(struct kc_rcu *r);

#endif
