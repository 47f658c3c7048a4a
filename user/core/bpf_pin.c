/* bpf_pin.c: map helpers shared by the daemon's BPF code: pinning, per-CPU reads (see bpf_pin.h).
 */
#include "core/bpf_pin.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/log.h"

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int kc_pin_dir_prepare(const char *pin_path, char *err, size_t errlen)
{
	if (!strncmp(pin_path, "/sys/fs/bpf/", 12) && !is_bpffs("/sys/fs/bpf") &&
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		kc_errf(err, errlen, "pin-path %s: mount bpffs on /sys/fs/bpf: %s", pin_path,
			strerror(errno));
		return -errno;
	}
	if (mkdir(pin_path, 0700) && errno != EEXIST) {
		kc_errf(err, errlen, "pin-path %s: %s", pin_path, strerror(errno));
		return -errno;
	}
	if (!is_bpffs(pin_path)) {
		kc_errf(err, errlen, "pin-path %s: not on a bpf filesystem (mount -t bpf bpf DIR)",
			pin_path);
		return -EINVAL;
	}
	return 0;
}

void kc_unpin_if_ours(struct bpf_map *m, const char *path)
{
	struct bpf_map_info a, b;
	__u32 la = sizeof(a), lb = sizeof(b);
	int fd = bpf_obj_get(path);

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &a, &la) &&
	    !bpf_obj_get_info_by_fd(bpf_map__fd(m), &b, &lb) && a.id == b.id)
		unlink(path);
	if (fd >= 0)
		close(fd);
}

uint64_t kc_map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Every CPU's value of key in the per-CPU map fd, size bytes each: a new array of *ncpu values,
 * or NULL with *rc set. */
void *kc_percpu_read(int fd, const void *key, size_t size, int *ncpu, int *rc)
{
	void *per;

	*ncpu = libbpf_num_possible_cpus();
	if (*ncpu <= 0) {
		*rc = *ncpu ? *ncpu : -EINVAL;
		return NULL;
	}
	per = calloc((size_t)*ncpu, size);
	if (!per) {
		*rc = -ENOMEM;
		return NULL;
	}
	if (bpf_map_lookup_elem(fd, key, per)) {
		*rc = -errno;
		free(per);
		return NULL;
	}
	return per;
}
