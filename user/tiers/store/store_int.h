/* store_int.h: what the object store's backends share with its dispatch (store.c) and
 * nothing else includes: the backend table, the common counters, the backends' constructors,
 * the hex helper of the object format (store_obj.c) and the S3 URL parser (separate so that it
 * can be tested without a network). */
#ifndef KC_STORE_INT_H
#define KC_STORE_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "tiers/store/store.h"

struct kc_store_ops {
	const char *kind;
	/* addr is kc_store_addr(key); key and nkey are already checked (1..KC_STORE_KEY_MAX).
	 * get and del count evictions and corrupt objects themselves; the dispatch counts the rest
	 * from the results. */
	enum kc_store_res (*get)(struct kc_store *s, const char *key, size_t nkey, const char *addr,
				 void **val, size_t *n, char *err, size_t errlen);
	enum kc_store_res (*put)(struct kc_store *s, const char *key, size_t nkey, const char *addr,
				 const void *val, size_t n, char *err, size_t errlen);
	enum kc_store_res (*del)(struct kc_store *s, const char *key, size_t nkey, const char *addr,
				 char *err, size_t errlen);
	/* objects and bytes now (0 when unknown) */
	void (*totals)(struct kc_store *s, uint64_t *objects, uint64_t *bytes);
	void (*close)(struct kc_store *s);
};

/* The head of every backend's struct. */
struct kc_store {
	const struct kc_store_ops *ops;
	uint64_t max_bytes;
	_Atomic uint64_t gets, hits, misses, puts, dels, errors, evictions, corrupt, full;
};

struct kc_store *kc_store_dir_open(const struct kc_store_opts *o, char *err, size_t errlen);
struct kc_store *kc_store_s3_open(const struct kc_store_opts *o, char *err, size_t errlen);

/* A parsed s3://bucket/prefix?endpoint=...&region=...&path_style=0|1&insecure=0|1. */
struct kc_s3_url {
	char bucket[64];
	char prefix[512];   /* "" or ending in '/' */
	char endpoint[512]; /* scheme://host[:port], no trailing '/'; "" = AWS for the region */
	char region[64];
	bool path_style, insecure;
};
/* Parses url. Returns 0, or -EINVAL and "store: s3 URL: ..." in err. region falls back to
 * AWS_REGION, AWS_DEFAULT_REGION, then us-east-1. */
int kc_s3_url_parse(const char *url, struct kc_s3_url *u, char *err, size_t errlen);

#endif
