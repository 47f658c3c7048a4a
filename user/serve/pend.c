/* pend.c: a connection's waits on the lower tiers (see pend.h). */
#include "serve/pend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiers/tier.h"

#define PEND_MAX_KEYS 1024 /* a get of more keys than this fetches them in rounds */

struct pkey {
	uint8_t nkey;
	bool fetched; /* resolved for this command: it holds what was found */
	struct kc_item *it;
	char key[KC_KEY_MAX];
};

struct kc_pend {
	struct kc_tiers *t;
	unsigned worker;
	struct pkey *keys; /* wanted, then resolved, for the current command */
	size_t nkeys, cap;
	struct pkey *writes;
	size_t nwrites, capw;
	bool flush;
	int64_t flush_when;
	/* a run */
	int outstanding;
	bool running, orphan, failed;
	char err[200];
	struct kc_buf *out;
	size_t reply_mark;
	void (*done)(void *ctx);
	void *ctx;
};

struct kc_pend *kc_pend_new(struct kc_tiers *t, unsigned worker)
{
	struct kc_pend *p = calloc(1, sizeof(*p));

	if (p) {
		p->t = t;
		p->worker = worker;
	}
	return p;
}

static void release(struct kc_pend *p)
{
	for (size_t i = 0; i < p->nkeys; i++)
		kc_item_put(p->keys[i].it);
	free(p->keys);
	free(p->writes);
	free(p);
}

void kc_pend_free(struct kc_pend *p)
{
	if (!p)
		return;
	if (p->running)
		p->orphan = true;
	else
		release(p);
}

static struct pkey *find(struct pkey *v, size_t n, const char *key, size_t nkey)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].nkey == nkey && !memcmp(v[i].key, key, nkey))
			return &v[i];
	return NULL;
}

static struct pkey *add(struct pkey **v, size_t *n, size_t *cap, const char *key, size_t nkey)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct pkey *nv = realloc(*v, nc * sizeof(**v));

		if (!nv)
			return NULL;
		*v = nv;
		*cap = nc;
	}
	struct pkey *k = &(*v)[(*n)++];

	memset(k, 0, offsetof(struct pkey, key));
	k->nkey = (uint8_t)nkey;
	memcpy(k->key, key, nkey);
	return k;
}

/* Records key for fetching; false if it cannot be (too many keys, no memory): then the command
 * goes on without the lower tiers for this key. */
static bool want(struct kc_pend *p, const char *key, size_t nkey)
{
	if (nkey == 0 || nkey > KC_KEY_MAX || !kc_tiers_may_have(p->t, key, nkey))
		return false;
	if (find(p->keys, p->nkeys, key, nkey))
		return true; /* already wanted (a key repeated in one get) */
	if (p->nkeys >= PEND_MAX_KEYS)
		return false;
	return add(&p->keys, &p->nkeys, &p->cap, key, nkey) != NULL;
}

bool kc_pend_need(struct kc_pend *p, struct kc_mem *m, const char *key, size_t nkey)
{
	struct pkey *k = find(p->keys, p->nkeys, key, nkey);

	if (k && k->fetched)
		return false;
	if (kc_mem_has(m, key, nkey))
		return false;
	return want(p, key, nkey);
}

struct kc_item *kc_pend_lookup(struct kc_pend *p, const char *key, size_t nkey, bool *suspend)
{
	struct pkey *k = find(p->keys, p->nkeys, key, nkey);

	if (k && k->fetched) {
		if (k->it)
			kc_item_get(k->it);
		return k->it;
	}
	if (want(p, key, nkey))
		*suspend = true;
	return NULL;
}

void kc_pend_wrote(struct kc_pend *p, const char *key, size_t nkey)
{
	if (!find(p->writes, p->nwrites, key, nkey) &&
	    !add(&p->writes, &p->nwrites, &p->capw, key, nkey))
		p->failed = true; /* reported when the run starts */
}

void kc_pend_flush(struct kc_pend *p, int64_t when)
{
	p->flush = true;
	p->flush_when = when;
}

bool kc_pend_has_writes(const struct kc_pend *p)
{
	return p->nwrites || p->flush;
}

void kc_pend_command_done(struct kc_pend *p)
{
	for (size_t i = 0; i < p->nkeys; i++)
		kc_item_put(p->keys[i].it);
	p->nkeys = 0;
}

/* --- runs ---------------------------------------------------------------------------------- */

static void run_step(struct kc_pend *p)
{
	if (--p->outstanding > 0)
		return;
	p->running = false;
	if (p->orphan) {
		release(p);
		return;
	}
	if (p->failed && p->out) {
		p->out->len = p->reply_mark;
		kc_buf_printf(p->out, "SERVER_ERROR %s\r\n",
			      p->err[0] ? p->err : "out of memory recording a write");
	}
	p->failed = false;
	p->err[0] = 0;
	p->done(p->ctx);
}

struct fetch_ctx {
	struct kc_pend *p;
	size_t idx;
};

static void on_fetched(void *ctx, struct kc_item *it)
{
	struct fetch_ctx *f = ctx;
	struct kc_pend *p = f->p;

	if (p->orphan) {
		kc_item_put(it);
	} else {
		p->keys[f->idx].it = it;
		p->keys[f->idx].fetched = true;
	}
	free(f);
	run_step(p);
}

static void on_written(void *ctx, const char *err)
{
	struct kc_pend *p = ctx;

	if (err && !p->failed) {
		p->failed = true;
		snprintf(p->err, sizeof(p->err), "%s", err);
	}
	run_step(p);
}

void kc_pend_run(struct kc_pend *p, enum kc_wait what, struct kc_buf *out, size_t reply_mark,
		 void (*done)(void *ctx), void *ctx)
{
	p->out = out;
	p->reply_mark = reply_mark;
	p->done = done;
	p->ctx = ctx;
	p->running = true;
	p->outstanding = 1; /* ours, dropped below: callbacks may come before the loop ends */
	if (what == KC_WAIT_FETCH) {
		for (size_t i = 0; i < p->nkeys; i++) {
			struct fetch_ctx *f;

			if (p->keys[i].fetched)
				continue;
			f = malloc(sizeof(*f));
			if (!f) {
				p->keys[i].fetched = true; /* found nowhere, as far as we know */
				continue;
			}
			f->p = p;
			f->idx = i;
			p->outstanding++;
			kc_tiers_fetch(p->t, p->worker, p->keys[i].key, p->keys[i].nkey, on_fetched,
				       f);
		}
	} else {
		for (size_t i = 0; i < p->nwrites; i++) {
			p->outstanding++;
			kc_tiers_write(p->t, p->worker, p->writes[i].key, p->writes[i].nkey,
				       on_written, p);
		}
		p->nwrites = 0;
		if (p->flush) {
			p->flush = false;
			p->outstanding++;
			kc_tiers_flush(p->t, p->worker, p->flush_when, KC_FLUSH_LOCAL, on_written,
				       p);
		}
	}
	run_step(p);
}
