/* store.h: the object store tier (L3): opaque blobs by key, in a local directory (the default,
 * user/tiers/store/store_dir.c) or in S3 (user/tiers/store/store_s3.c). The tier layer above
 * encodes value, flags, exptime, version and compression into the blob; the store does not
 * interpret it.
 *
 * Every call here is BLOCKING and THREAD-SAFE: the tier code calls them from a small pool of I/O
 * threads, never from the event loop. Both backends store the same checksummed object format
 * (kc_store_obj_*, below; docs/store.md), so corruption is detected the same way in both.
 */
#ifndef KC_STORE_H
#define KC_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Keys are arbitrary bytes, 1 to KC_STORE_KEY_MAX of them (memcached keys, "ac/<sha256>", ...). */
#define KC_STORE_KEY_MAX 1024

struct kc_store;

struct kc_store_opts {
	/* A directory path ("/var/lib/kcache/store"), or
	 * "s3://bucket/prefix?endpoint=http://127.0.0.1:4569&region=us-east-1". */
	const char *spec;
	uint64_t max_bytes;  /* dir: size limit (0 = none, but still stop cleanly on ENOSPC) */
	uint32_t timeout_ms; /* s3: total timeout of one request (0 = 2000) */
	/* s3: credentials; NULL = from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
	 * AWS_SESSION_TOKEN in the environment. */
	const char *access_key, *secret_key, *session_token;
};

/* Opens the store named by o->spec. Returns NULL and a precise message in err for a malformed
 * spec ("store: s3 URL: missing bucket") or an unusable directory ("store: /x: Permission
 * denied"). An unreachable S3 endpoint is not an open error: it is logged as a warning and the
 * calls then fail with KC_STORE_ERR. */
struct kc_store *kc_store_open(const struct kc_store_opts *o, char *err, size_t errlen);
/* Closes the store; NULL is accepted. No call may be running on it. */
void kc_store_close(struct kc_store *s);
/* "dir" or "s3": the metric label of the backend. */
const char *kc_store_kind(const struct kc_store *s);

enum kc_store_res {
	KC_STORE_OK = 0,
	KC_STORE_MISS = 1,
	KC_STORE_ERR = -1,
	KC_STORE_FULL = -2,    /* no room under max_bytes, or ENOSPC/EDQUOT: nothing was changed */
	KC_STORE_CORRUPT = -3, /* checksum mismatch: the object was removed and counted */
};

/* "ok", "miss", "error", "full", "corrupt". */
const char *kc_store_res_name(enum kc_store_res r);

/* Reads key. On KC_STORE_OK *val is malloc'd (the caller frees it) and holds *n bytes. MISS when
 * absent (or when the object at the key's address belongs to another key). CORRUPT when the
 * stored object fails its checks: it has been removed, so the caller treats it as a miss. ERR
 * with a message in err. Updates the object's recency for LRU eviction. */
enum kc_store_res kc_store_get(struct kc_store *s, const char *key, size_t nkey, void **val,
			       size_t *n, char *err, size_t errlen);
/* Stores key = val, replacing any earlier value atomically: a reader sees the old object or the
 * new one, never a mix. Durable when it returns OK. FULL when the object does not fit under
 * max_bytes even after evicting, or the filesystem is full (ENOSPC/EDQUOT): nothing half-written
 * is left and nothing stored before is damaged. */
enum kc_store_res kc_store_put(struct kc_store *s, const char *key, size_t nkey, const void *val,
			       size_t n, char *err, size_t errlen);
/* Removes key: OK, MISS when absent, or ERR. */
enum kc_store_res kc_store_del(struct kc_store *s, const char *key, size_t nkey, char *err,
			       size_t errlen);

/* Counters since open; objects, bytes and max_bytes are the dir backend's current totals (0 for
 * s3, which cannot know them cheaply). bytes counts whole object files (header + key + value). */
struct kc_store_stats {
	uint64_t objects, bytes, max_bytes, gets, hits, misses, puts, dels, errors, evictions,
	    corrupt, full;
};
void kc_store_get_stats(struct kc_store *s, struct kc_store_stats *out);

/* ---- the object format, shared by both backends (docs/store.md) ---------------------------
 * header (24 bytes, little-endian): "KCO1", u8 version (1), u8 flags (0), u16 key length,
 * u64 value length, u64 XXH3-64 over header bytes 0..15 + key + value; then key, then value. */
#define KC_STORE_OBJ_MAGIC "KCO1"
#define KC_STORE_OBJ_HDR   24

/* Fills hdr (KC_STORE_OBJ_HDR bytes) for key and val; the object is hdr + key + val. */
void kc_store_obj_header(void *hdr, const char *key, size_t nkey, const void *val, size_t n);

enum kc_store_obj_res {
	KC_STORE_OBJ_OK = 0,
	KC_STORE_OBJ_OTHER_KEY = 1, /* a valid object, but of another key (a hash collision) */
	KC_STORE_OBJ_BAD = -1,	    /* not a valid object: err says what is wrong */
};
/* Checks buf[0..n) as an object of key: magic, version, lengths, checksum, stored key. On
 * KC_STORE_OBJ_OK *val and *vlen point at the value inside buf. key may be NULL to accept any
 * key. Never reads outside buf. */
enum kc_store_obj_res kc_store_obj_parse(const void *buf, size_t n, const char *key, size_t nkey,
					 const void **val, size_t *vlen, char *err, size_t errlen);

/* The address of key: lowercase hex of SHA-256(key), 64 characters and a NUL. */
void kc_store_addr(const char *key, size_t nkey, char hex[65]);

#endif
