/* store.c: the object store's dispatch (spec -> backend, key checks, counters) and the object
 * format that both backends store. The backends live in store_dir.c and store_s3.c. */
#include "tiers/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/store_int.h"

/* ---- object format ------------------------------------------------------------------------ */

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

/* ---- dispatch ----------------------------------------------------------------------------- */

struct kc_store *kc_store_open(const struct kc_store_opts *o, char *err, size_t errlen)
{
	struct kc_store *s;

	if (!o || !o->spec || !o->spec[0]) {
		kc_errf(err, errlen, "store: empty spec (a directory or s3://bucket/prefix)");
		errno = EINVAL;
		return NULL;
	}
	if (strncmp(o->spec, "s3://", 5) == 0)
		s = kc_store_s3_open(o, err, errlen);
	else if (strstr(o->spec, "://")) {
		kc_errf(err, errlen, "store: %s: unknown scheme (a directory path or s3://...)",
			o->spec);
		errno = EINVAL;
		return NULL;
	} else
		s = kc_store_dir_open(o, err, errlen);
	return s;
}

void kc_store_close(struct kc_store *s)
{
	if (s)
		s->ops->close(s);
}

const char *kc_store_kind(const struct kc_store *s)
{
	return s->ops->kind;
}

const char *kc_store_res_name(enum kc_store_res r)
{
	switch (r) {
	case KC_STORE_OK:
		return "ok";
	case KC_STORE_MISS:
		return "miss";
	case KC_STORE_ERR:
		return "error";
	case KC_STORE_FULL:
		return "full";
	case KC_STORE_CORRUPT:
		return "corrupt";
	}
	return "?";
}

static bool key_ok(struct kc_store *s, const char *key, size_t nkey, char *err, size_t errlen)
{
	if (key && nkey >= 1 && nkey <= KC_STORE_KEY_MAX)
		return true;
	kc_errf(err, errlen, "store: key of %zu bytes: must be 1..%d", nkey, KC_STORE_KEY_MAX);
	atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	return false;
}

static void count(struct kc_store *s, enum kc_store_res r)
{
	switch (r) {
	case KC_STORE_OK:
	case KC_STORE_MISS:
		break;
	case KC_STORE_ERR:
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
		break;
	case KC_STORE_FULL:
		atomic_fetch_add_explicit(&s->full, 1, memory_order_relaxed);
		break;
	case KC_STORE_CORRUPT: /* counted by the backend, which removed the object */
		break;
	}
}

enum kc_store_res kc_store_get(struct kc_store *s, const char *key, size_t nkey, void **val,
			       size_t *n, char *err, size_t errlen)
{
	char addr[65];
	enum kc_store_res r;

	*val = NULL;
	*n = 0;
	atomic_fetch_add_explicit(&s->gets, 1, memory_order_relaxed);
	if (!key_ok(s, key, nkey, err, errlen))
		return KC_STORE_ERR;
	kc_store_addr(key, nkey, addr);
	r = s->ops->get(s, key, nkey, addr, val, n, err, errlen);
	if (r == KC_STORE_OK)
		atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
	else if (r == KC_STORE_MISS || r == KC_STORE_CORRUPT)
		atomic_fetch_add_explicit(&s->misses, 1, memory_order_relaxed);
	count(s, r);
	return r;
}

enum kc_store_res kc_store_put(struct kc_store *s, const char *key, size_t nkey, const void *val,
			       size_t n, char *err, size_t errlen)
{
	char addr[65];
	enum kc_store_res r;

	atomic_fetch_add_explicit(&s->puts, 1, memory_order_relaxed);
	if (!key_ok(s, key, nkey, err, errlen))
		return KC_STORE_ERR;
	if (!val && n) {
		kc_errf(err, errlen, "store: NULL value of %zu bytes", n);
		count(s, KC_STORE_ERR);
		return KC_STORE_ERR;
	}
	kc_store_addr(key, nkey, addr);
	r = s->ops->put(s, key, nkey, addr, val ? val : "", n, err, errlen);
	count(s, r);
	return r;
}

enum kc_store_res kc_store_del(struct kc_store *s, const char *key, size_t nkey, char *err,
			       size_t errlen)
{
	char addr[65];
	enum kc_store_res r;

	atomic_fetch_add_explicit(&s->dels, 1, memory_order_relaxed);
	if (!key_ok(s, key, nkey, err, errlen))
		return KC_STORE_ERR;
	kc_store_addr(key, nkey, addr);
	r = s->ops->del(s, key, nkey, addr, err, errlen);
	count(s, r);
	return r;
}

void kc_store_get_stats(struct kc_store *s, struct kc_store_stats *out)
{
	memset(out, 0, sizeof(*out));
	s->ops->totals(s, &out->objects, &out->bytes);
	out->max_bytes = s->max_bytes;
	out->gets = atomic_load_explicit(&s->gets, memory_order_relaxed);
	out->hits = atomic_load_explicit(&s->hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&s->misses, memory_order_relaxed);
	out->puts = atomic_load_explicit(&s->puts, memory_order_relaxed);
	out->dels = atomic_load_explicit(&s->dels, memory_order_relaxed);
	out->errors = atomic_load_explicit(&s->errors, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&s->evictions, memory_order_relaxed);
	out->corrupt = atomic_load_explicit(&s->corrupt, memory_order_relaxed);
	out->full = atomic_load_explicit(&s->full, memory_order_relaxed);
}
