/* cache_load.c: the kernel tier's XDP program as an object: open, size and load
 * bpf/cache.bpf.c, pin its maps, put it into the network policy's slot and take it out (see
 * cache_load.h). What to put in the maps, and when, is user/kernel/cache.c's business. */
#include "kernel/cache_load.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bpf_pin.h"
#include "cache.skel.h"
#include "kernel/cache_entry.h"
#include "core/log.h"

#define KC_MTU_CAP 9000 /* larger replies would not fit an XDP frame anyway */

int kc_xdp_attach(struct kc_xdp *x, char *err, size_t errlen)
{
	__u32 zero = 0;
	int fd = bpf_program__fd(x->skel->progs.kc_cache);

	if (bpf_map_update_elem(x->next_fd, &zero, &fd, BPF_ANY)) {
		kc_errf(err, errlen, "kernel tier: join the network policy on %s: %s", x->iface,
			strerror(errno));
		return -errno;
	}
	x->in_slot = 1;
	return 0;
}

static const char *const pinned_maps[] = {"kc_index", "kc_slots", "kc_hits", "kc_stats",
					  "kc_heartbeat"};
#define N_PINNED (sizeof(pinned_maps) / sizeof(pinned_maps[0]))

/* Creates the pin folder on a bpf filesystem (mounting /sys/fs/bpf if nothing is there) and
 * removes the maps a previous run of this family left, so the load pins fresh ones (libbpf
 * would reuse compatible pinned maps, stale contents included). */
static int prepare_pins(struct kc_xdp *x, char *err, size_t errlen)
{
	char path[256];
	int rc = kc_pin_dir_prepare(x->pin_path, err, errlen);

	if (rc)
		return rc;
	for (size_t i = 0; i < N_PINNED; i++) {
		snprintf(path, sizeof(path), "%s/%s", x->pin_path, pinned_maps[i]);
		if (unlink(path) == 0)
			log_info("kernel tier: removed %s left by a previous run", path);
		else if (errno != ENOENT)
			log_warn("kernel tier: remove %s: %s", path, strerror(errno));
		bpf_map__set_pin_path(bpf_object__find_map_by_name(x->skel->obj, pinned_maps[i]),
				      path);
	}
	return 0;
}

void kc_xdp_unpin(struct kc_xdp *x)
{
	if (!x->skel)
		return;
	for (size_t i = 0; i < N_PINNED; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(x->skel->obj, pinned_maps[i]);
		const char *path = bpf_map__pin_path(m);

		if (path && bpf_map__is_pinned(m))
			kc_unpin_if_ours(m, path);
	}
	rmdir(x->pin_path); /* only if empty: other families may pin there */
}

static uint32_t iface_mtu(const char *iface)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint32_t mtu = KC_MTU_DEFAULT;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		mtu = (uint32_t)ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	return mtu > KC_MTU_CAP ? KC_MTU_CAP : mtu;
}

/* XDP answers only packets addressed where the daemon listens (0.0.0.0 and :: are any). */
static int set_listen(struct kc_kconfig *cfg, const char *listen, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, listen, &a4) == 1) {
		cfg->addr_mode = a4.s_addr == htonl(INADDR_ANY) ? KC_ADDR_ANY : KC_ADDR_V4;
		cfg->addr4 = a4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, listen, &a6) == 1) {
		cfg->addr_mode = IN6_IS_ADDR_UNSPECIFIED(&a6) ? KC_ADDR_ANY : KC_ADDR_V6;
		memcpy(cfg->addr6, &a6, sizeof(cfg->addr6));
		return 0;
	}
	kc_errf(err, errlen, "kernel tier: listen address '%s' is not numeric", listen);
	return -EINVAL;
}

static int load(struct kc_xdp *x, const struct kc_cache_opts *o, char *err, size_t errlen)
{
	struct bpf_map *m;
	void *hits;
	int rc, ncpu;

	x->skel = cache_bpf__open();
	if (!x->skel) {
		kc_errf(err, errlen, "open the kernel tier: %s", strerror(errno));
		return -errno;
	}
	x->skel->rodata->kc_cfg.port = o->port;
	x->skel->rodata->kc_cfg.mtu = x->mtu;
	x->skel->rodata->kc_cfg.max_value = o->max_value;
	x->skel->rodata->kc_cfg.hb_window_ns = KC_HB_WINDOW_NS_DEFAULT;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu < 1 || (uint64_t)o->entries * (uint64_t)ncpu > UINT32_MAX) {
		kc_errf(err, errlen, "kernel-entries %u: cannot size kc_hits for %d CPUs",
			o->entries, ncpu);
		return -EINVAL;
	}
	x->ncpu = (uint32_t)ncpu;
	x->skel->rodata->kc_cfg.entries = o->entries;
	x->skel->rodata->kc_cfg.ncpu = x->ncpu;
	x->index_mask = kc_index_buckets(o->entries) - 1;
	x->skel->rodata->kc_cfg.index_mask = x->index_mask;
	rc = set_listen((struct kc_kconfig *)&x->skel->rodata->kc_cfg, o->listen, err, errlen);
	if (rc)
		return rc;
	if (bpf_map__set_max_entries(x->skel->maps.kc_index, x->index_mask + 1) ||
	    bpf_map__set_max_entries(x->skel->maps.kc_slots, o->entries) ||
	    bpf_map__set_max_entries(x->skel->maps.kc_hits, o->entries * x->ncpu)) {
		kc_errf(err, errlen, "kernel-entries %u: cannot size the maps", o->entries);
		return -EINVAL;
	}
	rc = prepare_pins(x, err, errlen);
	if (rc)
		return rc;
	rc = cache_bpf__load(x->skel);
	if (rc) {
		kc_errf(err, errlen, "load the kernel tier: %s%s", strerror(-rc),
			rc == -EPERM
			    ? " (needs root, or CAP_BPF and CAP_NET_ADMIN; or --xdp-mode off)"
			    : "");
		return rc;
	}
	x->index_fd = bpf_map__fd(x->skel->maps.kc_index);
	x->slots_fd = bpf_map__fd(x->skel->maps.kc_slots);
	x->hits_fd = bpf_map__fd(x->skel->maps.kc_hits);
	x->stats_fd = bpf_map__fd(x->skel->maps.kc_stats);
	x->hb_fd = bpf_map__fd(x->skel->maps.kc_heartbeat);
	x->hits_len = (size_t)o->entries * x->ncpu * sizeof(__u64);
	hits = mmap(NULL, x->hits_len, PROT_READ | PROT_WRITE, MAP_SHARED, x->hits_fd, 0);
	if (hits == MAP_FAILED) {
		rc = -errno;
		kc_errf(err, errlen, "mmap kc_hits: %s", strerror(-rc));
		return rc;
	}
	x->hits = hits;
	for (m = bpf_object__next_map(x->skel->obj, NULL); m;
	     m = bpf_object__next_map(x->skel->obj, m))
		x->map_bytes += kc_map_memlock(bpf_map__fd(m));
	return 0;
}

void kc_xdp_init(struct kc_xdp *x)
{
	memset(x, 0, sizeof(*x));
	x->index_fd = x->slots_fd = x->hits_fd = x->stats_fd = x->hb_fd = x->next_fd = -1;
}

int kc_xdp_open(struct kc_xdp *x, const struct kc_cache_opts *o, char *err, size_t errlen)
{
	x->mode = o->mode;
	snprintf(x->iface, sizeof(x->iface), "%s", o->iface);
	snprintf(x->pin_path, sizeof(x->pin_path), "%s", o->pin_path);
	x->ifindex = (int)if_nametoindex(x->iface);
	if (!x->ifindex) {
		kc_errf(err, errlen, "iface %s: %s", x->iface, strerror(errno));
		return -ENODEV;
	}
	x->mtu = iface_mtu(x->iface);
	x->next_fd = o->next_fd;
	return load(x, o, err, errlen);
}

void kc_xdp_detach(struct kc_xdp *x)
{
	__u32 zero = 0;

	if (!x->in_slot)
		return;
	if (bpf_map_delete_elem(x->next_fd, &zero) && errno != ENOENT)
		log_warn("kernel tier: leave the network policy's slot: %s", strerror(errno));
	x->in_slot = 0;
}

void kc_xdp_destroy(struct kc_xdp *x)
{
	kc_xdp_detach(x);
	if (x->hits)
		munmap((void *)x->hits, x->hits_len);
	x->hits = NULL;
	cache_bpf__destroy(x->skel);
	x->skel = NULL;
	x->index_fd = x->slots_fd = x->hits_fd = x->stats_fd = x->hb_fd = -1;
}
