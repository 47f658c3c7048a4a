/* store_obj.c: the object format both backends store (header, checksum, parse; see store.h and
 * docs/store.md), an object's address (the hex SHA-256 of its key) and the hex helper. A leaf of
 * the object store: the dispatch (store.c) and the backends (store_dir.c, store_s3.c) call it; it
 * calls none of them. */
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/store_int.h"

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* XXH3-64 over header bytes 0..15, the key and the value: one streaming pass, no copy. */
static uint64_t obj_sum(const unsigned char *hdr, const void *key, size_t nkey, const void *val,
			size_t n)
{
	XXH3_state_t st;

	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, hdr, 16);
	XXH3_64bits_update(&st, key, nkey);
	if (n)
		XXH3_64bits_update(&st, val, n);
	return XXH3_64bits_digest(&st);
}

void kc_store_obj_header(void *hdr, const char *key, size_t nkey, const void *val, size_t n)
{
	unsigned char *h = hdr;

	memcpy(h, KC_STORE_OBJ_MAGIC, 4);
	h[4] = 1; /* version */
	h[5] = 0; /* flags: none defined */
	put_le16(h + 6, (uint16_t)nkey);
	put_le64(h + 8, n);
	put_le64(h + 16, obj_sum(h, key, nkey, val, n));
}

enum kc_store_obj_res kc_store_obj_parse(const void *buf, size_t n, const char *key, size_t nkey,
					 const void **val, size_t *vlen, char *err, size_t errlen)
{
	const unsigned char *h = buf;
	size_t klen;
	uint64_t vl, want, got;

	if (n < KC_STORE_OBJ_HDR) {
		kc_errf(err, errlen, "object of %zu bytes is shorter than its %d-byte header", n,
			KC_STORE_OBJ_HDR);
		return KC_STORE_OBJ_BAD;
	}
	if (memcmp(h, KC_STORE_OBJ_MAGIC, 4) != 0) {
		kc_errf(err, errlen, "bad magic (not a kcache object)");
		return KC_STORE_OBJ_BAD;
	}
	if (h[4] != 1 || h[5] != 0) {
		kc_errf(err, errlen, "unknown version %u or flags %#x", h[4], h[5]);
		return KC_STORE_OBJ_BAD;
	}
	klen = get_le16(h + 6);
	vl = get_le64(h + 8);
	if (klen == 0 || klen > KC_STORE_KEY_MAX) {
		kc_errf(err, errlen, "key length %zu out of range 1..%d", klen, KC_STORE_KEY_MAX);
		return KC_STORE_OBJ_BAD;
	}
	if (n - KC_STORE_OBJ_HDR < klen || vl != n - KC_STORE_OBJ_HDR - klen) {
		kc_errf(err, errlen, "lengths (key %zu, value %llu) do not match the size %zu",
			klen, (unsigned long long)vl, n);
		return KC_STORE_OBJ_BAD;
	}
	want = get_le64(h + 16);
	got = obj_sum(h, h + KC_STORE_OBJ_HDR, klen, h + KC_STORE_OBJ_HDR + klen, (size_t)vl);
	if (want != got) {
		kc_errf(err, errlen, "checksum mismatch (stored %016llx, computed %016llx)",
			(unsigned long long)want, (unsigned long long)got);
		return KC_STORE_OBJ_BAD;
	}
	if (key && (klen != nkey || memcmp(h + KC_STORE_OBJ_HDR, key, nkey) != 0)) {
		kc_errf(err, errlen, "object holds another key");
		return KC_STORE_OBJ_OTHER_KEY;
	}
	*val = h + KC_STORE_OBJ_HDR + klen;
	*vlen = (size_t)vl;
	return KC_STORE_OBJ_OK;
}

void kc_store_addr(const char *key, size_t nkey, char hex[65])
{
	kc_sha256_hex(key, nkey, hex);
}
