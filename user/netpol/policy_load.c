/* policy_load.c: the network policy's XDP program as an object, and the interface's attach
 * point (see policy_load.h). */
#include "netpol/policy_load.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bpf_pin.h"
#include "core/log.h"
#include "policy.skel.h"

/* Programs kcache attaches to an interface: one a dead kcached left may be replaced. */
static const char *const our_progs[] = {"kc_policy", "kc_cache"};

/* The policy itself: reused when a pinned link shows a previous kcached's policy is still
 * enforced, so that there is no moment without one. */
static const char *const policy_maps[] = {"kc_policy_cfg",   "kc_policy_v4_a",	"kc_policy_v4_b",
					  "kc_policy_v6_a",  "kc_policy_v6_b",	"kc_policy_prt_a",
					  "kc_policy_prt_b", "kc_policy_def_a", "kc_policy_def_b"};
/* Counters, sources, report slots, events and the cache slot always start fresh. */
static const char *const fresh_maps[] = {"kc_policy_cnt", "kc_policy_tot", "kc_policy_src",
					 "kc_policy_rpt", "kc_policy_evt", "kc_policy_next"};
#define N_POLICY (sizeof(policy_maps) / sizeof(policy_maps[0]))
#define N_FRESH	 (sizeof(fresh_maps) / sizeof(fresh_maps[0]))

void kc_pol_obj_init(struct kc_pol_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->next_fd = o->evt_fd = o->link_fd = o->lock_fd = -1;
	o->maps.cnt_fd = o->maps.tot_fd = -1;
	for (int b = 0; b < 2; b++)
		o->maps.v4_fd[b] = o->maps.v6_fd[b] = o->maps.prt_fd[b] = o->maps.def_fd[b] = -1;
}

static int prog_name(__u32 id, char *name, size_t len)
{
	struct bpf_prog_info info;
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = 0;

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		err = -errno;
	else
		snprintf(name, len, "%s", info.name);
	close(fd);
	return err;
}

static bool ours(const char *name)
{
	for (size_t i = 0; i < sizeof(our_progs) / sizeof(our_progs[0]); i++)
		if (!strcmp(name, our_progs[i]))
			return true;
	return false;
}

/* Creates the pin folder on a bpf filesystem (mounting /sys/fs/bpf if nothing is there) and
 * takes its lock: one kcached per pin folder. */
static int lock_pins(struct kc_pol_obj *o, char *err, size_t errlen)
{
	int rc = kc_pin_dir_prepare(o->pin_path, err, errlen);

	if (rc)
		return rc;
	o->lock_fd = open(o->pin_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->lock_fd < 0) {
		kc_errf(err, errlen, "pin-path %s: %s", o->pin_path, strerror(errno));
		return -errno;
	}
	if (flock(o->lock_fd, LOCK_EX | LOCK_NB)) {
		close(o->lock_fd);
		o->lock_fd = -1; /* not ours: close must not touch what is pinned there */
		kc_errf(err, errlen,
			"xdp on %s: a running kcached holds the kernel tier (it holds %s); stop it "
			"or use --xdp-mode off",
			o->iface, o->pin_path);
		return -EBUSY;
	}
	return 0;
}

static void pin_file(const struct kc_pol_obj *o, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", o->pin_path, name);
}

/* A link a persisting kcached pinned: taken over when it is attached to our interface,
 * detached when it is attached elsewhere (we own the pin folder), dropped when dead. */
static void adopt_pinned_link(struct kc_pol_obj *o)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	char path[256];
	int fd;

	pin_file(o, KC_POL_LINK_PIN, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_XDP ||
	    info.xdp.ifindex == 0) {
		log_info("network policy: removed %s, a link no longer attached", path);
	} else if ((int)info.xdp.ifindex != o->ifindex) {
		bpf_link_detach(fd);
		log_warn(
		    "network policy: detached the policy a previous kcached left on ifindex %u "
		    "(this one runs on %s)",
		    info.xdp.ifindex, o->iface);
	} else {
		o->link_fd = fd;
		log_info("network policy: taking over the policy a previous kcached left enforced "
			 "on %s (program id %u)",
			 o->iface, info.prog_id);
		return;
	}
	close(fd);
	unlink(path);
}

/* Makes sure the interface has no XDP program but ours: a pinned link is adopted, a kcache
 * program a dead kcached left attached through netlink is replaced, anything else refused
 * before anything is pinned or attached. */
static int claim_iface(struct kc_pol_obj *o, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, dopts);
	char name[BPF_OBJ_NAME_LEN] = "";
	__u32 id, flags;
	int rc, fd;

	adopt_pinned_link(o);
	rc = bpf_xdp_query(o->ifindex, 0, &q);
	if (rc) {
		kc_errf(err, errlen, "xdp on %s: query: %s", o->iface, strerror(-rc));
		return rc;
	}
	if (o->link_fd >= 0) {
		o->mode_change = q.attach_mode !=
				 (o->mode == KC_XDP_NATIVE ? XDP_ATTACHED_DRV : XDP_ATTACHED_SKB);
		return 0;
	}
	if (q.attach_mode == XDP_ATTACHED_NONE)
		return 0;
	id = q.prog_id;
	if (q.attach_mode == XDP_ATTACHED_MULTI || prog_name(id, name, sizeof(name)) ||
	    !ours(name)) {
		id = id		     ? id
		     : q.drv_prog_id ? q.drv_prog_id
		     : q.skb_prog_id ? q.skb_prog_id
				     : q.hw_prog_id;
		kc_errf(err, errlen,
			"xdp on %s: another XDP program (id %u) is attached; detach it or use "
			"--xdp-mode off",
			o->iface, id);
		return -EBUSY;
	}
	flags = q.attach_mode == XDP_ATTACHED_SKB   ? XDP_FLAGS_SKB_MODE
		: q.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE
						    : XDP_FLAGS_HW_MODE;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0) {
		kc_errf(err, errlen, "xdp on %s: program %u: %s", o->iface, id, strerror(errno));
		return -errno;
	}
	dopts.old_prog_fd = fd; /* detach only if it is still that program */
	rc = bpf_xdp_detach(o->ifindex, flags, &dopts);
	close(fd);
	if (rc == -EBUSY) {
		kc_errf(
		    err, errlen,
		    "xdp on %s: a running kcached holds the kernel tier (program id %u); stop it "
		    "or use --xdp-mode off",
		    o->iface, id);
		return rc;
	}
	if (rc) {
		kc_errf(err, errlen,
			"xdp on %s: detach the kernel tier a previous kcached left (id %u): %s",
			o->iface, id, strerror(-rc));
		return rc;
	}
	log_warn("xdp on %s: replaced the kernel tier a previous kcached left attached (id %u)",
		 o->iface, id);
	return 0;
}

/* Sets every map's pin path. The policy maps are kept when reused (libbpf then reuses the
 * pinned ones); everything else a previous run left is removed so the load pins fresh maps. */
static void prepare_pins(struct kc_pol_obj *o)
{
	char path[256];

	if (o->reused)
		for (size_t i = 0; i < N_POLICY; i++) {
			pin_file(o, policy_maps[i], path, sizeof(path));
			if (access(path, F_OK)) {
				log_warn("network policy: %s is gone; starting from fresh maps",
					 path);
				o->reused = false;
			}
		}
	for (size_t i = 0; i < N_POLICY + N_FRESH; i++) {
		const char *name = i < N_POLICY ? policy_maps[i] : fresh_maps[i - N_POLICY];

		pin_file(o, name, path, sizeof(path));
		if (i >= N_POLICY || !o->reused) {
			if (unlink(path) == 0)
				log_info("network policy: removed %s left by a previous run", path);
			else if (errno != ENOENT)
				log_warn("network policy: remove %s: %s", path, strerror(errno));
		}
		bpf_map__set_pin_path(bpf_object__find_map_by_name(o->skel->obj, name), path);
	}
}

static int load(struct kc_pol_obj *o, const struct kc_pol_load_opts *opts, char *err, size_t errlen)
{
	struct policy_bpf *s;
	struct bpf_map *m;
	uint32_t ids = opts->max_rules + KC_POL_PORTS_MAX + 3;
	void *cfg;
	int rc;

	s = o->skel = policy_bpf__open();
	if (!s) {
		kc_errf(err, errlen, "open the network policy: %s", strerror(errno));
		return -errno;
	}
	if (bpf_map__set_max_entries(s->maps.kc_policy_v4_a, opts->max_rules) ||
	    bpf_map__set_max_entries(s->maps.kc_policy_v4_b, opts->max_rules) ||
	    bpf_map__set_max_entries(s->maps.kc_policy_v6_a, opts->max_rules) ||
	    bpf_map__set_max_entries(s->maps.kc_policy_v6_b, opts->max_rules) ||
	    bpf_map__set_max_entries(s->maps.kc_policy_cnt, ids)) {
		kc_errf(err, errlen, "net-policy-max-rules %u: cannot size the maps",
			opts->max_rules);
		return -EINVAL;
	}
	prepare_pins(o);
	rc = policy_bpf__load(s);
	if (rc) {
		kc_errf(err, errlen, "load the network policy: %s%s", strerror(-rc),
			rc == -EPERM
			    ? " (needs root, or CAP_BPF and CAP_NET_ADMIN; or --xdp-mode off)"
			    : "");
		return rc;
	}
	o->maps.max_prefixes = opts->max_rules;
	o->maps.max_ids = ids;
	o->maps.v4_fd[0] = bpf_map__fd(s->maps.kc_policy_v4_a);
	o->maps.v4_fd[1] = bpf_map__fd(s->maps.kc_policy_v4_b);
	o->maps.v6_fd[0] = bpf_map__fd(s->maps.kc_policy_v6_a);
	o->maps.v6_fd[1] = bpf_map__fd(s->maps.kc_policy_v6_b);
	o->maps.prt_fd[0] = bpf_map__fd(s->maps.kc_policy_prt_a);
	o->maps.prt_fd[1] = bpf_map__fd(s->maps.kc_policy_prt_b);
	o->maps.def_fd[0] = bpf_map__fd(s->maps.kc_policy_def_a);
	o->maps.def_fd[1] = bpf_map__fd(s->maps.kc_policy_def_b);
	o->maps.cnt_fd = bpf_map__fd(s->maps.kc_policy_cnt);
	o->maps.tot_fd = bpf_map__fd(s->maps.kc_policy_tot);
	o->next_fd = bpf_map__fd(s->maps.kc_policy_next);
	o->evt_fd = bpf_map__fd(s->maps.kc_policy_evt);
	cfg = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED,
		   bpf_map__fd(s->maps.kc_policy_cfg), 0);
	if (cfg == MAP_FAILED) {
		kc_errf(err, errlen, "mmap kc_policy_cfg: %s", strerror(errno));
		return -errno;
	}
	o->maps.cfg = cfg;
	for (m = bpf_object__next_map(s->obj, NULL); m; m = bpf_object__next_map(s->obj, m))
		o->map_bytes += kc_map_memlock(bpf_map__fd(m));
	return 0;
}

static void unload(struct kc_pol_obj *o)
{
	if (o->maps.cfg)
		munmap(o->maps.cfg, (size_t)sysconf(_SC_PAGESIZE));
	o->maps.cfg = NULL;
	policy_bpf__destroy(o->skel);
	o->skel = NULL;
}

int kc_pol_obj_open(struct kc_pol_obj *o, const struct kc_pol_load_opts *opts, char *err,
		    size_t errlen)
{
	int rc;

	o->mode = opts->mode;
	o->persist = opts->persist;
	snprintf(o->iface, sizeof(o->iface), "%s", opts->iface);
	snprintf(o->pin_path, sizeof(o->pin_path), "%s", opts->pin_path);
	o->ifindex = (int)if_nametoindex(o->iface);
	if (!o->ifindex) {
		kc_errf(err, errlen, "iface %s: %s", o->iface, strerror(errno));
		return -ENODEV;
	}
	rc = lock_pins(o, err, errlen);
	if (rc)
		return rc;
	rc = claim_iface(o, err, errlen);
	if (rc)
		return rc;
	o->reused = o->link_fd >= 0;
	rc = load(o, opts, err, errlen);
	if (rc && o->reused) {
		/* Pinned maps of another layout or size (an upgrade, another --net-policy-max-
		 * rules): fresh ones. The old policy stays enforced through its own program
		 * until the link moves to ours, which happens once ours holds the new policy. */
		log_warn("network policy: cannot reuse the pinned policy maps (%s); loading fresh "
			 "ones, the previous policy stays enforced until the new one is in",
			 err);
		unload(o);
		o->reused = false;
		rc = load(o, opts, err, errlen);
	}
	return rc;
}

int kc_pol_obj_attach(struct kc_pol_obj *o, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts);
	int prog = bpf_program__fd(o->skel->progs.kc_policy), fd = -EBUSY;
	char path[256];

	pin_file(o, KC_POL_LINK_PIN, path, sizeof(path));
	if (o->link_fd >= 0 && o->mode_change) {
		log_warn("network policy: the policy left on %s is in the other XDP mode; "
			 "re-attaching in %s mode (nothing is enforced for that moment)",
			 o->iface, kc_xdp_mode_name(o->mode));
		bpf_link_detach(o->link_fd);
		close(o->link_fd);
		o->link_fd = -1;
		unlink(path);
	}
	if (o->link_fd >= 0) {
		/* No moment without a program: the link moves from the old one to ours. */
		if (bpf_link_update(o->link_fd, prog, NULL)) {
			fd = -errno;
			kc_errf(err, errlen, "xdp on %s: move the pinned policy link: %s", o->iface,
				strerror(-fd));
			return fd;
		}
	} else {
		lopts.flags = o->mode == KC_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
		for (int tries = 0; tries < 2; tries++) {
			fd = bpf_link_create(prog, o->ifindex, BPF_XDP, &lopts);
			if (fd >= 0)
				break;
			fd = -errno;
			if (fd != -EBUSY && fd != -EEXIST)
				break;
			/* Someone attached since claim_iface. */
			if (claim_iface(o, err, errlen))
				return -EBUSY;
		}
		if (fd < 0) {
			kc_errf(err, errlen, "xdp on %s: attach in %s mode: %s", o->iface,
				kc_xdp_mode_name(o->mode), strerror(-fd));
			return fd;
		}
		o->link_fd = fd;
	}
	if (o->persist) {
		if (access(path, F_OK) && bpf_obj_pin(o->link_fd, path)) {
			fd = -errno;
			kc_errf(err, errlen, "pin the policy link as %s: %s", path, strerror(-fd));
			return fd;
		}
	} else if (unlink(path) == 0) {
		/* A persisting kcached's link, taken over by one that does not persist: it now
		 * lives as long as this process. */
		log_info("network policy: unpinned %s (net-policy-persist is off)", path);
	}
	return 0;
}

/* Removes our pins (only ours: the path may have been taken over since), and the link's. */
static void unpin(struct kc_pol_obj *o)
{
	char path[256];

	for (size_t i = 0; o->skel && i < N_POLICY + N_FRESH; i++) {
		const char *name = i < N_POLICY ? policy_maps[i] : fresh_maps[i - N_POLICY];
		struct bpf_map *m = bpf_object__find_map_by_name(o->skel->obj, name);

		if (!m || !bpf_map__is_pinned(m))
			continue;
		pin_file(o, name, path, sizeof(path));
		kc_unpin_if_ours(m, path);
	}
	pin_file(o, KC_POL_LINK_PIN, path, sizeof(path));
	unlink(path);
	rmdir(o->pin_path); /* only if empty: other families may pin there */
}

void kc_pol_obj_close(struct kc_pol_obj *o)
{
	if (o->persist && o->link_fd >= 0) {
		log_info("network policy: stays enforced on %s after exit (net-policy-persist); "
			 "kcachectl policy uninstall removes it",
			 o->iface);
	} else {
		if (o->link_fd >= 0)
			bpf_link_detach(o->link_fd);
		if (o->lock_fd >= 0) /* a refused start must not remove another's pins */
			unpin(o);
	}
	if (o->link_fd >= 0)
		close(o->link_fd);
	o->link_fd = -1;
	unload(o);
	if (o->lock_fd >= 0)
		close(o->lock_fd); /* releases the flock */
	o->lock_fd = -1;
}

/* ---- uninstall (kcachectl, no daemon) ------------------------------------------------------ */

static char *un_out;
static size_t un_len, un_used;
static int un_errors;

static void un_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void un_say(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (un_used >= un_len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(un_out + un_used, un_len - un_used, fmt, ap);
	va_end(ap);
	if (n > 0)
		un_used += (size_t)n < un_len - un_used ? (size_t)n : un_len - un_used - 1;
}

static int un_remove(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	if (ftw->level == 0)
		return 0; /* the folder itself: last, and only if nothing is left */
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) == 0) {
		un_say("removed %s\n", path);
	} else {
		un_say("cannot remove %s: %s\n", path, strerror(errno));
		un_errors++;
	}
	return 0;
}

/* Detaches kc_policy/kc_cache programs attached through netlink to this namespace's
 * interfaces (a kcached that died before it could, or one attached by hand). */
static void un_detach_netlink(void)
{
	struct if_nameindex *ifs = if_nameindex();

	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		LIBBPF_OPTS(bpf_xdp_attach_opts, dopts);
		char name[BPF_OBJ_NAME_LEN] = "";
		__u32 flags;
		int fd, rc;

		if (bpf_xdp_query((int)i->if_index, 0, &q) || q.attach_mode == XDP_ATTACHED_NONE ||
		    q.attach_mode == XDP_ATTACHED_MULTI ||
		    prog_name(q.prog_id, name, sizeof(name)) || !ours(name))
			continue;
		flags = q.attach_mode == XDP_ATTACHED_SKB   ? XDP_FLAGS_SKB_MODE
			: q.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE
							    : XDP_FLAGS_HW_MODE;
		fd = bpf_prog_get_fd_by_id(q.prog_id);
		if (fd < 0)
			continue;
		dopts.old_prog_fd = fd;
		rc = bpf_xdp_detach((int)i->if_index, flags, &dopts);
		close(fd);
		if (rc) {
			un_say("cannot detach %s (id %u) from %s: %s\n", name, q.prog_id,
			       i->if_name,
			       rc == -EBUSY ? "a running process holds it" : strerror(-rc));
			un_errors++;
		} else {
			un_say("detached %s (id %u) from %s\n", name, q.prog_id, i->if_name);
		}
	}
	if (ifs)
		if_freenameindex(ifs);
}

int kc_pol_uninstall(const char *pin_path, char *out, size_t outlen, char *err, size_t errlen)
{
	char path[256];
	int lock, fd;

	un_out = out;
	un_len = outlen;
	un_used = 0;
	un_errors = 0;
	if (outlen)
		out[0] = 0;
	lock = open(pin_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 && errno != ENOENT) {
		kc_errf(err, errlen, "%s: %s", pin_path, strerror(errno));
		return -errno;
	}
	if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB)) {
		kc_errf(err, errlen, "a running kcached holds %s: stop it first", pin_path);
		close(lock);
		return -EBUSY;
	}
	if (lock >= 0) {
		snprintf(path, sizeof(path), "%s/%s", pin_path, KC_POL_LINK_PIN);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (bpf_link_detach(fd)) {
				un_say("cannot detach the policy link %s: %s\n", path,
				       strerror(errno));
				un_errors++;
			} else {
				un_say("detached the network policy (%s)\n", path);
			}
			close(fd);
		}
	}
	un_detach_netlink();
	if (lock >= 0) {
		nftw(pin_path, un_remove, 16, FTW_DEPTH | FTW_PHYS);
		if (rmdir(pin_path) == 0) {
			un_say("removed %s\n", pin_path);
		} else {
			un_say("cannot remove %s: %s\n", pin_path, strerror(errno));
			un_errors++;
		}
		close(lock);
	}
	if (!un_used)
		un_say("nothing to remove: no %s and no kcache XDP program attached\n", pin_path);
	if (un_errors) {
		kc_errf(err, errlen, "%d things could not be removed", un_errors);
		return -EIO;
	}
	return 0;
}
