/* tier_io.c: the object store's I/O threads (see tier_io.h). */
#include "tiers/tier_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/metrics.h"

struct tio_thread {
	struct kc_tio *io;
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kc_tio_job *head, *tail;
	bool stop, started;
};

struct kc_tio {
	struct kc_store *store;
	unsigned n;
	struct tio_thread th[];
};

struct kc_tio_job *kc_tio_job_new(enum kc_tio_op op, const char *key, size_t nkey, const void *val,
				  size_t n)
{
	struct kc_tio_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->op = op;
	j->key = malloc(nkey ? nkey : 1);
	if (!j->key)
		goto fail;
	memcpy(j->key, key, nkey);
	j->nkey = nkey;
	if (op == KC_TIO_PUT) {
		j->val = malloc(n ? n : 1);
		if (!j->val)
			goto fail;
		memcpy(j->val, val, n);
		j->n = n;
	}
	return j;
fail:
	kc_tio_job_free(j);
	return NULL;
}

void kc_tio_job_free(struct kc_tio_job *j)
{
	if (!j)
		return;
	free(j->key);
	free(j->val);
	free(j);
}

static void run_job(struct kc_store *s, struct kc_tio_job *j)
{
	uint64_t t0 = kc_mono_ns();

	switch (j->op) {
	case KC_TIO_GET:
		j->res = kc_store_get(s, j->key, j->nkey, &j->val, &j->n, j->err, sizeof(j->err));
		break;
	case KC_TIO_PUT:
		j->res = kc_store_put(s, j->key, j->nkey, j->val, j->n, j->err, sizeof(j->err));
		break;
	case KC_TIO_DEL:
		j->res = kc_store_del(s, j->key, j->nkey, j->err, sizeof(j->err));
		break;
	}
	j->ns = kc_mono_ns() - t0;
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct kc_tio_job *j = arg;

	(void)fd, (void)what;
	j->done(j);
}

static void *tio_main(void *arg)
{
	struct tio_thread *t = arg;

	for (;;) {
		struct kc_tio_job *j;

		pthread_mutex_lock(&t->lock);
		while (!t->head && !t->stop)
			pthread_cond_wait(&t->cond, &t->lock);
		j = t->head;
		if (j) {
			t->head = j->next;
			if (!t->head)
				t->tail = NULL;
		}
		pthread_mutex_unlock(&t->lock);
		if (!j)
			return NULL; /* stopping, and the queue is empty */
		run_job(t->io->store, j);
		if (!j->base || event_base_once(j->base, -1, EV_TIMEOUT, deliver, j, NULL))
			j->done(j);
	}
}

struct kc_tio *kc_tio_start(struct kc_store *s, unsigned nthreads, char *err, size_t errlen)
{
	struct kc_tio *io;

	if (nthreads < 1 || nthreads > 16) {
		kc_errf(err, errlen, "store I/O threads: %u is not in 1..16", nthreads);
		return NULL;
	}
	io = calloc(1, sizeof(*io) + nthreads * sizeof(io->th[0]));
	if (!io) {
		kc_errf(err, errlen, "store I/O threads: out of memory");
		return NULL;
	}
	io->store = s;
	io->n = nthreads;
	for (unsigned i = 0; i < nthreads; i++) {
		struct tio_thread *t = &io->th[i];
		int rc;

		t->io = io;
		pthread_mutex_init(&t->lock, NULL);
		pthread_cond_init(&t->cond, NULL);
		rc = pthread_create(&t->tid, NULL, tio_main, t);
		if (rc) {
			kc_errf(err, errlen, "store I/O thread: %s", strerror(rc));
			kc_tio_stop(io);
			return NULL;
		}
		t->started = true;
	}
	return io;
}

void kc_tio_submit(struct kc_tio *io, struct kc_tio_job *j)
{
	struct tio_thread *t = &io->th[XXH3_64bits(j->key, j->nkey) % io->n];

	j->next = NULL;
	pthread_mutex_lock(&t->lock);
	if (t->tail)
		t->tail->next = j;
	else
		t->head = j;
	t->tail = j;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void kc_tio_stop(struct kc_tio *io)
{
	if (!io)
		return;
	for (unsigned i = 0; i < io->n; i++) {
		struct tio_thread *t = &io->th[i];

		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
	for (unsigned i = 0; i < io->n; i++) {
		if (io->th[i].started)
			pthread_join(io->th[i].tid, NULL);
		pthread_mutex_destroy(&io->th[i].lock);
		pthread_cond_destroy(&io->th[i].cond);
	}
	free(io);
}
