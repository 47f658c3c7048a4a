/* cache.h: the kernel hot-key tier's manager: loads bpf/cache.bpf.c, pins its maps, puts it
 * behind the network policy's XDP program (user/netpol/policy.h), keeps its heartbeat, decides
 * which keys are hot, installs and removes them, and keeps the kernel consistent with the memory
 * tier. The map contract is include/kcache/cache.h; slot rendering and the install/remove protocol
 * are user/kernel/cache_entry.h; popularity is user/kernel/hot.h.
 *
 * Threads: kc_cache_start/stop/free and the admin and metrics callbacks run on the main thread
 * (the timer lives on its event base). kc_cache_note_get runs on worker threads. The memory
 * tier's hooks, set by kc_cache_start, run on whichever thread holds a shard lock.
 */
#ifndef KC_CACHE_H
#define KC_CACHE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "mem/mem.h"

struct kc_cache;

struct kc_cache_opts {
	struct event_base *base; /* main thread's: heartbeat and admission timer */
	struct kc_mem *mem;	 /* the tier the kernel mirrors; hooks are set on it */
	const char *iface;
	enum kc_xdp_mode mode; /* KC_XDP_SKB or KC_XDP_NATIVE */
	uint16_t port;	       /* memcached UDP port the daemon is bound to */
	const char *listen;    /* the daemon's --listen: XDP answers only packets sent there */
	uint32_t entries;      /* resident keys at most (--kernel-entries) */
	uint32_t max_value;    /* largest value served from the kernel (--kernel-max-value) */
	const char *pin_path;  /* bpffs folder for the maps (--pin-path) */
	int next_fd;	       /* the policy's kc_policy_next: slot 0 is the kernel tier's */
};

/* Loads the kernel tier and puts it into the policy's slot, then starts its timer and sets the
 * memory tier's hooks. Call before any worker serves, after the policy is attached. Returns
 * NULL with a message in err. */
struct kc_cache *kc_cache_start(const struct kc_cache_opts *o, char *err, size_t errlen);

/* A get the daemon served (over TCP or UDP: a kernel miss, or a request the kernel does not
 * answer) asked for key; it is the item found, or NULL. Feeds popularity and may offer the key
 * for installation. Any thread, no tier lock held. c may be NULL (kernel tier off). */
void kc_cache_note_get(struct kc_cache *c, const char *key, size_t nkey, const struct kc_item *it);

/* Stops the kernel from serving at once (heartbeat 0, slot cleared) and removes the pins. The
 * maps stay open, so hooks that still fire (workers finishing) remain safe. NULL is allowed. */
void kc_cache_stop(struct kc_cache *c);

/* Unsets the memory tier's hooks and frees everything. Call after the workers have stopped.
 * NULL is allowed. */
void kc_cache_free(struct kc_cache *c);

/* Admin command "hot [N]": resident keys by kernel hits, the N hottest (default 100, 0 = all).
 * ctx is the struct kc_cache, or NULL when the kernel tier is off (then an error). */
int kc_cache_admin_hot(void *ctx, int argc, char **argv, struct kc_buf *out);

/* Metrics collector: kcache_kernel_* families. ctx may be NULL (off: zeros). */
void kc_cache_collect(void *ctx, struct kc_buf *out);

#endif
