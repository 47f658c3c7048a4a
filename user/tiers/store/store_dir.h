/* store_dir.h: the directory backend's state, shared by its data path (store_dir.c: get, put,
 * del, eviction) and its life cycle (store_dir_open.c: open, scan, close, the ops table), which
 * calls the data path and is never called by it. Nothing else includes it. */
#ifndef KC_STORE_DIR_H
#define KC_STORE_DIR_H

#include <pthread.h>
#include <stdio.h>

#include "core/clock.h" /* kc_wall_ns: index times, comparable with file times */
#include "tiers/store/store_idx.h"
#include "tiers/store/store_int.h"

#define KC_DIR_STRIPES 64
/* A read's recency is written to the file's atime at most this often (ns). */
#define KC_DIR_PERSIST_NS (60LL * 1000000000)

struct dir_store {
	struct kc_store base;
	char *path;
	int dfd, objfd, tmpfd, lockfd;
	pthread_mutex_t mu; /* idx, reserved */
	struct kc_sidx *idx;
	uint64_t reserved; /* bytes of puts between their reservation and their rename */
	/* Serialise the renames and unlinks of one address (lock order: stripe, then mu). */
	pthread_mutex_t stripe[KC_DIR_STRIPES];
	_Atomic uint64_t tmpseq;
};

/* "ab/cd/abcd…": an object's path relative to objects/ */
static inline void kc_dir_rel(char out[72], const char *addr)
{
	snprintf(out, 72, "%.2s/%.2s/%s", addr, addr + 2, addr);
}

static inline pthread_mutex_t *kc_dir_stripe(struct dir_store *d, const uint8_t *bin)
{
	return &d->stripe[bin[0] % KC_DIR_STRIPES];
}

/* Takes least recently used objects out of the index until need more bytes fit under
 * max_bytes, removes their files and reserves need. false when need cannot fit (the index is
 * empty, or puts in flight hold the room). Takes mu, then the victims' stripes. */
bool kc_store_dir_reserve(struct dir_store *d, uint64_t need);
/* Removes the file at addr unless the index holds addr again (a put that re-added it owns the
 * file). Takes the stripe, then mu. */
void kc_store_dir_unlink_unindexed(struct dir_store *d, const char *addr, const uint8_t *bin);
/* The data path (store_dir.c), the kc_store_ops get, put and del of the directory backend:
 * same contract as struct kc_store_ops (store_int.h). They take stripes and mu themselves. */
enum kc_store_res kc_store_dir_get(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, void **val, size_t *n, char *err,
				   size_t errlen);
enum kc_store_res kc_store_dir_put(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, const void *val, size_t n, char *err,
				   size_t errlen);
enum kc_store_res kc_store_dir_del(struct kc_store *s, const char *key, size_t nkey,
				   const char *addr, char *err, size_t errlen);
void kc_store_dir_totals(struct kc_store *s, uint64_t *objects, uint64_t *bytes);
void kc_store_dir_close(struct kc_store *s);

#endif
