/* journal_index.c: the journal's in-memory bookkeeping: entries, the key index (which entry of
 * a key is newest, in flight, dead), the ready and retry heaps, the per-segment lists of live
 * entries, and resolving entries. Every function expects j->mu held (or no sync thread yet).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "tiers/journal/journal_int.h"
#include "core/log.h"

struct kc_jrec *kc_jrec_alloc(uint8_t op, uint64_t ver, const char *key, size_t nkey,
			      const void *blob, size_t nblob)
{
	struct kc_jrec *r = calloc(1, sizeof(*r) + nkey + nblob + 2);

	if (!r)
		return NULL;
	r->op = op;
	r->ver = ver;
	r->nkey = (uint32_t)nkey;
	r->nblob = (uint32_t)nblob;
	r->key = (char *)(r + 1);
	r->blob = r->key + nkey + 1;
	memcpy(r->key, key, nkey);
	if (nblob)
		memcpy(r->blob, blob, nblob);
	return r;
}

void kc_jrec_view(const struct kc_jrec *r, uint8_t type, struct kc_jview *v)
{
	memset(v, 0, sizeof(*v));
	v->type = type;
	v->id = r->id;
	v->op = r->op;
	v->attempts = r->attempts;
	v->ver = r->ver;
	v->key = r->key;
	v->nkey = r->nkey;
	v->blob = r->blob;
	v->nblob = r->nblob;
	if (type == KC_JR_LETTER) {
		v->when = r->when;
		v->why = r->why;
		v->nwhy = r->why ? (uint32_t)strlen(r->why) : 0;
	}
}

void kc_jrec_free(struct kc_journal *j, struct kc_jrec *r)
{
	if (r->kn)
		kc_jkey_put(j, r->kn);
	free(r->why);
	free(r);
}

/* ---- key index: chained hash table of nodes, doubled when fuller than one per bucket ------- */

static int kb_grow(struct kc_journal *j)
{
	size_t n = j->nkb ? j->nkb * 2 : 1024;
	struct kc_jkey **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < j->nkb; i++) {
		struct kc_jkey *k = j->kb[i], *next;

		for (; k; k = next) {
			next = k->hnext;
			k->hnext = nb[k->hash & (n - 1)];
			nb[k->hash & (n - 1)] = k;
		}
	}
	free(j->kb);
	j->kb = nb;
	j->nkb = n;
	return 0;
}

struct kc_jkey *kc_jkey_get(struct kc_journal *j, const char *key, uint32_t nkey)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_jkey *k;

	if ((!j->nkb || j->nkeys >= j->nkb) && kb_grow(j) && !j->nkb)
		return NULL; /* a failed growth later is harmless: chains get longer */
	for (k = j->kb[hash & (j->nkb - 1)]; k; k = k->hnext)
		if (k->hash == hash && k->nkey == nkey && !memcmp(k->key, key, nkey))
			break;
	if (!k) {
		k = calloc(1, sizeof(*k) + nkey);
		if (!k)
			return NULL;
		k->hash = hash;
		k->nkey = nkey;
		memcpy(k->key, key, nkey);
		k->hnext = j->kb[hash & (j->nkb - 1)];
		j->kb[hash & (j->nkb - 1)] = k;
		j->nkeys++;
	}
	k->refs++;
	return k;
}

void kc_jkey_put(struct kc_journal *j, struct kc_jkey *kn)
{
	struct kc_jkey **pp;

	if (--kn->refs)
		return;
	for (pp = &j->kb[kn->hash & (j->nkb - 1)]; *pp != kn; pp = &(*pp)->hnext)
		;
	*pp = kn->hnext;
	j->nkeys--;
	free(kn);
}

void kc_jkey_free_all(struct kc_journal *j)
{
	for (size_t i = 0; i < j->nkb; i++) {
		struct kc_jkey *k = j->kb[i], *next;

		for (; k; k = next) {
			next = k->hnext;
			free(k);
		}
	}
	free(j->kb);
	j->kb = NULL;
	j->nkb = j->nkeys = 0;
}

/* ---- heaps: binary min-heaps that know each entry's position (hidx) for removal ------------- */

static bool before(const struct kc_jheap *h, const struct kc_jrec *a, const struct kc_jrec *b)
{
	if (h->by_due && a->due_ms != b->due_ms)
		return a->due_ms < b->due_ms;
	return a->id < b->id;
}

static void place(struct kc_jheap *h, size_t i, struct kc_jrec *r)
{
	h->v[i] = r;
	r->hidx = (uint32_t)i;
}

static void sift_up(struct kc_jheap *h, size_t i)
{
	struct kc_jrec *r = h->v[i];

	while (i > 0 && before(h, r, h->v[(i - 1) / 2])) {
		place(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, r);
}

static void sift_down(struct kc_jheap *h, size_t i)
{
	struct kc_jrec *r = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(h, h->v[c + 1], h->v[c]))
			c++;
		if (!before(h, h->v[c], r))
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, r);
}

int kc_jheap_reserve(struct kc_jheap *h, size_t n)
{
	struct kc_jrec **v;
	size_t cap;

	if (n <= h->cap)
		return 0;
	cap = h->cap ? h->cap : 1024;
	while (cap < n)
		cap *= 2;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

void kc_jheap_push(struct kc_jheap *h, struct kc_jrec *r)
{
	/* Callers reserved room for every entry that can be pending (see kc_journal_append). */
	if (h->n >= h->cap && kc_jheap_reserve(h, h->n + 1)) {
		log_error("journal: heap of %zu entries cannot grow: entry %llu lost", h->n,
			  (unsigned long long)r->id);
		abort();
	}
	h->v[h->n++] = r;
	sift_up(h, h->n - 1);
}

struct kc_jrec *kc_jheap_pop(struct kc_jheap *h)
{
	struct kc_jrec *r = h->v[0];

	kc_jheap_remove(h, r);
	return r;
}

void kc_jheap_remove(struct kc_jheap *h, struct kc_jrec *r)
{
	size_t i = r->hidx;
	struct kc_jrec *last = h->v[--h->n];

	if (i == h->n)
		return;
	place(h, i, last);
	if (i > 0 && before(h, last, h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

/* ---- lists ------------------------------------------------------------------------------- */

void kc_jseg_link(struct kc_jseg *s, struct kc_jrec *r)
{
	r->seg = s;
	r->sprev = NULL;
	r->snext = s->live_head;
	if (s->live_head)
		s->live_head->sprev = r;
	s->live_head = r;
	s->live++;
	s->live_bytes += kc_journal_append_size(r->nkey, r->nblob);
}

void kc_jseg_unlink(struct kc_jrec *r)
{
	struct kc_jseg *s = r->seg;

	if (r->sprev)
		r->sprev->snext = r->snext;
	else
		s->live_head = r->snext;
	if (r->snext)
		r->snext->sprev = r->sprev;
	s->live--;
	s->live_bytes -= kc_journal_append_size(r->nkey, r->nblob);
	r->seg = NULL;
	r->snext = r->sprev = NULL;
}

void kc_jdead_link(struct kc_journal *j, struct kc_jrec *r)
{
	r->dnext = NULL;
	r->dprev = j->dead_tail;
	if (j->dead_tail)
		j->dead_tail->dnext = r;
	else
		j->dead_head = r;
	j->dead_tail = r;
}

void kc_jdead_unlink(struct kc_journal *j, struct kc_jrec *r)
{
	if (r->dprev)
		r->dprev->dnext = r->dnext;
	else
		j->dead_head = r->dnext;
	if (r->dnext)
		r->dnext->dprev = r->dprev;
	else
		j->dead_tail = r->dprev;
	r->dnext = r->dprev = NULL;
}

/* ---- markers and resolution ---------------------------------------------------------------- */

void kc_jmark(struct kc_journal *j, uint8_t type, uint64_t id, uint32_t attempts)
{
	struct kc_jview v = {.type = type, .id = id, .attempts = attempts};

	if (kc_journal_put_record(type == KC_JR_REPLAY ? &j->drops : &j->marks, &v))
		log_warn("journal: no memory for the marker of entry %llu: it may replay again",
			 (unsigned long long)id);
	if (type == KC_JR_REPLAY)
		j->drops_since_rewrite++;
}

void kc_jresolve(struct kc_journal *j, struct kc_jrec *r, bool superseded)
{
	struct kc_jkey *kn = r->kn;

	switch (r->state) {
	case KC_JS_READY:
		kc_jheap_remove(&j->ready, r);
		break;
	case KC_JS_RETRY:
		kc_jheap_remove(&j->retry, r);
		break;
	case KC_JS_INFLIGHT:
		j->st.in_flight--;
		break;
	case KC_JS_DEADQ: {
		struct kc_jrec **pp = &j->let_head;

		while (*pp && *pp != r)
			pp = &(*pp)->lnext;
		if (*pp)
			*pp = r->lnext;
		if (j->let_tail == &r->lnext)
			j->let_tail = pp;
		break;
	}
	default:
		break;
	}
	if (r->state == KC_JS_DEAD || r->state == KC_JS_DEADQ) {
		kc_jdead_unlink(j, r);
		j->st.dead--;
		j->dead_bytes -= kc_jrec_bytes(r);
		if (r->state == KC_JS_DEAD)
			kc_jmark(j, KC_JR_REPLAY, r->id, 0);
	} else {
		j->pending--;
		j->pending_bytes -= kc_jrec_bytes(r);
	}
	if (r->seg) {
		kc_jmark(j, KC_JR_ACK, r->id, 0);
		kc_jseg_unlink(r);
	}
	if (superseded)
		j->st.superseded++;
	if (kn->newest == r)
		kn->newest = NULL;
	if (kn->inflight == r)
		kn->inflight = NULL;
	if (kn->dead == r)
		kn->dead = NULL;
	kc_jrec_free(j, r);
	pthread_cond_broadcast(&j->changed);
}

void kc_jmake_durable(struct kc_journal *j, struct kc_jrec *r)
{
	struct kc_jkey *kn = r->kn;
	struct kc_jrec *old = kn->newest, *dead = kn->dead;
	/* An older entry in flight stays so: ack or fail see it is no longer the newest. */
	bool drop_old =
	    old && old->id < r->id && (old->state == KC_JS_READY || old->state == KC_JS_RETRY);
	bool drop_dead = dead && dead->id < r->id;

	if (!old || old->id < r->id)
		kn->newest = r;
	r->state = KC_JS_READY;
	kc_jheap_push(&j->ready, r);
	if (drop_old)
		kc_jresolve(j, old, true);
	if (drop_dead)
		kc_jresolve(j, dead, true);
}
