/* store.c: the object store's dispatch (spec -> backend, key checks, counters). It calls down
 * into the backends (store_dir_open.c, store_s3.c) and the object format they store
 * (store_obj.c, for kc_store_addr); nothing below calls back into it. */
#include "tiers/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/store_int.h"

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
