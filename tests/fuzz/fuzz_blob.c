/* fuzz_blob.c: libFuzzer target for the lower tiers' value decoder (user/tiers/tier_blob.c): a
 * blob comes from Redis or the object store, which kcache does not trust. */
#include <stddef.h>
#include <stdint.h>

#include "tiers/tier_blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_item *it = NULL;
	char err[160];

	if (kc_blob_decode(data, size, "fuzz", 4, 1 << 20, &it, err, sizeof(err)) == 0)
		kc_item_put(it);
	return 0;
}
