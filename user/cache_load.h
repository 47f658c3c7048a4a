/* cache_load.h: the kernel tier's XDP program as an object, for user/cache.c only: claim the
 * interface, open and size bpf/cache.bpf.c, pin its maps, load, attach, detach, unpin. No
 * policy and no locks; the main thread calls these at start and stop (kc_xdp_detach also from
 * the manager's fail-safe, under its lock).
 *
 * Attachment is a bpf_link that is never pinned: it goes away with the process, so a killed
 * kcached's program stops at once, and netlink cannot replace it by mistake. An interface that
 * carries another XDP program is refused; a kernel tier that an earlier kcached (or a person)
 * attached through netlink is recognised by its program name and replaced.
 */
#ifndef KC_CACHE_LOAD_H
#define KC_CACHE_LOAD_H

#include <net/if.h>
#include <stdint.h>

#include <kcache/cache.h> /* before the skeleton, which uses struct kc_kconfig */
#include "cache.h"

struct cache_bpf;

struct kc_xdp {
	struct cache_bpf *skel;
	int index_fd, slots_fd, hits_fd, stats_fd, hb_fd; /* the loaded maps */
	int link_fd;					  /* -1 when not attached */
	int ifindex;
	char iface[IF_NAMESIZE];
	enum kc_xdp_mode mode;
	char pin_path[128];
	uint32_t mtu;	    /* the interface's, capped: kc_cfg.mtu */
	uint64_t map_bytes; /* every map of the object, as the kernel accounts them (memlock) */
};

/* Zeroes x with every fd at -1. */
void kc_xdp_init(struct kc_xdp *x);

/* Claims o->iface (see above), then opens the object, sets kc_cfg from o (port, listen, mtu,
 * max_value), sizes kc_index/kc_slots/kc_hits to o->entries, removes the maps a previous run
 * left under o->pin_path (mounting bpffs on /sys/fs/bpf if needed), loads and pins. Returns 0,
 * or a negative errno with a message in err ("xdp on eth0: another XDP program (id 42) is
 * attached; detach it or use --xdp-mode off"). */
int kc_xdp_open(struct kc_xdp *x, const struct kc_cache_opts *o, char *err, size_t errlen);

/* Attaches in x->mode (native: driver, skb: generic). Returns 0 or a negative errno + err. */
int kc_xdp_attach(struct kc_xdp *x, char *err, size_t errlen);

/* Detaches at once (no-op when not attached). */
void kc_xdp_detach(struct kc_xdp *x);

/* Removes our pins, and only ours (another daemon may have pinned its own since), then the pin
 * folder if it is empty. The maps stay open. */
void kc_xdp_unpin(struct kc_xdp *x);

/* Detaches and closes everything. */
void kc_xdp_destroy(struct kc_xdp *x);

#endif
