/* policy_load.h: the network policy's XDP program as an object, and the owner of the
 * interface's XDP attach point: claim the interface, open and size bpf/policy.bpf.c, pin or
 * reuse its maps, load, attach (or take over a pinned link), detach, unpin; and the offline
 * uninstall kcachectl runs. What goes into the maps is user/netpol/policy_maps.h's business; the
 * kernel cache program (user/kernel/cache_load.h) puts itself into slot 0 of kc_policy_next.
 *
 * The interface: a free one is taken; a kc_policy or kc_cache program that a dead kcached left
 * attached through netlink is replaced; anything else is refused ("another XDP program (id 42)
 * is attached"), and so is a kernel tier that a running kcached holds. kcached holds an
 * exclusive flock on the pin folder while it runs: that is how "running" is told from "left
 * behind", also for a pinned link.
 *
 * Persistence (--net-policy-persist): the link is pinned as <pin-path>/kc_policy_link and stays,
 * with the policy's maps, after kcached exits, so the policy keeps being enforced while no
 * kcached runs. The next kcached loads its program over the same policy maps, moves the link
 * to it (bpf_link_update: no moment without a program) and then swaps its own policy in.
 * Without persistence the link is never pinned: it goes away with the process.
 *
 * Main thread only; no locks.
 */
#ifndef KC_POLICY_LOAD_H
#define KC_POLICY_LOAD_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "netpol/policy_maps.h"

struct policy_bpf;

#define KC_POL_LINK_PIN "kc_policy_link"

struct kc_pol_load_opts {
	const char *iface;
	enum kc_xdp_mode mode; /* KC_XDP_SKB or KC_XDP_NATIVE */
	const char *pin_path;
	bool persist;
	uint32_t max_rules; /* prefixes per trie; rule ids = max_rules + KC_POL_PORTS_MAX + 3 */
};

struct kc_pol_obj {
	struct policy_bpf *skel;
	struct kc_pol_maps maps; /* fds of the loaded maps, kc_policy_cfg mmapped */
	int next_fd;		 /* kc_policy_next: the cache's slot */
	int evt_fd;		 /* kc_policy_evt */
	int link_fd;		 /* -1 when not attached */
	int lock_fd;		 /* the pin folder, flocked */
	bool reused;		 /* the policy maps are a previous kcached's, still enforced */
	bool mode_change;	 /* the reused link is in the other XDP mode: re-attach */
	int ifindex;
	char iface[IF_NAMESIZE];
	enum kc_xdp_mode mode;
	char pin_path[128];
	bool persist;
	uint64_t map_bytes; /* every map of the object, as the kernel accounts them (memlock) */
};

/* Zeroes o with every fd at -1. */
void kc_pol_obj_init(struct kc_pol_obj *o);

/* Locks the pin folder (mounting bpffs on /sys/fs/bpf if needed), claims the interface (see
 * above), reuses the policy maps of a pinned link (whose policy is still enforced) or removes
 * what a previous run left, then opens, sizes, loads and pins. Returns 0, or a negative errno
 * with a message in err ("xdp on eth0: another XDP program (id 42) is attached; detach it or
 * use --xdp-mode off"). */
int kc_pol_obj_open(struct kc_pol_obj *o, const struct kc_pol_load_opts *opts, char *err,
		    size_t errlen);

/* Attaches the program: creates the link, or moves a reused one to it; pins the link when
 * persisting, unpins a reused one when not. Call once the maps hold the policy. Returns 0 or a
 * negative errno with a message in err. */
int kc_pol_obj_attach(struct kc_pol_obj *o, char *err, size_t errlen);

/* Persisting: leaves the link and the maps pinned, closes everything. Otherwise detaches at
 * once and removes our pins (only ours) and the pin folder if empty. Releases the lock. */
void kc_pol_obj_close(struct kc_pol_obj *o);

/* kcachectl policy uninstall: with no kcached holding pin_path, detaches the pinned policy
 * link, detaches kc_policy/kc_cache programs left attached through netlink to interfaces of
 * this network namespace, and removes every pin under pin_path and the folder. Appends what
 * it did to out (one line each). Returns 0 (also when there was nothing), or a negative
 * errno with a message in err (-EBUSY: a kcached is running). */
int kc_pol_uninstall(const char *pin_path, char *out, size_t outlen, char *err, size_t errlen);

#endif
