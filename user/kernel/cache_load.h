/* cache_load.h: the kernel tier's XDP program as an object, for user/kernel/cache.c only: open and
 * size bpf/cache.bpf.c, pin its maps, load, put it into the network policy's slot and take it
 * out again, unpin. No locks; the main thread calls these at start and stop (kc_xdp_detach
 * also from the manager's fail-safe, under its lock).
 *
 * The interface's XDP attach point belongs to the network policy (user/netpol/policy_load.h): its
 * program runs first and tail-calls slot 0 of kc_policy_next for whatever it lets through.
 * "Attaching" the kernel tier is writing its program into that slot; "detaching" is clearing
 * the slot, after which the policy passes those packets up the stack itself.
 */
#ifndef KC_CACHE_LOAD_H
#define KC_CACHE_LOAD_H

#include <net/if.h>
#include <stdint.h>

#include <kcache/cache.h> /* before the skeleton, which uses struct kc_kconfig */
#include "kernel/cache.h"

struct cache_bpf;

struct kc_xdp {
	struct cache_bpf *skel;
	int index_fd, slots_fd, hits_fd, stats_fd, hb_fd; /* the loaded maps */
	int next_fd; /* the policy's kc_policy_next (not ours to close) */
	int in_slot; /* 1 while our program is in slot 0 */
	int ifindex;
	char iface[IF_NAMESIZE];
	enum kc_xdp_mode mode;
	char pin_path[128];
	uint32_t mtu;	    /* the interface's, capped: kc_cfg.mtu */
	uint64_t map_bytes; /* every map of the object, as the kernel accounts them (memlock) */
	/* kc_hits, mmapped: CPU c's count for slot s at hits[c * entries + s] (include/kcache/
	 * cache.h). The program adds to it; the daemon reads it, and zeroes a free slot's. */
	volatile __u64 *hits;
	size_t hits_len;
	uint32_t ncpu;	     /* kc_cfg.ncpu: rows of kc_hits */
	uint32_t index_mask; /* kc_cfg.index_mask: kc_index buckets - 1 */
};

/* Zeroes x with every fd at -1. */
void kc_xdp_init(struct kc_xdp *x);

/* Opens the object, sets kc_cfg from o (port, listen, the interface's mtu, max_value, entries,
 * CPUs, index mask), sizes kc_slots to o->entries, kc_index to kc_index_buckets() and kc_hits
 * to o->entries per CPU, removes the maps a previous run left under o->pin_path (which the
 * policy loader created and locked), loads, pins and maps kc_hits. Returns 0, or a negative
 * errno with a message in err. */
int kc_xdp_open(struct kc_xdp *x, const struct kc_cache_opts *o, char *err, size_t errlen);

/* Puts the program into slot 0 of o->next_fd (kc_policy_next): from then on the policy hands
 * it what it lets through. Returns 0 or a negative errno + err. */
int kc_xdp_attach(struct kc_xdp *x, char *err, size_t errlen);

/* Clears the slot at once (no-op when not in it): no XDP run that starts afterwards reaches
 * the kernel tier. */
void kc_xdp_detach(struct kc_xdp *x);

/* Removes our pins, and only ours (another daemon may have pinned its own since), then the pin
 * folder if it is empty. The maps stay open. */
void kc_xdp_unpin(struct kc_xdp *x);

/* Leaves the slot and closes everything. */
void kc_xdp_destroy(struct kc_xdp *x);

#endif
