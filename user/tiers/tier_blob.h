/* tier_blob.h: how a value is written in the lower tiers (Redis and the object store).
 *
 * A blob is a 32-byte little-endian header and the value, compressed with zstd when it is at
 * least the configured size and compression saves bytes:
 *   0  magic "KCB1"      8  flags (u32)        16 exptime (i64, Unix seconds, 0 = never)
 *   4  kind (u8)         12 raw length (u32)   24 version (u64, hlc.h)
 *   5  encoding (u8)
 *   6  reserved (u16, 0)
 * kind 0 is a value, kind 1 a tombstone (a delete, kept a while so that an older write that
 * arrives late cannot bring the value back). The key is not in the blob: each tier stores the
 * blob under the key, and the object store checks the key itself. Decoding checks every field
 * and never trusts a length, so a blob from a hostile or corrupted tier is refused, not read. */
#ifndef KC_TIER_BLOB_H
#define KC_TIER_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mem/mem.h"

#define KC_BLOB_HDR 32

enum kc_blob_kind { KC_BLOB_VALUE = 0, KC_BLOB_TOMB = 1 };

struct kc_blob_meta {
	enum kc_blob_kind kind;
	uint32_t flags, raw_len;
	int64_t exptime;
	uint64_t ver;
	uint8_t enc; /* 0 raw, 1 zstd */
};

/* Appends the blob for it (compressed when its value has at least compress_min bytes, and
 * compress_min is not 0). Returns 0 or -ENOMEM. */
int kc_blob_encode(const struct kc_item *it, size_t compress_min, struct kc_buf *out);
/* Appends a tombstone for version ver. Returns 0 or -ENOMEM. */
int kc_blob_tomb(uint64_t ver, struct kc_buf *out);

/* Reads the header of b[0..n). Returns 0, or -EINVAL with the reason in err. */
int kc_blob_meta(const void *b, size_t n, struct kc_blob_meta *m, char *err, size_t errlen);

/* Decodes a value blob into a new item for key (refs = 1, ver and exptime from the blob).
 * Returns 0 with *it set, 1 for a tombstone (*it = NULL), or -EINVAL (malformed, a value
 * over item_max, a length that does not match) / -ENOMEM with the reason in err. */
int kc_blob_decode(const void *b, size_t n, const char *key, size_t nkey, size_t item_max,
		   struct kc_item **it, char *err, size_t errlen);

#endif
