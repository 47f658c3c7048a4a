/* bpf_rcu.c: an RCU barrier for BPF programs, from userspace (contract: bpf_rcu.h). */
#include "core/bpf_rcu.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <unistd.h>

int kc_rcu_init(struct kc_rcu *r)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int err;

	r->outer_fd = -1;
	r->inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kc_rcu_inner", sizeof(__u32),
				     sizeof(__u32), 1, NULL);
	if (r->inner_fd < 0)
		return -errno;
	opts.inner_map_fd = (__u32)r->inner_fd;
	r->outer_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "kc_rcu", sizeof(__u32),
				     sizeof(__u32), 1, &opts);
	if (r->outer_fd < 0) {
		err = -errno;
		goto err_inner;
	}
	return 0;
err_inner:
	close(r->inner_fd);
	r->inner_fd = -1;
	return err;
}

int kc_rcu_sync(struct kc_rcu *r)
{
	__u32 zero = 0, fd = (__u32)r->inner_fd;

	return bpf_map_update_elem(r->outer_fd, &zero, &fd, BPF_ANY) ? -errno : 0;
}

void kc_rcu_close(struct kc_rcu *r)
{
	if (r->outer_fd >= 0)
		close(r->outer_fd);
	if (r->inner_fd >= 0)
		close(r->inner_fd);
	r->outer_fd = r->inner_fd = -1;
}
