/* tier_blob.c: the lower tiers' value encoding (see tier_blob.h). */
#include "tiers/tier_blob.h"

#include <errno.h>
#include <string.h>
#include <zstd.h>

#include "core/log.h"

static const char magic[4] = {'K', 'C', 'B', '1'};

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_header(uint8_t *h, const struct kc_blob_meta *m)
{
	memcpy(h, magic, 4);
	h[4] = (uint8_t)m->kind;
	h[5] = m->enc;
	h[6] = h[7] = 0;
	put_u32(h + 8, m->flags);
	put_u32(h + 12, m->raw_len);
	put_u64(h + 16, (uint64_t)m->exptime);
	put_u64(h + 24, m->ver);
}

int kc_blob_encode(const struct kc_item *it, size_t compress_min, struct kc_buf *out)
{
	struct kc_blob_meta m = {.kind = KC_BLOB_VALUE,
				 .flags = it->flags,
				 .raw_len = it->nval,
				 .exptime = atomic_load(&((struct kc_item *)it)->exptime),
				 .ver = atomic_load(&((struct kc_item *)it)->ver)};
	const char *val = it->data + it->nkey;
	size_t start = out->len;

	if (kc_buf_reserve(out, KC_BLOB_HDR + it->nval))
		return -ENOMEM;
	if (compress_min && it->nval >= compress_min) {
		size_t bound = ZSTD_compressBound(it->nval);

		if (kc_buf_reserve(out, KC_BLOB_HDR + bound))
			return -ENOMEM;
		size_t z = ZSTD_compress(out->data + start + KC_BLOB_HDR, bound, val, it->nval, 1);

		if (!ZSTD_isError(z) && z < it->nval) {
			m.enc = 1;
			put_header((uint8_t *)out->data + start, &m);
			out->len = start + KC_BLOB_HDR + z;
			return 0;
		}
	}
	put_header((uint8_t *)out->data + start, &m);
	memcpy(out->data + start + KC_BLOB_HDR, val, it->nval);
	out->len = start + KC_BLOB_HDR + it->nval;
	return 0;
}

int kc_blob_tomb(uint64_t ver, struct kc_buf *out)
{
	struct kc_blob_meta m = {.kind = KC_BLOB_TOMB, .ver = ver};

	if (kc_buf_reserve(out, KC_BLOB_HDR))
		return -ENOMEM;
	put_header((uint8_t *)out->data + out->len, &m);
	out->len += KC_BLOB_HDR;
	return 0;
}

int kc_blob_meta(const void *b, size_t n, struct kc_blob_meta *m, char *err, size_t errlen)
{
	const uint8_t *h = b;

	if (n < KC_BLOB_HDR) {
		kc_errf(err, errlen, "blob of %zu bytes is shorter than its header", n);
		return -EINVAL;
	}
	if (memcmp(h, magic, 4)) {
		kc_errf(err, errlen, "blob has no KCB1 magic");
		return -EINVAL;
	}
	if (h[4] > KC_BLOB_TOMB || h[5] > 1 || h[6] || h[7]) {
		kc_errf(err, errlen, "blob header: unknown kind %u or encoding %u", h[4], h[5]);
		return -EINVAL;
	}
	m->kind = (enum kc_blob_kind)h[4];
	m->enc = h[5];
	m->flags = get_u32(h + 8);
	m->raw_len = get_u32(h + 12);
	m->exptime = (int64_t)get_u64(h + 16);
	m->ver = get_u64(h + 24);
	if (m->kind == KC_BLOB_TOMB && (n != KC_BLOB_HDR || m->raw_len || m->enc)) {
		kc_errf(err, errlen, "tombstone blob carries a value");
		return -EINVAL;
	}
	if (m->kind == KC_BLOB_VALUE && !m->enc && m->raw_len != n - KC_BLOB_HDR) {
		kc_errf(err, errlen, "blob says %u value bytes, has %zu", m->raw_len,
			n - KC_BLOB_HDR);
		return -EINVAL;
	}
	return 0;
}

int kc_blob_decode(const void *b, size_t n, const char *key, size_t nkey, size_t item_max,
		   struct kc_item **out, char *err, size_t errlen)
{
	struct kc_blob_meta m;
	struct kc_item *it;
	const char *payload = (const char *)b + KC_BLOB_HDR;
	int rc = kc_blob_meta(b, n, &m, err, errlen);

	*out = NULL;
	if (rc)
		return rc;
	if (m.kind == KC_BLOB_TOMB)
		return 1;
	if (nkey + m.raw_len > item_max) {
		kc_errf(err, errlen, "blob value of %u bytes exceeds item-size-max", m.raw_len);
		return -EINVAL;
	}
	if (m.enc) {
		unsigned long long size = ZSTD_getFrameContentSize(payload, n - KC_BLOB_HDR);

		if (size != m.raw_len) {
			kc_errf(err, errlen, "compressed blob: frame size does not match %u",
				m.raw_len);
			return -EINVAL;
		}
	}
	it = kc_item_new(key, nkey, m.flags, m.exptime, m.raw_len);
	if (!it) {
		kc_errf(err, errlen, "blob: %s", strerror(errno));
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	}
	if (m.enc) {
		size_t z = ZSTD_decompress(kc_item_value(it), m.raw_len, payload, n - KC_BLOB_HDR);

		if (ZSTD_isError(z) || z != m.raw_len) {
			kc_errf(err, errlen, "compressed blob: %s",
				ZSTD_isError(z) ? ZSTD_getErrorName(z) : "short frame");
			kc_item_put(it);
			return -EINVAL;
		}
	} else {
		memcpy(kc_item_value(it), payload, m.raw_len);
	}
	atomic_store(&it->ver, m.ver);
	*out = it;
	return 0;
}
