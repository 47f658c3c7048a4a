/* kc_plant.c: plants a kc_index entry by hand, for tests that fake a 64-bit hash collision:
 * copies FROM's way (slot, gen) of the pinned kc_index under the hash of TO, as if TO's hash were
 * FROM's. Prints the bucket it wrote. Exit 1 with a message on any error.
 *
 *   kc_plant /sys/fs/bpf/<pin>/kc_index FROM TO
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "kernel/cache_entry.h"

int main(int argc, char **argv)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), mask;
	struct kc_kref ref;
	int fd, err;

	if (argc != 4) {
		fprintf(stderr, "usage: kc_plant PINNED_KC_INDEX FROM TO\n");
		return 2;
	}
	fd = bpf_obj_get(argv[1]);
	memset(&info, 0, sizeof(info));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "kc_plant: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	mask = info.max_entries - 1;
	err = kc_index_get(fd, mask, kc_key_hash(argv[2], strlen(argv[2])), &ref);
	if (err) {
		fprintf(stderr, "kc_plant: no kc_index entry for %s: %s\n", argv[2],
			strerror(-err));
		return 1;
	}
	err = kc_index_put(fd, mask, kc_key_hash(argv[3], strlen(argv[3])), ref.slot, ref.gen, 1);
	if (err) {
		fprintf(stderr, "kc_plant: put %s: %s\n", argv[3], strerror(-err));
		return 1;
	}
	printf("bucket %u: %s -> slot %u gen %u\n",
	       (__u32)kc_key_hash(argv[3], strlen(argv[3])) & mask, argv[3], ref.slot, ref.gen);
	return 0;
}
