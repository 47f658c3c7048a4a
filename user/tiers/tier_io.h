/* tier_io.h: the object store's I/O threads. Store calls block (file I/O with fsync, or an S3
 * request), so the event loops hand them to a few threads here and get the result back on
 * their own loop. Jobs for one key always run on the same thread, in the order submitted, so
 * two writes of a key cannot overtake each other. */
#ifndef KC_TIER_IO_H
#define KC_TIER_IO_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "tiers/store/store.h"

enum kc_tio_op { KC_TIO_GET, KC_TIO_PUT, KC_TIO_DEL };

struct kc_tio_job {
	enum kc_tio_op op;
	char *key; /* owned by the job */
	size_t nkey;
	void *val; /* PUT: the blob (owned, freed with the job); GET: the result (malloc'd) */
	size_t n;
	enum kc_store_res res;
	char err[160];
	uint64_t ns; /* how long the store call took */
	/* where the result goes: done(job) runs on base's loop (or on the I/O thread if NULL) */
	struct event_base *base;
	void (*done)(struct kc_tio_job *j);
	void *ctx;
	struct kc_tio_job *next; /* private */
};

struct kc_tio;

/* Starts nthreads (1..16) threads serving s. NULL with a message in err. */
struct kc_tio *kc_tio_start(struct kc_store *s, unsigned nthreads, char *err, size_t errlen);
/* Allocates a job with a copy of key (and of val for a PUT). NULL on ENOMEM. */
struct kc_tio_job *kc_tio_job_new(enum kc_tio_op op, const char *key, size_t nkey, const void *val,
				  size_t n);
void kc_tio_job_free(struct kc_tio_job *j);
/* Queues the job; done() will be called exactly once. Thread-safe. */
void kc_tio_submit(struct kc_tio *io, struct kc_tio_job *j);
/* Runs every queued job, then stops and joins the threads. NULL is allowed. */
void kc_tio_stop(struct kc_tio *io);

#endif
