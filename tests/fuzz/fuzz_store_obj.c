/* fuzz_store_obj.c: libFuzzer target for the object store's object parser
 * (user/tiers/store/store.c): any bytes are refused with a reason or accepted with the value inside
 * the buffer, never a crash or a read outside it. The input's first byte picks the key the parse is
 * asked for: none, the key stored in the input, or a fixed one. Accepted objects are re-encoded and
 * must parse back to the same value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tiers/store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *key = NULL;
	size_t nkey = 0, vlen = 0;
	const void *val = NULL;
	enum kc_store_obj_res r;
	char err[160];
	uint8_t *buf;

	if (size < 1 || size > 1 << 20)
		return 0;
	/* a private copy, exactly as long as the object: ASan catches any overread */
	buf = malloc(size - 1 ? size - 1 : 1);
	memcpy(buf, data + 1, size - 1);
	if (data[0] % 3 == 1 && size - 1 >= KC_STORE_OBJ_HDR) {
		nkey = (size_t)(buf[6] | buf[7] << 8);
		key = (const char *)buf + KC_STORE_OBJ_HDR;
		if (nkey > size - 1 - KC_STORE_OBJ_HDR)
			nkey = size - 1 - KC_STORE_OBJ_HDR;
	} else if (data[0] % 3 == 2) {
		key = "fixed-key";
		nkey = 9;
	}
	err[0] = 0;
	r = kc_store_obj_parse(buf, size - 1, key, nkey, &val, &vlen, err, sizeof(err));
	if (r == KC_STORE_OBJ_BAD && !err[0])
		__builtin_trap(); /* every refusal says why */
	if (r == KC_STORE_OBJ_OK) {
		const uint8_t *v = val, *k = buf + KC_STORE_OBJ_HDR;
		size_t klen = (size_t)(buf[6] | buf[7] << 8);
		uint8_t *again = malloc(KC_STORE_OBJ_HDR + klen + vlen);
		const void *v2;
		size_t n2;

		if (v < buf || v + vlen != buf + size - 1)
			__builtin_trap();
		kc_store_obj_header(again, (const char *)k, klen, v, vlen);
		memcpy(again + KC_STORE_OBJ_HDR, k, klen);
		memcpy(again + KC_STORE_OBJ_HDR + klen, v, vlen);
		if (kc_store_obj_parse(again, KC_STORE_OBJ_HDR + klen + vlen, (const char *)k, klen,
				       &v2, &n2, err, sizeof(err)) != KC_STORE_OBJ_OK ||
		    n2 != vlen || memcmp(v2, v, vlen) != 0 ||
		    memcmp(again, buf, KC_STORE_OBJ_HDR) != 0)
			__builtin_trap();
		free(again);
	}
	free(buf);
	return 0;
}
