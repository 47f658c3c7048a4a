/* bpf_pin.h: what the daemon's BPF code shares about maps: pinning (cache_load.c,
 * policy_load.c) and reading per-CPU values (cache_entry.c, policy_maps.c). */
#ifndef KC_BPF_PIN_H
#define KC_BPF_PIN_H

#include <bpf/libbpf.h>
#include <stddef.h>
#include <stdint.h>

/* Makes pin_path a folder on a bpf filesystem, mounting bpffs on /sys/fs/bpf first when the
 * path is below it and nothing is mounted there. Returns 0 or -errno with a message in err. */
int kc_pin_dir_prepare(const char *pin_path, char *err, size_t errlen);

/* Removes the pin at path only if it still is map m (another process may have replaced it). */
void kc_unpin_if_ours(struct bpf_map *m, const char *path);

/* Kernel memory of one map, as the kernel accounts it (fdinfo "memlock"); 0 if unknown. */
uint64_t kc_map_memlock(int fd);

/* Every CPU's value of key in the per-CPU map fd, size bytes each: a new array of *ncpu values
 * (free it), or NULL with *rc set to -errno. */
void *kc_percpu_read(int fd, const void *key, size_t size, int *ncpu, int *rc);

#endif
