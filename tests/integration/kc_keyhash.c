/* kc_keyhash.c: prints KEY's kc_index key (KC_HASH, user/cache_entry.c) as the 8 bytes bpftool
 * takes: "hex b0 b1 ... b7", for tests that put an entry into a pinned kc_index by hand. */
#include <stdio.h>
#include <string.h>
#include "cache_entry.h"

int main(int argc, char **argv)
{
	__u64 h;
	unsigned char b[8];

	if (argc != 2) {
		fprintf(stderr, "usage: kc_keyhash KEY\n");
		return 2;
	}
	h = kc_key_hash(argv[1], strlen(argv[1]));
	memcpy(b, &h, sizeof(b));
	printf("hex");
	for (int i = 0; i < 8; i++)
		printf(" %02x", b[i]);
	printf("\n");
	return 0;
}
